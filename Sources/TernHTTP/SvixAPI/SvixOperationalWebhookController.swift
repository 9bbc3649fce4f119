import Hummingbird
import TernCore
import TernStorage

/// `/api/v1/operational-webhook/endpoint`: operational endpoints that watch the key's application, with Svix's
/// event names (`message.attempt.failing` is Tern's `endpoint.failing`) and Svix's payload shapes.
struct SvixOperationalWebhookController {
    let store: Store
    let allowPrivateEndpoints: Bool

    func addRoutes(to group: RouterGroup<SvixContext>) {
        group.get("operational-webhook/endpoint", use: self.list)
        group.post("operational-webhook/endpoint", use: self.create)
        group.get("operational-webhook/endpoint/:endpoint_id", use: self.get)
        group.put("operational-webhook/endpoint/:endpoint_id", use: self.upsert)
        group.delete("operational-webhook/endpoint/:endpoint_id", use: self.delete)
        group.get("operational-webhook/endpoint/:endpoint_id/secret", use: self.secret)
        group.post("operational-webhook/endpoint/:endpoint_id/secret/rotate", use: self.rotateSecret)
        group.get("operational-webhook/endpoint/:endpoint_id/headers", use: self.headers)
        group.put("operational-webhook/endpoint/:endpoint_id/headers", use: self.setHeaders)
    }

    static let resource = OperationalEndpointController.resource

    /// `OperationalWebhookEndpointIn` and `…UpsertIn`.
    struct Body: Decodable, Sendable {
        var url: String?
        var description: String?
        var uid: String?
        var throttleRate: Int?
        var disabled: Bool?
        var eventTypes: [String]?
        var secret: String?
        var metadata: [String: String]?
        var headers: [String: String]?
    }

    func validate(_ body: Body) throws {
        var validator = Validator()
        if let url = body.url {
            if let problem = Rules.endpointURLProblem(url, allowPrivate: self.allowPrivateEndpoints) { validator.fail("url", problem) }
        } else {
            validator.fail("url", "field required")
        }
        if let uid = body.uid, let problem = SvixRules.uidProblem(uid, prefix: "ep_") { validator.fail("uid", problem) }
        if let rate = body.throttleRate, rate < 1 { validator.fail("throttleRate", "must be at least 1") }
        for type in body.eventTypes ?? [] where OperationalEventType(svixName: type) == nil {
            validator.fail("eventTypes", "'\(type)' is not an operational webhook event type")
        }
        if let secret = body.secret, !EndpointSecret.isValid(SvixEndpointController.prefixed(secret)) {
            validator.fail("secret", "secret length invalid")
        }
        validator.text(body.description, "description", max: 4096)
        validator.headers(body.headers)
        try validator.check()
    }

    /// Tern's event names for Svix's.
    static func events(_ types: [String]?) -> [String] {
        EndpointController.unique((types ?? []).compactMap { OperationalEventType(svixName: $0)?.rawValue })
    }

    /// `OperationalWebhookEndpointOut`.
    static func output(_ operational: OperationalEndpoint) -> JSONValue {
        let endpoint = operational.endpoint
        let types = endpoint.events.compactMap { OperationalEventType(rawValue: $0)?.svixName }
        return .object([
            "id": .string(endpoint.id), "uid": SvixJSON.string(endpoint.uid), "url": .string(endpoint.url),
            "description": .string(endpoint.description ?? ""), "metadata": SvixJSON.metadata(endpoint.metadata),
            "throttleRate": SvixJSON.int(endpoint.throttleRate), "disabled": .bool(endpoint.status == .disabled),
            "eventTypes": types.isEmpty ? .null : SvixJSON.strings(types), "createdAt": SvixJSON.time(endpoint.createdAt),
            "updatedAt": SvixJSON.time(endpoint.updatedAt),
        ])
    }

    func input(_ body: Body) -> OperationalEndpointInput {
        OperationalEndpointInput(
            url: body.url ?? "", description: body.description ?? "", events: Self.events(body.eventTypes), headers: body.headers ?? [:],
            metadata: (body.metadata ?? [:]).mapValues(JSONValue.string), status: body.disabled == true ? .disabled : .active,
            secret: body.secret.map(SvixEndpointController.prefixed) ?? EndpointSecret.generate(), uid: body.uid,
            throttleRate: body.throttleRate, watchedApplicationID: nil, format: .svix)
    }

