import SQLKit
import TernCore

/// A new application's settings, already validated.
public struct ApplicationInput: Sendable {
    public var name: String
    public var retrySchedule: [Int]
    public var circuitBreaker: CircuitBreakerPolicy
    public var portal: PortalSettings
    public var allowUnregisteredEventTypes: Bool
    public var webhookHeaders: WebhookHeaderStyle
    public var sendTraceparent = false

    public init(
        name: String, retrySchedule: [Int], circuitBreaker: CircuitBreakerPolicy, portal: PortalSettings, allowUnregisteredEventTypes: Bool,
        webhookHeaders: WebhookHeaderStyle = .standard
    ) {
        self.webhookHeaders = webhookHeaders
        self.name = name
        self.retrySchedule = retrySchedule
        self.circuitBreaker = circuitBreaker
        self.portal = portal
        self.allowUnregisteredEventTypes = allowUnregisteredEventTypes
    }
}

extension Store {
    public func createApplication(organizationID: String, _ input: ApplicationInput) async throws -> Application {
        try await self.database.write { sql in
            let plan = try await self.lockedPlan(organizationID, sql)
            let used = try await Self.count(
                sql, "SELECT COUNT(*) AS n FROM applications WHERE organization_id = \(bind: organizationID) AND kind = 'standard'")
            try checkPlanLimit("applications", used: used, limit: plan.maxApplications, plan: plan.id)
            let now = Timestamp.now()
            var application = Application(
                id: Identifier.make("app"), organizationID: organizationID, name: input.name, retrySchedule: input.retrySchedule,
                circuitBreaker: input.circuitBreaker, portal: input.portal, allowUnregisteredEventTypes: input.allowUnregisteredEventTypes,
                webhookHeaders: input.webhookHeaders, createdAt: now, updatedAt: now
            )
            application.sendTraceparent = input.sendTraceparent
            try await sql.raw(
                """
                INSERT INTO applications (id, organization_id, name, retry_schedule, failure_threshold, portal,
                allow_unregistered_event_types, webhook_headers, send_traceparent, created_at, updated_at) VALUES (\(bind: application.id),
                \(bind: organizationID), \(bind: input.name), \(bind: JSONColumn.encode(input.retrySchedule)),
                \(bind: input.circuitBreaker.failureThreshold), \(bind: JSONColumn.encode(input.portal)), \(bind: input.allowUnregisteredEventTypes),
                \(bind: input.webhookHeaders.rawValue), \(bind: input.sendTraceparent),
                \(bind: now.microseconds),
                \(bind: now.microseconds))
                """
            ).run()
            return application
        }
    }

    /// Lists the organization's applications; a key restricted to one application sees only that one.
    public func listApplications(organizationID: String, only applicationID: String?, _ page: PageRequest) async throws -> Page<Application> {
        try await self.database.read { sql in
            var query = sql.select().column("*").from("applications").where("organization_id", .equal, organizationID)
                .where("kind", .equal, "standard")
            if let applicationID { query = query.where("id", .equal, applicationID) }
            let rows = try await Self.newestFirst(query, page)
            return try page.page(rows, key: { (try? $0.string("id")) ?? "" }, map: Self.application)
        }
    }

    public func application(organizationID: String, id: String) async throws -> Application {
        try await self.database.read { sql in try await Self.application(organizationID, id, sql) }
    }

    /// One of the organization's applications; its hidden operational application is none of them.
    static func application(_ organizationID: String, _ id: String, _ sql: any SQLDatabase) async throws -> Application {
        try Self.application(try await Self.applicationRow(organizationID, id, sql))
    }

    /// The customer application's row, or not found.
    /// The application's row; with `eventType`, also that type's row as `event_type_name` (NULL when it is not
    /// registered) and `event_type_archived`: a publish's two reads in one.
    static func applicationRow(
        _ organizationID: String, _ id: String, eventType: String? = nil, _ sql: any SQLDatabase
    ) async throws -> any SQLRow {
        try await Self.applicationRows(organizationID, id, eventType: eventType, sql)[0]
    }

    /// `applicationRow`'s read with `columns` of the application (`a`) and of what `joining` joins to it, one row per
    /// row joined (at least one: the join is an outer one). Not found without the application. Kept prepared
    /// (`Prepared`) when `columns` names its columns (`a.*` would change with a migration).
    static func applicationRows(
        _ organizationID: String, _ id: String, eventType: String?, columns: String = "a.*", joining: SQLQueryString = "",
        _ sql: any SQLDatabase
    ) async throws -> [any SQLRow] {
        let statement: SQLQueryString = """
            SELECT \(unsafeRaw: columns), t.name AS event_type_name, t.archived AS event_type_archived FROM applications a
            LEFT JOIN event_types t ON t.application_id = a.id AND t.name = \(bind: eventType) \(joining)
            WHERE a.id = \(bind: id) AND a.organization_id = \(bind: organizationID) AND a.kind = 'standard'
            """
        let rows = columns == "a.*" ? try await sql.raw(statement).all() : try await sql.all(prepared: statement)
        guard !rows.isEmpty else { throw TernError.notFound("No application '\(id)'.") }
        return rows
    }

    /// Replaces the application's settings with `update(current)`.
    public func updateApplication(
        organizationID: String, id: String, _ update: @escaping @Sendable (inout Application) throws -> Void
    ) async throws -> Application {
        try await self.database.write { sql in
            var application = try await Self.application(organizationID, id, sql)
            try update(&application)
            application.updatedAt = .now()
            try await sql.raw(
                """
                UPDATE applications SET name = \(bind: application.name), retry_schedule = \(bind: JSONColumn.encode(application.retrySchedule)),
                failure_threshold = \(bind: application.circuitBreaker.failureThreshold), portal = \(bind: JSONColumn.encode(application.portal)),
                allow_unregistered_event_types = \(bind: application.allowUnregisteredEventTypes),
                webhook_headers = \(bind: application.webhookHeaders.rawValue), send_traceparent = \(bind: application.sendTraceparent),
                updated_at = \(bind: application.updatedAt.microseconds) WHERE id = \(bind: id) AND organization_id = \(bind: organizationID)
                """
            ).run()
            return application
        }
    }

    /// Deletes the application with its event types and endpoints.
    public func deleteApplication(organizationID: String, id: String) async throws {
        try await self.database.write { sql in
            _ = try await Self.application(organizationID, id, sql)
            try await sql.raw("DELETE FROM applications WHERE id = \(bind: id) AND organization_id = \(bind: organizationID)").run()
        }
    }

    static func application(_ row: any SQLRow) throws -> Application {
        var application = Application(
            id: try row.string("id"), organizationID: try row.string("organization_id"), name: try row.string("name"),
            retrySchedule: try JSONColumn.decode([Int].self, try row.string("retry_schedule")) ?? RetrySchedule.standard,
            circuitBreaker: CircuitBreakerPolicy(failureThreshold: try row.int("failure_threshold")),
            portal: try JSONColumn.decode(PortalSettings.self, try row.string("portal")) ?? PortalSettings(),
            allowUnregisteredEventTypes: try row.bool("allow_unregistered_event_types"),
            webhookHeaders: WebhookHeaderStyle(rawValue: try row.string("webhook_headers")) ?? .standard, createdAt: try row.timestamp("created_at"),
            updatedAt: try row.timestamp("updated_at")
        )
        application.sendTraceparent = (try? row.bool("send_traceparent")) ?? false
        return application
    }
}
