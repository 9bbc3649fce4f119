import Foundation
import TernCore
import Testing

@testable import TernTesting

/// Erasure on demand: the payload `DELETE` removes the bytes at once (on SQLite from the database file and its
/// write-ahead log too), ends the queued deliveries, refuses a replay with 410, and is audited.
@Suite struct ErasureTests {
    @Test(arguments: Backend.available)
    func anErasedPayloadIsGoneFromTheAPIAndTheFile(_ backend: Backend) async throws {
        let databaseURL = try await backend.freshDatabaseURL()
        try await withTern(backend, databaseURL: databaseURL) { api in
            // After its first failure a delivery waits an hour: it is queued, not in flight, when it is erased.
            let (key, app) = try await api.shop(#", "retry_schedule": [3600]"#)
            _ = try await api.endpoint(key, app: app, url: "http://127.0.0.1:9/hook")
            let marker = "personal-data-\(UUID().uuidString)"
            // A small payload and a large one (stored on overflow pages).
            var ids: [String] = []
            for size in [1, 200] {
                let payload = #"{"note": "\#(Array(repeating: marker, count: size).joined(separator: " "))"}"#
                ids.append(try #require(try await api.publish(key, app: app, payload: payload).string("id")))
            }
            // The check below reads the right files: before erasure they hold the payload.
            func inFiles() -> Bool {
                let path = String(databaseURL.dropFirst("sqlite://".count))
                return [path, path + "-wal"].contains { file in
                    ((try? Data(contentsOf: URL(fileURLWithPath: file))) ?? Data()).range(of: Data(marker.utf8)) != nil
                }
            }
            if backend == .sqlite { #expect(inFiles()) }
            for id in ids {
                let delivery = try #require(try await api.deliveries(key, app: app, message: id).first?["id"] as? String)
                _ = try await api.waitForDelivery(key, app: app, delivery, status: "failed")
                #expect(try await api.call(.delete, "/v1/applications/\(app)/events/\(id)/payload", key: key).status == 204)
                let message = try await api.get("/v1/applications/\(app)/events/\(id)", key: key)
                #expect(message["payload"] is NSNull && message["payload_expunged"] as? Bool == true, "\(message.text)")
                let ended = try await api.delivery(key, app: app, delivery)
                #expect(ended["status"] as? String == "exhausted" && ended["last_error"] as? String == "the payload was expunged")
                let replay = try await api.post("/v1/applications/\(app)/deliveries/\(delivery)/replay", key: key, "{}")
                #expect(replay.status == 410 && replay.string("type")?.hasSuffix("payload-expunged") == true, "\(replay.text)")
            }
            #expect(try await api.call(.delete, "/v1/applications/\(app)/events/msg_nope/payload", key: key).status == 404)
            let audit = try await api.get("/v1/audit-entries?limit=50", key: key)
            #expect(audit.items.filter { $0["action"] as? String == "message.expunged" }.count == 2, "\(audit.text)")
            if backend == .sqlite { #expect(!inFiles(), "the database file or its WAL still holds the erased payload") }
        }
    }

    /// Retention: a payload asked to be kept one day is erased by the pruner after it, unless one of its deliveries
    /// is still queued; the plan's 30 days keep the others; asking for more than the plan allows is 422.
    @Test(arguments: Backend.available)
    func payloadsPastTheirRetentionAreErasedOnceDelivered(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        try await withTern(backend) { api in
            let (key, app) = try await api.shop()
            _ = try await api.endpoint(key, app: app, url: receiver.url("/hook"))
            _ = try await api.endpoint(key, app: app, url: receiver.url("/held"), tenant: "tenant-2", extra: #", "status": "paused""#)
            func publish(_ tenant: String, _ extra: String) async throws -> String {
                let reply = try await api.post(
                    "/v1/applications/\(app)/events", key: key,
                    #"{"event_type": "order.created", "tenant_id": "\#(tenant)", "payload": {"secret": "x"}\#(extra)}"#)
                try #require(reply.status == 202, "\(reply.text)")
                return try #require(reply.string("id"))
            }
            let short = try await publish("tenant-1", #", "payload_retention_days": 1"#)
            let held = try await publish("tenant-2", #", "payload_retention_days": 1"#)
            let standard = try await publish("tenant-1", "")
            _ = await receiver.waitFor(2)
            for id in [short, standard] {
                let delivery = try #require(try await api.deliveries(key, app: app, message: id).first?["id"] as? String)
                _ = try await api.waitForDelivery(key, app: app, delivery, status: "delivered")
            }
            let counts = try await api.withStore { store in try await store.prune(.standard, now: Timestamp.now().adding(seconds: 2 * 86_400)) }
            #expect(counts.payloads == 1, "\(counts)")
            #expect(try await api.get("/v1/applications/\(app)/events/\(short)", key: key)["payload_expunged"] as? Bool == true)
            for id in [held, standard] {
                let message = try await api.get("/v1/applications/\(app)/events/\(id)", key: key)
                #expect(message["payload_expunged"] as? Bool == false && message["payload"] is [String: Any], "\(message.text)")
            }
            // The free plan keeps payloads 30 days: a publish may ask for fewer, not more.
            for (days, status) in [(0, 422), (31, 422), (30, 202)] {
                let reply = try await api.post(
                    "/v1/applications/\(app)/events", key: key,
                    #"{"event_type": "order.created", "tenant_id": "tenant-1", "payload": {}, "payload_retention_days": \#(days)}"#)
                #expect(reply.status == status && (status == 202 || reply.fieldErrors == ["payload_retention_days"]), "\(days): \(reply.text)")
            }
            let plan = try await api.call(.put, "/v1/admin/plans/short", key: testAdminKey, json: #"{"name": "Short", "payload_retention_days": 7}"#)
            #expect(plan["payload_retention_days"] as? Int == 7, "\(plan.text)")
        }
    }
}
