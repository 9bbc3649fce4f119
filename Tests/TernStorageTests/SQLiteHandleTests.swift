import Foundation
import Logging
import NIOCore
import SQLKit
import SQLiteKit
import SQLiteNIO
import Testing
import VaporCSQLite

@testable import TernStorage
@testable import TernTesting

/// The SQLite connection that keeps its prepared statements: a kept statement runs again with other values, a failed
/// one stays usable, more distinct statements than it keeps still run, and a transaction runs on the connection's
/// own thread.
@Suite struct SQLiteHandleTests {
    static func file() -> String {
        Leftovers.temporary("handle", suffix: ".sqlite").path
    }

    /// Binds become the values SQLiteKit's encoder makes of them, whether they take the direct way or its.
    @Test func bindsAreTheValuesSQLiteKitsEncoderMakes() async throws {
        struct Shape: Codable, Sendable { var sides: Int }
        let pool = try await SQLitePool.open(path: nil, readers: 0, logger: Logger(label: "test"))
        try await pool.withWriter { handle in
            let values: [any Encodable & Sendable] = [
                "text", "", "é ☃", Optional("some"), String?.none, 42, -1, Int?.none, Int64.max, Int64?(7), 2.5, Double?.none, true, false,
                Bool?(true), Int32(3), Data([1, 2]), Shape(sides: 3), [1, 2, 3], Int64?.none, Bool?.none, Shape?.none, String??.none,
            ]
            for value in values {
                let direct = try handle.data(value)
                let encoded = try handle.encoder.encode(value)
                #expect(direct == encoded, "\(value)")
            }
        }
        await pool.close()
    }

    /// Columns read directly are the values SQLiteKit's decoder reads, and what it refuses is still refused.
    @Test func columnsReadAsSQLiteKitsDecoderReadsThem() throws {
        let decoder = SQLiteDataDecoder()
        let values: [SQLiteData] = [
            .text("text"), .text(""), .text("42"), .integer(42), .integer(-7), .float(2.5), .null, .blob(ByteBuffer(bytes: [1])),
        ]
        func check<D: Decodable & Equatable>(_ type: D.Type) {
            for value in values {
                let row = SQLiteResultRow(columns: SQLiteColumnNames(names: ["c"]), values: [value], decoder: decoder)
                let direct = try? row.decode(column: "c", as: D.self)
                let decoded = try? decoder.decode(D.self, from: value)
                #expect(direct == decoded, "\(D.self) from \(value)")
            }
        }
        check(String.self)
        check(String?.self)
        check(Int.self)
        check(Int?.self)
        check(Int64.self)
        check(Int64?.self)
        check(Double.self)
        check(Double?.self)
        check(Bool.self)
        #expect(SQLiteResultRow.direct(.integer(3), as: Int?.self) == .some(3))
        #expect(SQLiteResultRow.direct(.null, as: String?.self) == .some(nil), "a null read directly as nil, not left to the decoder")
        #expect(SQLiteResultRow.direct(.text("x"), as: Int.self) == nil, "a mismatch is left to the decoder")
    }

