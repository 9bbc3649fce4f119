import Foundation
import SQLKit
import TernCore
import TernStorage
import Testing

@testable import TernTesting

/// Retention: delivered messages go after 30 days, the dead-letter queue after 7, and nothing still queued goes.
@Suite struct RetentionTests {
    @Test(arguments: Backend.available)
    func pruningDeletesOnlyWhatIsPastRetentionAndFinished(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        try await withTern(backend) { api in
            let (key, app) = try await api.shop()
            _ = try await api.endpoint(key, app: app, url: receiver.url())
            var messages: [String] = []
            for _ in 0..<4 { messages.append(try #require(try await api.publish(key, app: app).string("id"))) }
            await receiver.waitFor(4)
            _ = try await eventually {
                try await api.get("/v1/applications/\(app)/deliveries?status=delivered", key: key).items.count == 4
            }
            let day: Int64 = 86_400_000_000
            let now = Timestamp.now().microseconds
            let (old, dead, queued, fresh) = (messages[0], messages[1], messages[2], messages[3])
            try await api.withDatabase { sql in
                // 40 days old and delivered: goes. 40 days old with a retry queued: stays.
                try await sql.raw("UPDATE messages SET created_at = \(bind: now - 40 * day) WHERE id IN (\(binds: [old, queued]))").run()
                try await sql.raw("UPDATE deliveries SET status = 'failed', next_attempt_at = \(bind: now + day) WHERE message_id = \(bind: queued)")
                    .run()
                // Dead-lettered 10 days ago: the delivery goes, its (recent) message stays.
                try await sql.raw("UPDATE deliveries SET status = 'exhausted', updated_at = \(bind: now - 10 * day) WHERE message_id = \(bind: dead)")
                    .run()
            }
            let counts = try await api.withStore { store in try await store.prune(.standard) }
            #expect(counts.messages == 1)
            #expect(counts.deadLetters == 1)
            #expect(try await api.get("/v1/applications/\(app)/events/\(old)", key: key).status == 404)
            #expect(try await api.get("/v1/applications/\(app)/events/\(queued)", key: key).status == 200)
            #expect(try await api.get("/v1/applications/\(app)/events/\(fresh)", key: key).status == 200)
            let deadMessage = try await api.get("/v1/applications/\(app)/events/\(dead)", key: key)
            #expect(deadMessage.status == 200 && (deadMessage["deliveries"] as? [Any])?.isEmpty == true)
            let again = try await api.withStore { store in try await store.prune(.standard) }
            #expect(again.messages == 0 && again.deadLetters == 0)
        }
    }
}
