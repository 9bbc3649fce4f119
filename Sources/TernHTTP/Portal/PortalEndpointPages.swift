import Foundation
import HTTPTypes
import Hummingbird
import TernCore
import TernDelivery
import TernStorage

/// The portal's endpoint pages: list, add, edit, pause and resume, rotate the secret, send a test, delete.
extension PortalController {
    @Sendable func endpoints(_ request: Request, context: PortalContext) async throws -> Response {
        struct View {
            var endpoints: [EndpointRow]
            var empty: Bool
            var more: Bool
        }
        let endpoints = try await self.store.listEndpoints(
            organizationID: context.organizationID, applicationID: context.applicationID,
            filter: EndpointFilter(tenantID: context.tenantID), PageRequest(limit: PageRequest.maxLimit)
        )
        let stats = try await self.store.endpointStats(
            applicationID: context.applicationID, tenantID: context.tenantID, since: Timestamp.now().adding(seconds: -7 * 24 * 3600)
        )
        let rows = endpoints.data.map { Self.row($0, stats[$0.id]) }
        return try await self.render(
            "portal_endpoints", context, title: "Endpoints", section: "endpoints",
            flash: request.uri.queryParameters.get("flash").flatMap(Self.flash),
            page: View(endpoints: rows, empty: rows.isEmpty, more: endpoints.hasMore)
        )
    }

    func eventChoices(_ context: PortalContext, selected: [String]) async throws -> [EventChoice] {
        let types = try await self.store.listEventTypes(
            organizationID: context.organizationID, applicationID: context.applicationID, includeArchived: false,
            PageRequest(limit: PageRequest.maxLimit)
        )
        return types.data.sorted { $0.name < $1.name }.map {
            EventChoice(name: $0.name, description: $0.description, checked: selected.contains($0.name))
        }
    }

    @Sendable func newEndpoint(_ request: Request, context: PortalContext) async throws -> Response {
        let form = EndpointForm(
            action: "/portal/endpoints", submit: "Add endpoint", url: "", name: "", description: "", allEvents: true,
            events: try await self.eventChoices(context, selected: []), errors: []
        )
        return try await self.render("portal_endpoint_form", context, title: "Add endpoint", section: "endpoints", page: form)
    }

    /// Validates the form as the API would; the problems come back as field errors.
    func validate(_ fields: EndpointFields) -> [FieldError] {
        var validator = Validator()
        validator.url(fields.url, allowPrivate: self.allowPrivateEndpoints)
        if let name = fields.name, !name.isEmpty { validator.name(name, required: false) }
        validator.text(fields.description, "description", max: 4096)
        var errors = validator.errors
        if case .failure(let error) = Self.filter(fields.filter, "filter") { errors += error.fields }
        if let text = fields.rate_limit, !text.isEmpty, Self.rate(text) == nil {
            errors.append(FieldError("rate_limit", "must be a whole number of deliveries a second, from 1 to \(EndpointRateLimit.maxPerSecond)"))
        }
        if case .failure(let problem) = Self.ordering(fields) { errors += problem.fields }
        if case .failure(let problem) = self.receiverChange(fields, creating: false) { errors += problem.fields }
        return errors
    }

