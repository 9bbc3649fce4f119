import Foundation
import HTTPTypes
import TernCore
import Testing

@testable import TernTesting

/// Plan enforcement on publish: the per-tenant token bucket and the monthly quota, at their boundaries.
@Suite struct LimitsTests {
    /// An organization on a custom plan with these limits; returns (org, key, app).
    static func onPlan(_ api: API, _ limits: String) async throws -> (String, String, String) {
        let plan = "custom-\(UUID().uuidString.prefix(8).lowercased())"
        let put = try await api.call(.put, "/v1/admin/plans/\(plan)", key: testAdminKey, json: #"{"name": "Custom", \#(limits)}"#)
        try #require(put.status == 201, "\(put.text)")
        let (orgID, key) = try await api.organization(plan: plan)
        let app = try await api.application(key)
        try await api.eventType(key, app: app, name: "order.created")
        return (orgID, key, app)
    }

    @Test(arguments: Backend.available)
    func theTwoHundredAndFirstPublishInABurstIs429WithRetryAfter(_ backend: Backend) async throws {
        try await withTern(backend) { api in
            // A slow refill (1 a minute) so that the burst alone decides.
            let (_, key, app) = try await Self.onPlan(api, #""rate_limit_per_minute": 1, "rate_limit_burst": 200"#)
            for index in 1...200 {
                let reply = try await api.publish(key, app: app)
                try #require(reply.status == 202, "publish \(index): \(reply.text)")
                #expect(reply.headers[HTTPField.Name("RateLimit-Limit")!] == "200")
                #expect(reply.headers[HTTPField.Name("RateLimit-Remaining")!] == String(200 - index))
                #expect(reply.headers[HTTPField.Name("RateLimit-Reset")!] != nil)
            }
            let limited = try await api.publish(key, app: app)
            #expect(limited.status == 429)
            #expect(limited.headers[.contentType] == "application/problem+json")
            #expect(limited.problemType.hasSuffix("rate-limited"))
            let retryAfter = try #require(limited.headers[.retryAfter].flatMap(Int.init))
            #expect(retryAfter >= 1 && retryAfter <= 60)
            #expect(limited.headers[HTTPField.Name("RateLimit-Remaining")!] == "0")
            // Another tenant has its own bucket; the refused publish stored nothing.
            #expect(try await api.publish(key, app: app, tenant: "tenant-2").status == 202)
            let messages = try await api.get("/v1/applications/\(app)/events?tenant_id=tenant-1&limit=250", key: key)
            #expect(messages.items.count == 200)
        }
    }

    @Test(arguments: Backend.available)
    func concurrentPublishesNeverExceedTheBurst(_ backend: Backend) async throws {
        try await withTern(backend) { api in
            let (_, key, app) = try await Self.onPlan(api, #""rate_limit_per_minute": 1, "rate_limit_burst": 50"#)
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<120 { group.addTask { try await api.publish(key, app: app).status } }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == 202 }.count == 50, "exactly the burst gets through")
            #expect(statuses.filter { $0 == 429 }.count == 70)
        }
    }

    /// Concurrent batches are decided without waiting on the month's count; the one that would pass the quota is
    /// decided again with the count locked, so exactly the quota gets through and the count is exact.
    @Test(arguments: Backend.available)
    func concurrentPublishesNeverExceedTheMonthlyQuota(_ backend: Backend) async throws {
        try await withTern(backend) { api in
            let (orgID, key, app) = try await Self.onPlan(api, #""max_messages_per_month": 150"#)
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<240 { group.addTask { try await api.publish(key, app: app, tenant: "tenant-\(index % 7)").status } }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == 202 }.count == 150, "exactly the quota gets through")
            #expect(statuses.filter { $0 == 403 }.count == 90)
            let usage = try await api.get("/v1/admin/organizations/\(orgID)/usage", key: testAdminKey)
            let figures = try #require(usage["usage"] as? [String: [String: Any]])
            #expect(figures["messages_this_month"]?["used"] as? Int == 150)
        }
    }

    @Test(arguments: Backend.available)
    func theMonthlyQuotaIsEnforcedAndUsageShowsEveryLimit(_ backend: Backend) async throws {
        try await withTern(backend) { api in
            let (orgID, key, app) = try await Self.onPlan(api, #""max_messages_per_month": 5, "max_endpoints": 2, "max_payload_bytes": 1024"#)
            for _ in 1...5 { #expect(try await api.publish(key, app: app).status == 202) }
            let over = try await api.publish(key, app: app)
            #expect(over.status == 403)
            #expect(over.problemType.hasSuffix("plan-limit-exceeded"))
            #expect(try await api.get("/v1/applications/\(app)/events", key: key).items.count == 5)
            let big = try await api.publish(key, app: app, payload: #"{"blob": "\#(String(repeating: "x", count: 1100))"}"#)
            #expect(big.status == 413, "the plan's payload limit")

            _ = try await api.endpoint(key, app: app, url: "http://127.0.0.1:9/a")
            #expect(try await api.endpoint(key, app: app).status == 201, "the 2nd endpoint of 2")
            let third = try await api.endpoint(key, app: app)
            #expect(third.status == 403 && third.problemType.hasSuffix("plan-limit-exceeded"))

            let usage = try await api.get("/v1/admin/organizations/\(orgID)/usage", key: testAdminKey)
            let figures = try #require(usage["usage"] as? [String: [String: Any]])
            #expect(figures["messages_this_month"]?["used"] as? Int == 5 && figures["messages_this_month"]?["limit"] as? Int == 5)
            #expect(figures["endpoints"]?["used"] as? Int == 2 && figures["endpoints"]?["limit"] as? Int == 2)
            let limits = try #require(usage["limits"] as? [String: Any])
            #expect(limits["max_payload_bytes"] as? Int == 1024)

            // A downgrade below current use blocks new objects and deletes nothing.
            let (_, smallKey, smallApp) = try await Self.onPlan(api, #""max_endpoints": 5"#)
            for _ in 0..<3 { #expect(try await api.endpoint(smallKey, app: smallApp).status == 201) }
            let tiny = "tiny-\(UUID().uuidString.prefix(6).lowercased())"
            _ = try await api.call(.put, "/v1/admin/plans/\(tiny)", key: testAdminKey, json: #"{"name": "Tiny", "max_endpoints": 1}"#)
            let orgs = try await api.get("/v1/admin/organizations?limit=250", key: testAdminKey).items
            let smallOrg = try #require(
                orgs.first { ($0["plan"] as? String)?.hasPrefix("custom-") == true && $0["id"] as? String != orgID }?["id"] as? String)
            #expect(
                try await api.call(.patch, "/v1/admin/organizations/\(smallOrg)", key: testAdminKey, json: #"{"plan": "\#(tiny)"}"#).status == 200)
            #expect(try await api.endpoint(smallKey, app: smallApp).status == 403)
            #expect(try await api.get("/v1/applications/\(smallApp)/endpoints", key: smallKey).items.count == 3)
        }
    }
}
