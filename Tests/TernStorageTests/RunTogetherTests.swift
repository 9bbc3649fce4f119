import Foundation
import Logging
import SQLKit
import Synchronization
import Testing

@testable import TernStorage
@testable import TernTesting

/// Statements run together (one statement on PostgreSQL) write in order as if run one by one: a row may reference
/// one written by an earlier part, a group is split before 30,000 binds, and a part that fails writes nothing.
@Suite struct RunTogetherTests {
    @Test(arguments: Backend.available)
    func partsReferenceEarlierPartsAndAFailureWritesNothing(_ backend: Backend) async throws {
        try await backend.withFreshDatabase { database in
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
            _ = try await database.write { sql in try await database.runTogether(inserts(1...100, sql) + inserts(101...200, sql), sql) }
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

    /// A write whose statements notify workers (a publish's) tells other processes' listeners once it commits, also
    /// when its statements are split into groups, and writes what it runs. Its own listener skips it: its own workers
    /// are rung in process.
    @Test(arguments: Backend.available)
    func statementsThatNotifyWakeOtherListenersAtCommit(_ backend: Backend) async throws {
        let url = try await backend.freshDatabaseURL()
        let database = try await Database.forTest(url)
        let other = try await Database.forTest(url)
        try await database.whileRunning {
            try await other.whileRunning {
                _ = try await database.write { sql in try await sql.raw("CREATE TABLE together_notes (id BIGINT PRIMARY KEY)").run() }
                let own = Mutex(0)
                let elsewhere = Mutex(0)
                let listening = Task { await database.listenForDeliveries { own.withLock { $0 += 1 } } }
                let listeningElsewhere = Task { await other.listenForDeliveries { elsewhere.withLock { $0 += 1 } } }
                defer {
                    listening.cancel()
                    listeningElsewhere.cancel()
                }
                // Each listener hears once when it starts listening (for what was queued before).
                if backend == .postgres { try await Self.waitUntil { own.withLock { $0 } >= 1 && elsewhere.withLock { $0 } >= 1 } }
                let (ownBefore, elsewhereBefore) = (own.withLock { $0 }, elsewhere.withLock { $0 })
                try await database.writeQueuing(notifiesItself: true) { sql -> ((), queued: Bool) in
                    let notes = (1...20).reduce(into: sql.insert(into: "together_notes").columns("id")) { $0 = $0.values(SQLBind($1)) }
                    let more = (21...40).reduce(into: sql.insert(into: "together_notes").columns("id")) { $0 = $0.values(SQLBind($1)) }
                    try await database.runTogether([(notes.insert, 20_000), (more.insert, 20_000)], notifyingWorkers: true, sql)
                    return ((), queued: true)
                }
                #expect(database.deliveriesQueued.takeRing())
                let count = try await database.read { sql in try await sql.raw("SELECT COUNT(*) AS n FROM together_notes").first() }
                #expect(try count?.decode(column: "n", as: Int.self) == 40)
                if backend == .postgres {
                    try await Self.waitUntil { elsewhere.withLock { $0 } > elsewhereBefore }
                    // Sent to both listeners at once; the other has heard it, so the own listener had it too.
                    try await Task.sleep(for: .milliseconds(200))
                    #expect(own.withLock { $0 } == ownBefore)
                } else {
                    // SQLite has no other processes to tell: the workers of this one are woken after the commit.
                    #expect(own.withLock { $0 } + elsewhere.withLock { $0 } == 0)
                }
            }
        }
    }

    static func waitUntil(_ condition: @Sendable () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("timed out")
                return
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}
