import SQLKit
import TernCore

/// A new endpoint, already validated.
public struct EndpointInput: Sendable {
    public var tenantID: String
    public var url: String
    public var name: String?
    public var description: String?
    public var events: [String]
    public var headers: [String: String]
    public var timeoutSeconds: Int
    public var metadata: [String: JSONValue]
    public var status: EndpointStatus
    public var secret: String
    public var uid: String?
    public var channels: [String]?
    public var throttleRate: Int?
    public var filter: RoutingFilter?
    public var rateLimitBurst: Int?
    public var ordering: EndpointOrdering = .none
    public var orderingKey: String?
    public var auth: EndpointAuth?
    public var tls: EndpointTLS?

    public init(
        tenantID: String, url: String, name: String?, description: String?, events: [String], headers: [String: String],
        timeoutSeconds: Int, metadata: [String: JSONValue], status: EndpointStatus, secret: String, uid: String? = nil,
        channels: [String]? = nil, throttleRate: Int? = nil, filter: RoutingFilter? = nil
    ) {
        self.filter = filter
        self.uid = uid
        self.channels = channels
        self.throttleRate = throttleRate
        self.tenantID = tenantID
        self.url = url
        self.name = name
        self.description = description
        self.events = events
        self.headers = headers
        self.timeoutSeconds = timeoutSeconds
        self.metadata = metadata
        self.status = status
        self.secret = secret
    }
}

/// Filters of the endpoint list.
public struct EndpointFilter: Sendable {
    public var tenantID: String?
    public var status: EndpointStatus?

    public init(tenantID: String? = nil, status: EndpointStatus? = nil) {
        self.tenantID = tenantID
        self.status = status
    }
}

extension Store {
    /// Creates an endpoint within the plan's limit; the subscribed event types must be registered unless the
    /// application allows unregistered ones. Operational endpoints hear `endpoint.created` in the same transaction.
    public func createEndpoint(organizationID: String, applicationID: String, _ input: EndpointInput) async throws -> Endpoint {
        let sealedSecret = try self.secretBox.seal(input.secret)
        return try await self.database.writeQueuing { sql -> (Endpoint, queued: Bool) in
            let plan = try await self.lockedPlan(organizationID, sql)
            let application = try await Self.application(organizationID, applicationID, sql)
            try await Self.checkSubscriptions(application, input.events, sql)
            let used = try await Self.count(
                sql, "SELECT COUNT(*) AS n FROM endpoints WHERE organization_id = \(bind: organizationID) AND \(unsafeRaw: Self.customerEndpoints)")
            try checkPlanLimit("endpoints", used: used, limit: plan.maxEndpoints, plan: plan.id)
            var endpoint = Self.newEndpoint(applicationID: applicationID, input)
            try await Self.requireFreeUID(endpoint, sql)
            try await Self.insertEndpoint(endpoint, organizationID: organizationID, sealedSecret: sealedSecret, sql)
            if input.auth != nil || input.tls != nil {
                try await self.writeReceiver(&endpoint, ReceiverChange(auth: input.auth, tls: input.tls), sql)
            }
            try await Self.writeSubscriptions(endpoint, sql)
            if endpoint.filter != nil { try await self.writeFilterRoutes(endpoint, sql) }
            let queued = try await Self.emitOperational([Self.operationalEvent(.endpointCreated, endpoint, organizationID)], sql)
            return (endpoint, queued: queued)
        }
    }

    /// Only customer endpoints, not the hidden operational application's: what plan limits and counts see.
    static let customerEndpoints = "payload_format IS NULL"

    static func newEndpoint(applicationID: String, _ input: EndpointInput) -> Endpoint {
        let now = Timestamp.now()
        var endpoint = Endpoint(
            id: Identifier.make("ep"), applicationID: applicationID, tenantID: input.tenantID, name: input.name,
            description: input.description, url: input.url, events: input.events, headers: input.headers,
            timeoutSeconds: input.timeoutSeconds, metadata: input.metadata, status: input.status,
            disabledReason: input.status == .disabled ? "manual" : nil, pausedAt: input.status == .paused ? now : nil,
            disabledAt: input.status == .disabled ? now : nil, createdAt: now, updatedAt: now, uid: input.uid,
            channels: input.channels, throttleRate: input.throttleRate, filter: input.filter?.source, rateLimitBurst: input.rateLimitBurst
        )
        endpoint.ordering = input.ordering
        endpoint.orderingKey = input.orderingKey
        endpoint.publicKey = EndpointSecret.publicKey(input.secret)
        return endpoint
    }

