import Foundation
import SQLKit
import TernCore
import Testing

@testable import TernHTTP
@testable import TernStorage
@testable import TernTesting

/// A claim decides what is due by the time it runs, not by when it was asked for.
@Suite struct ClaimTests {
    /// On SQLite a claim waits for the one writer. A delivery that falls due in the transaction it waits behind is
    /// due when the claim runs, and the claim takes it (a time taken before the wait missed it until the next claim).
    @Test func aClaimWaitingForTheWriterTakesWhatFellDueMeanwhile() async throws {
        // The API alone: no worker of its own to claim the delivery first.
        try await withTern(.sqlite, configure: { $0.role = .api }) { api in
            let (key, app) = try await api.shop()
            _ = try await api.endpoint(key, app: app, url: "http://127.0.0.1:9/hook")
            // Held back an hour: only the transaction below makes it due.
            let published = try await api.publish(key, app: app, deliverAt: Timestamp.now().adding(seconds: 3_600))
            #expect(published.status == 202, "\(published.text)")
            let messageID = try #require(published.string("id"))
            let claimed = try await api.withStore { store in
                async let fellDue: Void = store.database.write { sql in
                    // Holds the writer while the claim below starts and waits for it; the delivery falls due after.
                    try await Task.sleep(for: .milliseconds(300))
                    try await sql.raw(
                        "UPDATE deliveries SET next_attempt_at = \(bind: Timestamp.now().microseconds) WHERE message_id = \(bind: messageID)"
                    ).run()
                }
                try await Task.sleep(for: .milliseconds(100))
                let jobs = try await store.claimDeliveries(limit: 10, leaseSeconds: 60)
                try await fellDue
                return jobs.map(\.messageID)
            }
            #expect(claimed == [messageID])
        }
    }

