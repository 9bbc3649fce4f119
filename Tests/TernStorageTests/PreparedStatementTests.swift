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

    /// A row of a statement run prepared (`PostgresResultRow`) reads every column as PostgresKit's row reads it: the
    /// same value, or an error where it throws one, for each type the store reads and for one it does not.
    @Test(.enabled(if: Backend.available.contains(.postgres), "needs TERN_TEST_POSTGRES_URL"))
    func columnsReadAsPostgresKitsRowReadsThem() async throws {
        try await Backend.postgres.withFreshDatabase { database in
            try await database.writeInOneStatement { sql, _ in
                let statement: SQLQueryString = """
                    SELECT 'row probe' AS t, CAST(NULL AS TEXT) AS tn, CAST(\(bind: 7) AS BIGINT) AS i8, CAST(7 AS INTEGER) AS i4,
                    CAST(7 AS SMALLINT) AS i2, CAST(NULL AS BIGINT) AS i8n, CAST(1.5 AS DOUBLE PRECISION) AS f8, CAST(1.5 AS REAL) AS f4,
                    TRUE AS b, CAST(NULL AS BOOLEAN) AS bn, SUM(x) AS num, CAST('{"a": 1}' AS JSONB) AS j, ARRAY['a', 'b'] AS arr
                    FROM (VALUES (CAST(2 AS BIGINT)), (3)) AS v(x)
                    """
                let fast = try #require(try await sql.all(prepared: statement).first)
                #expect(fast is PostgresResultRow)
                let kit = try #require(try await sql.raw(statement).first())
                #expect(!(kit is PostgresResultRow))
                #expect(fast.allColumns == kit.allColumns)
                func read<D: Decodable>(_ row: any SQLRow, _ column: String, _ type: D.Type) -> String {
                    do { return "\(try row.decode(column: column, as: D.self))" } catch { return "error" }
                }
                var compared = 0
                for column in fast.allColumns + ["missing"] {
                    #expect(fast.contains(column: column) == kit.contains(column: column))
                    #expect(try fast.decodeNil(column: column) == kit.decodeNil(column: column), "\(column)")
                    let readings: [(any SQLRow) -> String] = [
                        { read($0, column, String.self) }, { read($0, column, String?.self) }, { read($0, column, Int.self) },
                        { read($0, column, Int?.self) }, { read($0, column, Int64.self) }, { read($0, column, Int64?.self) },
                        { read($0, column, Double.self) }, { read($0, column, Double?.self) }, { read($0, column, Bool.self) },
                        { read($0, column, Bool?.self) }, { read($0, column, [String].self) },
                    ]
                    for (index, reading) in readings.enumerated() {
                        #expect(reading(fast) == reading(kit), "column \(column), reading \(index)")
                        compared += reading(kit) == "error" ? 0 : 1
                    }
                }
                #expect(compared >= 20, "values read, not only errors compared")
                return ((), queued: false)
            }
        }
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
