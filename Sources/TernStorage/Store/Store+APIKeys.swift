import SQLKit
import TernCore

/// What authentication needs to know about a key.
public struct StoredKey: Sendable {
    public var key: APIKey
    public var secretHash: String
    public var organizationStatus: OrganizationStatus?
}

/// A key just made: the stored record and the token, which is shown once and never stored.
public struct IssuedKey: Sendable {
    public var key: APIKey
    public var token: String
}

extension Store {
    /// Makes a key: a new token, its argon2id hash (off the concurrency pool: it takes tens of milliseconds), and the
    /// stored record. `organizationID` nil makes an operator key. The one way every caller creates a key.
    public func issueAPIKey(organizationID: String?, name: String, scopes: [String], applicationID: String?) async throws -> IssuedKey {
        let token = APIKeyToken.generate()
        let hash = await Task.detached { Argon2id.hash(token.secret) }.value
        let key = try await self.createAPIKey(
            organizationID: organizationID, name: name, scopes: scopes, applicationID: applicationID, token: token, secretHash: hash
        )
        return IssuedKey(key: key, token: token.token)
    }

    /// Stores a new key (its argon2id hash only).
    func createAPIKey(
        organizationID: String?, name: String, scopes: [String], applicationID: String?, token: APIKeyToken, secretHash: String
    ) async throws -> APIKey {
        try await self.database.write { sql in
            if let organizationID {
                _ = try await Self.organization(organizationID, sql)
                if let applicationID {
                    guard
                        try await sql.raw(
                            """
                            SELECT id FROM applications WHERE id = \(bind: applicationID) AND organization_id = \(bind: organizationID)
                            AND kind = 'standard'
                            """
                        ).first() != nil
                    else { throw TernError.invalid("application_id", "no application '\(applicationID)' in this organization") }
                }
            }
            let key = APIKey(
                id: token.keyID, organizationID: organizationID, name: name, prefix: token.displayPrefix, scopes: scopes,
                applicationID: applicationID, createdAt: .now(), lastUsedAt: nil, revokedAt: nil
            )
            try await sql.raw(
                """
                INSERT INTO api_keys (id, organization_id, name, prefix, secret_hash, scopes, application_id, created_at)
                VALUES (\(bind: key.id), \(bind: organizationID), \(bind: name), \(bind: key.prefix), \(bind: secretHash),
                \(bind: JSONColumn.encode(scopes)), \(bind: applicationID), \(bind: key.createdAt.microseconds))
                """
            ).run()
            return key
        }
    }

    public func listAPIKeys(organizationID: String, _ page: PageRequest) async throws -> Page<APIKey> {
        try await self.database.read { sql in
            let query = sql.select().column("*").from("api_keys").where("organization_id", .equal, organizationID)
            let rows = try await Self.newestFirst(query, page)
            return try page.page(rows, key: { (try? $0.string("id")) ?? "" }, map: Self.apiKey)
        }
    }

    /// Revokes a key of the organization; 404 for another organization's key or an unknown one.
    public func revokeAPIKey(organizationID: String, keyID: String) async throws {
        try await self.database.write { sql in
            guard
                try await sql.raw(
                    """
                    SELECT id FROM api_keys WHERE id = \(bind: keyID) AND organization_id = \(bind: organizationID)
                    """
                ).first() != nil
            else { throw TernError.notFound("No API key '\(keyID)'.") }
            try await sql.raw(
                """
                UPDATE api_keys SET revoked_at = \(bind: Timestamp.now().microseconds) WHERE id = \(bind: keyID) AND revoked_at IS NULL
                """
            ).run()
        }
    }

    /// The key with its hash, for verification; nil when unknown.
    public func storedKey(_ keyID: String) async throws -> StoredKey? {
        try await self.database.read { sql in
            guard
                let row = try await sql.raw(
                    """
                    SELECT api_keys.*, organizations.status AS organization_status FROM api_keys
                    LEFT JOIN organizations ON organizations.id = api_keys.organization_id WHERE api_keys.id = \(bind: keyID)
                    """
                ).first()
            else { return nil }
            return StoredKey(
                key: try Self.apiKey(row), secretHash: try row.string("secret_hash"),
                organizationStatus: try row.optionalString("organization_status").flatMap(OrganizationStatus.init(rawValue:))
            )
        }
    }

    /// Records that keys were used (written lazily, in batches).
    public func touchAPIKeys(_ uses: [String: Timestamp]) async throws {
        guard !uses.isEmpty else { return }
        try await self.database.write { sql in
            for (keyID, time) in uses {
                try await sql.raw("UPDATE api_keys SET last_used_at = \(bind: time.microseconds) WHERE id = \(bind: keyID)").run()
            }
        }
    }

    /// True when an operator key that is not revoked exists.
    public func hasAdminKey() async throws -> Bool {
        try await self.database.read { sql in
            try await sql.raw("SELECT id FROM api_keys WHERE organization_id IS NULL AND revoked_at IS NULL").first() != nil
        }
    }

    static func apiKey(_ row: any SQLRow) throws -> APIKey {
        APIKey(
            id: try row.string("id"), organizationID: try row.optionalString("organization_id"), name: try row.string("name"),
            prefix: try row.string("prefix"), scopes: try JSONColumn.decode([String].self, try row.string("scopes")) ?? [],
            applicationID: try row.optionalString("application_id"), createdAt: try row.timestamp("created_at"),
            lastUsedAt: try row.optionalTimestamp("last_used_at"), revokedAt: try row.optionalTimestamp("revoked_at")
        )
    }
}