    /// Writes an endpoint's row; an operational endpoint also names what it watches and its payload format.
    static func insertEndpoint(
        _ endpoint: Endpoint, organizationID: String, sealedSecret: String, operational: OperationalEndpoint? = nil, _ sql: any SQLDatabase
    ) async throws {
        try await sql.raw(
            """
            INSERT INTO endpoints (id, organization_id, application_id, tenant_id, name, description, url, events, headers,
            timeout_seconds, metadata, status, disabled_reason, paused_at, disabled_at, secret, uid, channels, throttle_rate,
            watched_application_id, payload_format, filter, rate_limit_burst, ordering, ordering_key, public_key, created_at, updated_at)
            VALUES (\(bind: endpoint.id), \(bind: organizationID), \(bind: endpoint.applicationID), \(bind: endpoint.tenantID),
            \(bind: endpoint.name), \(bind: endpoint.description), \(bind: endpoint.url), \(bind: JSONColumn.encode(endpoint.events)),
            \(bind: JSONColumn.encode(endpoint.headers)), \(bind: endpoint.timeoutSeconds), \(bind: JSONColumn.encode(endpoint.metadata)),
            \(bind: endpoint.status.rawValue), \(bind: endpoint.disabledReason), \(bind: endpoint.pausedAt?.microseconds),
            \(bind: endpoint.disabledAt?.microseconds), \(bind: sealedSecret), \(bind: endpoint.uid),
            \(bind: endpoint.channels.map(JSONColumn.encode)), \(bind: endpoint.throttleRate),
            \(bind: operational?.watchedApplicationID), \(bind: operational?.format.rawValue), \(bind: endpoint.filter.map(JSONColumn.encode)),
            \(bind: endpoint.rateLimitBurst), \(bind: endpoint.ordering == .fifo ? "fifo" : nil), \(bind: endpoint.orderingKey),
            \(bind: endpoint.publicKey), \(bind: endpoint.createdAt.microseconds),
            \(bind: endpoint.updatedAt.microseconds))
            """
        ).run()
    }

    public func listEndpoints(
        organizationID: String, applicationID: String, filter: EndpointFilter, _ page: PageRequest
    ) async throws -> Page<Endpoint> {
        try await self.database.read { sql in
            _ = try await Self.application(organizationID, applicationID, sql)
            var query = sql.select().column("*").from("endpoints").where("application_id", .equal, applicationID)
            if let tenantID = filter.tenantID { query = query.where("tenant_id", .equal, tenantID) }
            if let status = filter.status { query = query.where("status", .equal, status.rawValue) }
            let rows = try await Self.newestFirst(query, page)
            return try page.page(rows, key: { (try? $0.string("id")) ?? "" }, map: Self.endpoint)
        }
    }

    public func endpoint(organizationID: String, applicationID: String, id: String) async throws -> Endpoint {
        try await self.database.read { sql in try await Self.endpoint(organizationID, applicationID, id, sql) }
    }

    /// The endpoint whose id or uid is `id`.
    static func endpoint(_ organizationID: String, _ applicationID: String, _ id: String, _ sql: any SQLDatabase) async throws -> Endpoint {
        guard
            let row = try await sql.raw(
                """
                SELECT * FROM endpoints WHERE (id = \(bind: id) OR uid = \(bind: id)) AND application_id = \(bind: applicationID)
                AND organization_id = \(bind: organizationID)
                """
            ).first()
        else { throw TernError.notFound("No endpoint '\(id)'.") }
        return try Self.endpoint(row)
    }

    /// Applies `update` to the endpoint; status changes stamp `paused_at` / `disabled_at` and the reason. Operational
    /// endpoints hear `endpoint.updated`, `endpoint.disabled` or `endpoint.enabled` in the same transaction.
    public func updateEndpoint(
        organizationID: String, applicationID: String, id: String, receiver: ReceiverChange = ReceiverChange(),
        _ update: @escaping @Sendable (inout Endpoint) throws -> Void
    ) async throws -> Endpoint {
        try await self.database.writeQueuing { sql -> (Endpoint, queued: Bool) in
            let application = try await Self.application(organizationID, applicationID, sql)
            let before = try await Self.endpoint(organizationID, applicationID, id, sql)
            return try await self.changeEndpoint(before, organizationID: organizationID, application: application, receiver: receiver, update, sql)
        }
    }

