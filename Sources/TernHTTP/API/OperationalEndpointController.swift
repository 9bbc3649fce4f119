import HTTPTypes
import Hummingbird
import TernCore
import TernStorage

/// `/v1/operational-endpoints`: the organization's endpoints for events about Tern itself (an endpoint created,
/// failing or disabled, a delivery exhausted or recovered). A key restricted to one application sees and makes only
/// endpoints that watch that application.
struct OperationalEndpointController {
    let store: Store
    let allowPrivateEndpoints: Bool

    func addRoutes(to group: RouterGroup<OrganizationContext>) {
        group.post("operational-endpoints", use: self.create)
        group.get("operational-endpoints", use: self.list)
        group.get("operational-endpoints/:endpoint_id", use: self.get)
        group.patch("operational-endpoints/:endpoint_id", use: self.update)
        group.delete("operational-endpoints/:endpoint_id", use: self.delete)
        group.post("operational-endpoints/:endpoint_id/rotate-secret", use: self.rotateSecret)
        group.get("operational-endpoints/:endpoint_id/deliveries", use: self.deliveries)
        group.get("operational-endpoints/:endpoint_id/attempts", use: self.attempts)
    }

    static let resource = "operational_endpoints"

    struct Body: Decodable, Sendable {
        var url: String?
        var application_id: String?
        var description: String?
        var events: [String]?
        var headers: [String: String]?
        var metadata: [String: JSONValue]?
        var disabled: Bool?
        var uid: String?
        var secret: String?
        var format: OperationalPayloadFormat?
    }

