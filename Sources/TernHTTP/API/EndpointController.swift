import HTTPTypes
import Hummingbird
import TernCore
import TernDelivery
import TernStorage

/// Tenants' endpoints of an application.
struct EndpointController {
    let store: Store
    let allowPrivateEndpoints: Bool

    func addRoutes(to group: RouterGroup<ApplicationContext>) {
        group.post("endpoints", use: self.create)
        group.get("endpoints", use: self.list)
        group.get("endpoints/:endpoint_id", use: self.get)
        group.patch("endpoints/:endpoint_id", use: self.update)
        group.delete("endpoints/:endpoint_id", use: self.delete)
        group.post("endpoints/:endpoint_id/rotate-secret", use: self.rotateSecret)
        group.post("endpoints/:endpoint_id/test", use: self.test)
        group.post("endpoints/:endpoint_id/recover", use: self.recover)
        group.get("endpoints/:endpoint_id/stats", use: self.stats)
        group.post("endpoints/:endpoint_id/filter-test", use: self.testEndpointFilter)
        group.post("filter-test", use: self.testFilter)
    }

    struct FilterTestBody: Decodable, Sendable {
        var filter: JSONValue?
        var payload: JSONValue?
        var event_type: String?
        var tenant_id: String?
        var channels: [String]?
    }

    struct FilterTestResult: Encodable {
        var matches: Bool
        var reason: String
    }

    /// Runs `filter` over a message made of the body's payload (and event type, tenant and channels).
    func filterTest(_ filter: RoutingFilter?, _ body: FilterTestBody, tenantID: String) throws -> Response {
        guard case .object? = body.payload else { throw TernError.invalid("payload", "is required: a JSON object") }
        let document = RoutingFilter.document(
            eventType: body.event_type ?? "", tenantID: body.tenant_id ?? tenantID, channels: body.channels, payload: body.payload!)
        let result = filter?.evaluate(document) ?? (matches: true, reason: "the endpoint has no filter: every message matches")
        return try JSONResponse.make(FilterTestResult(matches: result.matches, reason: result.reason))
    }

