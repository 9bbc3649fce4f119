import SQLKit
import TernCore

/// A Svix application's fields: a tenant's record seen from `/api/v1`. `uid` nil means the tenant id is its Svix id.
public struct SvixApplicationInput: Sendable {
    public var uid: String?
    public var name: String?
    public var metadata: [String: String]
    public var throttleRate: Int?

    public init(uid: String?, name: String?, metadata: [String: String], throttleRate: Int?) {
        self.uid = uid
        self.name = name
        self.metadata = metadata
        self.throttleRate = throttleRate
    }
}

/// A Svix application is a tenant of the key's application: its record carries the Svix id (`app_…`), and its uid is
/// the tenant id (absent when the tenant id is the Svix id itself). Tenants known only from their endpoints or
/// messages get a record, with a Svix id, the first time the Svix API sees them.
extension Store {
    /// The tenants as Svix applications, by Svix id.
    public func svixApplications(organizationID: String, applicationID: String, _ page: SvixPageRequest) async throws -> SvixPage<Tenant> {
        try await self.database.write { sql in
            _ = try await Self.application(organizationID, applicationID, sql)
            let unrecorded = try await sql.raw(
                """
                SELECT DISTINCT e.tenant_id FROM endpoints e WHERE e.application_id = \(bind: applicationID) AND NOT EXISTS
                (SELECT 1 FROM tenants t WHERE t.application_id = e.application_id AND t.tenant_id = e.tenant_id)
                """
            ).all().map { try $0.string("tenant_id") }
            for tenantID in unrecorded { try await Self.recordTenant(organizationID, applicationID, tenantID, sql) }
            try await Self.giveSvixIDs(applicationID, sql)
            let query = sql.select().column("*").from("tenants").where("application_id", .equal, applicationID)
            return try await page.run(query, key: "svix_id", map: Self.tenant(record:))
        }
    }

    /// The tenant whose Svix id or tenant id is `idOrUID`; 404 when there is none.
    public func svixApplication(organizationID: String, applicationID: String, idOrUID: String) async throws -> Tenant {
        try await self.svixTenants.value("\(organizationID)|\(applicationID)|\(idOrUID)") {
            try await self.findSvixApplication(organizationID: organizationID, applicationID: applicationID, idOrUID: idOrUID)
        }
    }

    func findSvixApplication(organizationID: String, applicationID: String, idOrUID: String) async throws -> Tenant {
        // Most lookups find a record with its Svix id: a read. Only a tenant without one needs the write.
        let recorded = try await self.database.read { sql -> Tenant? in
            _ = try await Self.application(organizationID, applicationID, sql)
            guard
                let record = try await sql.raw(
                    """
                    SELECT * FROM tenants WHERE application_id = \(bind: applicationID)
                    AND (svix_id = \(bind: idOrUID) OR tenant_id = \(bind: idOrUID)) AND svix_id IS NOT NULL
                    """
                ).first()
            else { return nil }
            return try Self.tenant(record: record)
        }
        if let recorded { return recorded }
        return try await self.database.write { sql in
            _ = try await Self.application(organizationID, applicationID, sql)
            guard let tenant = try await Self.svixTenant(organizationID, applicationID, idOrUID, sql) else {
                throw TernError.notFound("Application not found")
            }
            return tenant
        }
    }

    /// Creates a Svix application; with a uid that names an existing tenant, returns that one when `getIfExists`
    /// (unchanged), else 409.
    public func createSvixApplication(
        organizationID: String, applicationID: String, _ input: SvixApplicationInput, getIfExists: Bool
    ) async throws -> (Tenant, created: Bool) {
        defer { self.svixTenants.clear() }
        return try await self.database.write { sql in
            _ = try await Self.application(organizationID, applicationID, sql)
            if let uid = input.uid, let existing = try await Self.svixTenant(organizationID, applicationID, uid, sql) {
                guard getIfExists else { throw TernError.conflict("An application with that id or uid already exists") }
                return (existing, created: false)
            }
            return (try await Self.insertSvixTenant(organizationID, applicationID, input, sql), created: true)
        }
    }

