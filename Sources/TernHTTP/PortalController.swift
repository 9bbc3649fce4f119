import Foundation
import HTTPTypes
import Hummingbird
import TernCore
import TernStorage

/// `POST /v1/applications/{app_id}/portal-sessions`: a signed, short-lived link into the portal for one
/// application and tenant.
struct PortalSessionController {
    let store: Store
    let signer: SessionSigner
    let publicBaseURL: String

    func addRoutes(to group: RouterGroup<OrganizationContext>) {
        group.post("applications/:app_id/portal-sessions", use: self.create)
    }

    struct Body: Decodable, Sendable {
        var tenant_id: String?
        var expires_in_seconds: Int?
    }

    struct Created: Encodable {
        var url: String
        var token: String
        var expires_at: Timestamp
    }

    @Sendable func create(_ request: Request, context: OrganizationContext) async throws -> Response {
        try context.require(.write, "endpoints")
        let applicationID = try context.applicationID()
        var request = request
        let body = try await request.decodeJSON(Body.self).value
        var validator = Validator()
        validator.tenantID(body.tenant_id)
        if let seconds = body.expires_in_seconds, !(1...86_400).contains(seconds) {
            validator.fail("expires_in_seconds", "must be between 1 and 86400")
        }
        try validator.check()
        _ = try await self.store.application(organizationID: context.organizationID, id: applicationID)
        let expires = Timestamp.now().adding(seconds: Int64(body.expires_in_seconds ?? 3_600))
        let token = self.signer.sign(SessionClaims(
            kind: "portal", organizationID: context.organizationID, applicationID: applicationID, tenantID: body.tenant_id!,
            expires: expires.microseconds / 1_000_000
        ))
        let url = "\(self.publicBaseURL)/portal?token=\(token)"
        return try JSONResponse.make(Created(url: url, token: token, expires_at: expires), status: .created)
    }
}

/// The tenant's portal: endpoints, event catalog, delivery log, attempt detail. Every action is a form post
/// that works without JavaScript, carries the session's CSRF token, and re-renders its form with messages
/// when the input is invalid.
struct PortalController {
    let store: Store
    let pages: WebPages
    let allowPrivateEndpoints: Bool

    func addRoutes(to router: Router<TernRequestContext>) {
        router.get("portal", use: self.open)
        let portal = router.group("portal", context: PortalContext.self)
            .add(middleware: CSRFMiddleware<PortalContext>(signer: self.pages.signer))
            .add(middleware: AuditMiddleware<PortalContext>(store: self.store))
        portal.get("endpoints", use: self.endpoints)
        portal.get("endpoints/new", use: self.newEndpoint)
        portal.post("endpoints", use: self.createEndpoint)
        portal.get("endpoints/:endpoint_id", use: self.endpoint)
        portal.post("endpoints/:endpoint_id", use: self.updateEndpoint)
        portal.post("endpoints/:endpoint_id/status", use: self.setStatus)
        portal.post("endpoints/:endpoint_id/rotate", use: self.rotate)
        portal.post("endpoints/:endpoint_id/test", use: self.sendTest)
        portal.get("endpoints/:endpoint_id/delete", use: self.confirmDelete)
        portal.post("endpoints/:endpoint_id/delete", use: self.delete)
        portal.get("events", use: self.events)
        portal.get("deliveries", use: self.deliveries)
        portal.get("deliveries/:delivery_id", use: self.delivery)
        portal.post("deliveries/:delivery_id/replay", use: self.replay)
    }

    // MARK: Opening a session

