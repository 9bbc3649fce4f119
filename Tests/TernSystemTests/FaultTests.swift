import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import SQLKit
import Synchronization
import TernCore
import TernStorage
import Testing

@testable import TernTesting

/// Faults while events flow: processes killed with SIGKILL. Every event that got a 202 is delivered, nothing is
/// half-stored, and duplicates happen only where a lease expired. Each prints its figures (docs/reliability.md).
@Suite(.serialized) struct FaultTests {
    static func consistency(_ api: API) async throws -> (messages: Int, orphans: Int) {
        try await api.withDatabase { sql in
            let messages = try await sql.raw("SELECT COUNT(*) AS n FROM messages").first()?.decode(column: "n", as: Int.self) ?? 0
            // One all-events endpoint: every message has exactly one delivery.
            let orphans =
                try await sql.raw(
                    """
                    SELECT COUNT(*) AS n FROM messages m WHERE (SELECT COUNT(*) FROM deliveries d WHERE d.message_id = m.id) <> 1
                    """
                ).first()?.decode(column: "n", as: Int.self) ?? 0
            return (messages, orphans)
        }
    }

    /// A fresh database of `backend` with an application and one endpoint at `url`, set up through an API-only Tern
    /// that has ended by the time this returns; returns (database URL, key, application id).
    static func preparedDatabase(_ backend: Backend, endpointURL url: String) async throws -> (String, String, String) {
        let databaseURL = try await backend.freshDatabaseURL()
        try await withTern(backend, databaseURL: databaseURL, configure: { $0.role = .api }) { api in
            let (k, a) = try await WorkerProcessTests.prepare(api, url: url)
            try await api.withDatabase { sql in try await sql.raw("UPDATE organizations SET name = \(bind: k + " " + a)").run() }
        }
        let names = try await API.names(databaseURL)
        return (databaseURL, names[0], names[1])
    }