    /// Replaces the application `idOrUID` with `input` (PUT), or creates it: with the body's uid, else with the path
    /// value as uid unless that is a Svix id. `keepUID`: the body named no uid, so an existing application keeps its own
    /// (a PUT does not rename a tenant by leaving the uid out).
    public func upsertSvixApplication(
        organizationID: String, applicationID: String, idOrUID: String, _ input: SvixApplicationInput, keepUID: Bool
    ) async throws -> (Tenant, created: Bool) {
        defer { self.svixTenants.clear() }
        return try await self.database.write { sql in
            _ = try await Self.application(organizationID, applicationID, sql)
            if let existing = try await Self.svixTenant(organizationID, applicationID, idOrUID, sql) {
                var input = input
                if keepUID { input.uid = Self.uid(of: existing) }
                return (try await Self.changeSvixTenant(organizationID, applicationID, existing, input, sql), created: false)
            }
            var input = input
            if input.uid == nil, !idOrUID.hasPrefix("app_") { input.uid = idOrUID }
            if let uid = input.uid, try await Self.svixTenant(organizationID, applicationID, uid, sql) != nil {
                throw TernError.conflict("An application with that id or uid already exists")
            }
            return (try await Self.insertSvixTenant(organizationID, applicationID, input, sql), created: true)
        }
    }

    /// Changes the application `idOrUID`: `change` gets its current fields and returns the new ones (PATCH).
    public func updateSvixApplication(
        organizationID: String, applicationID: String, idOrUID: String,
        _ change: @escaping @Sendable (SvixApplicationInput) -> SvixApplicationInput
    ) async throws -> Tenant {
        defer { self.svixTenants.clear() }
        return try await self.database.write { sql in
            _ = try await Self.application(organizationID, applicationID, sql)
            guard let existing = try await Self.svixTenant(organizationID, applicationID, idOrUID, sql) else {
                throw TernError.notFound("Application not found")
            }
            let current = SvixApplicationInput(
                uid: Self.uid(of: existing), name: existing.name, metadata: existing.metadata, throttleRate: existing.throttleRate)
            return try await Self.changeSvixTenant(organizationID, applicationID, existing, change(current), sql)
        }
    }

    /// Deletes the application: the tenant's endpoints and its record (which frees its uid).
    public func deleteSvixApplication(organizationID: String, applicationID: String, idOrUID: String) async throws {
        defer { self.svixTenants.clear() }
        try await self.database.writeQueuing { sql -> ((), queued: Bool) in
            _ = try await Self.application(organizationID, applicationID, sql)
            guard let tenant = try await Self.svixTenant(organizationID, applicationID, idOrUID, sql) else {
                throw TernError.notFound("Application not found")
            }
            return ((), queued: try await Self.removeTenant(organizationID, applicationID, tenant.tenantID, sql))
        }
    }

    /// The Svix uid of a tenant: its tenant id, unless that is its Svix id.
    public static func uid(of tenant: Tenant) -> String? {
        tenant.tenantID == tenant.svixID ? nil : tenant.tenantID
    }

    /// Finds the tenant by Svix id or tenant id, writing a record (with a Svix id) for one known only from its
    /// endpoints or messages.
    static func svixTenant(_ organizationID: String, _ applicationID: String, _ idOrUID: String, _ sql: any SQLDatabase) async throws -> Tenant? {
        let record = try await sql.raw(
            """
            SELECT * FROM tenants WHERE application_id = \(bind: applicationID) AND (svix_id = \(bind: idOrUID) OR tenant_id = \(bind: idOrUID))
            """
        ).first()
        if let record {
            if try record.optionalString("svix_id") == nil { try await Self.giveSvixIDs(applicationID, sql) }
            return try await Self.tenant(applicationID, try record.string("tenant_id"), sql)
        }
        guard !idOrUID.hasPrefix("app_"), try await Self.tenant(applicationID, idOrUID, sql) != nil else { return nil }
        try await Self.recordTenant(organizationID, applicationID, idOrUID, sql)
        return try await Self.tenant(applicationID, idOrUID, sql)
    }

