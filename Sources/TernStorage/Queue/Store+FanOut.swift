import SQLKit
import TernCore

/// An endpoint a message may go to, with what fan-out still checks: its channels, its filter and its ordering.
struct FanOutEndpoint: Sendable {
    var id: String
    var channels: Set<String>?
    var filter: RoutingFilter?
    var fifo: Bool
    var orderingKey: String?
    /// This process's worker may be handed its deliveries straight from the publish (`DirectDelivery`): read so
    /// (`direct`), active, without a rate limit (whose schedule a claim keeps) and without ordering (a line's
    /// deliveries wait for the one before).
    var direct = false

    /// The columns to read, of the endpoint as `e`, its id as `id`; `direct`: with what decides `direct`.
    static func columns(direct: Bool, id: String = "e.id") -> String {
        id + ", e.channels, e.filter, e.ordering, e.ordering_key" + (direct ? ", e.status, e.throttle_rate" : "")
    }

    /// `id`: the column of the endpoint's id (a read joined to its application names it `endpoint_id`).
    init(_ row: any SQLRow, direct: Bool, id: String = "id") throws {
        self.id = try row.string(id)
        self.channels = try JSONColumn.decode([String].self, try row.optionalString("channels")).map(Set.init)
        self.filter = try JSONColumn.decode(JSONValue.self, try row.optionalString("filter")).flatMap { try? RoutingFilter($0) }
        self.fifo = try row.optionalString("ordering") == EndpointOrdering.fifo.rawValue
        self.orderingKey = try row.optionalString("ordering_key")
        self.direct =
            try direct && !self.fifo && row.string("status") == EndpointStatus.active.rawValue && row.optionalInt("throttle_rate") == nil
    }
}

/// Fan-out by index. Endpoints subscribed to the event type are found through `endpoint_event_types`; endpoints whose
/// filter has a route (`RoutingFilter.route`) are found by the message's keys on the application's routed paths, so a
/// publish reads the endpoints it can match, not every filtered endpoint of the tenant.
extension Store {
    /// The most paths one application routes on; a filter on another path is read for every message instead.
    static let maxFilterPaths = 32

    /// The tenant's endpoints without a route that take the event type (the same for every message of the type).
    /// `lock`: held (`Database.shareRowsClause`) until the transaction ends.
    static func unroutedEndpoints(
        _ database: Database, applicationID: String, tenantID: String, eventType: String, lock: Bool, direct: Bool, _ sql: any SQLDatabase
    ) async throws -> [FanOutEndpoint] {
        try await sql.raw(
            """
            SELECT \(unsafeRaw: FanOutEndpoint.columns(direct: direct)) FROM endpoints e WHERE \(Self.takesUnrouted(applicationID, tenantID, eventType))\(unsafeRaw: lock ? database.shareRowsClause : "")
            """
        ).all().map { try FanOutEndpoint($0, direct: direct) }
    }

    /// The publish's application (as `applicationRow` reads it, with its event type) and, on the same rows, the tenant's
    /// endpoints without a route that take the event type (`unroutedEndpoints`, unlocked), their id as `endpoint_id`:
    /// one row with a null `endpoint_id` when there are none. Throws not found without the application.
    static func applicationWithEndpoints(_ request: PublishRequest, direct: Bool, _ sql: any SQLDatabase) async throws -> [any SQLRow] {
        let (applicationID, tenantID, eventType) = (request.applicationID, request.input.tenantID, request.input.eventType)
        // The application's columns by name: an endpoint column of the same name would read as the application's.
        let columns = """
            a.id, a.organization_id, a.name, a.retry_schedule, a.failure_threshold, a.portal, a.allow_unregistered_event_types,
            a.created_at, a.updated_at, a.kind, a.filter_paths, a.webhook_headers, a.send_traceparent,
            """
        return try await Self.applicationRows(
            request.organizationID, applicationID, eventType: eventType,
            columns: columns + " " + FanOutEndpoint.columns(direct: direct, id: "e.id AS endpoint_id"),
            joining: "LEFT JOIN endpoints e ON \(Self.takesUnrouted(applicationID, tenantID, eventType))", sql)
    }