    /// The magic link: checks the token, sets the session cookie and lands on the endpoints page.
    @Sendable func open(_ request: Request, context: TernRequestContext) async throws -> Response {
        guard let token = request.uri.queryParameters.get("token"), !token.isEmpty else {
            throw TernError.unauthorized("This portal link has no token. Ask for a new link.")
        }
        let claims: SessionClaims
        do {
            claims = try self.pages.signer.verify(token)
        } catch .expired {
            throw TernError.unauthorized("This portal link has expired. Ask for a new link.")
        } catch {
            throw TernError.unauthorized("This portal link is not valid. Ask for a new link.")
        }
        guard claims.kind == "portal", let organizationID = claims.organizationID, let applicationID = claims.applicationID else {
            throw TernError.forbidden("This link does not open a portal.")
        }
        do {
            _ = try await self.store.application(organizationID: organizationID, id: applicationID)
        } catch TernError.notFound {
            throw TernError.forbidden("The application of this portal link no longer exists.")
        }
        let maxAge = max(1, Int(claims.expires - Int64(Date().timeIntervalSince1970)))
        let cookie = self.pages.sessionCookie(WebPages.portalCookie, value: token, maxAge: maxAge, sameSite: .none)
        return WebPages.redirect("/portal/endpoints", cookie: cookie)
    }

    // MARK: Layout

    func frame(_ context: PortalContext, title: String, section: String, flash: String? = nil, page: Any) async throws -> (WebPages.Frame, [String]) {
        let application = try await self.store.application(organizationID: context.organizationID, id: context.applicationID)
        let nav = [("endpoints", "Endpoints"), ("events", "Event catalog"), ("deliveries", "Deliveries")].map {
            WebPages.NavItem(href: "/portal/\($0.0)", label: $0.1, current: $0.0 == section)
        }
        let frame = WebPages.Frame(
            title: "\(title) · \(application.name)", heading: application.name, nav: nav, brandColor: application.portal.brandColor,
            logoURL: application.portal.logoURL, nonce: WebPages.nonce(), csrf: self.pages.signer.csrfToken(for: context.session.token),
            flash: flash, page: page
        )
        return (frame, application.portal.allowedOrigins)
    }

    func render(
        _ template: String, _ context: PortalContext, title: String, section: String, flash: String? = nil,
        status: HTTPResponse.Status = .ok, page: Any
    ) async throws -> Response {
        let (frame, origins) = try await self.frame(context, title: title, section: section, flash: flash, page: page)
        return self.pages.render(template, frame, status: status, frameAncestors: origins)
    }

    // MARK: Endpoints

    struct EndpointRow {
        var id: String
        var name: String
        var url: String
        var status: String
        var active: Bool
        var events: String
        var successRate: String
        var disabledReason: String?
    }

    static func row(_ endpoint: Endpoint, _ stats: EndpointStats?) -> EndpointRow {
        EndpointRow(
            id: endpoint.id, name: endpoint.name ?? endpoint.url, url: endpoint.url, status: endpoint.status.rawValue,
            active: endpoint.status == .active, events: endpoint.events.isEmpty ? "All events" : endpoint.events.joined(separator: ", "),
            successRate: stats?.successRate.map { "\($0)%" } ?? "–", disabledReason: endpoint.disabledReason
        )
    }

    @Sendable func endpoints(_ request: Request, context: PortalContext) async throws -> Response {
        struct View { var endpoints: [EndpointRow]; var empty: Bool; var more: Bool }
        let endpoints = try await self.store.listEndpoints(
            organizationID: context.organizationID, applicationID: context.applicationID,
            filter: EndpointFilter(tenantID: context.tenantID), PageRequest(limit: PageRequest.maxLimit)
        )
        let stats = try await self.store.endpointStats(
            applicationID: context.applicationID, tenantID: context.tenantID, since: Timestamp.now().adding(seconds: -7 * 24 * 3600)
        )
        let rows = endpoints.data.map { Self.row($0, stats[$0.id]) }
        return try await self.render(
            "portal_endpoints", context, title: "Endpoints", section: "endpoints", flash: request.uri.queryParameters.get("flash").flatMap(Self.flash),
            page: View(endpoints: rows, empty: rows.isEmpty, more: endpoints.hasMore)
        )
    }