    /// The one way an endpoint changes, customer or operational (`application` nil: no subscriptions to check, no
    /// operational events about it).
    func changeEndpoint(
        _ before: Endpoint, organizationID: String, application: Application?, receiver: ReceiverChange = ReceiverChange(),
        _ update: (inout Endpoint) throws -> Void, _ sql: any SQLDatabase
    ) async throws -> (Endpoint, queued: Bool) {
        var endpoint = before
        let id = before.id
        try update(&endpoint)
        try await self.writeReceiver(&endpoint, receiver, sql)
        if endpoint.uid != before.uid { try await Self.requireFreeUID(endpoint, sql) }
        if let application, endpoint.events != before.events {
            try await Self.checkSubscriptions(application, endpoint.events, sql)
        }
        let now = Timestamp.now()
        if endpoint.status != before.status {
            switch endpoint.status {
            case .active:
                endpoint.pausedAt = nil
                endpoint.disabledAt = nil
                endpoint.disabledReason = nil
            case .paused:
                endpoint.pausedAt = now
                endpoint.disabledAt = nil
                endpoint.disabledReason = nil
            case .disabled:
                endpoint.disabledAt = now
                endpoint.disabledReason = endpoint.disabledReason ?? "manual"
            }
        }
        endpoint.updatedAt = now
        let enabled = endpoint.status != .disabled && before.status == .disabled
        let failSince = try await sql.raw(
            """
            UPDATE endpoints SET name = \(bind: endpoint.name), description = \(bind: endpoint.description), url = \(bind: endpoint.url),
            events = \(bind: JSONColumn.encode(endpoint.events)), headers = \(bind: JSONColumn.encode(endpoint.headers)),
            timeout_seconds = \(bind: endpoint.timeoutSeconds), metadata = \(bind: JSONColumn.encode(endpoint.metadata)),
            status = \(bind: endpoint.status.rawValue), disabled_reason = \(bind: endpoint.disabledReason),
            paused_at = \(bind: endpoint.pausedAt?.microseconds), disabled_at = \(bind: endpoint.disabledAt?.microseconds),
            uid = \(bind: endpoint.uid), channels = \(bind: endpoint.channels.map(JSONColumn.encode)),
            throttle_rate = \(bind: endpoint.throttleRate), filter = \(bind: endpoint.filter.map(JSONColumn.encode)),
            rate_limit_burst = \(bind: endpoint.rateLimitBurst), ordering = \(bind: endpoint.ordering == .fifo ? "fifo" : nil),
            ordering_key = \(bind: endpoint.orderingKey),
            consecutive_failures = CASE WHEN \(bind: endpoint.status == .active && before.status != .active) THEN 0 ELSE consecutive_failures END,
            failing_since = CASE WHEN \(bind: enabled) THEN NULL ELSE failing_since END,
            updated_at = \(bind: now.microseconds) WHERE id = \(bind: id) RETURNING failing_since
            """
        ).first()?.optionalTimestamp("failing_since")
        if endpoint.events != before.events {
            try await sql.raw("DELETE FROM endpoint_event_types WHERE endpoint_id = \(bind: id)").run()
            try await Self.writeSubscriptions(endpoint, sql)
        }
        if endpoint.filter != before.filter { try await self.writeFilterRoutes(endpoint, sql) }
        if endpoint.status == .disabled && before.status != .disabled {
            try await Self.exhaustQueued(endpointID: id, reason: endpoint.disabledReason ?? CircuitBreaker.Reason.manual, sql)
        }
        var queued = false
        if application != nil {
            var events: [OperationalEvent] = []
            if Self.configurationChanged(before, endpoint) { events.append(Self.operationalEvent(.endpointUpdated, endpoint, organizationID)) }
            if endpoint.status == .disabled && before.status != .disabled {
                var event = Self.operationalEvent(.endpointDisabled, endpoint, organizationID)
                event.reason = endpoint.disabledReason
                event.failSince = failSince
                events.append(event)
            } else if enabled {
                events.append(Self.operationalEvent(.endpointEnabled, endpoint, organizationID))
            }
            queued = try await Self.emitOperational(events, sql)
        }
        // An endpoint made active again sends what waited while it was paused.
        return (endpoint, queued: queued || (endpoint.status == .active && before.status != .active))
    }