    /// Which of the tenant's endpoints (as `e`) without a route take the event type: not disabled, and subscribed to
    /// every type or to this one.
    private static func takesUnrouted(_ applicationID: String, _ tenantID: String, _ eventType: String) -> SQLQueryString {
        """
        e.application_id = \(bind: applicationID) AND e.tenant_id = \(bind: tenantID) AND e.filter_path IS NULL AND e.status <> 'disabled'
        AND (e.events = '[]' OR e.id IN (\(Self.subscribed(applicationID, tenantID, eventType))))
        """
    }

    /// The tenant's routed endpoints that take the event type and are routed on one of `keys`.
    static func routedEndpoints(
        _ database: Database, applicationID: String, tenantID: String, eventType: String, keys: [String], lock: Bool, direct: Bool,
        _ sql: any SQLDatabase
    ) async throws -> [FanOutEndpoint] {
        guard !keys.isEmpty else { return [] }
        return try await sql.raw(
            """
            SELECT \(unsafeRaw: FanOutEndpoint.columns(direct: direct)) FROM endpoint_filter_routes r JOIN endpoints e ON e.id = r.endpoint_id
            WHERE r.application_id = \(bind: applicationID) AND r.tenant_id = \(bind: tenantID) AND r.route IN (\(binds: keys))
            AND e.status <> 'disabled' AND (e.events = '[]' OR e.id IN (\(Self.subscribed(applicationID, tenantID, eventType))))\(unsafeRaw: lock ? database.shareRowsClause : "")
            """
        ).all().map { try FanOutEndpoint($0, direct: direct) }
    }

    /// The endpoints subscribed to the event type by name, as a subquery (its values bound by the caller's statement).
    private static func subscribed(_ applicationID: String, _ tenantID: String, _ eventType: String) -> SQLQueryString {
        """
        SELECT endpoint_id FROM endpoint_event_types WHERE application_id = \(bind: applicationID) AND tenant_id = \(bind: tenantID)
        AND event_type = \(bind: eventType)
        """
    }

    /// The application's routed paths, read from its row.
    static func filterPaths(_ applicationRow: any SQLRow) throws -> [String] {
        try JSONColumn.decode([String].self, try applicationRow.optionalString("filter_paths")) ?? []
    }

    /// Indexes the endpoint's filter (again): its path, its route keys, and the path among the application's.
    func writeFilterRoutes(_ endpoint: Endpoint, _ sql: any SQLDatabase) async throws {
        try await sql.raw("DELETE FROM endpoint_filter_routes WHERE endpoint_id = \(bind: endpoint.id)").run()
        var route = endpoint.filter.flatMap { try? RoutingFilter($0) }?.route
        if let path = route?.path, try await !Self.addFilterPath(path, applicationID: endpoint.applicationID, sql) { route = nil }
        try await sql.raw("UPDATE endpoints SET filter_path = \(bind: route?.path) WHERE id = \(bind: endpoint.id)").run()
        guard let route, !route.keys.isEmpty else { return }
        var insert = sql.insert(into: "endpoint_filter_routes").columns("endpoint_id", "application_id", "tenant_id", "route")
        for key in route.keys {
            insert = insert.values(SQLBind(endpoint.id), SQLBind(endpoint.applicationID), SQLBind(endpoint.tenantID), SQLBind(key))
        }
        try await insert.run()
    }

    /// Adds `path` to the application's routed paths; false when it has `maxFilterPaths` others already. The row is
    /// locked (a no-op update) only when the path is new, and read again under the lock, so concurrent writers add
    /// their paths one after the other.
    static func addFilterPath(_ path: String, applicationID: String, _ sql: any SQLDatabase) async throws -> Bool {
        func paths() async throws -> [String] {
            guard let row = try await sql.raw("SELECT filter_paths FROM applications WHERE id = \(bind: applicationID)").first() else { return [] }
            return try Self.filterPaths(row)
        }
        if try await paths().contains(path) { return true }
        try await sql.raw("UPDATE applications SET updated_at = updated_at WHERE id = \(bind: applicationID)").run()
        var current = try await paths()
        if current.contains(path) { return true }
        guard current.count < Self.maxFilterPaths else { return false }
        current.append(path)
        try await sql.raw("UPDATE applications SET filter_paths = \(bind: JSONColumn.encode(current)) WHERE id = \(bind: applicationID)").run()
        return true
    }
}