    /// Messages a redirect may show (by key, so that a link cannot put arbitrary text on the page).
    static func flash(_ key: String) -> String? {
        ["deleted": "The endpoint was deleted.", "paused": "The endpoint is paused; deliveries wait until you resume it.",
         "active": "The endpoint is active.", "saved": "Saved.", "test": "A test event is on its way.",
         "replayed": "The delivery will be sent again now."][key]
    }

    struct EventChoice { var name: String; var description: String?; var checked: Bool }

    struct EndpointForm {
        var action: String
        var submit: String
        var url: String
        var name: String
        var description: String
        var allEvents: Bool
        var events: [EventChoice]
        var errors: [FieldError]
        var urlError: String?
        var eventsError: String?
        var nameError: String?
    }

    func eventChoices(_ context: PortalContext, selected: [String]) async throws -> [EventChoice] {
        let types = try await self.store.listEventTypes(
            organizationID: context.organizationID, applicationID: context.applicationID, includeArchived: false, PageRequest(limit: PageRequest.maxLimit)
        )
        return types.data.sorted { $0.name < $1.name }.map { EventChoice(name: $0.name, description: $0.description, checked: selected.contains($0.name)) }
    }

    @Sendable func newEndpoint(_ request: Request, context: PortalContext) async throws -> Response {
        let form = EndpointForm(
            action: "/portal/endpoints", submit: "Add endpoint", url: "", name: "", description: "", allEvents: true,
            events: try await self.eventChoices(context, selected: []), errors: []
        )
        return try await self.render("portal_endpoint_form", context, title: "Add endpoint", section: "endpoints", page: form)
    }

    struct EndpointFields: Decodable {
        var url: String?
        var name: String?
        var description: String?
        var events: [String]?
    }

    /// Validates the form as the API would; the problems come back as field errors.
    func validate(_ fields: EndpointFields) -> [FieldError] {
        var validator = Validator()
        validator.url(fields.url, allowPrivate: self.allowPrivateEndpoints)
        if let name = fields.name, !name.isEmpty { validator.name(name, required: false) }
        validator.text(fields.description, "description", max: 4096)
        return validator.errors
    }

    func form(_ context: PortalContext, _ fields: EndpointFields, action: String, submit: String, errors: [FieldError]) async throws -> EndpointForm {
        let selected = fields.events ?? []
        return EndpointForm(
            action: action, submit: submit, url: fields.url ?? "", name: fields.name ?? "", description: fields.description ?? "",
            allEvents: selected.isEmpty, events: try await self.eventChoices(context, selected: selected), errors: errors,
            urlError: errors.first { $0.field == "url" }?.message,
            eventsError: errors.first { $0.field.hasPrefix("events") }?.message,
            nameError: errors.first { $0.field == "name" }?.message
        )
    }

    struct SecretView { var endpointID: String; var url: String; var secret: String; var created: Bool }

    @Sendable func createEndpoint(_ request: Request, context: PortalContext) async throws -> Response {
        var request = request
        let fields = try await request.form(EndpointFields.self)
        var errors = self.validate(fields)
        if errors.isEmpty {
            let secret = EndpointSecret.generate()
            let input = EndpointInput(
                tenantID: context.tenantID, url: fields.url!, name: fields.name.flatMap { $0.isEmpty ? nil : $0 },
                description: fields.description.flatMap { $0.isEmpty ? nil : $0 }, events: EndpointController.unique(fields.events ?? []),
                headers: [:], timeoutSeconds: Endpoint.defaultTimeoutSeconds, metadata: [:], status: .active, secret: secret
            )
            do {
                let endpoint = try await self.store.createEndpoint(organizationID: context.organizationID, applicationID: context.applicationID, input)
                var response = try await self.render(
                    "portal_secret", context, title: "Endpoint added", section: "endpoints", status: .created,
                    page: SecretView(endpointID: endpoint.id, url: endpoint.url, secret: secret, created: true)
                )
                response.headers[.entityID] = endpoint.id
                return response
            } catch TernError.validation(let problems) {
                errors = problems
            } catch TernError.planLimitExceeded(let detail) {
                errors = [FieldError("url", detail)]
            }
        }
        let form = try await self.form(context, fields, action: "/portal/endpoints", submit: "Add endpoint", errors: errors)
        return try await self.render("portal_endpoint_form", context, title: "Add endpoint", section: "endpoints", status: .unprocessableContent, page: form)
    }

