import SQLKit
import TernCore

/// A new inbound source, already validated.
public struct SourceInput: Sendable {
    public var name: String
    public var provider: InboundProvider
    public var secret: String
    public var tenantID: String?
    public var settings: InboundSettings

    public init(name: String, provider: InboundProvider, secret: String, tenantID: String?, settings: InboundSettings) {
        self.name = name
        self.provider = provider
        self.secret = secret
        self.tenantID = tenantID
        self.settings = settings
    }
}

/// What the ingress needs to verify and route a request: the source, its organization and its opened secret.
public struct IngressSource: Sendable {
    public var source: Source
    public var organizationID: String
    public var secret: String
}

extension Store {
    public func createSource(organizationID: String, applicationID: String, baseURL: String, _ input: SourceInput) async throws -> Source {
        let sealed = try self.secretBox.seal(input.secret)
        return try await self.database.write { sql in
            _ = try await Self.application(organizationID, applicationID, sql)
            let now = Timestamp.now()
            let id = Identifier.make("src")
            try await sql.raw(
                """
                INSERT INTO sources (id, organization_id, application_id, name, provider, secret, tenant_id, settings, created_at, updated_at)
                VALUES (\(bind: id), \(bind: organizationID), \(bind: applicationID), \(bind: input.name), \(bind: input.provider.rawValue),
                \(bind: sealed), \(bind: input.tenantID), \(bind: JSONColumn.encode(input.settings)), \(bind: now.microseconds),
                \(bind: now.microseconds))
                """
            ).run()
            return Source(
                id: id, applicationID: applicationID, name: input.name, provider: input.provider, tenantID: input.tenantID,
                settings: input.settings, ingressURL: "\(baseURL)/in/\(id)", createdAt: now, updatedAt: now
            )
        }
    }

    public func listSources(organizationID: String, applicationID: String, baseURL: String, _ page: PageRequest) async throws -> Page<Source> {
        try await self.database.read { sql in
            _ = try await Self.application(organizationID, applicationID, sql)
            let query = sql.select().column("*").from("sources").where("application_id", .equal, applicationID)
            let rows = try await Self.newestFirst(query, page)
            return try page.page(rows, key: { (try? $0.string("id")) ?? "" }) { try Self.source($0, baseURL: baseURL) }
        }
    }

    public func source(organizationID: String, applicationID: String, id: String, baseURL: String) async throws -> Source {
        try await self.database.read { sql in try Self.source(try await Self.sourceRow(organizationID, applicationID, id, sql), baseURL: baseURL) }
    }

    static func sourceRow(_ organizationID: String, _ applicationID: String, _ id: String, _ sql: any SQLDatabase) async throws -> any SQLRow {
        guard
            let row = try await sql.raw(
                """
                SELECT * FROM sources WHERE id = \(bind: id) AND application_id = \(bind: applicationID) AND organization_id = \(bind: organizationID)
                """
            ).first()
        else { throw TernError.notFound("No source '\(id)'.") }
        return row
    }

    /// Changes a source's name, tenant, settings or secret (nil leaves a value as it is; `clearTenant` removes the tenant).
    public func updateSource(
        organizationID: String, applicationID: String, id: String, baseURL: String, name: String?, tenantID: String?, clearTenant: Bool,
        settings: InboundSettings?, secret: String?
    ) async throws -> Source {
        let sealed = try secret.map { try self.secretBox.seal($0) }
        return try await self.database.write { sql in
            var source = try Self.source(try await Self.sourceRow(organizationID, applicationID, id, sql), baseURL: baseURL)
            if let name { source.name = name }
            if let tenantID { source.tenantID = tenantID } else if clearTenant { source.tenantID = nil }
            if let settings { source.settings = settings }
            source.updatedAt = .now()
            try await sql.raw(
                """
                UPDATE sources SET name = \(bind: source.name), tenant_id = \(bind: source.tenantID), settings =
                \(bind: JSONColumn.encode(source.settings)),
                secret = COALESCE(\(bind: sealed), secret), updated_at = \(bind: source.updatedAt.microseconds) WHERE id = \(bind: id)
                """
            ).run()
            return source
        }
    }

    public func deleteSource(organizationID: String, applicationID: String, id: String) async throws {
        try await self.database.write { sql in
            _ = try await Self.sourceRow(organizationID, applicationID, id, sql)
            try await sql.raw("DELETE FROM sources WHERE id = \(bind: id)").run()
        }
    }

    /// A source by id alone, for the public ingress; nil when there is none.
    public func ingressSource(id: String, baseURL: String) async throws -> IngressSource? {
        let row = try await self.database.read { sql in try await sql.raw("SELECT * FROM sources WHERE id = \(bind: id)").first() }
        guard let row else { return nil }
        return IngressSource(
            source: try Self.source(row, baseURL: baseURL), organizationID: try row.string("organization_id"),
            secret: try self.secretBox.open(try row.string("secret"))
        )
    }

    static func source(_ row: any SQLRow, baseURL: String) throws -> Source {
        let id = try row.string("id")
        return Source(
            id: id, applicationID: try row.string("application_id"), name: try row.string("name"),
            provider: InboundProvider(rawValue: try row.string("provider")) ?? .token, tenantID: try row.optionalString("tenant_id"),
            settings: try JSONColumn.decode(InboundSettings.self, try row.string("settings")) ?? InboundSettings(),
            ingressURL: "\(baseURL)/in/\(id)", createdAt: try row.timestamp("created_at"), updatedAt: try row.timestamp("updated_at")
        )
    }
}
