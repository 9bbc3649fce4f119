import Hummingbird
import TernCore
import TernStorage

/// `/api/v1/app/{app_id}/endpoint`: a tenant's endpoints, their secrets, headers, recovery and stats.
struct SvixEndpointController {
    let store: Store
    let allowPrivateEndpoints: Bool

    func addRoutes(to group: RouterGroup<SvixContext>) {
        group.get("app/:app_id/endpoint", use: self.list)
        group.post("app/:app_id/endpoint", use: self.create)
        group.get("app/:app_id/endpoint/:endpoint_id", use: self.get)
        group.put("app/:app_id/endpoint/:endpoint_id", use: self.upsert)
        group.patch("app/:app_id/endpoint/:endpoint_id", use: self.patch)
        group.delete("app/:app_id/endpoint/:endpoint_id", use: self.delete)
        group.get("app/:app_id/endpoint/:endpoint_id/secret", use: self.secret)
        group.post("app/:app_id/endpoint/:endpoint_id/secret/rotate", use: self.rotateSecret)
        group.get("app/:app_id/endpoint/:endpoint_id/headers", use: self.headers)
        group.put("app/:app_id/endpoint/:endpoint_id/headers", use: self.setHeaders)
        group.patch("app/:app_id/endpoint/:endpoint_id/headers", use: self.patchHeaders)
        group.post("app/:app_id/endpoint/:endpoint_id/recover", use: self.recover)
        group.get("app/:app_id/endpoint/:endpoint_id/stats", use: self.stats)
        group.post("app/:app_id/endpoint/:endpoint_id/send-example", use: self.sendExample)
    }

    struct ExampleBody: Decodable, Sendable {
        var eventType: String
        var exampleIndex: Int?
        var payload: JSONValue?
    }

