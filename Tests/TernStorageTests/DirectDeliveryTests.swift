import Foundation
import SQLKit
import Synchronization
import TernCore
import Testing

@testable import TernHTTP
@testable import TernStorage
@testable import TernTesting

/// A worker's side of direct delivery that keeps what it is handed: `room` places, none freed.
final class KeepingTaker: DirectDeliveryTaker {
    let state: Mutex<(room: Int, jobs: [DeliveryJob], givenBack: Int)>
    let leaseSeconds = 60

    init(room: Int) { self.state = Mutex((room, [], 0)) }

    func reserve(upTo count: Int) -> Int {
        self.state.withLock { state in
            let granted = min(count, state.room)
            state.room -= granted
            return granted
        }
    }

    func giveBack(_ count: Int) {
        self.state.withLock { state in
            state.room += count
            state.givenBack += count
        }
    }

    func take(_ jobs: [DeliveryJob]) { self.state.withLock { $0.jobs += jobs } }

    var jobs: [DeliveryJob] { self.state.withLock { $0.jobs } }
    var room: Int { self.state.withLock { $0.room } }
}

/// A publish hands the deliveries a claim would take at once to the process's worker, written as that claim would
/// leave them; the others wait for a claim.
@Suite struct DirectDeliveryTests {
    @Test(arguments: Backend.available)
    func aPublishHandsOverWhatAClaimWouldSendAtOnceAsFarAsTheWorkerHasRoom(_ backend: Backend) async throws {
        // The API alone, so that no worker takes deliveries: the test's taker stands in for one.
        try await withTern(backend, configure: { $0.role = .api }) { api in
            let (key, app) = try await api.shop()
            let (active, _) = try await api.endpoint(key, app: app, url: "http://127.0.0.1:9/active", extra: #", "headers": {"x-shop": "1"}"#)
            let (paused, _) = try await api.endpoint(key, app: app, url: "http://127.0.0.1:9/paused", extra: #", "status": "paused""#)
            let (limited, _) = try await api.endpoint(key, app: app, url: "http://127.0.0.1:9/limited", extra: #", "rate_limit": {"per_second": 5}"#)
            let (ordered, _) = try await api.endpoint(key, app: app, url: "http://127.0.0.1:9/fifo", extra: #", "ordering": "fifo""#)
            let organization = try await api.withDatabase { sql in
                try #require(try await sql.raw("SELECT organization_id FROM applications WHERE id = \(bind: app)").first())
                    .decode(column: "organization_id", as: String.self)
            }
            let taker = KeepingTaker(room: 1)
            // Published through a store of its own, whose database the taker registers with as a worker would.
            let (first, second, later) = try await api.withStore { store in
                @Sendable func publish(_ payload: String, deliverAt: Timestamp? = nil) async throws -> String {
                    let input = PublishInput(
                        eventType: "order.created", tenantID: "tenant-1", eventID: nil, payload: payload, allowUnregisteredType: true,
                        deliverAt: deliverAt)
                    return try await store.publish(organizationID: organization, applicationID: app, input).message.id
                }
                store.database.directDelivery.register(taker)
                let first = try await publish(#"{"n": 1}"#)
                let second = try await publish(#"{"n": 2}"#)
                store.database.directDelivery.register(KeepingTaker(room: 10))
                let later = try await publish(#"{"n": 3}"#, deliverAt: Timestamp.now().adding(seconds: 3_600))
                store.database.directDelivery.register(nil)
                return (first, second, later)
            }

            // One place: the first message's delivery to the active endpoint, and nothing else.
            let jobs = taker.jobs
            #expect(jobs.count == 1 && taker.room == 0)
            let job = try #require(jobs.first)
            #expect(job.messageID == first && job.endpointID == active && job.url == "http://127.0.0.1:9/active")
            #expect(job.payload == #"{"n": 1}"# && job.eventType == "order.created" && job.tenantID == "tenant-1")
            #expect(job.headers == ["x-shop": "1"] && job.secrets.count == 1 && job.secrets[0].hasPrefix("whsec_"))
            #expect(job.attemptCount == 0 && job.leaseExpiries == 0 && job.trigger == .scheduled && !job.operational)

            let rows = try await api.withDatabase { sql in
                try await sql.raw(
                    "SELECT id, message_id, endpoint_id, status, lease_token, next_attempt_at FROM deliveries ORDER BY created_at, endpoint_id"
                ).all().map { row in
                    (
                        id: try row.decode(column: "id", as: String.self), message: try row.decode(column: "message_id", as: String.self),
                        endpoint: try row.decode(column: "endpoint_id", as: String.self), status: try row.decode(column: "status", as: String.self),
                        token: try row.decode(column: "lease_token", as: String?.self),
                        due: try row.decode(column: "next_attempt_at", as: Int64?.self)
                    )
                }
            }
            #expect(rows.count == 12, "three messages to four endpoints: \(rows)")
            let handed = try #require(rows.first { $0.id == job.deliveryID })
            // As a claim leaves a row: delivering, under the job's lease, due again when the lease ends.
            #expect(handed.message == first && handed.endpoint == active && handed.status == "delivering" && handed.token == job.leaseToken)
            let leaseEnd = try #require(handed.due)
            #expect(abs(leaseEnd - Timestamp.now().adding(seconds: 60).microseconds) < 30_000_000, "\(leaseEnd)")
            // Everything else waits for a claim: the other endpoints, the second message (no room left), the later one.
            for row in rows where row.id != job.deliveryID {
                #expect(row.status == "pending" && row.token == nil, "\(row)")
            }
            #expect(Set(rows.filter { $0.message == second }.map(\.endpoint)) == [active, paused, limited, ordered])
            #expect(rows.filter { $0.message == later }.allSatisfy { $0.status == "pending" })
            // What a claim takes now is the rest of what is due: not the handed-over row, whose lease holds it.
            let claimed = try await api.withStore { store in try await store.claimDeliveries(limit: 64, leaseSeconds: 60) }
            #expect(!claimed.contains { $0.deliveryID == job.deliveryID })
            #expect(claimed.contains { $0.messageID == second && $0.endpointID == active })
        }
    }

    /// End to end: a process whose worker runs sends its own publishes' deliveries without claiming them, and records
    /// them as claimed ones (delivered, one attempt, the lease gone).
    @Test(arguments: Backend.available)
    func aProcessWithAWorkerSendsItsOwnPublishesWithoutClaimingThem(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        try await withTern(backend) { api in
            let (key, app) = try await api.shop()
            _ = try await api.endpoint(key, app: app, url: receiver.url("/hook"))
            // The process's counter (shared by the tests running beside this one, so it is read as "grew").
            @Sendable func handedOver() async throws -> Int {
                metricValue("tern_direct_deliveries_total", in: try await api.get("/metrics", key: nil).text)
            }
            let before = try await handedOver()
            var messages: [String] = []
            // The worker takes none until its first claim has run: published until one is handed over.
            let handed = try await eventually(timeout: .seconds(20)) {
                messages.append(try #require(try await api.publish(key, app: app).string("id")))
                _ = await receiver.waitFor(messages.count)
                return try await handedOver() > before
            }
            #expect(handed)
            let last = try #require(messages.last)
            let delivery = try #require(try await api.deliveries(key, app: app, message: last).first)
            let deliveryID = try #require(delivery["id"] as? String)
            let recorded = try await api.waitForDelivery(key, app: app, deliveryID, status: "delivered")
            #expect(recorded["attempt_count"] as? Int == 1, "\(recorded)")
            let (token, expiries) = try await api.withDatabase { sql in
                let row = try #require(try await sql.raw("SELECT lease_token, lease_expiries FROM deliveries WHERE id = \(bind: deliveryID)").first())
                return (try row.decode(column: "lease_token", as: String?.self), try row.decode(column: "lease_expiries", as: Int.self))
            }
            #expect(token == nil && expiries == 0)
            #expect(receiver.received.filter { $0.messageID == last }.count == 1)
        }
    }

    /// A sent delivery awaiting its record gives its place to the next one, up to `recordingPerPlace` awaiting per
    /// place; beyond that it keeps its place until recorded. Records are held back by a lock on `attempts`, which
    /// publishes do not write (PostgreSQL: SQLite's one writer would hold the publishes back too). With places freed
    /// only at the record, 2 places would carry 2 deliveries here; with them freed at the send, 2 × (1 + 2).
    @Test(.enabled(if: Backend.available.contains(.postgres), "needs TERN_TEST_POSTGRES_URL"))
    func aSentDeliveryAwaitingItsRecordGivesItsPlaceToTheNext() async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        try await withTern(
            .postgres,
            configure: {
                $0.deliverySettings.concurrency = 2
                $0.deliverySettings.recordingPerPlace = 2
            }
        ) { api in
            let (key, app) = try await api.shop()
            let (endpoint, _) = try await api.endpoint(key, app: app, url: receiver.url("/hook"))
            // Once a first delivery is recorded the worker's first claim has run, and it takes publishes' deliveries.
            let first = try #require(try await api.publish(key, app: app).string("id"))
            let firstDelivery = try #require(try await api.deliveries(key, app: app, message: first).first?["id"] as? String)
            _ = try await api.waitForDelivery(key, app: app, firstDelivery, status: "delivered")

            let sentWhileHeld = try await api.withDatabase { sql in
                try await sql.raw("LOCK TABLE attempts IN SHARE MODE").run()
                for _ in 0..<10 { #expect(try await api.publish(key, app: app).status == 202) }
                _ = await receiver.waitFor(1 + 6, timeout: .seconds(10))
                // Time for any delivery beyond the six to arrive, well within the database's 15 s per operation.
                try await Task.sleep(for: .seconds(1))
                return receiver.received.count - 1
            }
            #expect(sentWhileHeld == 6, "2 places, each freed for 2 more sent deliveries awaiting their record")

            // Released: every record lands, the deliveries left queued are claimed, each sent once.
            let delivered = try await eventually(timeout: .seconds(30)) {
                let counts = try await api.withDatabase { sql in
                    try #require(
                        try await sql.raw(
                            """
                            SELECT COUNT(*) AS total, SUM(CASE WHEN status = 'delivered' AND attempt_count = 1 THEN 1 ELSE 0 END) AS delivered
                            FROM deliveries WHERE endpoint_id = \(bind: endpoint)
                            """
                        ).first())
                }
                return try counts.decode(column: "total", as: Int.self) == 11 && counts.decode(column: "delivered", as: Int?.self) == 11
            }
            #expect(delivered)
            #expect(receiver.received.count == 11 && Set(receiver.received.map(\.messageID)).count == 11)
        }
    }

    /// Room is given back when the write fails, and when the batch hands over fewer deliveries than it reserved.
    @Test func roomIsGivenBackWhenTheWriteFailsOrNeedsLess() async throws {
        struct Failed: Error {}
        let taker = KeepingTaker(room: 5)
        let batch = DirectBatch(taker: taker, secretBox: try #require(SecretBox(keyBase64: testEncryptionKey)))
        await #expect(throws: Failed.self) {
            try await DirectBatch.run(batch) {
                #expect(batch.reserve(upTo: 3) == 3)
                // Tried again (as a write may be): what the first try reserved is given back first.
                #expect(batch.reserve(upTo: 4) == 4)
                throw Failed()
            }
        }
        #expect(taker.room == 5 && taker.jobs.isEmpty)
        try await DirectBatch.run(batch) {
            #expect(batch.reserve(upTo: 3) == 3)
            batch.hand([])
        }
        #expect(taker.room == 5 && taker.jobs.isEmpty && taker.state.withLock { $0.givenBack } == 3 + 4 + 3)
    }
}
