import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import TernCore

/// Who is calling.
public enum Identity: Sendable, Equatable {
    /// The operator, with the admin key.
    case admin
    /// An organization's API key.
    case organization(Principal)
}

/// An organization API key's identity: its organization, scopes and optional application restriction.
public struct Principal: Sendable, Equatable {
    public var organizationID: String
    public var keyID: String
    public var scopes: [String]
    public var applicationID: String?

    public init(organizationID: String, keyID: String, scopes: [String], applicationID: String?) {
        self.organizationID = organizationID
        self.keyID = keyID
        self.scopes = scopes
        self.applicationID = applicationID
    }
}

/// The context of every request: its id and, once authenticated, the caller.
public struct TernRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var requestID: String = ""
    public var identity: Identity?
    /// The portal or admin browser session, on `/portal` and `/admin` pages.
    public var webSession: WebSession?
    /// On `/api/v1`: the application the key works in (the Svix "environment").
    public var svixApplicationID: String?
    /// The peer of the connection (the client, or the proxy in front of it).
    public var remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }

    /// Bodies are collected with their own limits by `Request.decodeJSON`.
    public var maxUploadSize: Int { 1 << 20 }
}

/// A context that carries a request id and a scope for idempotency keys.
public protocol TernContext: RequestContext {
    var requestID: String { get }
    /// Idempotency keys are unique within this scope.
    var idempotencyScope: String { get }
}

/// Routes of an organization: fails with 401 without a key and 403 with the admin key.
public struct OrganizationContext: ChildRequestContext, TernContext {
    public var coreContext: CoreRequestContextStorage
    public var requestID: String
    public var principal: Principal

    public init(context: TernRequestContext) throws {
        switch context.identity {
        case .none:
            throw TernError.unauthorized("Send an API key as 'Authorization: Bearer tern_…'.")
        case .admin:
            throw TernError.forbidden("The admin key manages organizations; use an organization API key for this route.")
        case .organization(let principal):
            self.principal = principal
        }
        self.coreContext = context.coreContext
        self.requestID = context.requestID
    }

    public var idempotencyScope: String { self.principal.organizationID }

    /// Throws 403 unless the key's scopes allow `action` on `resource`.
    public func require(_ action: Scopes.Action, _ resource: String) throws {
        try Scopes.require(self.principal.scopes, action, resource)
    }

    public var organizationID: String { self.principal.organizationID }
}

/// Routes under `applications/:app_id`: the application the path names, checked once against the key's application
/// restriction (a key restricted to another application finds nothing there: 404).
public struct ApplicationContext: ChildRequestContext, TernContext {
    public var coreContext: CoreRequestContextStorage
    public var requestID: String
    public var principal: Principal
    public var applicationID: String

    public init(context: OrganizationContext) throws {
        let applicationID = try context.parameters.require("app_id")
        if let only = context.principal.applicationID, only != applicationID {
            throw TernError.notFound("No application '\(applicationID)'.")
        }
        self.coreContext = context.coreContext
        self.requestID = context.requestID
        self.principal = context.principal
        self.applicationID = applicationID
    }

    public var idempotencyScope: String { self.principal.organizationID }
    public var organizationID: String { self.principal.organizationID }

    /// Throws 403 unless the key's scopes allow `action` on `resource`.
    public func require(_ action: Scopes.Action, _ resource: String) throws {
        try Scopes.require(self.principal.scopes, action, resource)
    }
}

/// Operator routes: fails with 401 without a key and 403 with an organization key.
public struct AdminContext: ChildRequestContext, TernContext {
    public var coreContext: CoreRequestContextStorage
    public var requestID: String

    public init(context: TernRequestContext) throws {
        switch context.identity {
        case .none:
            throw TernError.unauthorized("Send the admin key as 'Authorization: Bearer …'.")
        case .organization:
            throw TernError.forbidden("Admin routes need the admin key, not an organization API key.")
        case .admin:
            break
        }
        self.coreContext = context.coreContext
        self.requestID = context.requestID
    }

    public var idempotencyScope: String { "admin" }
}