    /// The tenant's endpoint; another tenant's is not found.
    func tenantEndpoint(_ context: PortalContext) async throws -> Endpoint {
        let id = try context.parameters.require("endpoint_id")
        let endpoint = try await self.store.endpoint(organizationID: context.organizationID, applicationID: context.applicationID, id: id)
        guard endpoint.tenantID == context.tenantID else { throw TernError.notFound("No endpoint '\(id)'.") }
        return endpoint
    }

    struct DeliveryRow {
        var id: String
        var eventType: String
        var status: String
        var attempts: Int
        var lastStatusCode: String
        var createdAt: String
        var canReplay: Bool
    }

    static func row(_ delivery: Delivery) -> DeliveryRow {
        DeliveryRow(
            id: delivery.id, eventType: delivery.eventType, status: delivery.status.rawValue, attempts: delivery.attemptCount,
            lastStatusCode: delivery.lastStatusCode.map(String.init) ?? (delivery.lastError == nil ? "–" : "no answer"),
            createdAt: delivery.createdAt.description, canReplay: delivery.status != .delivering
        )
    }

    @Sendable func endpoint(_ request: Request, context: PortalContext) async throws -> Response {
        let endpoint = try await self.tenantEndpoint(context)
        return try await self.renderEndpoint(context, endpoint, flash: request.uri.queryParameters.get("flash").flatMap(Self.flash))
    }

    func renderEndpoint(
        _ context: PortalContext, _ endpoint: Endpoint, fields: EndpointFields? = nil, errors: [FieldError] = [], flash: String? = nil
    ) async throws -> Response {
        struct View { var endpoint: EndpointRow; var paused: Bool; var disabled: Bool; var form: EndpointForm; var deliveries: [DeliveryRow] }
        let stats = try await self.store.endpointStats(
            applicationID: context.applicationID, tenantID: context.tenantID, since: Timestamp.now().adding(seconds: -7 * 24 * 3600)
        )
        let deliveries = try await self.store.listDeliveries(
            organizationID: context.organizationID, applicationID: context.applicationID,
            filter: DeliveryFilter(endpointID: endpoint.id, tenantID: context.tenantID), PageRequest(limit: 10)
        )
        let values = fields ?? EndpointFields(url: endpoint.url, name: endpoint.name, description: endpoint.description, events: endpoint.events)
        let form = try await self.form(context, values, action: "/portal/endpoints/\(endpoint.id)", submit: "Save changes", errors: errors)
        let view = View(
            endpoint: Self.row(endpoint, stats[endpoint.id]), paused: endpoint.status == .paused, disabled: endpoint.status == .disabled,
            form: form, deliveries: deliveries.data.map(Self.row)
        )
        return try await self.render(
            "portal_endpoint", context, title: endpoint.name ?? endpoint.url, section: "endpoints", flash: flash,
            status: errors.isEmpty ? .ok : .unprocessableContent, page: view
        )
    }

    @Sendable func updateEndpoint(_ request: Request, context: PortalContext) async throws -> Response {
        let endpoint = try await self.tenantEndpoint(context)
        var request = request
        let fields = try await request.form(EndpointFields.self)
        var errors = self.validate(fields)
        if errors.isEmpty {
            do {
                _ = try await self.store.updateEndpoint(organizationID: context.organizationID, applicationID: context.applicationID, id: endpoint.id) {
                    $0.url = fields.url!
                    $0.name = fields.name.flatMap { $0.isEmpty ? nil : $0 }
                    $0.description = fields.description.flatMap { $0.isEmpty ? nil : $0 }
                    $0.events = EndpointController.unique(fields.events ?? [])
                }
                return WebPages.redirect("/portal/endpoints/\(endpoint.id)?flash=saved")
            } catch TernError.validation(let problems) {
                errors = problems
            }
        }
        return try await self.renderEndpoint(context, endpoint, fields: fields, errors: errors)
    }