    /// The form's receiver settings as a change. Sign-in and TLS change only when the tenant says so: a sign-in type
    /// other than "keep" (on an older page, or when creating, none is "keep" or "none"), and TLS boxes that are not
    /// all empty (or "remove").
    func receiverChange(_ fields: EndpointFields, creating: Bool) -> Result<ReceiverChange, FormProblem> {
        var errors: [FieldError] = []
        var change = ReceiverChange(signing: fields.signing.flatMap(EndpointSigning.init(rawValue:)))
        func given(_ text: String?) -> String? {
            guard let text = text?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty else { return nil }
            return text
        }
        switch fields.auth_type ?? (creating ? "none" : "keep") {
        case "keep": if creating { change.auth = .some(nil) }
        case "none": change.auth = .some(nil)
        case let type:
            var members: [String: JSONValue] = ["type": .string(type)]
            let named: [(String, String?)] =
                switch type {
                case "basic": [("username", fields.auth_username), ("password", fields.auth_password)]
                case "bearer": [("token", fields.auth_token)]
                default:
                    [
                        ("token_url", fields.auth_token_url), ("client_id", fields.auth_client_id), ("client_secret", fields.auth_client_secret),
                        ("scope", fields.auth_scope),
                    ]
                }
            for (name, value) in named { if let value = given(value) { members[name] = .string(value) } }
            do {
                let allowPrivate = self.allowPrivateEndpoints
                change.auth = .some(try EndpointAuth.parse(.object(members)) { Rules.endpointURLProblem($0, allowPrivate: allowPrivate) })
            } catch TernError.validation(let problems) {
                errors += problems.map { FieldError($0.field, $0.message.hasPrefix("must be a string") ? "is required" : $0.message) }
            } catch {}
        }
        if fields.tls_remove == "yes" {
            change.tls = .some(nil)
        } else if given(fields.tls_certificate) != nil || given(fields.tls_key) != nil || given(fields.tls_ca) != nil {
            let tls = EndpointTLS(
                clientCertificatePEM: given(fields.tls_certificate), clientKeyPEM: given(fields.tls_key), caBundlePEM: given(fields.tls_ca))
            errors += ReceiverTLS.problems(tls)
            change.tls = .some(tls)
        }
        return errors.isEmpty ? .success(change) : .failure(FormProblem(fields: errors))
    }

    /// What an endpoint's receiver sign-in and TLS are now, in words.
    static func receiverNow(_ endpoint: Endpoint) -> (auth: String?, tls: String?) {
        var auth: String?
        if case .object(let members)? = endpoint.auth, case .string(let type)? = members["type"] {
            func member(_ name: String) -> String { if case .string(let value)? = members[name] { value } else { "" } }
            auth =
                switch type {
                case "basic": "a user name and password (\(member("username")))"
                case "bearer": "a fixed token"
                default: "OAuth2 tokens from \(member("token_url")) for the client \(member("client_id"))"
                }
        }
        var tls: String?
        if case .object(let members)? = endpoint.tls {
            var parts: [String] = []
            if members["client_key_set"] == .bool(true) { parts.append("a client certificate") }
            if case .string? = members["ca_bundle_pem"] { parts.append("a private CA") }
            tls = parts.isEmpty ? nil : parts.joined(separator: " and ")
        }
        return (auth, tls)
    }

    /// The form's order of deliveries as the endpoint's `ordering` and `ordering_key` (a JSON pointer made from the
    /// field's dotted path; one starting with `/` is taken as a pointer already).
    static func ordering(_ fields: EndpointFields) -> Result<(EndpointOrdering, String?), FormProblem> {
        switch fields.ordering ?? "none" {
        case "none": return .success((.none, nil))
        case "fifo": return .success((.fifo, nil))
        case "keyed":
            let path = (fields.ordering_key ?? "").trimmingCharacters(in: .whitespaces)
            let pointer =
                path.hasPrefix("/")
                ? path
                : "/"
                    + path.split(separator: ".", omittingEmptySubsequences: false).map {
                        $0.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
                    }.joined(separator: "/")
            guard !path.isEmpty, pointer.count <= 256,
                !pointer.split(separator: "/", omittingEmptySubsequences: false).dropFirst().contains(where: \.isEmpty)
            else {
                return .failure(FormProblem(fields: [FieldError("ordering_key", "name the payload field that keeps the order, such as customer_id")]))
            }
            return .success((.fifo, pointer))
        default: return .failure(FormProblem(fields: [FieldError("ordering_key", "choose one of the three orders")]))
        }
    }

    /// An ordering key as the form shows it: the dotted path, unless a member holds a dot or a slash.
    static func orderingField(_ pointer: String?) -> String? {
        guard let pointer else { return nil }
        let members = pointer.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map {
            $0.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
        }
        return members.contains { $0.contains(".") || $0.contains("/") } ? pointer : members.joined(separator: ".")
    }