    @Test func aKeptStatementRunsAgainWithOtherValuesAndAFailedOneStaysUsable() async throws {
        let path = Self.file()
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let pool = try await SQLitePool.open(path: path, readers: 2, logger: Logger(label: "test"))
        try await pool.withWriter { handle in
            let sql = handle.sql()
            try await sql.raw("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, size REAL, data BLOB)").run()
            #expect(handle.thread.isCurrent, "a transaction runs on its connection's thread")
            for id in 1...50 {
                try await sql.raw("INSERT INTO items (id, name, size) VALUES (\(bind: id), \(bind: "item-\(id)"), \(bind: Double(id) / 2))").run()
            }
            // The same text, a value that breaks the UNIQUE constraint: an error that maps to a conflict…
            let failure = await #expect(throws: SQLiteFailure.self) {
                try await sql.raw("INSERT INTO items (id, name, size) VALUES (\(bind: 51), \(bind: "item-1"), \(bind: 0.5))").run()
            }
            #expect(failure?.isUniqueViolation == true)
            // …and the kept statement still runs afterwards.
            try await sql.raw("INSERT INTO items (id, name, size) VALUES (\(bind: 51), \(bind: "é ☃ \u{0}x"), \(bind: 25.5))").run()
        }
        let rows = try await pool.withReader { handle in
            #expect(handle.thread.isCurrent && !pool.writer.thread.isCurrent, "a read runs on its reader's thread")
            return try await handle.sql().raw("SELECT id, name, size, data FROM items WHERE id >= \(bind: 49) ORDER BY id").all()
        }
        #expect(try rows.map { try $0.decode(column: "id", as: Int.self) } == [49, 50, 51])
        #expect(try rows.last?.decode(column: "name", as: String.self) == "é ☃ \u{0}x")
        #expect(try rows.last?.decode(column: "size", as: Double.self) == 25.5)
        #expect(try rows.last?.decodeNil(column: "data") == true)
        #expect(rows.last?.contains(column: "nope") == false)
        #expect(throws: (any Error).self) { try rows.last?.decode(column: "nope", as: Int.self) }
        await pool.close()
    }

    @Test func moreDistinctStatementsThanItKeepsStillRun() async throws {
        let pool = try await SQLitePool.open(path: nil, readers: 0, logger: Logger(label: "test"))
        let total = try await pool.withWriter { handle in
            let sql = handle.sql()
            var total = 0
            for round in 0..<2 {
                for number in 0..<(SQLiteHandle.statementCacheSize + 40) {
                    let row = try await sql.raw("SELECT \(unsafeRaw: "\(number)") + \(bind: round) AS value").first()
                    total += try row?.decode(column: "value", as: Int.self) ?? 0
                }
            }
            return total
        }
        let count = SQLiteHandle.statementCacheSize + 40
        #expect(total == 2 * (count * (count - 1) / 2) + count)
        await pool.close()
    }

    /// A kept statement whose plan may depend on a bound value (a LEFT JOIN's `ON … = ?`) runs again without being
    /// prepared anew, keeps no copy of a large value between uses, and refuses too few values instead of reusing the
    /// last ones.
    @Test func aKeptStatementIsNotPreparedAgainAndHoldsNoLargeValue() async throws {
        let pool = try await SQLitePool.open(path: nil, readers: 0, logger: Logger(label: "test"))
        try await pool.withWriter { handle in
            let sql = handle.sql()
            try await sql.raw("CREATE TABLE apps (id TEXT PRIMARY KEY, body TEXT)").run()
            try await sql.raw("CREATE TABLE hooks (id TEXT PRIMARY KEY, app_id TEXT NOT NULL, tenant TEXT NOT NULL)").run()
            let large = String(repeating: "p", count: 4096)
            for number in 0..<5 {
                try await sql.raw("INSERT INTO apps (id, body) VALUES (\(bind: "app-\(number)"), \(bind: large))").run()
                try await sql.raw("INSERT INTO hooks (id, app_id, tenant) VALUES (\(bind: "hook-\(number)"), \(bind: "app-\(number)"), \(bind: "t"))")
                    .run()
            }
            var found: [String] = []
            for number in 0..<5 {
                let row = try await sql.raw(
                    "SELECT a.id, h.id AS hook FROM apps a LEFT JOIN hooks h ON h.app_id = a.id AND h.tenant = \(bind: "t") WHERE a.id = \(bind: "app-\(number)")"
                ).first()
                try found.append(row?.decode(column: "hook", as: String.self) ?? "none")
            }
            #expect(found == (0..<5).map { "hook-\($0)" })
            let read = "SELECT a.id, h.id AS hook FROM apps a LEFT JOIN hooks h ON h.app_id = a.id AND h.tenant = ?1 WHERE a.id = ?2"
            #expect(handle.kept(read)?.reprepares == 0, "prepared once, run five times")
            let insert = try #require(handle.kept("INSERT INTO apps (id, body) VALUES (?1, ?2)"))
            let held = large.withCString {
                sqlite_nio_sqlite3_bind_text(insert.pointer, 2, $0, -1, unsafeBitCast(-1, to: sqlite3_destructor_type.self))
            }
            #expect(held == SQLITE_OK)
            let holding = try #require(handle.kept("INSERT INTO apps (id, body) VALUES (?1, ?2)")).bytes
            #expect(holding - insert.bytes >= 4096, "between uses the statement held no copy of the large value: \(insert.bytes), with it \(holding)")
            #expect(throws: SQLiteFailure.self) { try handle.run("SELECT * FROM apps WHERE id = ?1 AND body = ?2", ["app-1"]) { _ in } }
        }
        await pool.close()
    }

    @Test func aClosedPoolRefusesWork() async throws {
        let pool = try await SQLitePool.open(path: nil, readers: 0, logger: Logger(label: "test"))
        await pool.close()
        await #expect(throws: (any Error).self) { try await pool.withWriter { try await $0.sql().raw("SELECT 1").run() } }
    }
}

extension SQLiteHandle {
    /// The kept statement for `sql`, how often it was prepared anew and the bytes it holds (with its values).
    func kept(_ sql: String) -> (pointer: OpaquePointer, reprepares: Int32, bytes: Int32)? {
        guard let pointer = self.statements[sql]?.pointer else { return nil }
        return (
            pointer, sqlite_nio_sqlite3_stmt_status(pointer, SQLITE_STMTSTATUS_REPREPARE, 0),
            sqlite_nio_sqlite3_stmt_status(pointer, SQLITE_STMTSTATUS_MEMUSED, 0)
        )
    }
}
