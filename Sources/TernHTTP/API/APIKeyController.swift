import HTTPTypes
import Hummingbird
import TernCore
import TernStorage

/// An organization's own API keys.
struct APIKeyController {
    let store: Store
    let authenticator: Authenticator

    func addRoutes(to group: RouterGroup<OrganizationContext>) {
        group.post("api-keys", use: self.create)
        group.get("api-keys", use: self.list)
        group.delete("api-keys/:key_id", use: self.revoke)
    }

    struct KeyBody: Decodable, Sendable {
        var name: String?
        var scopes: [String]?
        var application_id: String?
    }

    struct KeyInput {
        var name: String
        var scopes: [String]
        var applicationID: String?
    }

    static func validate(_ body: KeyBody) throws -> KeyInput {
        var validator = Validator()
        validator.name(body.name, required: true)
        let scopes = body.scopes ?? [Scopes.all]
        if scopes.isEmpty { validator.fail("scopes", "must name at least one scope, or be left out for '*'") }
        for (index, scope) in scopes.enumerated() where !Scopes.isValid(scope) {
            validator.fail("scopes[\(index)]", "'\(scope)' is not a scope: use read:<resource>, write:<resource> or '*'")
        }
        try validator.check()
        return KeyInput(name: body.name!, scopes: scopes, applicationID: body.application_id)
    }

    /// A created key: the key's fields and, this once, the whole token as `key`.
    static func create(_ store: Store, organizationID: String, _ input: KeyInput) async throws -> ShownOnce<APIKey> {
        let issued = try await store.issueAPIKey(
            organizationID: organizationID, name: input.name, scopes: input.scopes, applicationID: input.applicationID
        )
        return ShownOnce(item: issued.key, secret: issued.token, name: "key")
    }

    @Sendable func create(_ request: Request, context: OrganizationContext) async throws -> Response {
        try context.require(.write, "api_keys")
        var request = request
        var input = try Self.validate(try await request.decodeJSON(KeyBody.self).value)
        // A key cannot mint a key that can do more than itself.
        let principal = context.principal
        for scope in input.scopes where !Self.covers(principal.scopes, scope) {
            throw TernError.forbidden("This API key cannot grant '\(scope)', which it does not have itself.")
        }
        if let only = principal.applicationID {
            if let requested = input.applicationID, requested != only {
                throw TernError.invalid("application_id", "no application '\(requested)' in this organization")
            }
            input.applicationID = only
        }
        let created = try await Self.create(self.store, organizationID: context.organizationID, input)
        return try JSONResponse.created(created, id: created.item.id)
    }

    static func covers(_ granted: [String], _ scope: String) -> Bool {
        if granted.contains(Scopes.all) { return true }
        if scope == Scopes.all { return false }
        let parts = scope.split(separator: ":", maxSplits: 1).map(String.init)
        let action: Scopes.Action = parts[0] == "write" ? .write : .read
        let resources = parts[1] == "*" ? Scopes.resources : [parts[1]]
        return resources.allSatisfy { Scopes.allows(granted, action: action, resource: $0) }
    }

    @Sendable func list(_ request: Request, context: OrganizationContext) async throws -> Response {
        try context.require(.read, "api_keys")
        let page = try request.pageRequest()
        return try JSONResponse.make(try await self.store.listAPIKeys(organizationID: context.organizationID, page))
    }

    @Sendable func revoke(_ request: Request, context: OrganizationContext) async throws -> Response {
        try context.require(.write, "api_keys")
        let keyID = try context.parameters.require("key_id")
        try await self.store.revokeAPIKey(organizationID: context.organizationID, keyID: keyID)
        self.authenticator.evict(keyID: keyID)
        return JSONResponse.noContent()
    }
}
