import Foundation
import HTTPTypes
import Hummingbird
import Metrics
import NIOCore
import TernCore
import TernStorage

/// Inbound sources of an application: where providers send webhooks that Tern verifies and fans out.
struct SourceController {
    let store: Store
    let baseURL: String

    func addRoutes(to group: RouterGroup<ApplicationContext>) {
        group.post("sources", use: self.create)
        group.get("sources", use: self.list)
        group.get("sources/:source_id", use: self.get)
        group.patch("sources/:source_id", use: self.update)
        group.delete("sources/:source_id", use: self.delete)
    }

    struct SourceBody: Decodable, Sendable {
        var name: String?
        var provider: String?
        var secret: String?
        var tenant_id: String?
        var header: String?
        var encoding: String?
        var allowed_ips: [String]?
        var forward_headers: [String]?
    }

    /// Headers a source never forwards: credentials, and the provider's signature.
    static let unforwardable: Set<String> = [
        "authorization", "proxy-authorization", "cookie", "x-webhook-token", "stripe-signature", "x-hub-signature", "x-hub-signature-256",
        "x-signature", "webhook-signature", "svix-signature", "x-shopify-hmac-sha256",
    ]

    func validate(_ body: JSONBody<SourceBody>, creating: Bool) throws -> InboundProvider? {
        let value = body.value
        var validator = Validator()
        if creating || body.has("name") { validator.name(value.name, required: true) }
        var provider: InboundProvider?
        if creating {
            provider = value.provider.flatMap(InboundProvider.init(rawValue:))
            if provider == nil {
                let allowed = InboundProvider.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ")
                validator.fail("provider", value.provider == nil ? "is required: one of \(allowed)" : "must be one of \(allowed)")
            }
            if let provider, provider.providerChoosesSecret, value.secret == nil {
                validator.fail("secret", "is required: the signing secret \(provider.rawValue) shows you")
            }
        } else if body.has("provider") {
            validator.fail("provider", "cannot be changed; create another source")
        }
        if let secret = value.secret, !(8...512).contains(secret.unicodeScalars.count) { validator.fail("secret", "must be 8 to 512 characters") }
        if let tenant = value.tenant_id { validator.tenantID(tenant) }
        if let header = value.header, Rules.headerProblem(name: header, value: "x") != nil || header.isEmpty || header.count > 100 {
            validator.fail("header", "must be a valid HTTP header name")
        }
        if let encoding = value.encoding, !["hex", "base64"].contains(encoding) { validator.fail("encoding", "must be 'hex' or 'base64'") }
        if let allowed = value.allowed_ips {
            if allowed.count > 100 { validator.fail("allowed_ips", "at most 100 addresses or ranges") }
            for (index, entry) in allowed.enumerated() where IPRange(entry) == nil {
                validator.fail("allowed_ips[\(index)]", "must be an IPv4 or IPv6 address or CIDR range, such as 192.0.2.0/24")
            }
        }
        if let names = value.forward_headers {
            if names.count > 20 { validator.fail("forward_headers", "at most 20 headers") }
            for (index, name) in names.enumerated() {
                if Rules.headerProblem(name: name, value: "x") != nil || name.isEmpty || name.count > 100 {
                    validator.fail("forward_headers[\(index)]", "must be a valid HTTP header name")
                } else if Self.unforwardable.contains(name.lowercased()) || name.lowercased() == value.header?.lowercased() {
                    validator.fail("forward_headers[\(index)]", "'\(name)' carries a credential or the provider's signature and is never forwarded")
                }
            }
        }
        try validator.check()
        return provider
    }

    /// A secret Tern chooses: `whsec_…` for Standard Webhooks, random base64url otherwise.
    static func generateSecret(_ provider: InboundProvider) -> String {
        provider == .standardWebhooks ? EndpointSecret.generate() : Base64URL.encode(randomBytes(32))
    }

    @Sendable func create(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.write, "sources")
        let applicationID = context.applicationID
        var request = request
        let body = try await request.decodeJSON(SourceBody.self)
        let provider = try self.validate(body, creating: true)!
        let value = body.value
        if provider == .standardWebhooks, let secret = value.secret, !EndpointSecret.isValid(secret) {
            throw TernError.invalid("secret", "must be 'whsec_' followed by base64 of 24 to 64 bytes")
        }
        let secret = value.secret ?? Self.generateSecret(provider)
        let source = try await self.store.createSource(
            organizationID: context.organizationID, applicationID: applicationID, baseURL: self.baseURL,
            SourceInput(
                name: value.name!, provider: provider, secret: secret, tenantID: value.tenant_id,
                settings: InboundSettings(
                    header: value.header, encoding: value.encoding, allowedIPs: value.allowed_ips,
                    forwardHeaders: value.forward_headers.map { $0.map { $0.lowercased() } }))
        )
        return try JSONResponse.created(ShownOnce(item: source, secret: secret), id: source.id)
    }

    @Sendable func list(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.read, "sources")
        let applicationID = context.applicationID
        let page = try request.pageRequest()
        return try JSONResponse.make(
            try await self.store.listSources(
                organizationID: context.organizationID, applicationID: applicationID, baseURL: self.baseURL, page
            ))
    }

    @Sendable func get(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.read, "sources")
        let applicationID = context.applicationID
        let id = try context.parameters.require("source_id")
        return try JSONResponse.make(
            try await self.store.source(
                organizationID: context.organizationID, applicationID: applicationID, id: id, baseURL: self.baseURL
            ))
    }

    @Sendable func update(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.write, "sources")
        let applicationID = context.applicationID
        let id = try context.parameters.require("source_id")
        var request = request
        let body = try await request.decodeJSON(SourceBody.self)
        _ = try self.validate(body, creating: false)
        let value = body.value
        let changes = ["header", "encoding", "allowed_ips", "forward_headers"].contains(where: body.has)
        let settings: InboundSettings? =
            changes
            ? InboundSettings(
                header: value.header, encoding: value.encoding, allowedIPs: value.allowed_ips,
                forwardHeaders: value.forward_headers.map { $0.map { $0.lowercased() } }) : nil
        let source = try await self.store.updateSource(
            organizationID: context.organizationID, applicationID: applicationID, id: id, baseURL: self.baseURL, name: value.name,
            tenantID: value.tenant_id, clearTenant: body.isNull("tenant_id"), settings: settings, secret: value.secret
        )
        return try JSONResponse.make(source)
    }

    @Sendable func delete(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.write, "sources")
        let applicationID = context.applicationID
        try await self.store.deleteSource(
            organizationID: context.organizationID, applicationID: applicationID, id: try context.parameters.require("source_id"))
        return JSONResponse.noContent()
    }
}
