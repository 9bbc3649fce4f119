import HTTPTypes
import Hummingbird
import TernCore
import TernStorage

/// Applications of an organization.
struct ApplicationController {
    let store: Store

    func addRoutes(to group: RouterGroup<OrganizationContext>) {
        group.post("applications", use: self.create)
        group.get("applications", use: self.list)
    }

    func addRoutes(to application: RouterGroup<ApplicationContext>) {
        application.get(use: self.get)
        application.patch(use: self.update)
        application.delete(use: self.delete)
    }

    struct CircuitBreakerBody: Decodable, Sendable {
        var failure_threshold: Int?
    }

    struct PortalBody: Decodable, Sendable {
        var allowed_origins: [String]?
        var brand_color: String?
        var logo_url: String?
    }

    struct ApplicationBody: Decodable, Sendable {
        var name: String?
        var retry_schedule: [Int]?
        var circuit_breaker: CircuitBreakerBody?
        var portal: PortalBody?
        var allow_unregistered_event_types: Bool?
        var webhook_headers: WebhookHeaderStyle?
        var send_traceparent: Bool?
    }

    /// Checks the settings present in `body`, reporting every problem at once.
    static func validate(_ body: ApplicationBody, creating: Bool) throws {
        var validator = Validator()
        validator.name(body.name, required: creating)
        if let schedule = body.retry_schedule {
            if schedule.count > RetrySchedule.maxRetries { validator.fail("retry_schedule", "at most \(RetrySchedule.maxRetries) retries") }
            for (index, delay) in schedule.enumerated() where !(0...RetrySchedule.maxDelaySeconds).contains(delay) {
                validator.fail("retry_schedule[\(index)]", "must be between 0 and \(RetrySchedule.maxDelaySeconds) seconds")
            }
        }
        if let threshold = body.circuit_breaker?.failure_threshold, !(1...10_000).contains(threshold) {
            validator.fail("circuit_breaker.failure_threshold", "must be between 1 and 10000")
        }
        if let portal = body.portal {
            for (index, origin) in (portal.allowed_origins ?? []).enumerated() where !Rules.isOrigin(origin) {
                validator.fail("portal.allowed_origins[\(index)]", "must be an origin like https://app.example.com, or '*'")
            }
            if let color = portal.brand_color, !Rules.isColor(color) {
                validator.fail("portal.brand_color", "must be a hex colour like #1f6feb")
            }
            if let logo = portal.logo_url, Rules.endpointURLProblem(logo, allowPrivate: true) != nil {
                validator.fail("portal.logo_url", "must be an absolute http or https URL")
            }
        }
        try validator.check()
    }

    @Sendable func create(_ request: Request, context: OrganizationContext) async throws -> Response {
        try context.require(.write, "applications")
        if context.principal.applicationID != nil {
            throw TernError.forbidden("This API key is restricted to one application and cannot create applications.")
        }
        var request = request
        let body = try await request.decodeJSON(ApplicationBody.self).value
        try Self.validate(body, creating: true)
        var input = ApplicationInput(
            name: body.name!, retrySchedule: body.retry_schedule ?? RetrySchedule.standard,
            circuitBreaker: CircuitBreakerPolicy(
                failureThreshold: body.circuit_breaker?.failure_threshold ?? CircuitBreakerPolicy.defaultFailureThreshold),
            portal: PortalSettings(
                allowedOrigins: body.portal?.allowed_origins ?? [], brandColor: body.portal?.brand_color, logoURL: body.portal?.logo_url
            ),
            allowUnregisteredEventTypes: body.allow_unregistered_event_types ?? false,
            webhookHeaders: body.webhook_headers ?? .standard
        )
        input.sendTraceparent = body.send_traceparent ?? false
        let application = try await self.store.createApplication(organizationID: context.organizationID, input)
        return try JSONResponse.created(application, id: application.id)
    }

    @Sendable func list(_ request: Request, context: OrganizationContext) async throws -> Response {
        try context.require(.read, "applications")
        let page = try request.pageRequest()
        let applications = try await self.store.listApplications(
            organizationID: context.organizationID, only: context.principal.applicationID, page
        )
        return try JSONResponse.make(applications)
    }

    @Sendable func get(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.read, "applications")
        let id = context.applicationID
        return try JSONResponse.make(try await self.store.application(organizationID: context.organizationID, id: id))
    }

    @Sendable func update(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.write, "applications")
        let id = context.applicationID
        var request = request
        let decoded = try await request.decodeJSON(ApplicationBody.self)
        let body = decoded.value
        try Self.validate(body, creating: false)
        let portalMembers: [String: JSONValue] = if case .object(let members)? = decoded.member("portal") { members } else { [:] }
        let application = try await self.store.updateApplication(organizationID: context.organizationID, id: id) { application in
            if let name = body.name { application.name = name }
            if let schedule = body.retry_schedule { application.retrySchedule = schedule }
            if let threshold = body.circuit_breaker?.failure_threshold { application.circuitBreaker.failureThreshold = threshold }
            if let origins = body.portal?.allowed_origins { application.portal.allowedOrigins = origins }
            if portalMembers["brand_color"] != nil { application.portal.brandColor = body.portal?.brand_color }
            if portalMembers["logo_url"] != nil { application.portal.logoURL = body.portal?.logo_url }
            if let allow = body.allow_unregistered_event_types { application.allowUnregisteredEventTypes = allow }
            if let style = body.webhook_headers { application.webhookHeaders = style }
            if let send = body.send_traceparent { application.sendTraceparent = send }
        }
        return try JSONResponse.make(application)
    }

    @Sendable func delete(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.write, "applications")
        let id = context.applicationID
        try await self.store.deleteApplication(organizationID: context.organizationID, id: id)
        return JSONResponse.noContent()
    }
}
