import Foundation
import Logging
import SQLKit
import TernCore

/// Applies the SQL files of `Migrations/` in name order, each in its own transaction, recording each in
/// `schema_migrations`. Safe to run twice and from two processes at once.
public struct Migrator: Sendable {
    public struct Migration: Sendable, Equatable {
        public var version: String
        public var statements: [String]
    }

    public let migrations: [Migration]

    /// Loads every `*.sql` file of `directory`.
    public init(directory: URL) throws {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".sql") }.sorted()
        } catch {
            throw ConfigurationError("cannot read the migrations directory \(directory.path)")
        }
        self.migrations = try names.map { name in
            let text = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
            return Migration(version: String(name.dropLast(4)), statements: Self.split(text))
        }
    }

    /// Splits a file into statements: each ends with `;` at the end of a line. `--` comment lines are dropped.
    static func split(_ text: String) -> [String] {
        var statements: [String] = []
        var current = ""
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("--") || (trimmed.isEmpty && current.isEmpty) { continue }
            current += line + "\n"
            if trimmed.hasSuffix(";") {
                statements.append(String(current.trimmingCharacters(in: .whitespacesAndNewlines).dropLast()))
                current = ""
            }
        }
        let rest = current.trimmingCharacters(in: .whitespacesAndNewlines)
        if !rest.isEmpty { statements.append(rest) }
        return statements
    }

    /// Applies the migrations not yet recorded; returns the versions it applied.
    @discardableResult
    public func migrate(_ database: Database, logger: Logger) async throws -> [String] {
        let migrations = self.migrations
        let applied = try await database.withMigrationLock { sql, begin in
            try await sql.raw(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)"
            ).run()
            let done = Set(
                try await sql.raw("SELECT version FROM schema_migrations").all().map {
                    try $0.decode(column: "version", as: String.self)
                })
            var applied: [String] = []
            for migration in migrations where !done.contains(migration.version) {
                _ = try await Database.transaction(sql, begin: begin) { sql in
                    for statement in migration.statements {
                        try await sql.raw(SQLQueryString(statement)).run()
                    }
                    try await sql.raw(
                        """
                        INSERT INTO schema_migrations (version, applied_at) VALUES (\(bind: migration.version), \(bind: Timestamp.now().microseconds))
                        """
                    ).run()
                }
                logger.info("applied migration", metadata: ["version": "\(migration.version)"])
                applied.append(migration.version)
            }
            return applied
        }
        // The schema is current: workers waiting for it may start claiming.
        database.migrated.open()
        return applied
    }
}
