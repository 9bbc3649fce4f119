import Foundation
import SQLKit
import Testing

@testable import TernStorage
@testable import TernTesting

/// An insert whose text is kept per row count writes what SQLKit's insert writes, with the same text and values, on
/// its own, inside a statement run together with others (first, after the WITH's text, and after another part's
/// values), and past the row count it keeps texts for.
@Suite struct RowsInsertTests {
    @Test(arguments: Backend.available)
    func writesWhatSQLKitsInsertWritesWithItsText(_ backend: Backend) async throws {
        try await backend.withFreshDatabase { database in
            let shape = RowsInsert.Shape(table: "shaped", columns: ["id", "name", "size"])
            @Sendable func values(_ ids: ClosedRange<Int>) -> [any Encodable & Sendable] {
                ids.flatMap { id -> [any Encodable & Sendable] in [Int64(id), id.isMultiple(of: 2) ? "even-\(id)" : String?.none, Int64(id * 10)] }
            }
            try await database.write { sql in
                try await sql.raw("CREATE TABLE shaped (id BIGINT PRIMARY KEY, name TEXT, size BIGINT NOT NULL)").run()
                var kept = SQLSerializer(database: sql)
                RowsInsert(shape, values: values(1...3)).serialize(to: &kept)
                var built = SQLSerializer(database: sql)
                shape.built(values(1...3), sql).serialize(to: &built)
                #expect(kept.sql == built.sql && kept.binds.count == 9)
                var again = SQLSerializer(database: sql)
                RowsInsert(shape, values: values(4...6)).serialize(to: &again)
                #expect(again.sql == built.sql, "the kept text")

                try await sql.execute(sql: RowsInsert(shape, values: values(1...3))) { _ in }
                try await sql.execute(sql: RowsInsert(shape, values: values(4...6))) { _ in }
                let first = SQLQueryString("INSERT INTO shaped (id, name, size) VALUES (\(bind: 7), \(bind: "seven"), \(bind: 70))")
                _ = try await database.runTogether([(first, 3), (RowsInsert(shape, values: values(8...9)), 6)], sql)
                // First in a WITH, after its text and before any value: the kept text, numbered from the first value.
                let keptBefore = shape.keptTexts
                var inWith = SQLSerializer(database: sql)
                SQLList([SQLRaw("WITH w0 AS ("), RowsInsert(shape, values: values(1...5)), SQLRaw(") SELECT 1")], separator: SQLRaw(""))
                    .serialize(to: &inWith)
                var builtInWith = SQLSerializer(database: sql)
                SQLList([SQLRaw("WITH w0 AS ("), shape.built(values(1...5), sql), SQLRaw(") SELECT 1")], separator: SQLRaw(""))
                    .serialize(to: &builtInWith)
                #expect(inWith.sql == builtInWith.sql && inWith.binds.count == 15)
                #expect(shape.keptTexts == keptBefore + 1, "the text of 5 rows made and kept inside the WITH")
                let last = SQLQueryString("INSERT INTO shaped (id, name, size) VALUES (\(bind: 200), \(bind: "two hundred"), \(bind: 2000))")
                _ = try await database.runTogether([(RowsInsert(shape, values: values(201...202)), 6), (last, 3)], sql)
                let many = 10...(10 + RowsInsert.keptRows)
                try await sql.execute(sql: RowsInsert(shape, values: values(many))) { _ in }
            }
            let rows = try await database.read { sql in try await sql.raw("SELECT id, name, size FROM shaped ORDER BY id").all() }
            let read = try rows.map {
                try ($0.decode(column: "id", as: Int.self), $0.decode(column: "name", as: String?.self), $0.decode(column: "size", as: Int.self))
            }
            #expect(read.count == 13 + RowsInsert.keptRows)
            for (id, name, size) in read {
                let named = id == 7 ? "seven" : id == 200 ? "two hundred" : id.isMultiple(of: 2) ? "even-\(id)" : nil
                #expect(name == named && size == id * 10, "row \(id)")
            }
        }
    }
}
