import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SQLKit
import TernCore
import Synchronization
import Logging
import TernStorage
import Testing

/// Faults while events flow: processes killed with SIGKILL. Every event that got a 202 is delivered, nothing is
/// half-stored, and duplicates happen only where a lease expired. Each prints its figures (docs/reliability.md).
@Suite(.serialized) struct FaultTests {
    static func consistency(_ api: API) async throws -> (messages: Int, orphans: Int) {
        try await api.withDatabase { sql in
            let messages = try await sql.raw("SELECT COUNT(*) AS n FROM messages").first()?.decode(column: "n", as: Int.self) ?? 0
            // One all-events endpoint: every message has exactly one delivery.
            let orphans = try await sql.raw("""
                SELECT COUNT(*) AS n FROM messages m WHERE (SELECT COUNT(*) FROM deliveries d WHERE d.message_id = m.id) <> 1
                """).first()?.decode(column: "n", as: Int.self) ?? 0
            return (messages, orphans)
        }
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
            let delivered = try await eventually(timeout: .seconds(120)) { try await WorkerProcessTests.deliveredCount(api, key: key, app: app) == total }
            #expect(delivered, "\(survivor.log.suffix(2000))")
            let received = receiver.received
            let ids = Set(received.map(\.messageID))
            let lost = Set(messages).subtracting(ids).count
            let expired = Set(try await api.withDatabase { sql in
                try await sql.raw("SELECT message_id FROM deliveries WHERE lease_expiries > 0").all().map { try $0.decode(column: "message_id", as: String.self) }
            })
            let duplicated = Dictionary(grouping: received, by: \.messageID).filter { $0.value.count > 1 }
            #expect(lost == 0)
            #expect(Set(duplicated.keys).isSubset(of: expired), "duplicates only where a lease expired")
            #expect(kills == 3)
            print("FAULT repeated-worker-kill backend=\(backend) sent=\(total) delivered=\(ids.count) lost=\(lost) duplicated=\(duplicated.count) receipts=\(received.count) expired_leases=\(expired.count) kills=\(kills)")
            #expect(await survivor.terminate() == 0)
        }
    }

    @Test(arguments: Backend.available)
    func anAPIProcessKilledDuringAPublishBurstHalfStoresNothing(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        let databaseURL = try await backend.freshDatabaseURL()
        // Set up through an API-only Tern in the test, then publish to a separate API process and kill it.
        try await withTern(backend, databaseURL: databaseURL, configure: { $0.role = .api }) { api in
            let (k, a) = try await WorkerProcessTests.prepare(api, url: receiver.url("/hook"))
            try await api.withDatabase { sql in try await sql.raw("UPDATE organizations SET name = \(bind: k + " " + a)").run() }
        }
        let names = try await API.names(databaseURL)
        let (key, app) = (names[0], names[1])
        let server = try WorkerProcess.start(databaseURL: databaseURL, role: "api")
        #expect(await server.waitUntilReady(), "\(server.log)")
        let accepted = Accepted()
        let sent = Accepted()
        await withTaskGroup(of: Void.self) { group in
            for client in 0..<8 {
                group.addTask {
                    for index in 0..<1_000 {
                        var request = HTTPClientRequest(url: "http://127.0.0.1:\(server.port)/v1/applications/\(app)/events")
                        request.method = .POST
                        request.headers.add(name: "authorization", value: "Bearer \(key)")
                        request.headers.add(name: "content-type", value: "application/json")
                        request.body = .bytes(ByteBuffer(string: #"{"event_type": "order.created", "tenant_id": "tenant-1", "payload": {"c": \#(client), "n": \#(index)}}"#))
                        sent.add("")
                        guard let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(5)) else { return }
                        let body = (try? await response.body.collect(upTo: 1 << 16)).map { String(buffer: $0) } ?? ""
                        if response.status == .accepted, let id = (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])?["id"] as? String {
                            accepted.add(id)
                        }
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
                let integrity = try await api.withDatabase { sql in try await sql.raw("PRAGMA integrity_check").first()?.decode(column: "integrity_check", as: String.self) }
                #expect(integrity == "ok", "the SQLite file survived SIGKILL intact")
            }
            let (messages, orphans) = try await Self.consistency(api)
            #expect(orphans == 0, "a message without its delivery, or with more")
            #expect(messages >= acceptedIDs.count, "every 202 was stored")
            let stored = Set(try await api.withDatabase { sql in try await sql.raw("SELECT id FROM messages").all().map { try $0.decode(column: "id", as: String.self) } })
            #expect(Set(acceptedIDs).isSubset(of: stored))
            let all = try await eventually(timeout: .seconds(120)) { Set(receiver.received.map(\.messageID)).isSuperset(of: acceptedIDs) }
            #expect(all, "every event that got a 202 is delivered")
            print("FAULT api-kill backend=\(backend) sent=\(sent.count) accepted=\(acceptedIDs.count) stored=\(messages) orphans=\(orphans) delivered_of_accepted=\(Set(receiver.received.map(\.messageID)).intersection(acceptedIDs).count)")
        }
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
        let database = try await Database.open(try DatabaseLocation(url: databaseURL), logger: Logger(label: "test"))
        let name = try await database.whileRunning {
            try await database.read { sql in try await sql.raw("SELECT name FROM organizations WHERE name LIKE 'tern_%'").first()?.decode(column: "name", as: String.self) }
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
        let (status, output) = try await runProgram("python3", [repositoryRoot.appendingPathComponent("Tests/faults/pg_cluster.py").path, command, self.directory, String(self.port)])
        guard status == 0 else { throw TestFailure("pg_cluster.py \(command) exited \(status): \(output)") }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Counts what a publisher saw, by outcome.
final class Tally: Sendable {
    let state = Mutex<[String: Int]>([:])
    func add(_ outcome: String) { self.state.withLock { $0[outcome, default: 0] += 1 } }
    subscript(_ outcome: String) -> Int { self.state.withLock { $0[outcome] ?? 0 } }
    var summary: String { self.state.withLock { $0.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ",") } }
}

extension FaultTests {
    /// PostgreSQL stopped for 3 s and started again under a running Tern while events are published every 5 ms:
    /// `/health` says 503 meanwhile, publishing and delivery resume by themselves, and every 202 is delivered.
    @Test(.enabled(if: PrivatePostgres.available))
    func postgresRestartedDuringTheFlowLosesNothing() async throws {
        let cluster = try await PrivatePostgres.start()
        defer { Task { try? await cluster.run("destroy") } }
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        try await withTern(.postgres, databaseURL: cluster.url, live: true) { api in
            let (key, app) = try await WorkerProcessTests.prepare(api, url: receiver.url("/hook"))
            let base = "http://127.0.0.1:\(api.port!)"
            let accepted = Accepted()
            let outcomes = Tally()
            let health = Tally()
            let stop = Latch()
            func publish(_ index: Int) async {
                var request = HTTPClientRequest(url: "\(base)/v1/applications/\(app)/events")
                request.method = .POST
                request.headers.add(name: "authorization", value: "Bearer \(key)")
                request.headers.add(name: "content-type", value: "application/json")
                request.body = .bytes(ByteBuffer(string: #"{"event_type": "order.created", "tenant_id": "tenant-1", "payload": {"n": \#(index)}}"#))
                do {
                    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
                    let body = String(buffer: try await response.body.collect(upTo: 1 << 16))
                    outcomes.add(String(response.status.code))
                    if response.status == .accepted, let id = (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])?["id"] as? String {
                        accepted.add(id)
                    }
                } catch {
                    outcomes.add("no-answer")
                }
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
            #expect(health["503"] > 0, "/health said 503 while PostgreSQL was down: \(health.summary)")
            let delivered = await eventually(timeout: .seconds(60)) { Set(receiver.received.map(\.messageID)).isSuperset(of: ids) }
            #expect(delivered, "every 202 is delivered")
            let (messages, orphans) = try await Self.consistency(api)
            #expect(orphans == 0)
            #expect(messages >= ids.count)
            let received = Set(receiver.received.map(\.messageID))
            print("FAULT postgres-restart accepted=\(ids.count) stored=\(messages) orphans=\(orphans) delivered_of_accepted=\(received.intersection(ids).count) lost=\(ids.subtracting(received).count) publish_outcomes=\(outcomes.summary) health=\(health.summary)")
        }
    }
}