    struct StatusField: Decodable { var status: String? }

    @Sendable func setStatus(_ request: Request, context: PortalContext) async throws -> Response {
        let endpoint = try await self.tenantEndpoint(context)
        var request = request
        let field = try await request.form(StatusField.self)
        guard let status = field.status.flatMap(EndpointStatus.init(rawValue:)), status != .disabled else {
            throw TernError.invalid("status", "must be 'active' or 'paused'")
        }
        _ = try await self.store.updateEndpoint(organizationID: context.organizationID, applicationID: context.applicationID, id: endpoint.id) {
            $0.status = status
        }
        return WebPages.redirect("/portal/endpoints/\(endpoint.id)?flash=\(status.rawValue)")
    }

    @Sendable func rotate(_ request: Request, context: PortalContext) async throws -> Response {
        let endpoint = try await self.tenantEndpoint(context)
        let secret = EndpointSecret.generate()
        _ = try await self.store.rotateSecret(
            organizationID: context.organizationID, applicationID: context.applicationID, endpointID: endpoint.id, newSecret: secret
        )
        return try await self.render(
            "portal_secret", context, title: "New secret", section: "endpoints",
            page: SecretView(endpointID: endpoint.id, url: endpoint.url, secret: secret, created: false)
        )
    }

    struct TestField: Decodable { var event_type: String? }

    @Sendable func sendTest(_ request: Request, context: PortalContext) async throws -> Response {
        let endpoint = try await self.tenantEndpoint(context)
        var request = request
        let field = try await request.form(TestField.self)
        let eventType = field.event_type.flatMap { Rules.isEventTypeName($0) ? $0 : nil } ?? EndpointController.testEventType
        _ = try await self.store.sendTestMessage(
            organizationID: context.organizationID, applicationID: context.applicationID, endpointID: endpoint.id, eventType: eventType
        )
        return WebPages.redirect("/portal/endpoints/\(endpoint.id)?flash=test")
    }

    @Sendable func confirmDelete(_ request: Request, context: PortalContext) async throws -> Response {
        let endpoint = try await self.tenantEndpoint(context)
        return try await self.render("portal_delete", context, title: "Delete endpoint", section: "endpoints", page: Self.row(endpoint, nil))
    }

    @Sendable func delete(_ request: Request, context: PortalContext) async throws -> Response {
        let endpoint = try await self.tenantEndpoint(context)
        try await self.store.deleteEndpoint(organizationID: context.organizationID, applicationID: context.applicationID, id: endpoint.id)
        return WebPages.redirect("/portal/endpoints?flash=deleted")
    }

    // MARK: Catalog and deliveries

    @Sendable func events(_ request: Request, context: PortalContext) async throws -> Response {
        struct Row { var name: String; var description: String?; var schema: String?; var example: String? }
        struct View { var events: [Row]; var empty: Bool }
        let types = try await self.store.listEventTypes(
            organizationID: context.organizationID, applicationID: context.applicationID, includeArchived: false, PageRequest(limit: PageRequest.maxLimit)
        )
        let rows = types.data.sorted { $0.name < $1.name }.map {
            Row(name: $0.name, description: $0.description, schema: $0.schema.map(Self.pretty), example: $0.example.map(Self.pretty))
        }
        return try await self.render("portal_events", context, title: "Event catalog", section: "events", page: View(events: rows, empty: rows.isEmpty))
    }

