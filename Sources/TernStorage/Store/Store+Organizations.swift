import SQLKit
import TernCore

/// Changes to a plan's limits; an absent field stays as it is, `.some(nil)` makes it unlimited.
public struct PlanChange: Sendable {
    public var name: String?
    public var maxApplications: Int??
    public var maxEndpoints: Int??
    public var maxMessagesPerMonth: Int??
    public var rateLimitPerMinute: Int??
    public var rateLimitBurst: Int??
    public var maxPayloadBytes: Int??
    public var payloadRetentionDays: Int??

    public init(
        name: String? = nil, maxApplications: Int?? = nil, maxEndpoints: Int?? = nil, maxMessagesPerMonth: Int?? = nil,
        rateLimitPerMinute: Int?? = nil, rateLimitBurst: Int?? = nil, maxPayloadBytes: Int?? = nil, payloadRetentionDays: Int?? = nil
    ) {
        self.name = name
        self.maxApplications = maxApplications
        self.maxEndpoints = maxEndpoints
        self.maxMessagesPerMonth = maxMessagesPerMonth
        self.rateLimitPerMinute = rateLimitPerMinute
        self.rateLimitBurst = rateLimitBurst
        self.maxPayloadBytes = maxPayloadBytes
        self.payloadRetentionDays = payloadRetentionDays
    }

    func applied(to plan: Plan) -> Plan {
        var plan = plan
        if let name { plan.name = name }
        if let maxApplications { plan.maxApplications = maxApplications }
        if let maxEndpoints { plan.maxEndpoints = maxEndpoints }
        if let maxMessagesPerMonth { plan.maxMessagesPerMonth = maxMessagesPerMonth }
        if let rateLimitPerMinute { plan.rateLimitPerMinute = rateLimitPerMinute }
        if let rateLimitBurst { plan.rateLimitBurst = rateLimitBurst }
        if let maxPayloadBytes { plan.maxPayloadBytes = maxPayloadBytes }
        if let payloadRetentionDays { plan.payloadRetentionDays = payloadRetentionDays }
        return plan
    }
}

/// Changes to an organization.
public struct OrganizationChange: Sendable {
    public var name: String?
    public var plan: String?
    public var status: OrganizationStatus?

    public init(name: String? = nil, plan: String? = nil, status: OrganizationStatus? = nil) {
        self.name = name
        self.plan = plan
        self.status = status
    }
}

extension Store {
    // MARK: Plans

    public func listPlans() async throws -> [Plan] {
        try await self.database.read { sql in
            try await sql.raw("SELECT * FROM plans ORDER BY COALESCE(max_endpoints, 9223372036854775807), id").all().map(Self.plan)
        }
    }

    static func plan(_ id: String, _ sql: any SQLDatabase) async throws -> Plan {
        guard let row = try await sql.raw("SELECT * FROM plans WHERE id = \(bind: id)").first() else {
            throw TernError.notFound("No plan '\(id)'.")
        }
        return try Self.plan(row)
    }

    /// Changes a plan's limits, or creates a custom plan under a new id. Returns whether it was created.
    public func putPlan(_ id: String, _ change: PlanChange) async throws -> (plan: Plan, created: Bool) {
        defer { self.plans.clear() }
        return try await self.database.write { sql in
            let now = Timestamp.now().microseconds
            if let row = try await sql.raw("SELECT * FROM plans WHERE id = \(bind: id)").first() {
                let plan = change.applied(to: try Self.plan(row))
                try await sql.raw(
                    """
                    UPDATE plans SET name = \(bind: plan.name), max_applications = \(bind: plan.maxApplications),
                    max_endpoints = \(bind: plan.maxEndpoints), max_messages_per_month = \(bind: plan.maxMessagesPerMonth),
                    rate_limit_per_minute = \(bind: plan.rateLimitPerMinute), rate_limit_burst = \(bind: plan.rateLimitBurst),
                    max_payload_bytes = \(bind: plan.maxPayloadBytes), payload_retention_days = \(bind: plan.payloadRetentionDays),
                    updated_at = \(bind: now) WHERE id = \(bind: id)
                    """
                ).run()
                return (plan, false)
            }
            let plan = change.applied(
                to: Plan(
                    id: id, name: id, maxApplications: nil, maxEndpoints: nil, maxMessagesPerMonth: nil,
                    rateLimitPerMinute: 100, rateLimitBurst: 200, maxPayloadBytes: 262_144
                ))
            try await sql.raw(
                """
                INSERT INTO plans (id, name, max_applications, max_endpoints, max_messages_per_month, rate_limit_per_minute,
                rate_limit_burst, max_payload_bytes, payload_retention_days, created_at, updated_at) VALUES (\(bind: id), \(bind: plan.name),
                \(bind: plan.maxApplications), \(bind: plan.maxEndpoints), \(bind: plan.maxMessagesPerMonth),
                \(bind: plan.rateLimitPerMinute), \(bind: plan.rateLimitBurst), \(bind: plan.maxPayloadBytes),
                \(bind: plan.payloadRetentionDays), \(bind: now), \(bind: now))
                """
            ).run()
            return (plan, true)
        }
    }

    static func plan(_ row: any SQLRow) throws -> Plan {
        var plan = Plan(
            id: try row.string("id"), name: try row.string("name"), maxApplications: try row.optionalInt("max_applications"),
            maxEndpoints: try row.optionalInt("max_endpoints"), maxMessagesPerMonth: try row.optionalInt("max_messages_per_month"),
            rateLimitPerMinute: try row.optionalInt("rate_limit_per_minute"), rateLimitBurst: try row.optionalInt("rate_limit_burst"),
            maxPayloadBytes: try row.optionalInt("max_payload_bytes")
        )
        plan.payloadRetentionDays = (try? row.optionalInt("payload_retention_days")) ?? nil
        return plan
    }