    /// `POST …/filter-test {filter, payload, event_type?, tenant_id?, channels?}`: does this filter match this message?
    @Sendable func testFilter(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.read, "endpoints")
        _ = try await self.store.application(organizationID: context.organizationID, id: context.applicationID)
        var request = request
        let body = try await request.decodeJSON(FilterTestBody.self).value
        guard let value = body.filter else { throw TernError.invalid("filter", "is required: a filter object") }
        return try self.filterTest(try Self.routingFilter(value), body, tenantID: "")
    }

    /// `POST …/endpoints/{id}/filter-test {payload, event_type?, channels?}`: would the endpoint take this message?
    @Sendable func testEndpointFilter(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.read, "endpoints")
        let id = try context.parameters.require("endpoint_id")
        var request = request
        let body = try await request.decodeJSON(FilterTestBody.self).value
        let endpoint = try await self.store.endpoint(organizationID: context.organizationID, applicationID: context.applicationID, id: id)
        return try self.filterTest(try endpoint.filter.map { try Self.routingFilter($0) }, body, tenantID: endpoint.tenantID)
    }

    /// A filter of at most 4 KB, checked (422 naming the path and the operator).
    static func routingFilter(_ value: JSONValue) throws -> RoutingFilter {
        if JSONColumnSize.of(value) > RoutingFilter.maxBytes { throw TernError.invalid("filter", "must be at most 4 KB as JSON") }
        return try RoutingFilter(value)
    }

    /// The longest stats window.
    static let maxStatsSeconds: Int64 = 31 * 86_400

    /// The endpoint's health over `since`…`until` (default the last 24 hours, at most 31 days).
    @Sendable func stats(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.read, "endpoints")
        let id = try context.parameters.require("endpoint_id")
        let query = request.uri.queryParameters
        let until = try TimeParameter.parse(query.get("until"), "until") ?? .now()
        let since = try TimeParameter.parse(query.get("since"), "since") ?? until.adding(seconds: -86_400)
        var validator = Validator()
        if until.microseconds <= since.microseconds { validator.fail("until", "must be after since") }
        if until.microseconds - since.microseconds > Self.maxStatsSeconds * 1_000_000 { validator.fail("since", "at most 31 days before until") }
        try validator.check()
        return try JSONResponse.make(
            try await self.store.endpointHealth(
                organizationID: context.organizationID, applicationID: context.applicationID, endpointID: id, since: since, until: until))
    }

    struct EndpointBody: Decodable, Sendable {
        var tenant_id: String?
        var url: String?
        var name: String?
        var description: String?
        var events: [String]?
        var headers: [String: String]?
        var timeout_seconds: Int?
        var metadata: [String: JSONValue]?
        var status: EndpointStatus?
        var secret: String?
        var uid: String?
        var channels: [String]?
        var filter: JSONValue?
        var rate_limit: RateLimitBody?
        var ordering: EndpointOrdering?
        var ordering_key: String?
        var auth: JSONValue?
        var tls: TLSBody?
        var signing: EndpointSigning?
    }

    /// `tls`: PEM text of a client certificate and its key (mutual TLS), and of the CAs the receiver's certificate
    /// is signed by (private CAs; the system's otherwise).
    struct TLSBody: Decodable, Sendable {
        var client_certificate_pem: String?
        var client_key_pem: String?
        var ca_bundle_pem: String?

        var material: EndpointTLS {
            EndpointTLS(clientCertificatePEM: self.client_certificate_pem, clientKeyPEM: self.client_key_pem, caBundlePEM: self.ca_bundle_pem)
        }
    }

    /// The receiver authentication of a request body, checked (token URLs as endpoint URLs).
    func receiverAuth(_ value: JSONValue) throws(TernError) -> EndpointAuth {
        let allowPrivate = self.allowPrivateEndpoints
        return try EndpointAuth.parse(value) { Rules.endpointURLProblem($0, allowPrivate: allowPrivate) }
    }

    /// `rate_limit`: at most `per_second` deliveries a second across every worker, bursts of `burst` (default the rate).
    struct RateLimitBody: Decodable, Sendable {
        var per_second: Int?
        var burst: Int?
    }

    func validate(_ body: JSONBody<EndpointBody>, creating: Bool) throws {
        let value = body.value
        var validator = Validator()
        if creating {
            validator.tenantID(value.tenant_id)
        } else if body.has("tenant_id") {
            validator.fail("tenant_id", "cannot be changed; create an endpoint for the other tenant")
        }
        if creating || body.has("url") { validator.url(value.url, allowPrivate: self.allowPrivateEndpoints) }
        if value.name != nil { validator.name(value.name, required: false) }
        validator.text(value.description, "description", max: 4096)
        for (index, event) in (value.events ?? []).enumerated() where !Rules.isEventTypeName(event) {
            validator.fail("events[\(index)]", "must be an event type name of letters, digits, '_', '.' and '-'")
        }
        if (value.events ?? []).count > 500 { validator.fail("events", "at most 500 event types") }
        validator.headers(value.headers)
        validator.timeout(value.timeout_seconds)
        if let metadata = value.metadata, JSONColumnSize.of(metadata) > 16_384 {
            validator.fail("metadata", "must be at most 16 KB")
        }
        if let secret = value.secret, !EndpointSecret.isValid(secret) {
            validator.fail("secret", "must be 'whsec_' followed by base64 of 24 to 64 bytes")
        }
        if let uid = value.uid, let problem = SvixRules.uidProblem(uid, prefix: "ep_") { validator.fail("uid", problem) }
        if let key = value.ordering_key {
            if !key.hasPrefix("/") || key.count > 256 {
                validator.fail("ordering_key", "must be a JSON pointer into the payload, such as /customer_id")
            }
            if value.ordering == EndpointOrdering.none { validator.fail("ordering_key", "needs ordering 'fifo'") }
            if creating && value.ordering != .fifo { validator.fail("ordering_key", "needs ordering 'fifo'") }
        }
        if let limit = value.rate_limit {
            let range = 1...EndpointRateLimit.maxPerSecond
            if let rate = limit.per_second {
                if !range.contains(rate) { validator.fail("rate_limit.per_second", "must be 1 to \(EndpointRateLimit.maxPerSecond)") }
            } else {
                validator.fail("rate_limit.per_second", "is required: deliveries a second")
            }
            if let burst = limit.burst, !range.contains(burst) {
                validator.fail("rate_limit.burst", "must be 1 to \(EndpointRateLimit.maxPerSecond)")
            }
        }
        if let filter = value.filter {
            do {
                _ = try Self.routingFilter(filter)
            } catch TernError.validation(let errors) {
                for error in errors { validator.fail(error.field, error.message) }
            }
        }
        if let auth = value.auth {
            do {
                _ = try self.receiverAuth(auth)
            } catch TernError.validation(let errors) {
                for error in errors { validator.fail(error.field, error.message) }
            } catch {}
        }
        if let tls = value.tls { for error in ReceiverTLS.problems(tls.material) { validator.fail(error.field, error.message) } }
        if let secret = value.secret, let signing = value.signing, EndpointSigning(secret: secret) != signing {
            validator.fail("secret", signing == .ed25519 ? "must be a 'whsk_' key for ed25519 signing" : "must be a 'whsec_' secret for hmac signing")
        }
        if let channels = value.channels {
            if channels.count > Endpoint.maxChannels { validator.fail("channels", "at most \(Endpoint.maxChannels) channels") }
            for (index, channel) in channels.enumerated() where !SvixRules.isChannel(channel) {
                validator.fail("channels[\(index)]", "must be 1 to 128 of letters, digits, '.', '_', ':', '+' and '-'")
            }
        }
        try validator.check()
    }

    @Sendable func create(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.write, "endpoints")
        let applicationID = context.applicationID
        var request = request
        let body = try await request.decodeJSON(EndpointBody.self)
        try self.validate(body, creating: true)
        let value = body.value
        let signing = value.signing ?? value.secret.map { EndpointSigning(secret: $0) } ?? .hmac
        let secret = value.secret ?? EndpointSecret.generate(signing)
        var input = EndpointInput(
            tenantID: value.tenant_id!, url: value.url!, name: value.name, description: value.description,
            events: Self.unique(value.events ?? []), headers: value.headers ?? [:],
            timeoutSeconds: value.timeout_seconds ?? Endpoint.defaultTimeoutSeconds, metadata: value.metadata ?? [:],
            status: value.status ?? .active, secret: secret, uid: value.uid,
            channels: value.channels.flatMap { $0.isEmpty ? nil : Self.unique($0) },
            filter: try value.filter.map(Self.routingFilter)
        )
        input.ordering = value.ordering ?? .none
        input.orderingKey = value.ordering_key
        input.throttleRate = value.rate_limit?.per_second
        input.rateLimitBurst = value.rate_limit?.burst
        input.auth = try value.auth.map(self.receiverAuth)
        input.tls = value.tls.map(\.material)
        let endpoint = try await self.store.createEndpoint(organizationID: context.organizationID, applicationID: applicationID, input)
        // An Ed25519 signing key stays with Tern: receivers verify with the public key the endpoint shows.
        guard signing == .hmac else { return try JSONResponse.created(endpoint, id: endpoint.id) }
        return try JSONResponse.created(ShownOnce(item: endpoint, secret: secret), id: endpoint.id)
    }

    @Sendable func list(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.read, "endpoints")
        let applicationID = context.applicationID
        let query = request.uri.queryParameters
        let page = try request.pageRequest()
        var filter = EndpointFilter(tenantID: query.get("tenant_id"))
        filter.status = try EndpointStatus.query(query.get("status"), "status")
        let endpoints = try await self.store.listEndpoints(
            organizationID: context.organizationID, applicationID: applicationID, filter: filter, page
        )
        return try JSONResponse.make(endpoints)
    }

    @Sendable func get(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.read, "endpoints")
        let applicationID = context.applicationID
        let id = try context.parameters.require("endpoint_id")
        return try JSONResponse.make(try await self.store.endpoint(organizationID: context.organizationID, applicationID: applicationID, id: id))
    }

    @Sendable func update(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.write, "endpoints")
        let applicationID = context.applicationID
        let id = try context.parameters.require("endpoint_id")
        var request = request
        let body = try await request.decodeJSON(EndpointBody.self)
        try self.validate(body, creating: false)
        if body.value.secret != nil { throw TernError.invalid("secret", "use rotate-secret to change the secret") }
        let value = body.value
        let clearName = body.isNull("name")
        let clearDescription = body.isNull("description")
        let clearUID = body.isNull("uid")
        let clearChannels = body.isNull("channels")
        let clearFilter = body.isNull("filter")
        let clearRate = body.isNull("rate_limit")
        let clearOrdering = body.isNull("ordering")
        let clearKey = body.isNull("ordering_key")
        var receiver = ReceiverChange(signing: value.signing)
        if let auth = value.auth { receiver.auth = .some(try self.receiverAuth(auth)) } else if body.isNull("auth") { receiver.auth = .some(nil) }
        if let tls = value.tls { receiver.tls = .some(tls.material) } else if body.isNull("tls") { receiver.tls = .some(nil) }
        let endpoint = try await self.store.updateEndpoint(
            organizationID: context.organizationID, applicationID: applicationID, id: id, receiver: receiver
        ) { endpoint in
            if let url = value.url { endpoint.url = url }
            if let name = value.name { endpoint.name = name } else if clearName { endpoint.name = nil }
            if let description = value.description { endpoint.description = description } else if clearDescription { endpoint.description = nil }
            if let events = value.events { endpoint.events = Self.unique(events) }
            if let headers = value.headers { endpoint.headers = headers }
            if let timeout = value.timeout_seconds { endpoint.timeoutSeconds = timeout }
            if let metadata = value.metadata { endpoint.metadata = metadata }
            if let uid = value.uid { endpoint.uid = uid } else if clearUID { endpoint.uid = nil }
            if let channels = value.channels {
                endpoint.channels = channels.isEmpty ? nil : Self.unique(channels)
            } else if clearChannels {
                endpoint.channels = nil
            }
            if let filter = value.filter { endpoint.filter = filter } else if clearFilter { endpoint.filter = nil }
            if let ordering = value.ordering { endpoint.ordering = ordering } else if clearOrdering { endpoint.ordering = .none }
            if let key = value.ordering_key {
                endpoint.orderingKey = key
            } else if clearKey || endpoint.ordering == .none {
                endpoint.orderingKey = nil
            }
            if let limit = value.rate_limit {
                endpoint.throttleRate = limit.per_second
                endpoint.rateLimitBurst = limit.burst
            } else if clearRate {
                endpoint.throttleRate = nil
                endpoint.rateLimitBurst = nil
            }
            if let status = value.status, status != endpoint.status {
                endpoint.status = status
                if status == .disabled { endpoint.disabledReason = "manual" }
            }
        }
        return try JSONResponse.make(endpoint)
    }

    @Sendable func delete(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.write, "endpoints")
        let applicationID = context.applicationID
        let id = try context.parameters.require("endpoint_id")
        try await self.store.deleteEndpoint(organizationID: context.organizationID, applicationID: applicationID, id: id)
        return JSONResponse.noContent()
    }

    struct RotateBody: Decodable, Sendable { var secret: String? }

    struct Rotated: Encodable {
        /// The new `whsec_` secret; none for Ed25519, whose key stays with Tern.
        var secret: String?
        var public_key: String?
        var previous_secret_expires_at: Timestamp

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encodeOrNull(self.secret, forKey: .secret)
            try container.encodeOrNull(self.public_key, forKey: .public_key)
            try container.encode(self.previous_secret_expires_at, forKey: .previous_secret_expires_at)
        }

        enum CodingKeys: String, CodingKey { case secret, public_key, previous_secret_expires_at }
    }

    /// A new secret at once; the old one keeps signing beside it for 24 hours.
    @Sendable func rotateSecret(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.write, "endpoints")
        let applicationID = context.applicationID
        let id = try context.parameters.require("endpoint_id")
        var request = request
        let body = try await request.decodeOptionalJSON(RotateBody.self).value
        let current = try await self.store.endpoint(organizationID: context.organizationID, applicationID: applicationID, id: id)
        if let secret = body.secret, !EndpointSecret.isValid(secret) || EndpointSigning(secret: secret) != current.signing {
            throw TernError.invalid(
                "secret",
                current.signing == .ed25519
                    ? "must be a 'whsk_' Ed25519 key, as the endpoint signs with ed25519" : "must be 'whsec_' followed by base64 of 24 to 64 bytes")
        }
        let secret = body.secret ?? EndpointSecret.generate(current.signing)
        let expires = try await self.store.rotateSecret(
            organizationID: context.organizationID, applicationID: applicationID, endpointID: current.id, newSecret: secret
        )
        let publicKey = EndpointSecret.publicKey(secret)
        return try JSONResponse.make(Rotated(secret: publicKey == nil ? secret : nil, public_key: publicKey, previous_secret_expires_at: expires))
    }

    struct TestBody: Decodable, Sendable { var event_type: String? }

    struct TestSent: Encodable { var message_id: String }

    /// The event type of test events when none is named.
    static let testEventType = "tern.test"

    @Sendable func test(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.write, "endpoints")
        let applicationID = context.applicationID
        let id = try context.parameters.require("endpoint_id")
        var request = request
        let body = try await request.decodeOptionalJSON(TestBody.self).value
        if body.event_type != nil {
            var validator = Validator()
            validator.eventTypeName(body.event_type, "event_type")
            try validator.check()
        }
        let message = try await self.store.sendTestMessage(
            organizationID: context.organizationID, applicationID: applicationID, endpointID: id,
            eventType: body.event_type ?? Self.testEventType
        )
        return try JSONResponse.make(TestSent(message_id: message.id), status: .accepted)
    }

    struct RecoverBody: Decodable, Sendable {
        var since: String?
        var until: String?
    }

    struct Count: Encodable { var count: Int }

    /// Re-queues the endpoint's failed and exhausted deliveries created in the window.
    @Sendable func recover(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.write, "endpoints")
        let applicationID = context.applicationID
        let id = try context.parameters.require("endpoint_id")
        var request = request
        let body = try await request.decodeJSON(RecoverBody.self).value
        guard let since = try TimeParameter.parse(body.since, "since") else {
            throw TernError.invalid("since", "is required: an RFC 3339 time")
        }
        let until = try TimeParameter.parse(body.until, "until")
        // An empty window (until at or before since) recovers nothing.
        let count = try await self.store.recoverEndpoint(
            organizationID: context.organizationID, applicationID: applicationID, endpointID: id, since: since, until: until
        )
        return try JSONResponse.make(Count(count: count), status: .accepted)
    }

    /// Drops repeated names, keeping the first of each.
    static func unique(_ names: [String]) -> [String] {
        var seen = Set<String>()
        return names.filter { seen.insert($0).inserted }
    }
}

/// The encoded size of a JSON value.
enum JSONColumnSize {
    static func of<T: Encodable>(_ value: T) -> Int {
        (try? JSONResponse.encoder.encode(value).count) ?? 0
    }
}
