import Foundation
import Logging
import SQLKit
import TernCore
import Testing
import _ConnectionPoolModule

@testable import TernStorage
@testable import TernTesting

/// Statements kept prepared (`Prepared`, PostgreSQL): prepared once per connection under one name for their text and
/// the types of their values (a NULL included), planned once on the publishes' connections, and, when a preparation
/// fails, prepared anew on the next run instead of failing for the connection's lifetime.
@Suite struct PreparedStatementTests {
    /// The probe: a text no other statement has, with a value of each type `PreparedValue` covers.
    static func probe(_ text: String?, _ number: Int64, _ ratio: Double, _ flag: Bool) -> SQLQueryString {
        """
        SELECT 'prepared probe' AS probe, CAST(\(bind: text) AS TEXT) AS t, \(bind: number) + 1 AS n, \(bind: ratio) * 2 AS r,
        NOT \(bind: flag) AS f
        """
    }

    @Test(.enabled(if: Backend.available.contains(.postgres), "needs TERN_TEST_POSTGRES_URL"))
    func aStatementIsPreparedOncePerConnectionAndPlannedOnceOnThePublishesConnections() async throws {
        try await Backend.postgres.withFreshDatabase { database in
            try await database.writeInOneStatement { sql, held in
                #expect(!held)
                var texts: [String?] = []
                for (index, text) in [nil, "a", nil, "b"].enumerated() {
                    let row = try #require(try await sql.all(prepared: Self.probe(text, Int64(index), 1.5, index.isMultiple(of: 2))).first)
                    texts.append(try row.decode(column: "t", as: String?.self))
                    #expect(try row.decode(column: "n", as: Int64.self) == Int64(index) + 1)
                    #expect(try row.decode(column: "r", as: Double.self) == 3)
                    #expect(try row.decode(column: "f", as: Bool.self) == !index.isMultiple(of: 2))
                }
                #expect(texts == [nil, "a", nil, "b"])
                // One statement kept on this connection for the four runs, NULL or not, each run on its generic plan.
                let kept = try await sql.raw(
                    "SELECT name, generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE '%''prepared probe''%'"
                ).all()
                #expect(kept.count == 1)
                #expect(try kept.first?.decode(column: "name", as: String.self).hasPrefix("tern_prepared_") == true)
                #expect(try kept.first?.decode(column: "generic_plans", as: Int.self) == 4)
                #expect(try kept.first?.decode(column: "custom_plans", as: Int.self) == 0)
                return ((), queued: false)
            }
        }
    }

    @Test(.enabled(if: Backend.available.contains(.postgres), "needs TERN_TEST_POSTGRES_URL"))
    func aStatementWhosePreparationFailedIsPreparedAnewOnTheSameConnection() async throws {
        // One connection, so that the second run meets the connection where the first failed.
        let url = try await Backend.postgres.freshDatabaseURL()
        let database = try await Database.open(try DatabaseLocation(url: url), connections: 1, logger: Logger(label: "test"))
        try await database.whileRunning {
            // In a transaction that has failed, PostgreSQL refuses to prepare anything; PostgresNIO keeps that refusal
            // for the statement's name.
            let refused = try await database.write { sql in
                _ = try? await sql.raw("SELECT 1 / 0 AS never").run()
                do {
                    _ = try await sql.all(prepared: Self.probe("x", 1, 1, true))
                    return false
                } catch {
                    return true
                }
            }
            #expect(refused)
            let row = try await database.read { sql in try await sql.all(prepared: Self.probe("x", 1, 1, true)).first }
            #expect(try row?.decode(column: "t", as: String.self) == "x")
            let kept = try await database.read { sql in
                try await sql.raw("SELECT COUNT(*) AS n FROM pg_prepared_statements WHERE statement LIKE '%''prepared probe''%'").first()
            }
            #expect(try kept?.decode(column: "n", as: Int.self) == 1)
        }
    }
}

/// What the database layer's errors become at the API.
@Suite struct DatabaseErrorTests {
    /// PostgreSQL restarting: the pool gives up connecting for a while and says so with an error of its own, which
    /// PostgresNIO passes on as it is; it is unavailability (503), as a refused connection is, not a server error.
    @Test func thePoolGivingUpIsUnavailability() async throws {
        let database = try await Database.open(.sqliteMemory, logger: Logger(label: "errors"))
        for error in [_ConnectionPoolModule.ConnectionPoolError.connectionCreationCircuitBreakerTripped, .poolShutdown] {
            guard case TernError.unavailable = database.translate(error) else {
                Issue.record("\(error) became \(database.translate(error))")
                continue
            }
        }
    }
}