    /// The form's "at most … deliveries a second": a whole number in range, or nil.
    static func rate(_ text: String?) -> Int? {
        guard let text, let rate = Int(text.trimmingCharacters(in: .whitespaces)), (1...EndpointRateLimit.maxPerSecond).contains(rate) else {
            return nil
        }
        return rate
    }

    /// A problem of a form's JSON field, as field errors.
    struct FormProblem: Error {
        var fields: [FieldError]
    }

    /// The filter a form's text says: nil for an empty field; 4 KB at most, checked as the API checks it.
    static func filter(_ text: String?, _ field: String) -> Result<RoutingFilter?, FormProblem> {
        guard let text, !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return .success(nil) }
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) else {
            return .failure(FormProblem(fields: [FieldError(field, "is not valid JSON")]))
        }
        do {
            return .success(try EndpointController.routingFilter(value))
        } catch TernError.validation(let errors) {
            return .failure(FormProblem(fields: errors))
        } catch {
            return .failure(FormProblem(fields: [FieldError(field, "is not a filter")]))
        }
    }

    func form(
        _ context: PortalContext, _ fields: EndpointFields, action: String, submit: String, errors: [FieldError], current: Endpoint? = nil
    ) async throws -> EndpointForm {
        let selected = fields.events ?? []
        let now: (auth: String?, tls: String?) = current.map(Self.receiverNow) ?? (nil, nil)
        let authType = fields.auth_type ?? (now.auth == nil ? "none" : "keep")
        var form = EndpointForm(
            action: action, submit: submit, url: fields.url ?? "", name: fields.name ?? "", description: fields.description ?? "",
            allEvents: selected.isEmpty, events: try await self.eventChoices(context, selected: selected), errors: errors,
            urlError: errors.first { $0.field == "url" }?.message,
            eventsError: errors.first { $0.field.hasPrefix("events") }?.message,
            nameError: errors.first { $0.field == "name" }?.message, filter: fields.filter ?? "",
            filterError: errors.first { $0.field.hasPrefix("filter") }.map { "\($0.field): \($0.message)" },
            rateLimit: fields.rate_limit ?? "", rateLimitError: errors.first { $0.field == "rate_limit" }?.message,
            orderingNone: !["fifo", "keyed"].contains(fields.ordering ?? "none"), orderingFifo: fields.ordering == "fifo",
            orderingKeyed: fields.ordering == "keyed", orderingKey: fields.ordering_key ?? "",
            orderingError: errors.first { $0.field.hasPrefix("ordering") }?.message
        )
        form.signingEd25519 = (fields.signing ?? current?.signing.rawValue) == EndpointSigning.ed25519.rawValue
        form.publicKey = current?.publicKey
        form.authNow = now.auth
        form.authKeep = authType == "keep"
        form.authNone = authType == "none"
        form.authBasic = authType == "basic"
        form.authBearer = authType == "bearer"
        form.authOAuth2 = authType == "oauth2_client_credentials"
        form.authUsername = fields.auth_username ?? ""
        form.authTokenURL = fields.auth_token_url ?? ""
        form.authClientID = fields.auth_client_id ?? ""
        form.authScope = fields.auth_scope ?? ""
        form.authError = errors.filter { $0.field.hasPrefix("auth") }.map { "\($0.field): \($0.message)" }.first
        form.tlsNow = now.tls
        form.tlsError = errors.filter { $0.field.hasPrefix("tls") }.map { "\($0.field): \($0.message)" }.first
        return form
    }

    @Sendable func createEndpoint(_ request: Request, context: PortalContext) async throws -> Response {
        var request = request
        let fields = try await request.form(EndpointFields.self)
        var errors = self.validate(fields)
        if errors.isEmpty {
            let secret = EndpointSecret.generate()
            var input = EndpointInput(
                tenantID: context.tenantID, url: fields.url!, name: fields.name.flatMap { $0.isEmpty ? nil : $0 },
                description: fields.description.flatMap { $0.isEmpty ? nil : $0 }, events: EndpointController.unique(fields.events ?? []),
                headers: [:], timeoutSeconds: Endpoint.defaultTimeoutSeconds, metadata: [:], status: .active, secret: secret,
                filter: (try? Self.filter(fields.filter, "filter").get()) ?? nil
            )
            input.throttleRate = Self.rate(fields.rate_limit)
            if case .success(let (ordering, key)) = Self.ordering(fields) {
                input.ordering = ordering
                input.orderingKey = key
            }
            let receiver = (try? self.receiverChange(fields, creating: true).get()) ?? ReceiverChange()
            input.auth = receiver.auth ?? nil
            input.tls = receiver.tls ?? nil
            let signing = receiver.signing ?? .hmac
            if signing == .ed25519 { input.secret = EndpointSecret.generate(.ed25519) }
            do {
                let endpoint = try await self.store.createEndpoint(
                    organizationID: context.organizationID, applicationID: context.applicationID, input)
                var response = try await self.render(
                    "portal_secret", context, title: "Endpoint added", section: "endpoints", status: .created,
                    page: SecretView(
                        endpointID: endpoint.id, url: endpoint.url, secret: endpoint.publicKey ?? secret, created: true,
                        publicKey: endpoint.publicKey != nil)
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
        return try await self.render(
            "portal_endpoint_form", context, title: "Add endpoint", section: "endpoints", status: .unprocessableContent, page: form)
    }

    @Sendable func endpoint(_ request: Request, context: PortalContext) async throws -> Response {
        let endpoint = try await self.tenantEndpoint(context)
        return try await self.renderEndpoint(context, endpoint, flash: request.uri.queryParameters.get("flash").flatMap(Self.flash))
    }

    func renderEndpoint(
        _ context: PortalContext, _ endpoint: Endpoint, fields: EndpointFields? = nil, errors: [FieldError] = [], flash: String? = nil,
        filterTest: FilterTestView? = nil
    ) async throws -> Response {
        struct View {
            var endpoint: EndpointRow
            var paused: Bool
            var disabled: Bool
            var form: EndpointForm
            var deliveries: [DeliveryRow]
            var health: HealthView
            var filterTest: FilterTestView
        }
        let stats = try await self.store.endpointStats(
            applicationID: context.applicationID, tenantID: context.tenantID, since: Timestamp.now().adding(seconds: -7 * 24 * 3600)
        )
        let deliveries = try await self.store.listDeliveries(
            organizationID: context.organizationID, applicationID: context.applicationID,
            filter: DeliveryFilter(endpointID: endpoint.id, tenantID: context.tenantID), PageRequest(limit: 10)
        )
        let values =
            fields
            ?? EndpointFields(
                url: endpoint.url, name: endpoint.name, description: endpoint.description, events: endpoint.events,
                filter: endpoint.filter.map(Self.pretty), rate_limit: endpoint.throttleRate.map(String.init),
                ordering: endpoint.orderingKey != nil ? "keyed" : endpoint.ordering.rawValue, ordering_key: Self.orderingField(endpoint.orderingKey))
        let form = try await self.form(
            context, values, action: "/portal/endpoints/\(endpoint.id)", submit: "Save changes", errors: errors, current: endpoint)
        var test = filterTest
        if test == nil { test = try await self.filterTestView(context, endpoint, FilterTestFields()) }
        let view = View(
            endpoint: Self.row(endpoint, stats[endpoint.id]), paused: endpoint.status == .paused, disabled: endpoint.status == .disabled,
            form: form, deliveries: deliveries.data.map(Self.row), health: try await self.health(context, endpoint),
            filterTest: test!
        )
        return try await self.render(
            "portal_endpoint", context, title: endpoint.name ?? endpoint.url, section: "endpoints", flash: flash,
            status: errors.isEmpty ? .ok : .unprocessableContent, page: view
        )
    }

    /// The endpoint's health for its page: charts of the last 24 hours (hourly) and 7 days (daily), the success rate,
    /// response times, the last error, and whether it is failing or disabled.
    struct HealthView {
        var day: String
        var week: String
        var successRate: String
        var p50: String
        var p95: String
        var lastError: String?
        var failing: Bool
        var disabled: Bool
        var pending: Int
    }

    func health(_ context: PortalContext, _ endpoint: Endpoint) async throws -> HealthView {
        let now = Timestamp.now()
        let day = try await self.store.endpointHealth(
            organizationID: context.organizationID, applicationID: context.applicationID, endpointID: endpoint.id,
            since: now.adding(seconds: -86_400), until: now)
        let week = try await self.store.endpointHealth(
            organizationID: context.organizationID, applicationID: context.applicationID, endpointID: endpoint.id,
            since: now.adding(seconds: -7 * 86_400), until: now)
        let lastFailure = try await self.store.listDeliveries(
            organizationID: context.organizationID, applicationID: context.applicationID,
            filter: DeliveryFilter(status: .failed, endpointID: endpoint.id, tenantID: context.tenantID), PageRequest(limit: 1)
        ).data.first
        let exhausted = try await self.store.listDeliveries(
            organizationID: context.organizationID, applicationID: context.applicationID,
            filter: DeliveryFilter(status: .exhausted, endpointID: endpoint.id, tenantID: context.tenantID), PageRequest(limit: 1)
        ).data.first
        let lastError = (lastFailure ?? exhausted).map { delivery in
            delivery.lastError ?? delivery.lastStatusCode.map { "HTTP \($0)" } ?? "failed"
        }
        return HealthView(
            day: HealthChart.svg(day, label: "Last 24 hours"), week: HealthChart.svg(week, label: "Last 7 days"),
            successRate: day.successRate.map { "\(Int(($0 * 100).rounded()))%" } ?? "no attempts",
            p50: day.responseP50.map { "\($0) ms" } ?? "–", p95: day.responseP95.map { "\($0) ms" } ?? "–", lastError: lastError,
            failing: endpoint.status != .disabled && day.failed > 0 && lastFailure != nil, disabled: endpoint.status == .disabled,
            pending: day.pending
        )
    }

    /// The banner's one button: the endpoint active again, and what failed since it broke sent again.
    @Sendable func reenable(_ request: Request, context: PortalContext) async throws -> Response {
        let endpoint = try await self.tenantEndpoint(context)
        var request = request
        _ = try await request.form(StatusField.self)
        if endpoint.status != .active {
            _ = try await self.store.updateEndpoint(organizationID: context.organizationID, applicationID: context.applicationID, id: endpoint.id) {
                $0.status = .active
            }
        }
        let since = endpoint.disabledAt.map { $0.adding(seconds: -7 * 86_400) } ?? Timestamp.now().adding(seconds: -7 * 86_400)
        _ = try await self.store.recoverEndpoint(
            organizationID: context.organizationID, applicationID: context.applicationID, endpointID: endpoint.id, since: since, until: nil)
        return WebPages.redirect("/portal/endpoints/\(endpoint.id)?flash=recovered")
    }

    @Sendable func updateEndpoint(_ request: Request, context: PortalContext) async throws -> Response {
        let endpoint = try await self.tenantEndpoint(context)
        var request = request
        let fields = try await request.form(EndpointFields.self)
        var errors = self.validate(fields)
        if errors.isEmpty {
            do {
                let receiver = (try? self.receiverChange(fields, creating: false).get()) ?? ReceiverChange()
                _ = try await self.store.updateEndpoint(
                    organizationID: context.organizationID, applicationID: context.applicationID, id: endpoint.id, receiver: receiver
                ) {
                    $0.url = fields.url!
                    $0.name = fields.name.flatMap { $0.isEmpty ? nil : $0 }
                    $0.description = fields.description.flatMap { $0.isEmpty ? nil : $0 }
                    $0.events = EndpointController.unique(fields.events ?? [])
                    $0.filter = ((try? Self.filter(fields.filter, "filter").get()) ?? nil)?.source
                    let rate = Self.rate(fields.rate_limit)
                    if rate != $0.throttleRate {
                        $0.throttleRate = rate
                        $0.rateLimitBurst = nil
                    }
                    // A form without the choice (an older page) leaves the order as it was.
                    if fields.ordering != nil, case .success(let (ordering, key)) = Self.ordering(fields) {
                        $0.ordering = ordering
                        $0.orderingKey = key
                    }
                }
                return WebPages.redirect("/portal/endpoints/\(endpoint.id)?flash=saved")
            } catch TernError.validation(let problems) {
                errors = problems
            }
        }
        return try await self.renderEndpoint(context, endpoint, fields: fields, errors: errors)
    }

    /// The filter test card, before a test: the endpoint's filter, and the first subscribed event type's example.
    func filterTestView(_ context: PortalContext, _ endpoint: Endpoint, _ fields: FilterTestFields) async throws -> FilterTestView {
        let types = try await self.store.listEventTypes(
            organizationID: context.organizationID, applicationID: context.applicationID, includeArchived: false,
            PageRequest(limit: PageRequest.maxLimit)
        ).data.filter { endpoint.events.isEmpty || endpoint.events.contains($0.name) }.sorted { $0.name < $1.name }
        let chosen = types.first { $0.name == fields.event_type } ?? types.first { $0.example != nil } ?? types.first
        let payload = fields.payload.flatMap { $0.isEmpty ? nil : $0 } ?? chosen?.example.map(Self.pretty) ?? "{}"
        return FilterTestView(
            filter: fields.filter ?? endpoint.filter.map(Self.pretty) ?? "",
            payload: payload,
            eventTypes: types.map { EventChoice(name: $0.name, description: $0.description, checked: $0.name == chosen?.name) },
            result: nil, matches: false, error: nil)
    }

    /// Tries a filter (the endpoint's, or the one typed) on a payload (pasted, or the chosen event type's example).
    @Sendable func testFilter(_ request: Request, context: PortalContext) async throws -> Response {
        let endpoint = try await self.tenantEndpoint(context)
        var request = request
        var fields = try await request.form(FilterTestFields.self)
        if fields.payload?.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ?? true { fields.payload = nil }
        var view = try await self.filterTestView(context, endpoint, fields)
        switch Self.filter(view.filter, "filter") {
        case .failure(let problem):
            view.error = problem.fields.map { "\($0.field): \($0.message)" }.joined(separator: "; ")
        case .success(let filter):
            guard let payload = try? JSONDecoder().decode(JSONValue.self, from: Data(view.payload.utf8)), payload.isObject else {
                view.error = "payload: is not a JSON object"
                break
            }
            let eventType = view.eventTypes.first { $0.checked }?.name ?? ""
            let document = RoutingFilter.document(eventType: eventType, tenantID: context.tenantID, channels: nil, payload: payload)
            let result = filter?.evaluate(document) ?? (matches: true, reason: "no filter: every message matches")
            view.matches = result.matches
            view.result = result.matches ? "Matches: this message would be delivered." : "Does not match: \(result.reason)."
        }
        return try await self.renderEndpoint(context, endpoint, filterTest: view)
    }

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
        let secret = EndpointSecret.generate(endpoint.signing)
        _ = try await self.store.rotateSecret(
            organizationID: context.organizationID, applicationID: context.applicationID, endpointID: endpoint.id, newSecret: secret
        )
        let publicKey = EndpointSecret.publicKey(secret)
        return try await self.render(
            "portal_secret", context, title: "New secret", section: "endpoints",
            page: SecretView(endpointID: endpoint.id, url: endpoint.url, secret: publicKey ?? secret, created: false, publicKey: publicKey != nil)
        )
    }

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
}