    func create(_ body: Body, _ context: SvixContext) async throws -> OperationalEndpoint {
        var input = self.input(body)
        input.watchedApplicationID = context.applicationID
        return try await self.store.createOperationalEndpoint(organizationID: context.organizationID, input)
    }

    func id(_ context: SvixContext) throws -> String { try context.parameters.require("endpoint_id") }

    @Sendable func list(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.read, Self.resource)
        let page = try SvixQuery(request).page(descending: true)
        let endpoints = try await self.store.svixOperationalEndpoints(organizationID: context.organizationID, only: context.applicationID, page)
        return try SvixJSON.list(endpoints, Self.output)
    }

    @Sendable func create(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.write, Self.resource)
        var request = request
        let body = try await request.decodeJSON(Body.self).value
        try self.validate(body)
        let endpoint = try await self.create(body, context)
        return try SvixJSON.response(Self.output(endpoint), status: .created, created: endpoint.endpoint.id)
    }

    @Sendable func get(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.read, Self.resource)
        return try SvixJSON.response(
            Self.output(
                try await self.store.operationalEndpoint(organizationID: context.organizationID, only: context.applicationID, id: self.id(context))))
    }

    /// PUT: the whole endpoint (keeping its secret and headers), created when the path names none.
    @Sendable func upsert(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.write, Self.resource)
        var request = request
        var body = try await request.decodeJSON(Body.self).value
        body.secret = nil
        body.headers = nil
        try self.validate(body)
        let id = try self.id(context)
        guard (try? await self.store.operationalEndpoint(organizationID: context.organizationID, only: context.applicationID, id: id)) != nil
        else {
            if body.uid == nil, !id.hasPrefix("ep_") { body.uid = id }
            return try SvixJSON.response(Self.output(try await self.create(body, context)), status: .created)
        }
        let replacement = body
        let endpoint = try await self.store.updateOperationalEndpoint(organizationID: context.organizationID, only: context.applicationID, id: id) {
            operational in
            operational.endpoint.url = replacement.url ?? operational.endpoint.url
            operational.endpoint.description = replacement.description ?? ""
            operational.endpoint.uid = replacement.uid
            operational.endpoint.throttleRate = replacement.throttleRate
            operational.endpoint.events = Self.events(replacement.eventTypes)
            operational.endpoint.metadata = (replacement.metadata ?? [:]).mapValues(JSONValue.string)
            OperationalEndpointController.setDisabled(replacement.disabled ?? false, &operational.endpoint)
        }
        return try SvixJSON.response(Self.output(endpoint))
    }

    @Sendable func delete(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.write, Self.resource)
        try await self.store.deleteOperationalEndpoint(organizationID: context.organizationID, only: context.applicationID, id: self.id(context))
        return JSONResponse.noContent()
    }

    @Sendable func secret(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.read, Self.resource)
        let key = try await self.store.operationalSecret(organizationID: context.organizationID, only: context.applicationID, id: self.id(context))
        return try SvixJSON.response(.object(["key": .string(key)]))
    }

    /// A new key at once; the old one keeps signing beside it for 24 hours. The SDK expects no body.
    @Sendable func rotateSecret(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.write, Self.resource)
        var request = request
        let body = try await request.decodeOptionalJSON(SvixEndpointController.RotateBody.self).value
        if let key = body.key, !EndpointSecret.isValid(SvixEndpointController.prefixed(key)) {
            throw TernError.invalid("key", "secret length invalid")
        }
        _ = try await self.store.rotateOperationalSecret(
            organizationID: context.organizationID, only: context.applicationID, id: self.id(context),
            newSecret: body.key.map(SvixEndpointController.prefixed) ?? EndpointSecret.generate())
        return JSONResponse.noContent()
    }

    @Sendable func headers(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.read, Self.resource)
        let operational = try await self.store.operationalEndpoint(
            organizationID: context.organizationID, only: context.applicationID, id: self.id(context))
        return try SvixJSON.response(SvixEndpointController.headersOutput(operational.endpoint.headers))
    }

    struct HeadersBody: Decodable, Sendable { var headers: [String: String] }

    @Sendable func setHeaders(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.write, Self.resource)
        var request = request
        let body = try await request.decodeJSON(HeadersBody.self).value
        var validator = Validator()
        validator.headers(body.headers)
        try validator.check()
        _ = try await self.store.updateOperationalEndpoint(organizationID: context.organizationID, only: context.applicationID, id: self.id(context))
        {
            $0.endpoint.headers = body.headers
        }
        return JSONResponse.noContent()
    }
}
