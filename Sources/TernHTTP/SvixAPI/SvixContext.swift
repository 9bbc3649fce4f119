import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import TernCore
import TernStorage

/// Picks the application a key works in on the Svix API: the one it is restricted to, or the organization's only
/// application; a key that could mean several is 403.
struct SvixEnvironmentMiddleware: RouterMiddleware {
    typealias Context = TernRequestContext
    let store: Store

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard case .organization(let principal)? = context.identity else { return try await next(request, context) }
        var context = context
        if let only = principal.applicationID {
            context.svixApplicationID = only
        } else {
            let applications = try await self.store.listApplications(
                organizationID: principal.organizationID, only: nil, PageRequest(limit: 2))
            guard applications.data.count == 1 else {
                throw TernError.forbidden(
                    applications.data.isEmpty
                        ? "This organization has no application yet; create one with POST /v1/applications."
                        : "This organization has several applications: use an API key restricted to one of them (its Svix environment).")
            }
            context.svixApplicationID = applications.data[0].id
        }
        return try await next(request, context)
    }
}

/// The context of the Svix API's routes: the key's organization and the application it works in.
struct SvixContext: ChildRequestContext {
    var coreContext: CoreRequestContextStorage
    var requestID: String
    var principal: Principal
    var applicationID: String

    init(context: TernRequestContext) throws {
        switch context.identity {
        case .none: throw TernError.unauthorized("Send a Tern API key as 'Authorization: Bearer <key>'.")
        case .admin: throw TernError.forbidden("The admin key manages organizations; use an organization API key on the Svix API.")
        case .organization(let principal): self.principal = principal
        }
        guard let applicationID = context.svixApplicationID else { throw TernError.forbidden("This API key has no application.") }
        self.coreContext = context.coreContext
        self.requestID = context.requestID
        self.applicationID = applicationID
    }

    var organizationID: String { self.principal.organizationID }

    /// Throws 403 unless the key's scopes allow `action` on `resource`.
    func require(_ action: Scopes.Action, _ resource: String) throws {
        try Scopes.require(self.principal.scopes, action, resource)
    }
}

/// Idempotent POSTs as the Svix SDKs expect: the first 2xx response to (credential, `idempotency-key`, full URI) is
/// replayed, byte for byte, to every later request with the same three; a repeat while the first runs waits for it
/// (up to 5 s). Failed responses are not kept, so a retry after one runs again.
struct SvixIdempotencyMiddleware: RouterMiddleware {
    typealias Context = SvixContext
    let store: Store

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .post, let key = request.headers[.idempotencyKey], !key.isEmpty, key.utf8.count <= 255 else {
            return try await next(request, context)
        }
        var hasher = SHA256()
        hasher.update(data: Array((request.headers[.authorization] ?? "").utf8))
        let scope = "svix:" + hasher.finalize().map { String(format: "%02x", $0) }.joined()
        let storedKey = key + " " + request.uri.description
        var reserved = false
        for _ in 0..<25 {
            switch try await self.store.reserveIdempotencyKey(scope: scope, key: storedKey, requestHash: "") {
            case .replay(let stored):
                return JSONResponse.raw(
                    ByteBuffer(string: stored.body), status: HTTPResponse.Status(code: stored.statusCode), contentType: "application/json")
            case .reserved:
                reserved = true
            case .inProgress, .mismatch:
                try await Task.sleep(for: .milliseconds(200))
                continue
            }
            break
        }
        guard reserved else { return try await next(request, context) }
        return try await self.store.runReserved(scope: scope, key: storedKey) { try await next(request, context) }
    }
}