    /// True when more than the endpoint's disabled state changed (disabling and enabling are events of their own).
    static func configurationChanged(_ before: Endpoint, _ after: Endpoint) -> Bool {
        func settings(_ endpoint: Endpoint) -> Endpoint {
            var endpoint = endpoint
            endpoint.updatedAt = Timestamp(microseconds: 0)
            if endpoint.status == .disabled { endpoint.status = .active }
            endpoint.disabledAt = nil
            endpoint.disabledReason = nil
            return endpoint
        }
        return settings(before) != settings(after)
    }

    /// Deletes the endpoint; operational endpoints hear `endpoint.deleted` in the same transaction.
    public func deleteEndpoint(organizationID: String, applicationID: String, id: String) async throws {
        try await self.database.writeQueuing { sql -> ((), queued: Bool) in
            let endpoint = try await Self.endpoint(organizationID, applicationID, id, sql)
            try await sql.raw("DELETE FROM endpoints WHERE id = \(bind: endpoint.id)").run()
            return ((), queued: try await Self.emitOperational([Self.operationalEvent(.endpointDeleted, endpoint, organizationID)], sql))
        }
    }

    /// A uid names one endpoint of the application: another's is a conflict.
    static func requireFreeUID(_ endpoint: Endpoint, _ sql: any SQLDatabase) async throws {
        guard let uid = endpoint.uid else { return }
        if try await sql.raw(
            """
            SELECT id FROM endpoints WHERE application_id = \(bind: endpoint.applicationID) AND uid = \(bind: uid) AND id <> \(bind: endpoint.id)
            """
        ).first() != nil {
            throw TernError.conflict("An endpoint with the uid '\(uid)' already exists in this application.")
        }
    }

    static func checkSubscriptions(_ application: Application, _ events: [String], _ sql: any SQLDatabase) async throws {
        guard !application.allowUnregisteredEventTypes else { return }
        let unknown = try await Self.unknownEventTypes(application.id, events, sql)
        guard unknown.isEmpty else {
            throw TernError.validation(
                unknown.map { name in
                    FieldError("events[\(events.firstIndex(of: name) ?? 0)]", "'\(name)' is not a registered event type of this application")
                })
        }
    }

    static func writeSubscriptions(_ endpoint: Endpoint, _ sql: any SQLDatabase) async throws {
        for event in Set(endpoint.events) {
            try await sql.raw(
                """
                INSERT INTO endpoint_event_types (endpoint_id, application_id, tenant_id, event_type) VALUES (\(bind: endpoint.id),
                \(bind: endpoint.applicationID), \(bind: endpoint.tenantID), \(bind: event))
                """
            ).run()
        }
    }

    static func endpoint(_ row: any SQLRow) throws -> Endpoint {
        var endpoint = Endpoint(
            id: try row.string("id"), applicationID: try row.string("application_id"), tenantID: try row.string("tenant_id"),
            name: try row.optionalString("name"), description: try row.optionalString("description"), url: try row.string("url"),
            events: try JSONColumn.decode([String].self, try row.string("events")) ?? [],
            headers: try JSONColumn.decode([String: String].self, try row.string("headers")) ?? [:],
            timeoutSeconds: try row.int("timeout_seconds"),
            metadata: try JSONColumn.decode([String: JSONValue].self, try row.string("metadata")) ?? [:],
            status: EndpointStatus(rawValue: try row.string("status")) ?? .active, disabledReason: try row.optionalString("disabled_reason"),
            pausedAt: try row.optionalTimestamp("paused_at"), disabledAt: try row.optionalTimestamp("disabled_at"),
            createdAt: try row.timestamp("created_at"), updatedAt: try row.timestamp("updated_at"), uid: try row.optionalString("uid"),
            channels: try JSONColumn.decode([String].self, try row.optionalString("channels")),
            throttleRate: try row.optionalInt("throttle_rate"),
            filter: try JSONColumn.decode(JSONValue.self, (try? row.optionalString("filter")) ?? nil),
            rateLimitBurst: (try? row.optionalInt("rate_limit_burst")) ?? nil
        )
        endpoint.ordering = ((try? row.optionalString("ordering")) ?? nil).flatMap(EndpointOrdering.init(rawValue:)) ?? .none
        endpoint.orderingKey = (try? row.optionalString("ordering_key")) ?? nil
        try Self.receiverShown(row, into: &endpoint)
        return endpoint
    }
}