    /// Publishes an `order.created` event for tenant-1 with `payload` to the Tern on `port`, over real HTTP with a
    /// 5 s timeout; returns the status and, for a 202, the message id, or nil when no answer came.
    /// The publishers' client: enough connections that a publish every 5 ms does not queue behind slow answers in the
    /// client (`HTTPClient.shared` keeps 8 per host, so a backlog from the outage never drained and every later publish
    /// timed out in the client's queue while the server stored it).
    static let publisher = HTTPClient(
        eventLoopGroupProvider: .singleton,
        configuration: .init(connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 256))
    )

    static func publish(port: Int, key: String, app: String, payload: String) async -> (status: Int, id: String?)? {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/applications/\(app)/events")
        request.method = .POST
        request.headers.add(name: "authorization", value: "Bearer \(key)")
        request.headers.add(name: "content-type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: #"{"event_type": "order.created", "tenant_id": "tenant-1", "payload": \#(payload)}"#))
        guard let response = try? await Self.publisher.execute(request, timeout: .seconds(5)) else { return nil }
        let body = (try? await response.body.collect(upTo: 1 << 16)).map { String(buffer: $0) } ?? ""
        let id = response.status == .accepted ? (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])?["id"] as? String : nil
        return (Int(response.status.code), id)
    }

    @Test(arguments: Backend.available)
    func workersKilledRepeatedlyWhileFiveThousandEventsFlowLoseNothing(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        receiver.script("/hook", then: .init(status: 200, delay: .milliseconds(2)))
        let databaseURL = try await backend.freshDatabaseURL()
        try await withTern(backend, databaseURL: databaseURL, configure: { $0.role = .api }) { api in
            let (key, app) = try await WorkerProcessTests.prepare(api, url: receiver.url("/hook"))
            let total = 5_000
            let messages = try await withThrowingTaskGroup(of: [String].self) { group in
                for client in 0..<8 {
                    group.addTask {
                        var ids: [String] = []
                        for index in stride(from: client, to: total, by: 8) {
                            ids.append(try #require(try await api.publish(key, app: app, payload: #"{"n": \#(index)}"#).string("id")))
                        }
                        return ids
                    }
                }
                return try await group.reduce(into: [String]()) { $0 += $1 }
            }
            var kills = 0
            for _ in 0..<3 {
                let worker = try WorkerProcess.start(databaseURL: databaseURL, leaseSeconds: 2, concurrency: 32)
                let before = receiver.received.count
                _ = await eventually(timeout: .seconds(30)) { receiver.received.count >= before + 600 }
                await worker.kill()
                kills += 1
            }
            let survivor = try WorkerProcess.start(databaseURL: databaseURL, leaseSeconds: 2, concurrency: 32)
            let delivered = try await eventually(timeout: .seconds(120)) {
                try await WorkerProcessTests.deliveredCount(api, key: key, app: app) == total
            }
            #expect(delivered, "\(survivor.log.suffix(2000))")
            let received = receiver.received
            let ids = Set(received.map(\.messageID))
            let lost = Set(messages).subtracting(ids).count
            let expired = Set(
                try await api.withDatabase { sql in
                    try await sql.raw("SELECT message_id FROM deliveries WHERE lease_expiries > 0").all().map {
                        try $0.decode(column: "message_id", as: String.self)
                    }
                })
            let duplicated = Dictionary(grouping: received, by: \.messageID).filter { $0.value.count > 1 }
            #expect(lost == 0)
            #expect(Set(duplicated.keys).isSubset(of: expired), "duplicates only where a lease expired")
            #expect(kills == 3)
            print(
                "FAULT repeated-worker-kill backend=\(backend) sent=\(total) delivered=\(ids.count) lost=\(lost) "
                    + "duplicated=\(duplicated.count) receipts=\(received.count) expired_leases=\(expired.count) kills=\(kills)"
            )
            #expect(await survivor.terminate() == 0)
        }
    }

    @Test(arguments: Backend.available)
    func anAPIProcessKilledDuringAPublishBurstHalfStoresNothing(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        // Set up through an API-only Tern in the test, then publish to a separate API process and kill it.
        let (databaseURL, key, app) = try await Self.preparedDatabase(backend, endpointURL: receiver.url("/hook"))
        let server = try WorkerProcess.start(databaseURL: databaseURL, role: "api")
        #expect(await server.waitUntilReady(), "\(server.log)")
        let accepted = Accepted()
        let sent = Accepted()
        await withTaskGroup(of: Void.self) { group in
            for client in 0..<8 {
                group.addTask {
                    for index in 0..<1_000 {
                        sent.add("")
                        guard let answer = await Self.publish(port: server.port, key: key, app: app, payload: #"{"c": \#(client), "n": \#(index)}"#)
                        else { return }
                        if let id = answer.id { accepted.add(id) }
                    }
                }
            }
            group.addTask {
                _ = await eventually(timeout: .seconds(30)) { accepted.count >= 500 }
                await server.kill()
            }
        }
        let acceptedIDs = accepted.ids
        #expect(acceptedIDs.count >= 500 && acceptedIDs.count < 8_000, "the process died in the middle of the burst")
        // A new process delivers what was stored.
        try await withTern(backend, databaseURL: databaseURL) { api in
            if backend == .sqlite {
                let integrity = try await api.withDatabase { sql in
                    try await sql.raw("PRAGMA integrity_check").first()?.decode(column: "integrity_check", as: String.self)
                }
                #expect(integrity == "ok", "the SQLite file survived SIGKILL intact")
            }
            let (messages, orphans) = try await Self.consistency(api)
            #expect(orphans == 0, "a message without its delivery, or with more")
            #expect(messages >= acceptedIDs.count, "every 202 was stored")
            let stored = Set(
                try await api.withDatabase { sql in
                    try await sql.raw("SELECT id FROM messages").all().map { try $0.decode(column: "id", as: String.self) }
                })
            #expect(Set(acceptedIDs).isSubset(of: stored))
            let all = await eventually(timeout: .seconds(120)) { Set(receiver.received.map(\.messageID)).isSuperset(of: acceptedIDs) }
            #expect(all, "every event that got a 202 is delivered")
            print(
                "FAULT api-kill backend=\(backend) sent=\(sent.count) accepted=\(acceptedIDs.count) stored=\(messages) orphans=\(orphans) "
                    + "delivered_of_accepted=\(Set(receiver.received.map(\.messageID)).intersection(acceptedIDs).count)"
            )
        }
    }
}

extension FaultTests {
    /// A `tern serve` process (API and worker) hands its publishes' deliveries to its worker at commit, without a
    /// claim. Killed with SIGKILL while it does, with deliveries handed over and unsent or unrecorded: a new process
    /// sends each of them once its lease ends, so every 202 is delivered, and twice only where a lease expired.
    @Test(arguments: Backend.available)
    func aProcessKilledWhileItDeliversItsOwnPublishesLosesNothing(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        receiver.script("/hook", then: .init(status: 200, delay: .milliseconds(50)))
        let (databaseURL, key, app) = try await Self.preparedDatabase(backend, endpointURL: receiver.url("/hook"))
        let server = try WorkerProcess.start(databaseURL: databaseURL, role: "all", leaseSeconds: 2, concurrency: 32)
        #expect(await server.waitUntilReady(), "\(server.log)")
        let accepted = Accepted()
        let handedOver = Tally()
        await withTaskGroup(of: Void.self) { group in
            for client in 0..<8 {
                group.addTask {
                    for index in 0..<1_000 {
                        guard let answer = await Self.publish(port: server.port, key: key, app: app, payload: #"{"c": \#(client), "n": \#(index)}"#)
                        else { return }
                        if let id = answer.id { accepted.add(id) }
                    }
                }
            }
            group.addTask {
                _ = await eventually(timeout: .seconds(60)) { receiver.received.count >= 300 }
                let metrics = (try? await WorkerProcessTests.metrics(port: server.port)) ?? ""
                handedOver.add("direct", count: metricValue("tern_direct_deliveries_total", in: metrics))
                await server.kill()
            }
        }
        let acceptedIDs = accepted.ids
        #expect(handedOver["direct"] > 0, "the killed process took its publishes' deliveries without claims")
        let survivor = try WorkerProcess.start(databaseURL: databaseURL, role: "all", leaseSeconds: 2, concurrency: 32)
        #expect(await survivor.waitUntilReady(), "\(survivor.log)")
        let all = await eventually(timeout: .seconds(120)) { Set(receiver.received.map(\.messageID)).isSuperset(of: acceptedIDs) }
        #expect(all, "every event that got a 202 is delivered: \(survivor.log.suffix(2000))")
        try await withTern(backend, databaseURL: databaseURL, configure: { $0.role = .api }) { api in
            let (messages, orphans) = try await Self.consistency(api)
            #expect(orphans == 0)
            let expired = Set(
                try await api.withDatabase { sql in
                    try await sql.raw("SELECT message_id FROM deliveries WHERE lease_expiries > 0").all().map {
                        try $0.decode(column: "message_id", as: String.self)
                    }
                })
            let received = receiver.received
            let duplicated = Dictionary(grouping: received, by: \.messageID).filter { $0.value.count > 1 }
            #expect(Set(duplicated.keys).isSubset(of: expired), "duplicates only where a lease expired")
            print(
                "FAULT direct-kill backend=\(backend) accepted=\(acceptedIDs.count) stored=\(messages) handed_over_before_kill=\(handedOver["direct"]) "
                    + "delivered_of_accepted=\(Set(received.map(\.messageID)).intersection(acceptedIDs).count) duplicated=\(duplicated.count) "
                    + "expired_leases=\(expired.count)"
            )
        }
        #expect(await survivor.terminate() == 0)
    }
}

/// The ids of accepted publishes, collected from concurrent clients.
final class Accepted: Sendable {
    let state = Mutex<[String]>([])
    func add(_ id: String) { self.state.withLock { $0.append(id) } }
    var count: Int { self.state.withLock { $0.count } }
    var ids: [String] { self.state.withLock { $0 } }
}

extension API {
    /// The key and application stashed in the organization's name by a set-up that has ended.
    static func names(_ databaseURL: String) async throws -> [String] {
        let database = try await Database.forTest(databaseURL)
        let name = try await database.whileRunning {
            try await database.read { sql in
                try await sql.raw("SELECT name FROM organizations WHERE name LIKE 'tern_%'").first()?.decode(column: "name", as: String.self)
            }
        }
        return (name ?? "").split(separator: " ").map(String.init)
    }
}

/// A PostgreSQL cluster of the test's own (initdb in a temporary directory, a free port), so that restarting it
/// disturbs no other test. Driven by `Tests/faults/pg_cluster.py`.
struct PrivatePostgres: Sendable {
    let directory: String
    let port: Int
    var url: String { "postgres://tern@127.0.0.1:\(self.port)/tern" }

    /// Where PostgreSQL is in play (`TERN_TEST_POSTGRES_URL` set) and its binaries are installed.
    static var available: Bool {
        !(ProcessInfo.processInfo.environment["TERN_TEST_POSTGRES_URL"] ?? "").isEmpty
            && ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []).isEmpty == false
    }

    static func start() async throws -> PrivatePostgres {
        let cluster = PrivatePostgres(directory: "/tmp/tern-fault-pg-\(UUID().uuidString.prefix(8))", port: try WorkerProcess.freePort())
        try await cluster.run("init")
        return cluster
    }

    func run(_ command: String) async throws {
        let (status, output) = try await runProgram(
            "python3", [repositoryRoot.appendingPathComponent("Tests/faults/pg_cluster.py").path, command, self.directory, String(self.port)])
        guard status == 0 else { throw TestFailure("pg_cluster.py \(command) exited \(status): \(output)") }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension FaultTests {
    /// SIGTERM to a `tern serve` process whose PostgreSQL has gone away: its workers wait for a connection that never
    /// comes, so after the shutdown timeout (3 s here, 45 s by default) what is left is cancelled and it exits.
    /// Before this, such a process ignored SIGTERM for good.
    @Test(.enabled(if: PrivatePostgres.available))
    func sigtermExitsEvenWithTheDatabaseGone() async throws {
        let cluster = try await PrivatePostgres.start()
        do {
            let server = try WorkerProcess.start(databaseURL: cluster.url, role: "all", environment: ["TERN_SHUTDOWN_TIMEOUT_SECONDS": "3"])
            #expect(await server.waitUntilReady(), "\(server.log)")
            try await cluster.run("stop")
            // Past the workers' 5 s poll, so that one is waiting for a connection when SIGTERM comes.
            try await Task.sleep(for: .seconds(7))
            let start = ContinuousClock.now
            _ = await server.terminate()
            let elapsed = start.duration(to: .now)
            #expect(!server.process.isRunning, "tern serve ignored SIGTERM with its database gone: \(server.log.suffix(2000))")
            if server.process.isRunning { await server.kill() }
            print(
                "FAULT sigterm-database-gone exited=\(!server.process.isRunning) "
                    + "after_ms=\(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)"
            )
        } catch {
            try? await cluster.run("destroy")
            throw error
        }
        try await cluster.run("destroy")
    }
}

/// Counts what a publisher saw, by outcome.
final class Tally: Sendable {
    let state = Mutex<[String: Int]>([:])
    func add(_ outcome: String, count: Int = 1) { self.state.withLock { $0[outcome, default: 0] += count } }
    subscript(_ outcome: String) -> Int { self.state.withLock { $0[outcome] ?? 0 } }
    var summary: String { self.state.withLock { $0.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ",") } }
}

extension FaultTests {
    /// PostgreSQL stopped for 3 s and started again under a running Tern while events are published every 5 ms:
    /// `/health` says 503 meanwhile, publishing and delivery resume by themselves, and every 202 is delivered.
    @Test(.enabled(if: PrivatePostgres.available))
    func postgresRestartedDuringTheFlowLosesNothing() async throws {
        let cluster = try await PrivatePostgres.start()
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        do {
            try await Self.restartDuringTheFlow(cluster, receiver)
        } catch {
            try? await cluster.run("destroy")
            throw error
        }
        // Stopped here, before the test ends, so that no PostgreSQL outlives the test process.
        try await cluster.run("destroy")
    }

    static func restartDuringTheFlow(_ cluster: PrivatePostgres, _ receiver: Receiver) async throws {
        try await withTern(.postgres, databaseURL: cluster.url, live: true) { api in
            let (key, app) = try await WorkerProcessTests.prepare(api, url: receiver.url("/hook"))
            let base = "http://127.0.0.1:\(api.port!)"
            let port = api.port!
            let accepted = Accepted()
            let outcomes = Tally()
            let health = Tally()
            let stop = Latch()
            func publish(_ index: Int) async {
                guard let answer = await FaultTests.publish(port: port, key: key, app: app, payload: #"{"n": \#(index)}"#) else {
                    outcomes.add("no-answer")
                    return
                }
                outcomes.add(String(answer.status))
                if let id = answer.id { accepted.add(id) }
            }
            var afterRestart = 0
            await withTaskGroup(of: Void.self) { group in
                // Publishers: one request every 5 ms, each on its own task so that a slow answer delays no other.
                group.addTask {
                    var index = 0
                    while !stop.isOpen {
                        index += 1
                        let n = index
                        Task { await publish(n) }
                        try? await Task.sleep(for: .milliseconds(5))
                    }
                }
                group.addTask {
                    // A client of its own: the publishers' queue in the shared client must not delay these.
                    let client = HTTPClient(eventLoopGroupProvider: .singleton)
                    while !stop.isOpen {
                        var request = HTTPClientRequest(url: "\(base)/health")
                        request.method = .GET
                        let status = (try? await client.execute(request, timeout: .seconds(3)))?.status.code
                        health.add(status.map(String.init) ?? "no-answer")
                        try? await Task.sleep(for: .milliseconds(100))
                    }
                    try? await client.shutdown()
                }
                _ = await eventually(timeout: .seconds(30)) { accepted.count >= 200 }
                try? await cluster.run("restart")
                let before = accepted.count
                _ = await eventually(timeout: .seconds(60)) { accepted.count >= before + 200 }
                afterRestart = accepted.count - before
                stop.open()
            }
            try await Task.sleep(for: .seconds(6))  // the last publishes' answers (5 s client timeout)
            let ids = Set(accepted.ids)
            #expect(afterRestart >= 200, "publishing resumed after the restart: \(outcomes.summary)")
            // A publish refused while PostgreSQL is away says so (503), never a server error.
            #expect(outcomes["500"] == 0, "\(outcomes.summary)")
            #expect(health["503"] > 0, "/health said 503 while PostgreSQL was down: \(health.summary)")
            let delivered = await eventually(timeout: .seconds(60)) { Set(receiver.received.map(\.messageID)).isSuperset(of: ids) }
            #expect(delivered, "every 202 is delivered")
            let (messages, orphans) = try await Self.consistency(api)
            #expect(orphans == 0)
            #expect(messages >= ids.count)
            let received = Set(receiver.received.map(\.messageID))
            print(
                "FAULT postgres-restart accepted=\(ids.count) stored=\(messages) orphans=\(orphans) "
                    + "delivered_of_accepted=\(received.intersection(ids).count) lost=\(ids.subtracting(received).count) "
                    + "publish_outcomes=\(outcomes.summary) health=\(health.summary)"
            )
        }
    }
}

extension FaultTests {
    /// How the mixed endpoint treats event `n` on its first attempt (later attempts of events 0…6 succeed, except
    /// class 4's, which fail for good). Half the classes fail first, so the breaker (20 in a row) never trips on it.
    enum Misbehaviour: Int, CaseIterable {
        case error500, cutMidResponse, slow, throttled, failsForever, redirect, closeWithoutAnswer
        case fine0, fine1, fine2, fine3, fine4, fine5, fine6

        static func of(_ n: Int) -> Misbehaviour { Misbehaviour(rawValue: n % 14)! }

        /// The `n` of a payload `{"n":<n>}`, or of a request body that ends with it.
        static func number(_ text: String) -> Int { Int(text.split(separator: ":").last?.prefix { $0.isNumber } ?? "") ?? -1 }
    }

    /// A receiver failing half the first attempts in every way it can (500, a connection cut in the middle of the
    /// answer, slower than the 1 s timeout, 429 with `Retry-After`, 302, closed without an answer, 503 for good),
    /// and a second endpoint that cuts every connection: every delivery ends delivered or in the DLQ as the rules
    /// say, the breaker trips on the broken endpoint after 20 failures in a row and not on the mixed one.
    @Test(arguments: Backend.available)
    func aMisbehavingReceiverEndsEveryDeliveryDeliveredOrDeadLettered(_ backend: Backend) async throws {
        let receiver = try await ChaosReceiver.start { path, _, body, attempt in
            if path == "/broken" { return .cutMidResponse }
            let kind = Misbehaviour.of(max(0, Misbehaviour.number(body)))
            if kind == .failsForever { return .answer(status: 503) }
            guard attempt == 1 else { return .answer(status: 200) }
            switch kind {
            case .error500: return .answer(status: 500)
            case .cutMidResponse: return .cutMidResponse
            case .slow: return .answer(status: 200, delay: .seconds(2))
            case .throttled: return .answer(status: 429, headers: ["Retry-After": "3"])
            case .redirect: return .answer(status: 302, headers: ["Location": "http://127.0.0.1:9/elsewhere"])
            case .closeWithoutAnswer: return .closeWithoutAnswer
            default: return .answer(status: 204)
            }
        }
        defer { Task { await receiver.stop() } }
        try await withTern(backend) { api in
            let plan = try await api.call(
                .put, "/v1/admin/plans/bulk", key: testAdminKey,
                json: #"{"name": "Bulk", "rate_limit_per_minute": null, "max_messages_per_month": null}"#)
            try #require(plan.status == 201 || plan.status == 200)
            let (_, key) = try await api.organization(plan: "bulk")
            let app = try await api.application(key, extra: #", "retry_schedule": [1, 1, 1]"#)
            try await api.eventType(key, app: app, name: "order.created")
            let (mixed, _) = try await api.endpoint(key, app: app, url: receiver.url("/mixed"), tenant: "tenant-1", extra: #", "timeout_seconds": 1"#)
            let (broken, _) = try await api.endpoint(
                key, app: app, url: receiver.url("/broken"), tenant: "tenant-2", extra: #", "timeout_seconds": 1"#)
            let events = 280
            for n in 0..<events {
                _ = try await api.publish(key, app: app, payload: #"{"n":\#(n)}"#)
            }
            for n in 0..<30 {
                _ = try await api.publish(key, app: app, tenant: "tenant-2", payload: #"{"n":\#(n)}"#)
            }
            let settled = try await eventually(timeout: .seconds(90)) {
                try await api.withDatabase { sql in
                    try await sql.raw("SELECT COUNT(*) AS n FROM deliveries WHERE status NOT IN ('delivered', 'exhausted')").first()?.decode(
                        column: "n", as: Int.self) ?? 1
                } == 0
            }
            #expect(settled, "every delivery ended delivered or in the DLQ")
            struct Row {
                var status: String
                var attempts: Int
                var n: Int
                var endpoint: String
            }
            let rows = try await api.withDatabase { sql in
                try await sql.raw(
                    "SELECT d.status, d.attempt_count, d.endpoint_id, m.payload FROM deliveries d JOIN messages m ON m.id = d.message_id"
                ).all().map { row in
                    let payload = try row.decode(column: "payload", as: String.self)
                    return Row(
                        status: try row.decode(column: "status", as: String.self), attempts: try row.decode(column: "attempt_count", as: Int.self),
                        n: Misbehaviour.number(payload), endpoint: try row.decode(column: "endpoint_id", as: String.self)
                    )
                }
            }
            let errors = try await api.withDatabase { sql in
                try await sql.raw(
                    """
                    SELECT a.error, a.status_code, m.payload FROM attempts a JOIN messages m ON m.id = a.message_id
                    WHERE a.endpoint_id = \(bind: mixed) ORDER BY a.created_at
                    """
                ).all().map { row in
                    (
                        try row.decode(column: "error", as: String?.self), try row.decode(column: "status_code", as: Int?.self),
                        try row.decode(column: "payload", as: String.self)
                    )
                }
            }
            // The mixed endpoint: one failure then a success, or four failures into the DLQ for class 4.
            var wrong: [String] = []
            for row in rows where row.endpoint == mixed {
                let kind = Misbehaviour.of(row.n)
                let expected: (String, Int) =
                    kind == .failsForever
                    ? ("exhausted", 4) : kind.rawValue <= Misbehaviour.closeWithoutAnswer.rawValue ? ("delivered", 2) : ("delivered", 1)
                if (row.status, row.attempts) != expected {
                    let seen = errors.filter { $0.2.hasSuffix(":\(row.n)}") }.map { "\($0.1.map(String.init) ?? "-") \($0.0 ?? "")" }
                    wrong.append("n=\(row.n) \(kind): \(row.status) after \(row.attempts): \(seen)")
                }
            }
            #expect(wrong.isEmpty, "\(wrong.prefix(10))")
            #expect(rows.filter { $0.endpoint == mixed }.count == events)
            func firstAttempt(_ kind: Misbehaviour) -> (String?, Int?)? {
                errors.first { Misbehaviour.of(max(0, Misbehaviour.number($0.2))) == kind }.map { ($0.0, $0.1) }
            }
            #expect(firstAttempt(.slow)?.0?.contains("timed out") == true, "\(String(describing: firstAttempt(.slow)))")
            #expect(firstAttempt(.cutMidResponse)?.0 != nil, "a cut answer is a failed attempt with an error")
            #expect(firstAttempt(.closeWithoutAnswer)?.0 != nil)
            #expect(firstAttempt(.redirect)?.1 == 302)
            // Retry-After: 3 beats the schedule's 1 s.
            let throttled = receiver.all.filter { $0.path == "/mixed" && Misbehaviour.of(max(0, Misbehaviour.number($0.body))) == .throttled }
            let gaps = Dictionary(grouping: throttled, by: \.id).values.compactMap { arrivals -> Duration? in
                let sorted = arrivals.sorted { $0.attempt < $1.attempt }
                return sorted.count == 2 ? sorted[0].at.duration(to: sorted[1].at) : nil
            }
            #expect(!gaps.isEmpty && gaps.allSatisfy { $0 >= .milliseconds(2_900) }, "\(gaps)")
            // The breaker: the broken endpoint is disabled after 20 failures in a row, the mixed one is not.
            let brokenEndpoint = try await api.get("/v1/applications/\(app)/endpoints/\(broken)", key: key)
            #expect(brokenEndpoint.string("status") == "disabled" && brokenEndpoint.string("disabled_reason") == "circuit_breaker")
            let mixedEndpoint = try await api.get("/v1/applications/\(app)/endpoints/\(mixed)", key: key)
            #expect(mixedEndpoint.string("status") == "active")
            let brokenAttempts = receiver.all.filter { $0.path == "/broken" }.count
            #expect(brokenAttempts >= 20)
            #expect(
                rows.filter { $0.endpoint == broken }.allSatisfy { $0.status == "exhausted" },
                "\(rows.filter { $0.endpoint == broken }.map { "\($0.n) \($0.status) \($0.attempts)" })")
            let mixedAttempts = receiver.all.filter { $0.path == "/mixed" }.count
            print(
                "FAULT chaos-receiver backend=\(backend) events=\(events) mixed_attempts=\(mixedAttempts) "
                    + "delivered=\(rows.filter { $0.endpoint == mixed && $0.status == "delivered" }.count) "
                    + "dead_lettered=\(rows.filter { $0.endpoint == mixed && $0.status == "exhausted" }.count) "
                    + "broken_attempts_before_trip=\(brokenAttempts) wrong=\(wrong.count)"
            )
        }
    }
}

extension FaultTests {
    /// SIGTERM to a `tern serve` process (API and workers) while 8 clients publish and 32 deliveries are in flight:
    /// it exits 0, every attempt the receiver saw is recorded, no delivery is left mid-attempt, every 202 is stored,
    /// and a new process delivers the rest without sending anything twice.
    @Test(arguments: Backend.available)
    func sigtermUnderLoadFinishesWhatIsInFlight(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        receiver.script("/hook", then: .init(status: 200, delay: .milliseconds(100)))
        let (databaseURL, key, app) = try await Self.preparedDatabase(backend, endpointURL: receiver.url("/hook"))
        let server = try WorkerProcess.start(databaseURL: databaseURL, role: "all", concurrency: 32)
        #expect(await server.waitUntilReady(), "\(server.log)")
        let accepted = Accepted()
        let refused = Tally()
        var exitStatus: Int32 = -1
        var shutdown = Duration.zero
        await withTaskGroup(of: Void.self) { group in
            for client in 0..<8 {
                group.addTask {
                    var index = 0
                    while server.process.isRunning {
                        index += 1
                        guard let answer = await Self.publish(port: server.port, key: key, app: app, payload: #"{"c": \#(client), "n": \#(index)}"#)
                        else {
                            refused.add("no-answer")
                            try? await Task.sleep(for: .milliseconds(20))
                            continue
                        }
                        if let id = answer.id { accepted.add(id) } else { refused.add(String(answer.status)) }
                        try? await Task.sleep(for: .milliseconds(5))
                    }
                }
            }
            _ = await eventually(timeout: .seconds(60)) { receiver.received.count >= 300 }
            let start = ContinuousClock.now
            exitStatus = await server.terminate()
            shutdown = start.duration(to: .now)
        }
        #expect(exitStatus == 0, "\(server.log.suffix(2000))")
        let receipts = receiver.received.count
        let shutdownMS = shutdown.components.seconds * 1000 + shutdown.components.attoseconds / 1_000_000_000_000_000
        try await withTern(backend, databaseURL: databaseURL, configure: { $0.role = .api }) { api in
            let (midAttempt, attempts) = try await api.withDatabase { sql in
                (
                    try await sql.raw("SELECT COUNT(*) AS n FROM deliveries WHERE status = 'delivering'").first()?.decode(column: "n", as: Int.self)
                        ?? -1,
                    try await sql.raw("SELECT COUNT(*) AS n FROM attempts").first()?.decode(column: "n", as: Int.self) ?? -1
                )
            }
            #expect(midAttempt == 0, "no delivery left mid-attempt")
            #expect(attempts == receipts, "every attempt the receiver saw is recorded")
            let (messages, orphans) = try await Self.consistency(api)
            #expect(orphans == 0)
            let stored = Set(
                try await api.withDatabase { sql in
                    try await sql.raw("SELECT id FROM messages").all().map { try $0.decode(column: "id", as: String.self) }
                })
            #expect(Set(accepted.ids).isSubset(of: stored), "every 202 was stored")
            print(
                "FAULT sigterm-under-load backend=\(backend) accepted=\(accepted.count) stored=\(messages) receipts_before_exit=\(receipts) "
                    + "attempts_recorded=\(attempts) left_mid_attempt=\(midAttempt) shutdown_ms=\(shutdownMS) refused=\(refused.summary)"
            )
        }
        // A new process delivers the rest, nothing twice.
        try await withTern(backend, databaseURL: databaseURL) { api in
            let ids = Set(accepted.ids)
            let all = await eventually(timeout: .seconds(120)) { Set(receiver.received.map(\.messageID)).isSuperset(of: ids) }
            #expect(all, "every 202 is delivered")
            let twice = Dictionary(grouping: receiver.received, by: \.messageID).filter { $0.value.count > 1 }.count
            #expect(twice == 0, "a graceful stop sends nothing twice")
        }
    }
}
