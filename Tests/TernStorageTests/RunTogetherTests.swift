import Foundation
import Logging
import SQLKit
import Testing

@testable import TernStorage
@testable import TernTesting

/// Statements run together (one statement on PostgreSQL) write in order as if run one by one: a row may reference
/// one written by an earlier part, a group is split before 30,000 binds, and a part that fails writes nothing.
@Suite struct RunTogetherTests {
    @Test(arguments: Backend.available)
    func partsReferenceEarlierPartsAndAFailureWritesNothing(_ backend: Backend) async throws {
        let database = try await Database.open(try DatabaseLocation(url: try await backend.freshDatabaseURL()), logger: Logger(label: "test"))
        try await database.whileRunning {
            try await database.write { sql in
                try await sql.raw("CREATE TABLE together_parents (id BIGINT PRIMARY KEY)").run()
                try await sql.raw("CREATE TABLE together_children (id BIGINT PRIMARY KEY, parent BIGINT NOT NULL REFERENCES together_parents (id))")
                    .run()
            }
            // Parents, then children that reference them; 12,000 binds counted for each, so that the four are two groups.
            @Sendable func inserts(_ range: ClosedRange<Int>, _ sql: any SQLDatabase) -> [(any SQLExpression, binds: Int)] {
                let parents = range.reduce(into: sql.insert(into: "together_parents").columns("id")) { $0 = $0.values(SQLBind($1)) }
                let children = range.reduce(into: sql.insert(into: "together_children").columns("id", "parent")) {
                    $0 = $0.values(SQLBind($1 * 10), SQLBind($1))
                }
                return [(parents.insert, 12_000), (children.insert, 12_000)]
            }
            try await database.write { sql in try await database.runTogether(inserts(1...100, sql) + inserts(101...200, sql), sql) }
            let counts = try await database.read { sql in
                try await sql.raw("SELECT (SELECT COUNT(*) FROM together_parents) AS p, (SELECT COUNT(*) FROM together_children) AS c").first()
            }
            #expect(try counts?.decode(column: "p", as: Int.self) == 200 && counts?.decode(column: "c", as: Int.self) == 200)

            // A last statement's rows come back; the parts before it have written (on PostgreSQL, in the same statement).
            let returned = try await database.write { sql in
                let child = sql.insert(into: "together_children").columns("id", "parent").values(SQLBind(5_000), SQLBind(1))
                return try await database.runTogether(
                    [(child.insert, binds: 2)], returning: SQLQueryString("SELECT id FROM together_parents WHERE id <= 3 ORDER BY id"), sql
                ).map { try $0.decode(column: "id", as: Int.self) }
            }
            #expect(returned == [1, 2, 3])
            let child = try await database.read { sql in try await sql.raw("SELECT parent FROM together_children WHERE id = 5000").first() }
            #expect(try child?.decode(column: "parent", as: Int.self) == 1)

            // A child without its parent: the whole write fails and keeps nothing, the parts before it included.
            await #expect(throws: (any Error).self) {
                try await database.write { sql in
                    let orphan = sql.insert(into: "together_children").columns("id", "parent").values(SQLBind(99_999), SQLBind(424_242))
                    try await database.runTogether(inserts(201...210, sql) + [(orphan.insert, 2)], sql)
                }
            }
            let after = try await database.read { sql in try await sql.raw("SELECT COUNT(*) AS p FROM together_parents").first() }
            #expect(try after?.decode(column: "p", as: Int.self) == 200)
        }
    }
}