    /// Writes a record for a tenant that has none yet (no name, empty metadata).
    static func recordTenant(_ organizationID: String, _ applicationID: String, _ tenantID: String, _ sql: any SQLDatabase) async throws {
        let now = Timestamp.now().microseconds
        try await sql.raw(
            """
            INSERT INTO tenants (application_id, tenant_id, organization_id, name, metadata, svix_id, created_at, updated_at)
            VALUES (\(bind: applicationID), \(bind: tenantID), \(bind: organizationID), NULL, '{}', \(bind: Identifier.make("app")),
            \(bind: now), \(bind: now)) ON CONFLICT (application_id, tenant_id) DO NOTHING
            """
        ).run()
    }

    /// Records written by the native API before they had Svix ids get them.
    static func giveSvixIDs(_ applicationID: String, _ sql: any SQLDatabase) async throws {
        let rows = try await sql.raw(
            "SELECT tenant_id FROM tenants WHERE application_id = \(bind: applicationID) AND svix_id IS NULL"
        ).all()
        for row in rows {
            try await sql.raw(
                """
                UPDATE tenants SET svix_id = \(bind: Identifier.make("app")) WHERE application_id = \(bind: applicationID)
                AND tenant_id = \(bind: try row.string("tenant_id"))
                """
            ).run()
        }
    }

    static func insertSvixTenant(
        _ organizationID: String, _ applicationID: String, _ input: SvixApplicationInput, _ sql: any SQLDatabase
    ) async throws -> Tenant {
        let now = Timestamp.now()
        let svixID = Identifier.make("app")
        let tenant = Tenant(
            tenantID: input.uid ?? svixID, name: input.name, metadata: input.metadata, endpointCount: 0, createdAt: now, updatedAt: now,
            svixID: svixID, throttleRate: input.throttleRate
        )
        try await sql.raw(
            """
            INSERT INTO tenants (application_id, tenant_id, organization_id, name, metadata, svix_id, throttle_rate, created_at, updated_at)
            VALUES (\(bind: applicationID), \(bind: tenant.tenantID), \(bind: organizationID), \(bind: tenant.name),
            \(bind: JSONColumn.encode(tenant.metadata)), \(bind: svixID), \(bind: tenant.throttleRate), \(bind: now.microseconds),
            \(bind: now.microseconds))
            """
        ).run()
        return tenant
    }

    /// Writes the new fields; a new uid renames the tenant wherever its id is stored.
    static func changeSvixTenant(
        _ organizationID: String, _ applicationID: String, _ tenant: Tenant, _ input: SvixApplicationInput, _ sql: any SQLDatabase
    ) async throws -> Tenant {
        var tenant = tenant
        let newTenantID = input.uid ?? tenant.svixID ?? tenant.tenantID
        if newTenantID != tenant.tenantID {
            if let other = try await Self.svixTenant(organizationID, applicationID, newTenantID, sql), other.svixID != tenant.svixID {
                throw TernError.conflict("An application with that id or uid already exists")
            }
            for table in ["endpoints", "endpoint_event_types", "endpoint_filter_routes", "messages", "deliveries", "rate_buckets", "tenants"] {
                try await sql.raw(
                    """
                    UPDATE \(ident: table) SET tenant_id = \(bind: newTenantID) WHERE application_id = \(bind: applicationID)
                    AND tenant_id = \(bind: tenant.tenantID)
                    """
                ).run()
            }
            tenant.tenantID = newTenantID
        }
        let now = Timestamp.now()
        tenant.name = input.name
        tenant.metadata = input.metadata
        tenant.throttleRate = input.throttleRate
        tenant.updatedAt = now
        try await sql.raw(
            """
            UPDATE tenants SET name = \(bind: tenant.name), metadata = \(bind: JSONColumn.encode(tenant.metadata)),
            throttle_rate = \(bind: tenant.throttleRate), updated_at = \(bind: now.microseconds)
            WHERE application_id = \(bind: applicationID) AND tenant_id = \(bind: tenant.tenantID)
            """
        ).run()
        return tenant
    }

    static func tenant(record row: any SQLRow) throws -> Tenant {
        Tenant(
            tenantID: try row.string("tenant_id"), name: try row.optionalString("name"),
            metadata: try JSONColumn.decode([String: String].self, try row.string("metadata")) ?? [:], endpointCount: 0,
            createdAt: try row.timestamp("created_at"), updatedAt: try row.timestamp("updated_at"), svixID: try row.optionalString("svix_id"),
            throttleRate: try row.optionalInt("throttle_rate")
        )
    }
}
