import SQLKit
import TernCore

/// A change to a tenant's record; nil members stay as they are.
public struct TenantChange: Sendable {
    public var name: String??
    public var metadata: [String: String]?

    public init(name: String?? = nil, metadata: [String: String]? = nil) {
        self.name = name
        self.metadata = metadata
    }
}

extension Store {
    /// Tenants of the application that have endpoints, newest first, with their endpoint counts and their records'
    /// names and metadata.
    public func listTenants(organizationID: String, applicationID: String, _ page: PageRequest) async throws -> Page<TenantSummary> {
        try await self.database.read { sql in
            _ = try await Self.application(organizationID, applicationID, sql)
            let after: SQLQueryString = page.after.map { "HAVING MIN(e.id) < \(bind: $0)" } ?? ""
            let rows = try await sql.raw(
                """
                SELECT e.tenant_id, COUNT(*) AS n, MIN(e.id) AS first_id, MAX(t.name) AS name, MAX(t.metadata) AS metadata
                FROM endpoints e LEFT JOIN tenants t ON t.application_id = e.application_id AND t.tenant_id = e.tenant_id
                WHERE e.application_id = \(bind: applicationID) GROUP BY e.tenant_id \(after) ORDER BY first_id DESC
                LIMIT \(bind: page.limit + 1)
                """
            ).all()
            return try page.page(rows, key: { (try? $0.string("first_id")) ?? "" }) { row in
                TenantSummary(
                    tenantID: try row.string("tenant_id"), endpointCount: try row.int("n"), name: try row.optionalString("name"),
                    metadata: try JSONColumn.decode([String: String].self, try row.optionalString("metadata")) ?? [:]
                )
            }
        }
    }

    /// The tenant: its record, or what its endpoints and messages say of it; 404 when none of them exists.
    public func tenant(organizationID: String, applicationID: String, tenantID: String) async throws -> Tenant {
        try await self.database.read { sql in
            _ = try await Self.application(organizationID, applicationID, sql)
            guard let tenant = try await Self.tenant(applicationID, tenantID, sql) else { throw TernError.notFound("No tenant '\(tenantID)'.") }
            return tenant
        }
    }

    /// Names the tenant or changes its metadata, writing its record (created on the first change).
    public func updateTenant(organizationID: String, applicationID: String, tenantID: String, _ change: TenantChange) async throws -> Tenant {
        defer { self.svixTenants.clear() }
        return try await self.database.write { sql in
            _ = try await Self.application(organizationID, applicationID, sql)
            let now = Timestamp.now()
            var tenant =
                try await Self.tenant(applicationID, tenantID, sql)
                ?? Tenant(tenantID: tenantID, name: nil, metadata: [:], endpointCount: 0, createdAt: now, updatedAt: now)
            if let name = change.name { tenant.name = name }
            if let metadata = change.metadata { tenant.metadata = metadata }
            tenant.updatedAt = now
            try await sql.raw(
                """
                INSERT INTO tenants (application_id, tenant_id, organization_id, name, metadata, svix_id, created_at, updated_at)
                VALUES (\(bind: applicationID), \(bind: tenantID), \(bind: organizationID), \(bind: tenant.name),
                \(bind: JSONColumn.encode(tenant.metadata)), \(bind: tenant.svixID ?? Identifier.make("app")),
                \(bind: tenant.createdAt.microseconds), \(bind: now.microseconds))
                ON CONFLICT (application_id, tenant_id) DO UPDATE SET name = excluded.name, metadata = excluded.metadata,
                updated_at = excluded.updated_at
                """
            ).run()
            return tenant
        }
    }

    /// Deletes the tenant's endpoints (their queued deliveries with them) and its record; its messages stay in the
    /// application's log until retention removes them.
    public func deleteTenant(organizationID: String, applicationID: String, tenantID: String) async throws {
        defer { self.svixTenants.clear() }
        try await self.database.writeQueuing { sql -> ((), queued: Bool) in
            _ = try await Self.application(organizationID, applicationID, sql)
            guard try await Self.tenant(applicationID, tenantID, sql) != nil else { throw TernError.notFound("No tenant '\(tenantID)'.") }
            return ((), queued: try await Self.removeTenant(organizationID, applicationID, tenantID, sql))
        }
    }

    /// Deletes the tenant's endpoints, each an `endpoint.deleted` for the operational endpoints, and its record.
    static func removeTenant(_ organizationID: String, _ applicationID: String, _ tenantID: String, _ sql: any SQLDatabase) async throws -> Bool {
        let endpoints = try await sql.raw(
            "DELETE FROM endpoints WHERE application_id = \(bind: applicationID) AND tenant_id = \(bind: tenantID) RETURNING *"
        ).all().map(Self.endpoint)
        let queued = try await Self.emitOperational(endpoints.map { Self.operationalEvent(.endpointDeleted, $0, organizationID) }, sql)
        try await sql.raw("DELETE FROM tenants WHERE application_id = \(bind: applicationID) AND tenant_id = \(bind: tenantID)").run()
        return queued
    }

    static func tenant(_ applicationID: String, _ tenantID: String, _ sql: any SQLDatabase) async throws -> Tenant? {
        let endpoints = try await sql.raw(
            """
            SELECT COUNT(*) AS n, MIN(created_at) AS first FROM endpoints
            WHERE application_id = \(bind: applicationID) AND tenant_id = \(bind: tenantID)
            """
        ).first()
        let count = try endpoints?.int("n") ?? 0
        if let record = try await sql.raw(
            "SELECT * FROM tenants WHERE application_id = \(bind: applicationID) AND tenant_id = \(bind: tenantID)"
        ).first() {
            return Tenant(
                tenantID: tenantID, name: try record.optionalString("name"),
                metadata: try JSONColumn.decode([String: String].self, try record.string("metadata")) ?? [:], endpointCount: count,
                createdAt: try record.timestamp("created_at"), updatedAt: try record.timestamp("updated_at"),
                svixID: try record.optionalString("svix_id"), throttleRate: try record.optionalInt("throttle_rate")
            )
        }
        var first = try endpoints?.optionalTimestamp("first")
        if first == nil {
            first = try await sql.raw(
                """
                SELECT created_at FROM messages WHERE application_id = \(bind: applicationID) AND tenant_id = \(bind: tenantID)
                ORDER BY id LIMIT 1
                """
            ).first()?.timestamp("created_at")
        }
        guard let first else { return nil }
        return Tenant(tenantID: tenantID, name: nil, metadata: [:], endpointCount: count, createdAt: first, updatedAt: first)
    }
}