    static func pretty(_ value: JSONValue) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    static func pretty(_ raw: String) -> String {
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(raw.utf8)) else { return raw }
        return Self.pretty(value)
    }

    @Sendable func deliveries(_ request: Request, context: PortalContext) async throws -> Response {
        struct StatusChoice { var value: String; var label: String; var selected: Bool }
        struct View { var deliveries: [DeliveryRow]; var empty: Bool; var statuses: [StatusChoice]; var nextURL: String?; var status: String }
        let query = request.uri.queryParameters
        let statusText = query.get("status").flatMap { $0.isEmpty ? nil : $0 }
        let status = try statusText.map { text in
            guard let status = DeliveryStatus(rawValue: text) else { throw TernError.invalid("status", "is not a delivery status") }
            return status
        }
        let page = try PageRequest(limit: "25", cursor: query.get("cursor"))
        let deliveries = try await self.store.listDeliveries(
            organizationID: context.organizationID, applicationID: context.applicationID,
            filter: DeliveryFilter(status: status, tenantID: context.tenantID), page
        )
        var next: String?
        if let cursor = deliveries.nextCursor {
            var components = URLComponents()
            components.path = "/portal/deliveries"
            components.queryItems = [URLQueryItem(name: "cursor", value: cursor)] + (statusText.map { [URLQueryItem(name: "status", value: $0)] } ?? [])
            next = components.string
        }
        let statuses = [StatusChoice(value: "", label: "All", selected: status == nil)] + DeliveryStatus.allCases.map {
            StatusChoice(value: $0.rawValue, label: $0.rawValue.capitalized, selected: $0 == status)
        }
        let view = View(
            deliveries: deliveries.data.map(Self.row), empty: deliveries.data.isEmpty, statuses: statuses, nextURL: next, status: statusText ?? ""
        )
        return try await self.render("portal_deliveries", context, title: "Deliveries", section: "deliveries", page: view)
    }

    @Sendable func delivery(_ request: Request, context: PortalContext) async throws -> Response {
        struct Header { var name: String; var value: String }
        struct AttemptRow {
            var id: String; var createdAt: String; var trigger: String; var statusCode: String; var durationMS: Int
            var error: String?; var responseBody: String; var requestHeaders: [Header]; var succeeded: Bool
        }
        struct View { var delivery: DeliveryRow; var endpointID: String; var payload: String; var messageID: String; var attempts: [AttemptRow]; var none: Bool }
        let id = try context.parameters.require("delivery_id")
        let (delivery, message, attempts) = try await self.store.tenantDelivery(
            organizationID: context.organizationID, applicationID: context.applicationID, tenantID: context.tenantID, id: id
        )
        let rows = attempts.map { attempt in
            AttemptRow(
                id: attempt.id, createdAt: attempt.createdAt.description, trigger: attempt.trigger.rawValue,
                statusCode: attempt.statusCode.map(String.init) ?? "no answer", durationMS: attempt.durationMS, error: attempt.error,
                responseBody: attempt.responseBody ?? "", requestHeaders: attempt.requestHeaders.sorted { $0.key < $1.key }.map { Header(name: $0.key, value: $0.value) },
                succeeded: (200..<300).contains(attempt.statusCode ?? 0)
            )
        }
        let view = View(
            delivery: Self.row(delivery), endpointID: delivery.endpointID, payload: Self.pretty(message.payload), messageID: message.id,
            attempts: rows, none: rows.isEmpty
        )
        return try await self.render(
            "portal_delivery", context, title: "Delivery", section: "deliveries", flash: request.uri.queryParameters.get("flash").flatMap(Self.flash), page: view
        )
    }

    @Sendable func replay(_ request: Request, context: PortalContext) async throws -> Response {
        let id = try context.parameters.require("delivery_id")
        _ = try await self.store.tenantDelivery(organizationID: context.organizationID, applicationID: context.applicationID, tenantID: context.tenantID, id: id)
        _ = try await self.store.replayDelivery(organizationID: context.organizationID, applicationID: context.applicationID, id: id)
        return WebPages.redirect("/portal/deliveries/\(id)?flash=replayed")
    }
}
