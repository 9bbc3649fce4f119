import Foundation
import TernCore
import Testing

@testable import TernTesting

/// `GET …/endpoints/{id}/stats`: an endpoint's attempts by outcome, its backlog and dead letters, response times and
/// buckets, from real deliveries to a loopback receiver.
@Suite struct EndpointHealthTests {
    @Test(arguments: Backend.available)
    func statsCountRealAttemptsByOutcomeAndHour(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        // Three answers of 200, then 500 for ever: with no retries, three successes and two failures (dead letters).
        receiver.script("/hook", [Receiver.Answer(), Receiver.Answer(), Receiver.Answer()], then: Receiver.Answer(status: 500))
        try await withTern(backend) { api in
            let (key, app) = try await api.shop(#", "retry_schedule": []"#)
            let (endpointID, _) = try await api.endpoint(key, app: app, url: receiver.url())
            let empty = try await api.get("/v1/applications/\(app)/endpoints/\(endpointID)/stats", key: key)
            #expect(empty.status == 200 && empty["success_rate"] is NSNull && empty["success"] as? Int == 0, "\(empty.text)")
            for _ in 0..<5 { _ = try await api.publish(key, app: app) }
            await receiver.waitFor(5)
            var stats = Reply(status: 0, headers: [:], text: "", json: nil)
            let settled = try await eventually {
                stats = try await api.get("/v1/applications/\(app)/endpoints/\(endpointID)/stats", key: key)
                return stats["exhausted"] as? Int == 2 && stats["failed"] as? Int == 2
            }
            #expect(settled, "\(stats.text)")
            #expect(stats["success"] as? Int == 3 && stats["failed"] as? Int == 2 && stats["pending"] as? Int == 0, "\(stats.text)")
            let attempts = try await api.get("/v1/applications/\(app)/deliveries?endpoint_id=\(endpointID)", key: key)
            #expect(attempts.items.count == 5, "\(attempts.text)")
            #expect(stats["success_rate"] as? Double == 0.6)
            let response = stats["response_ms"] as? [String: Any]
            #expect(response?["p50"] is Int && response?["p95"] is Int, "\(stats.text)")
            #expect(stats["bucket_seconds"] as? Int == 3_600)
            let buckets = (stats["buckets"] as? [[String: Any]]) ?? []
            #expect(buckets.count == 24)
            #expect(buckets.reduce(0) { $0 + ($1["success"] as? Int ?? 0) } == 3 && buckets.last?["failed"] as? Int == 2)
            // The endpoint's uid works too, and a week is bucketed by day.
            _ = try await api.call(.patch, "/v1/applications/\(app)/endpoints/\(endpointID)", key: key, json: #"{"uid": "main"}"#)
            let week = try await api.get("/v1/applications/\(app)/endpoints/main/stats?since=\(Self.daysAgo(7))", key: key)
            #expect(week.status == 200 && week["bucket_seconds"] as? Int == 86_400 && week["success"] as? Int == 3, "\(week.text)")
            // Windows that end before they start, or span more than 31 days, are 422.
            let backwards = try await api.get(
                "/v1/applications/\(app)/endpoints/main/stats?since=\(Self.daysAgo(0))&until=\(Self.daysAgo(1))", key: key)
            #expect(backwards.status == 422 && backwards.fieldErrors == ["until"], "\(backwards.text)")
            #expect(try await api.get("/v1/applications/\(app)/endpoints/main/stats?since=\(Self.daysAgo(40))", key: key).status == 422)
        }
    }

    static func daysAgo(_ days: Int) -> String {
        Timestamp.now().adding(seconds: -Int64(days) * 86_400).description
    }
}