    func validate(_ body: JSONBody<Body>, creating: Bool) throws {
        let value = body.value
        var validator = Validator()
        if creating || body.has("url") { validator.url(value.url, allowPrivate: self.allowPrivateEndpoints) }
        validator.text(value.description, "description", max: 4096)
        for (index, event) in (value.events ?? []).enumerated() where OperationalEventType(rawValue: event) == nil {
            validator.fail(
                "events[\(index)]",
                "'\(event)' is not an operational event; one of \(OperationalEventType.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        validator.headers(value.headers)
        if let metadata = value.metadata, JSONColumnSize.of(metadata) > 16_384 { validator.fail("metadata", "must be at most 16 KB") }
        if let secret = value.secret, !EndpointSecret.isValid(secret) {
            validator.fail("secret", "must be 'whsec_' followed by base64 of 24 to 64 bytes")
        }
        if let uid = value.uid, let problem = SvixRules.uidProblem(uid, prefix: "ep_") { validator.fail("uid", problem) }
        if let application = value.application_id, application.isEmpty { validator.fail("application_id", "must not be empty") }
        try validator.check()
    }

    /// The application a restricted key works in: its endpoints must watch it.
    func watched(_ requested: String?, _ context: OrganizationContext) throws -> String? {
        guard let only = context.principal.applicationID else { return requested }
        if let requested, requested != only {
            throw TernError.invalid("application_id", "this API key is restricted to the application '\(only)'")
        }
        return only
    }

    @Sendable func create(_ request: Request, context: OrganizationContext) async throws -> Response {
        try context.require(.write, Self.resource)
        var request = request
        let body = try await request.decodeJSON(Body.self)
        try self.validate(body, creating: true)
        let value = body.value
        let secret = value.secret ?? EndpointSecret.generate()
        let input = OperationalEndpointInput(
            url: value.url!, description: value.description, events: EndpointController.unique(value.events ?? []), headers: value.headers ?? [:],
            metadata: value.metadata ?? [:], status: value.disabled == true ? .disabled : .active, secret: secret, uid: value.uid, throttleRate: nil,
            watchedApplicationID: try self.watched(value.application_id, context), format: value.format ?? .native
        )
        let endpoint = try await self.store.createOperationalEndpoint(organizationID: context.organizationID, input)
        return try JSONResponse.created(ShownOnce(item: endpoint, secret: secret), id: endpoint.endpoint.id)
    }

    @Sendable func list(_ request: Request, context: OrganizationContext) async throws -> Response {
        try context.require(.read, Self.resource)
        let page = try request.pageRequest()
        return try JSONResponse.make(
            try await self.store.listOperationalEndpoints(organizationID: context.organizationID, only: context.principal.applicationID, page))
    }

    @Sendable func get(_ request: Request, context: OrganizationContext) async throws -> Response {
        try context.require(.read, Self.resource)
        let id = try context.parameters.require("endpoint_id")
        return try JSONResponse.make(
            try await self.store.operationalEndpoint(organizationID: context.organizationID, only: context.principal.applicationID, id: id))
    }

    @Sendable func update(_ request: Request, context: OrganizationContext) async throws -> Response {
        try context.require(.write, Self.resource)
        let id = try context.parameters.require("endpoint_id")
        var request = request
        let body = try await request.decodeJSON(Body.self)
        try self.validate(body, creating: false)
        let value = body.value
        if value.secret != nil { throw TernError.invalid("secret", "use rotate-secret to change the secret") }
        let watchAll = body.isNull("application_id")
        if watchAll, context.principal.applicationID != nil {
            throw TernError.invalid("application_id", "this API key is restricted to one application")
        }
        let watched = try value.application_id.map { try self.watched($0, context) }
        let clearDescription = body.isNull("description")
        let clearUID = body.isNull("uid")
        let endpoint = try await self.store.updateOperationalEndpoint(
            organizationID: context.organizationID, only: context.principal.applicationID, id: id
        ) { operational in
            if let url = value.url { operational.endpoint.url = url }
            if let description = value.description {
                operational.endpoint.description = description
            } else if clearDescription {
                operational.endpoint.description = nil
            }
            if let events = value.events { operational.endpoint.events = EndpointController.unique(events) }
            if let headers = value.headers { operational.endpoint.headers = headers }
            if let metadata = value.metadata { operational.endpoint.metadata = metadata }
            if let uid = value.uid { operational.endpoint.uid = uid } else if clearUID { operational.endpoint.uid = nil }
            if let watched { operational.watchedApplicationID = watched } else if watchAll { operational.watchedApplicationID = nil }
            if let format = value.format { operational.format = format }
            if let disabled = value.disabled {
                Self.setDisabled(disabled, &operational.endpoint)
            }
        }
        return try JSONResponse.make(endpoint)
    }

    /// Disabling by hand stops the endpoint (reason `manual`); enabling makes it active again.
    static func setDisabled(_ disabled: Bool, _ endpoint: inout Endpoint) {
        if disabled && endpoint.status != .disabled {
            endpoint.status = .disabled
            endpoint.disabledReason = CircuitBreaker.Reason.manual
        } else if !disabled && endpoint.status == .disabled {
            endpoint.status = .active
        }
    }

    @Sendable func delete(_ request: Request, context: OrganizationContext) async throws -> Response {
        try context.require(.write, Self.resource)
        let id = try context.parameters.require("endpoint_id")
        try await self.store.deleteOperationalEndpoint(organizationID: context.organizationID, only: context.principal.applicationID, id: id)
        return JSONResponse.noContent()
    }

    /// A new secret at once; the old one keeps signing beside it for 24 hours (as for endpoints).
    @Sendable func rotateSecret(_ request: Request, context: OrganizationContext) async throws -> Response {
        try context.require(.write, Self.resource)
        let id = try context.parameters.require("endpoint_id")
        var request = request
        let body = try await request.decodeOptionalJSON(EndpointController.RotateBody.self).value
        if let secret = body.secret, !EndpointSecret.isValid(secret) {
            throw TernError.invalid("secret", "must be 'whsec_' followed by base64 of 24 to 64 bytes")
        }
        let secret = body.secret ?? EndpointSecret.generate()
        let expires = try await self.store.rotateOperationalSecret(
            organizationID: context.organizationID, only: context.principal.applicationID, id: id, newSecret: secret)
        return try JSONResponse.make(EndpointController.Rotated(secret: secret, previous_secret_expires_at: expires))
    }

    /// What was sent to the endpoint: one delivery per event, with its status (`exhausted` is its dead-letter queue).
    @Sendable func deliveries(_ request: Request, context: OrganizationContext) async throws -> Response {
        try context.require(.read, Self.resource)
        let id = try context.parameters.require("endpoint_id")
        let page = try request.pageRequest()
        let status = try DeliveryStatus.query(request.uri.queryParameters.get("status"), "status")
        return try JSONResponse.make(
            try await self.store.operationalDeliveries(
                organizationID: context.organizationID, only: context.principal.applicationID, id: id, status: status, page))
    }

    @Sendable func attempts(_ request: Request, context: OrganizationContext) async throws -> Response {
        try context.require(.read, Self.resource)
        let id = try context.parameters.require("endpoint_id")
        let page = try request.pageRequest()
        return try JSONResponse.make(
            try await self.store.operationalAttempts(organizationID: context.organizationID, only: context.principal.applicationID, id: id, page))
    }
}