    /// Sends the event type's example (its schema's `examples[exampleIndex]`, or the `payload` given) to this endpoint
    /// alone, as a test message.
    @Sendable func sendExample(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.write, "endpoints")
        var request = request
        let body = try await request.decodeJSON(ExampleBody.self).value
        if let index = body.exampleIndex, index < 0 { throw TernError.invalid("exampleIndex", "must be 0 or more") }
        let endpoint = try await self.endpoint(context)
        let eventType = try await self.store.eventType(
            organizationID: context.organizationID, applicationID: context.applicationID, name: body.eventType)
        var example = body.payload
        if example == nil {
            let index = body.exampleIndex ?? 0
            if case .object(let schema)? = eventType.schema, case .array(let examples)? = schema["examples"], examples.indices.contains(index) {
                example = examples[index]
            } else if index == 0 {
                example = eventType.example
            }
        }
        guard let example, example.isObject else {
            throw SvixCodedError(
                status: .badRequest, code: "invalid_scheme", detail: "The event type has no example object at that index; send a payload.")
        }
        let message = try await self.store.sendTestMessage(
            organizationID: context.organizationID, applicationID: context.applicationID, endpointID: endpoint.id, eventType: eventType.name,
            payload: String(decoding: try JSONResponse.encoder.encode(example), as: UTF8.self))
        return try SvixJSON.response(SvixMessageController.output(message, withContent: true), status: .accepted)
    }

    /// `EndpointIn`, `EndpointUpsertIn` and `EndpointPatch`; `filterTypes` and `rateLimit` are SDK 1.x's names.
    struct Body: Decodable, Sendable {
        var url: SvixPatch<String>
        var description: SvixPatch<String>
        var uid: SvixPatch<String>
        var throttleRate: SvixPatch<Int>
        var rateLimit: SvixPatch<Int>
        var disabled: SvixPatch<Bool>
        var eventTypes: SvixPatch<[String]>
        var filterTypes: SvixPatch<[String]>
        var channels: SvixPatch<[String]>
        var secret: SvixPatch<String>
        var metadata: SvixPatch<[String: String]>
        var headers: SvixPatch<[String: String]>

        var types: SvixPatch<[String]> {
            if case .absent = self.eventTypes { return self.filterTypes }
            return self.eventTypes
        }
        var throttle: SvixPatch<Int> {
            if case .absent = self.throttleRate { return self.rateLimit }
            return self.throttleRate
        }
    }

    func validate(_ body: Body, urlRequired: Bool) throws {
        var validator = Validator()
        switch body.url {
        case .value(let url):
            if let problem = Rules.endpointURLProblem(url, allowPrivate: self.allowPrivateEndpoints) { validator.fail("url", problem) }
        case .null: validator.fail("url", "must not be null")
        case .absent: if urlRequired { validator.fail("url", "field required") }
        }
        if let uid = body.uid.newValue, let problem = SvixRules.uidProblem(uid, prefix: "ep_") { validator.fail("uid", problem) }
        if let rate = body.throttle.newValue, rate < 1 { validator.fail("throttleRate", "must be at least 1") }
        if let types = body.types.newValue {
            if types.isEmpty { validator.fail("eventTypes", "must have at least 1 item, or be null for all") }
            for type in types where !Rules.isEventTypeName(type) { validator.fail("eventTypes", "'\(type)' is not an event type name") }
        }
        if let channels = body.channels.newValue {
            if channels.isEmpty || channels.count > Endpoint.maxChannels { validator.fail("channels", "must have 1 to 10 items, or be null") }
            for channel in channels where !SvixRules.isChannel(channel) { validator.fail("channels", "'\(channel)' is not a valid channel") }
        }
        if let secret = body.secret.newValue, !EndpointSecret.isValid(Self.prefixed(secret)) {
            validator.fail("secret", "secret length invalid")
        }
        validator.text(body.description.newValue, "description", max: 4096)
        validator.headers(body.headers.newValue)
        try validator.check()
    }

    static func prefixed(_ secret: String) -> String {
        secret.hasPrefix("whsec_") ? secret : "whsec_" + secret
    }

    static func output(_ endpoint: Endpoint) -> JSONValue {
        let types = endpoint.events.isEmpty ? JSONValue.null : SvixJSON.strings(endpoint.events)
        return .object([
            "id": .string(endpoint.id), "uid": SvixJSON.string(endpoint.uid), "url": .string(endpoint.url),
            "description": .string(endpoint.description ?? ""), "metadata": SvixJSON.metadata(endpoint.metadata),
            "throttleRate": SvixJSON.int(endpoint.throttleRate), "rateLimit": SvixJSON.int(endpoint.throttleRate),
            "disabled": .bool(endpoint.status == .disabled), "eventTypes": types, "filterTypes": types,
            "channels": SvixJSON.strings(endpoint.channels), "version": .number(1), "createdAt": SvixJSON.time(endpoint.createdAt),
            "updatedAt": SvixJSON.time(endpoint.updatedAt),
        ])
    }

    /// Event type problems of the store (`events[0]` …) are `eventTypes` here.
    func renamingFields<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch TernError.validation(let errors) {
            throw TernError.validation(errors.map { FieldError($0.field.hasPrefix("events") ? "eventTypes" : $0.field, $0.message) })
        }
    }

    func tenant(_ context: SvixContext) async throws -> Tenant {
        try await Self.tenant(self.store, context)
    }

    /// The tenant the path's `app_id` names.
    static func tenant(_ store: Store, _ context: SvixContext) async throws -> Tenant {
        try await store.svixApplication(
            organizationID: context.organizationID, applicationID: context.applicationID, idOrUID: try context.parameters.require("app_id"))
    }

    func endpoint(_ context: SvixContext) async throws -> Endpoint {
        let tenant = try await self.tenant(context)
        return try await self.store.svixEndpoint(
            organizationID: context.organizationID, applicationID: context.applicationID, tenantID: tenant.tenantID,
            id: try context.parameters.require("endpoint_id"))
    }

    @Sendable func list(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.read, "endpoints")
        let page = try SvixQuery(request).page(descending: true)
        let tenant = try await self.tenant(context)
        let endpoints = try await self.store.svixEndpoints(
            organizationID: context.organizationID, applicationID: context.applicationID, tenantID: tenant.tenantID, page)
        return try SvixJSON.list(endpoints, Self.output)
    }

    func input(_ body: Body, tenantID: String) -> EndpointInput {
        EndpointInput(
            tenantID: tenantID, url: body.url.newValue ?? "", name: nil, description: body.description.newValue ?? "",
            events: EndpointController.unique(body.types.newValue ?? []), headers: body.headers.newValue ?? [:],
            timeoutSeconds: Endpoint.defaultTimeoutSeconds, metadata: (body.metadata.newValue ?? [:]).mapValues(JSONValue.string),
            status: body.disabled.newValue == true ? .disabled : .active,
            secret: body.secret.newValue.map(Self.prefixed) ?? EndpointSecret.generate(), uid: body.uid.newValue,
            channels: body.channels.newValue.map(EndpointController.unique), throttleRate: body.throttle.newValue
        )
    }

    @Sendable func create(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.write, "endpoints")
        var request = request
        let body = try await request.decodeJSON(Body.self).value
        try self.validate(body, urlRequired: true)
        let tenant = try await self.tenant(context)
        let endpoint = try await self.renamingFields {
            try await self.store.createEndpoint(
                organizationID: context.organizationID, applicationID: context.applicationID, self.input(body, tenantID: tenant.tenantID))
        }
        return try SvixJSON.response(Self.output(endpoint), status: .created, created: endpoint.id)
    }

    @Sendable func get(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.read, "endpoints")
        return try SvixJSON.response(Self.output(try await self.endpoint(context)))
    }

    /// PUT: the whole endpoint (keeping its secret and headers), created when the path names none.
    @Sendable func upsert(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.write, "endpoints")
        var request = request
        var body = try await request.decodeJSON(Body.self).value
        body.secret = .absent
        body.headers = .absent
        try self.validate(body, urlRequired: true)
        let tenant = try await self.tenant(context)
        let id = try context.parameters.require("endpoint_id")
        guard
            let existing = try? await self.store.svixEndpoint(
                organizationID: context.organizationID, applicationID: context.applicationID, tenantID: tenant.tenantID, id: id)
        else {
            if case .absent = body.uid, !id.hasPrefix("ep_") { body.uid = .value(id) }
            let endpoint = try await self.renamingFields {
                try await self.store.createEndpoint(
                    organizationID: context.organizationID, applicationID: context.applicationID, self.input(body, tenantID: tenant.tenantID))
            }
            return try SvixJSON.response(Self.output(endpoint), status: .created)
        }
        let endpoint = try await self.update(context, existing.id, body, replace: true)
        return try SvixJSON.response(Self.output(endpoint))
    }

    @Sendable func patch(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.write, "endpoints")
        var request = request
        let body = try await request.decodeJSON(Body.self).value
        if body.secret.newValue != nil { throw TernError.invalid("secret", "use secret/rotate to change the secret") }
        try self.validate(body, urlRequired: false)
        let existing = try await self.endpoint(context)
        return try SvixJSON.response(Self.output(try await self.update(context, existing.id, body, replace: false)))
    }

    /// PATCH applies what the body names; PUT (`replace`) sets every field, absent ones to their defaults.
    func update(_ context: SvixContext, _ id: String, _ body: Body, replace: Bool) async throws -> Endpoint {
        try await self.renamingFields {
            try await self.store.updateEndpoint(organizationID: context.organizationID, applicationID: context.applicationID, id: id) { endpoint in
                func field<T>(_ patch: SvixPatch<T>, _ current: T?) -> T? {
                    if replace, case .absent = patch { return nil }
                    return patch.apply(to: current)
                }
                endpoint.url = body.url.newValue ?? endpoint.url
                endpoint.description = field(body.description, endpoint.description) ?? ""
                endpoint.uid = field(body.uid, endpoint.uid)
                endpoint.throttleRate = field(body.throttle, endpoint.throttleRate)
                endpoint.events = EndpointController.unique(field(body.types, endpoint.events.isEmpty ? nil : endpoint.events) ?? [])
                endpoint.channels = field(body.channels, endpoint.channels).map(EndpointController.unique)
                let metadata = endpoint.metadata
                if replace || body.metadata.newValue != nil {
                    endpoint.metadata = (body.metadata.newValue ?? [:]).mapValues(JSONValue.string)
                } else {
                    endpoint.metadata = metadata
                }
                let disabled = field(body.disabled, endpoint.status == .disabled) ?? false
                if disabled && endpoint.status != .disabled {
                    endpoint.status = .disabled
                    endpoint.disabledReason = "manual"
                } else if !disabled && endpoint.status == .disabled {
                    endpoint.status = .active
                }
            }
        }
    }

    @Sendable func delete(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.write, "endpoints")
        let endpoint = try await self.endpoint(context)
        try await self.store.deleteEndpoint(organizationID: context.organizationID, applicationID: context.applicationID, id: endpoint.id)
        return JSONResponse.noContent()
    }

    @Sendable func secret(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.read, "endpoints")
        let endpoint = try await self.endpoint(context)
        // An endpoint signing with Ed25519 (set through the native API or the portal) keeps its key: it answers the
        // public key its receiver verifies `v1a,` signatures with.
        if let publicKey = endpoint.publicKey { return try SvixJSON.response(.object(["key": .string(publicKey)])) }
        let key = try await self.store.endpointSecret(
            organizationID: context.organizationID, applicationID: context.applicationID, endpointID: endpoint.id)
        return try SvixJSON.response(.object(["key": .string(key)]))
    }

    struct RotateBody: Decodable, Sendable {
        var key: String?
    }

    /// A new key at once; the old one keeps signing beside it for 24 hours. Answers the new key (200), which SDK 2.9
    /// parses, where the Svix server answers an empty 204.
    @Sendable func rotateSecret(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.write, "endpoints")
        var request = request
        let body = try await request.decodeOptionalJSON(RotateBody.self).value
        if let key = body.key, !EndpointSecret.isValid(Self.prefixed(key)) { throw TernError.invalid("key", "secret length invalid") }
        let endpoint = try await self.endpoint(context)
        if body.key != nil, endpoint.signing == .ed25519 { throw TernError.invalid("key", "the endpoint signs with ed25519; Tern makes its keys") }
        let key = body.key.map(Self.prefixed) ?? EndpointSecret.generate(endpoint.signing)
        _ = try await self.store.rotateSecret(
            organizationID: context.organizationID, applicationID: context.applicationID, endpointID: endpoint.id, newSecret: key)
        return try SvixJSON.response(.object(["key": .string(EndpointSecret.publicKey(key) ?? key)]))
    }

    /// Headers whose values are credentials: listed by name only.
    static let sensitiveHeaders: Set<String> = [
        "authorization", "x-auth-token", "x-api-key", "www-authenticate", "proxy-authenticate", "proxy-authorization",
    ]

    @Sendable func headers(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.read, "endpoints")
        return try SvixJSON.response(Self.headersOutput(try await self.endpoint(context).headers))
    }

    /// `EndpointHeadersOut`: credentials are listed by name only.
    static func headersOutput(_ headers: [String: String]) -> JSONValue {
        let sensitive = headers.keys.filter { Self.sensitiveHeaders.contains($0.lowercased()) }.sorted()
        let shown = headers.filter { !Self.sensitiveHeaders.contains($0.key.lowercased()) }
        return .object(["headers": .object(shown.mapValues(JSONValue.string)), "sensitive": .array(sensitive.map(JSONValue.string))])
    }

    struct HeadersBody: Decodable, Sendable {
        var headers: [String: String?]
        var deleteHeaders: [String]?
    }

    @Sendable func setHeaders(_ request: Request, context: SvixContext) async throws -> Response {
        try await self.changeHeaders(request, context, replace: true)
    }

    @Sendable func patchHeaders(_ request: Request, context: SvixContext) async throws -> Response {
        try await self.changeHeaders(request, context, replace: false)
    }

    /// PUT replaces the headers; PATCH sets the ones named, and removes those set to null or listed in `deleteHeaders`.
    func changeHeaders(_ request: Request, _ context: SvixContext, replace: Bool) async throws -> Response {
        try context.require(.write, "endpoints")
        var request = request
        let body = try await request.decodeJSON(HeadersBody.self).value
        var validator = Validator()
        validator.headers(body.headers.compactMapValues { $0 })
        try validator.check()
        let endpoint = try await self.endpoint(context)
        _ = try await self.store.updateEndpoint(
            organizationID: context.organizationID, applicationID: context.applicationID, id: endpoint.id
        ) { endpoint in
            var headers = replace ? [:] : endpoint.headers
            for (name, value) in body.headers {
                let existing = headers.keys.first { $0.lowercased() == name.lowercased() }
                if let existing { headers[existing] = nil }
                if let value { headers[name] = value }
            }
            for name in body.deleteHeaders ?? [] {
                for key in headers.keys where key.lowercased() == name.lowercased() { headers[key] = nil }
            }
            endpoint.headers = headers
        }
        return JSONResponse.noContent()
    }

    struct RecoverBody: Decodable, Sendable {
        var since: String
        var until: String?
    }

    /// Sends again every message whose delivery to the endpoint failed in [since, until), at most 14 days back.
    @Sendable func recover(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.write, "endpoints")
        var request = request
        let body = try await request.decodeJSON(RecoverBody.self).value
        guard let since = SvixTime.parse(body.since) else { throw TernError.invalid("since", "must be an RFC 3339 date-time") }
        let until = try body.until.map { text in
            guard let time = SvixTime.parse(text) else { throw TernError.invalid("until", "must be an RFC 3339 date-time") }
            return time
        }
        if since < (until ?? .now()).adding(seconds: -(14 * 86_400 + 300)) {
            throw TernError.invalid("since", "Cannot recover more than 14 days of messages")
        }
        let endpoint = try await self.endpoint(context)
        let count = try await self.store.recoverEndpoint(
            organizationID: context.organizationID, applicationID: context.applicationID, endpointID: endpoint.id, since: since, until: until)
        let task = try await self.store.recordBackgroundTask(
            applicationID: context.applicationID, task: "endpoint.recover",
            data: ["endpointId": .string(endpoint.id), "messages": .number(Double(count))])
        return try SvixJSON.response(SvixBackgroundTaskController.output(task, withData: false), status: .accepted)
    }

    /// Counts of the endpoint's messages by status, created in [since, until) (default the last 28 days).
    @Sendable func stats(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.read, "deliveries")
        let query = SvixQuery(request)
        let now = Timestamp.now()
        let until = try query.time("until") ?? now
        let since = try query.time("since") ?? until.adding(seconds: -28 * 86_400)
        if until > now.adding(seconds: 60) || since < until.adding(seconds: -(28 * 86_400 + 300)) || until < since {
            throw SvixCodedError(status: .badRequest, code: "invalid_range", detail: "The range may not exceed 28 days or end in the future.")
        }
        let endpoint = try await self.endpoint(context)
        let counts = try await self.store.deliveryCounts(endpointID: endpoint.id, since: since, until: until)
        var totals = [0, 0, 0, 0]
        for (status, count) in counts { totals[SvixStatus.of(status)] += count }
        return try SvixJSON.response(
            .object([
                "success": .number(Double(totals[0])), "pending": .number(Double(totals[1])), "fail": .number(Double(totals[2])),
                "sending": .number(Double(totals[3])), "canceled": .number(0),
            ]))
    }
}