    // MARK: Organizations

    public func createOrganization(name: String, plan: String) async throws -> Organization {
        try await self.database.write { sql in
            guard try await sql.raw("SELECT id FROM plans WHERE id = \(bind: plan)").first() != nil else {
                throw TernError.invalid("plan", "no plan '\(plan)' exists")
            }
            let now = Timestamp.now()
            let organization = Organization(
                id: Identifier.make("org"), name: name, plan: plan, status: .active, createdAt: now, updatedAt: now
            )
            try await sql.raw(
                """
                INSERT INTO organizations (id, name, plan_id, status, created_at, updated_at) VALUES (\(bind: organization.id),
                \(bind: name), \(bind: plan), \(bind: organization.status.rawValue), \(bind: now.microseconds), \(bind: now.microseconds))
                """
            ).run()
            return organization
        }
    }

    public func listOrganizations(_ page: PageRequest) async throws -> Page<Organization> {
        try await self.database.read { sql in
            let query = sql.select().column("*").from("organizations")
            let rows = try await Self.newestFirst(query, page)
            return try page.page(rows, key: { (try? $0.string("id")) ?? "" }, map: Self.organization)
        }
    }

    public func organization(_ id: String) async throws -> Organization {
        try await self.database.read { sql in try await Self.organization(id, sql) }
    }

    static func organization(_ id: String, _ sql: any SQLDatabase, lock: String = "") async throws -> Organization {
        guard let row = try await sql.raw("SELECT * FROM organizations WHERE id = \(bind: id)\(unsafeRaw: lock)").first() else {
            throw TernError.notFound("No organization '\(id)'.")
        }
        return try Self.organization(row)
    }

    public func updateOrganization(_ id: String, _ change: OrganizationChange) async throws -> Organization {
        defer { self.plans.clear() }
        return try await self.database.write { sql in
            var organization = try await Self.organization(id, sql)
            if let plan = change.plan {
                guard try await sql.raw("SELECT id FROM plans WHERE id = \(bind: plan)").first() != nil else {
                    throw TernError.invalid("plan", "no plan '\(plan)' exists")
                }
                organization.plan = plan
            }
            if let name = change.name { organization.name = name }
            if let status = change.status { organization.status = status }
            organization.updatedAt = Timestamp.now()
            try await sql.raw(
                """
                UPDATE organizations SET name = \(bind: organization.name), plan_id = \(bind: organization.plan),
                status = \(bind: organization.status.rawValue), updated_at = \(bind: organization.updatedAt.microseconds)
                WHERE id = \(bind: id)
                """
            ).run()
            return organization
        }
    }

    /// Deletes an organization and everything it owns.
    public func deleteOrganization(_ id: String) async throws {
        defer { self.plans.clear() }
        try await self.database.write { sql in
            _ = try await Self.organization(id, sql)
            try await sql.raw("DELETE FROM organizations WHERE id = \(bind: id)").run()
        }
    }

    static func organization(_ row: any SQLRow) throws -> Organization {
        Organization(
            id: try row.string("id"), name: try row.string("name"), plan: try row.string("plan_id"),
            status: OrganizationStatus(rawValue: try row.string("status")) ?? .active,
            createdAt: try row.timestamp("created_at"), updatedAt: try row.timestamp("updated_at")
        )
    }

    /// The calendar month (UTC) that monthly quotas count in, e.g. `2026-11`.
    public static func usagePeriod(_ time: Timestamp = .now()) -> String {
        String(time.description.prefix(7))
    }

    public func usage(_ organizationID: String) async throws -> Usage {
        try await self.database.read { sql in
            let organization = try await Self.organization(organizationID, sql)
            let plan = try await Self.plan(organization.plan, sql)
            let applications = try await Self.count(
                sql, "SELECT COUNT(*) AS n FROM applications WHERE organization_id = \(bind: organizationID) AND kind = 'standard'")
            let endpoints = try await Self.count(
                sql, "SELECT COUNT(*) AS n FROM endpoints WHERE organization_id = \(bind: organizationID) AND \(unsafeRaw: Self.customerEndpoints)")
            let messages = try await Self.usageCount(organizationID, Self.usagePeriod(), sql)
            return Usage(
                organizationID: organizationID, plan: plan.id,
                applications: UsageFigure(used: applications, limit: plan.maxApplications),
                endpoints: UsageFigure(used: endpoints, limit: plan.maxEndpoints),
                messagesThisMonth: UsageFigure(used: messages, limit: plan.maxMessagesPerMonth),
                rateLimitPerMinute: plan.rateLimitPerMinute, rateLimitBurst: plan.rateLimitBurst, maxPayloadBytes: plan.maxPayloadBytes
            )
        }
    }

    static func count(_ sql: any SQLDatabase, _ query: SQLQueryString) async throws -> Int {
        try await sql.raw(query).first().map { try $0.int("n") } ?? 0
    }

    /// Locks the organization's row for this transaction (PostgreSQL) and returns its plan, so that limit checks
    /// and the inserts they guard cannot race with another request of the same organization.
    func lockedPlan(_ organizationID: String, _ sql: any SQLDatabase) async throws -> Plan {
        let organization = try await Self.organization(organizationID, sql, lock: self.database.lockRowsClause)
        return try await Self.plan(organization.plan, sql)
    }
}