    /// On PostgreSQL the workers' statements run prepared on a connection of their own, each on one generic plan:
    /// claiming again does not plan again (with PostgreSQL's default the first five calls would plan anew, custom).
    @Test(.enabled(if: Backend.available.contains(.postgres), "needs TERN_TEST_POSTGRES_URL"))
    func workersStatementsArePlannedOnceOnTheirOwnConnection() async throws {
        try await withTern(.postgres, configure: { $0.role = .api }) { api in
            let (key, app) = try await api.shop()
            _ = try await api.endpoint(key, app: app, url: "http://127.0.0.1:9/hook")
            for _ in 0..<3 { #expect(try await api.publish(key, app: app).status == 202) }
            let (claimed, plans) = try await api.withStore { store in
                var claimed = 0
                for _ in 0..<3 { claimed += try await store.claimDeliveries(limit: 1, leaseSeconds: 60).count }
                _ = try await store.nextDueTime()
                _ = try await store.nextDueTime()
                let plans = try await store.database.onWorkersConnection { _ in
                    "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements WHERE statement NOT LIKE '%pg_prepared%'"
                }.rows.map { row in
                    let statement = try row.decode(column: "statement", as: String.self)
                    let kind = statement.contains("UPDATE deliveries") ? "claim" : statement.contains("AS due") ? "next due" : statement
                    return
                        "\(kind): \(try row.decode(column: "generic_plans", as: Int64.self)) generic, \(try row.decode(column: "custom_plans", as: Int64.self)) custom"
                }
                return (claimed, plans.sorted())
            }
            #expect(claimed == 3)
            #expect(plans == ["claim: 3 generic, 0 custom", "next due: 2 generic, 0 custom"])
        }
    }

    /// The workers' statements, kept prepared, get their values as sent (quotes and backslashes among them), and a
    /// statement prepared once runs again with other values.
    @Test(.enabled(if: Backend.available.contains(.postgres), "needs TERN_TEST_POSTGRES_URL"))
    func workersStatementsGetTheirValuesAsSent() async throws {
        try await withTern(.postgres, configure: { $0.role = .api }) { api in
            let values: [(String, Int64, Bool)] = [(#"it's a \ and E'\'' -- ;"#, Int64.min + 1, true), ("ünïcode ✓", 0, false)]
            for (text, number, flag) in values {
                let row = try await api.withStore { store in
                    try await store.database.onWorkersConnection { _ in
                        "SELECT CAST(\(bind: text) AS text) AS t, CAST(\(bind: number) AS bigint) AS n, CAST(\(bind: flag) AS boolean) AS f"
                    }.rows.first
                }
                let read = try #require(row)
                #expect(try read.decode(column: "t", as: String.self) == text)
                #expect(try read.decode(column: "n", as: Int64.self) == number)
                #expect(try read.decode(column: "f", as: Bool.self) == flag)
            }
        }
    }
}

/// A publish that wrote its deliveries without holding the endpoints it read (PostgreSQL's single statement) checks
/// them again as it writes: an endpoint disabled since fan-out read it gets no delivery, which would otherwise wait
/// for ever behind a disabled endpoint instead of being in the dead-letter queue with the others.
@Suite struct PublishGuardTests {
    @Test(arguments: Backend.available)
    func deliveriesAreNotWrittenForAnEndpointDisabledSinceFanOut(_ backend: Backend) async throws {
        try await withTern(backend, configure: { $0.role = .api }) { api in
            let (key, app) = try await api.shop()
            let (kept, _) = try await api.endpoint(key, app: app, url: "http://127.0.0.1:9/kept")
            let (disabled, _) = try await api.endpoint(key, app: app, url: "http://127.0.0.1:9/disabled")
            let published = try await api.publish(key, app: app)
            let messageID = try #require(published.string("id"))
            let written = try await api.withStore { store in
                let database = store.database
                return try await database.write { sql in
                    try await sql.raw("UPDATE endpoints SET status = 'disabled' WHERE id = \(bind: disabled)").run()
                    let row = try #require(try await sql.raw("SELECT * FROM messages WHERE id = \(bind: messageID)").first())
                    let message = try Store.message(row)
                    let organizationID = try row.string("organization_id")
                    let rows = [(message, kept, organizationID), (message, disabled, organizationID)]
                    let insert = try #require(
                        Store.deliveryInsert(rows, trigger: .manual, now: .now(), lockingEndpoints: database.shareJoinedEndpointsClause, sql))
                    try await sql.execute(sql: insert.0) { _ in }
                    return try await sql.raw(
                        "SELECT endpoint_id FROM deliveries WHERE message_id = \(bind: messageID) AND next_trigger = 'manual'"
                    ).all().map { try $0.string("endpoint_id") }
                }
            }
            #expect(written == [kept])
        }
    }
}

/// A success recorded after its lease ran out (another worker claimed the delivery again meanwhile) is counted and its
/// attempt kept, but the delivery's status is its holder's to write; a delivery deleted meanwhile gets nothing.
@Suite struct RecordSuccessTests {
    @Test(arguments: Backend.available)
    func aSuccessAfterItsLeaseRanOutIsCountedAndTheDeliveryLeftToItsHolder(_ backend: Backend) async throws {
        try await withTern(backend, configure: { $0.role = .api }) { api in
            let (key, app) = try await api.shop()
            _ = try await api.endpoint(key, app: app, url: "http://127.0.0.1:9/one")
            _ = try await api.endpoint(key, app: app, url: "http://127.0.0.1:9/two")
            let messageID = try #require(try await api.publish(key, app: app).string("id"))
            let (outcomes, rows, attempts) = try await api.withStore { store in
                // A lease of no time: claimed again at once, as if the first worker had stalled past it.
                let first = try await store.claimDeliveries(limit: 10, leaseSeconds: 0)
                let second = try await store.claimDeliveries(limit: 10, leaseSeconds: 60)
                #expect(first.count == 2 && second.count == 2)
                let deleted = try #require(first.first { $0.url.hasSuffix("/two") }).deliveryID
                try await store.database.write { sql in try await sql.raw("DELETE FROM deliveries WHERE id = \(bind: deleted)").run() }
                func success(_ job: DeliveryJob) -> AttemptRecord {
                    AttemptRecord(
                        job: job, requestHeaders: [:], statusCode: 200, responseBody: "ok", durationMS: 1, error: nil, outcome: .success,
                        at: .now())
                }
                let stale = try await store.recordAttempts(first.map(success))
                let held = try await store.recordAttempts(second.filter { $0.deliveryID != deleted }.map(success))
                return try await store.database.read { sql in
                    let rows = try await sql.raw(
                        "SELECT status, attempt_count, lease_token FROM deliveries WHERE message_id = \(bind: messageID)"
                    ).all().map { (try $0.string("status"), try $0.int("attempt_count"), try $0.optionalString("lease_token")) }
                    let attempts = try await sql.raw("SELECT delivery_id FROM attempts WHERE message_id = \(bind: messageID)").all()
                        .map { try $0.string("delivery_id") }
                    return (stale.map(\.status) + held.map(\.status), rows, attempts)
                }
            }
            // The stale worker's two successes change no status; the holder's marks the delivery delivered.
            #expect(outcomes == [nil, nil, .delivered])
            #expect(rows.count == 1)
            #expect(rows.first?.0 == "delivered" && rows.first?.1 == 2 && rows.first?.2 == nil, "\(rows)")
            // Both attempts of the delivery that still exists are kept; none for the deleted one.
            #expect(attempts.count == 2 && Set(attempts).count == 1)
        }
    }

    /// A batch of records as the worker sends them: first successes are written with one statement of their own (on
    /// PostgreSQL), a FIFO line's head and a failure in a transaction; each gets its own result and one attempt row, and
    /// the delivered head lets the next of its line go.
    @Test(arguments: Backend.available)
    func firstSuccessesALinesHeadAndAFailureEachRecordedOnce(_ backend: Backend) async throws {
        try await withTern(backend, configure: { $0.role = .api }) { api in
            let (orgID, _) = try await api.organization(plan: "scale")
            let key = try await api.createKey(orgID: orgID)
            let app = try await api.application(key, extra: #", "allow_unregistered_event_types": true"#)
            _ = try await api.endpoint(key, app: app, url: "http://127.0.0.1:9/plain")
            let (lineEndpoint, _) = try await api.endpoint(key, app: app, url: "http://127.0.0.1:9/line", extra: #", "ordering": "fifo""#)
            let first = try #require(try await api.publish(key, app: app).string("id"))
            let second = try #require(try await api.publish(key, app: app).string("id"))
            let (results, attempts, nextInLine) = try await api.withStore { store in
                let jobs = try await store.claimDeliveries(limit: 10, leaseSeconds: 60)
                // Both plain deliveries and the line's head; the line's second waits behind it.
                #expect(jobs.count == 3)
                let records = jobs.map { job in
                    let fails = job.url.hasSuffix("/plain") && job.messageID == second
                    return AttemptRecord(
                        job: job, requestHeaders: ["content-type": "application/json"], statusCode: fails ? 500 : 200, responseBody: "ok",
                        durationMS: 3, error: nil, outcome: fails ? .failure(retryAfterSeconds: nil) : .success, at: .now())
                }
                let results = await store.recordAttemptsEach(records)
                let outcomes = try zip(jobs, results).map { job, result in (job.url, job.messageID, try result.get().status) }
                return try await store.database.read { sql in
                    let attempts = try await sql.raw(
                        "SELECT delivery_id, status_code, request_headers FROM attempts WHERE message_id IN (\(bind: first), \(bind: second))"
                    ).all().map { (try $0.string("delivery_id"), try $0.int("status_code"), try $0.string("request_headers")) }
                    let next = try await sql.raw(
                        "SELECT next_attempt_at FROM deliveries WHERE endpoint_id = \(bind: lineEndpoint) AND message_id = \(bind: second)"
                    ).all().map { try $0.int("next_attempt_at") }
                    return (outcomes, attempts, next)
                }
            }
            for (url, message, status) in results {
                #expect(status == (url.hasSuffix("/plain") && message == second ? .failed : .delivered), "\(url) \(message)")
            }
            #expect(attempts.count == 3 && Set(attempts.map(\.0)).count == 3, "\(attempts)")
            #expect(attempts.allSatisfy { $0.2.contains("application/json") }, "\(attempts)")
            #expect(attempts.map(\.1).sorted() == [200, 200, 500])
            // Released: due now, no longer waiting in line.
            #expect(nextInLine.count == 1 && nextInLine[0] < Store.waitingInLine, "\(nextInLine)")
        }
    }
}

extension Store {
    /// `recordAttemptsEach`, failing as a whole when any record's write failed (the tests' shorthand).
    func recordAttempts(_ records: [AttemptRecord]) async throws -> [RecordedAttempt] {
        try await self.recordAttemptsEach(records).map { try $0.get() }
    }
}
