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
