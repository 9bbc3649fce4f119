import Foundation
import TernCore
import Testing

@testable import TernTesting

/// The portal and the admin area in a real browser: headless Chromium driven by Selenium (Tests/browser).
/// With `TERN_SCREENSHOTS=<folder>` the run also saves screenshots of the main pages (docs/screenshots).
@Suite struct BrowserTests {
    @Test func aTenantManagesAnEndpointAndReplaysAFailedDeliveryAndAnOperatorChangesAPlan() async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        receiver.script("/fail", then: .init(status: 500, body: #"{"error": "temporarily unavailable"}"#))
        receiver.script("/flaky", [.init(status: 500)], then: .init())
        // The test's own client is idle while the browser works (a minute on a loaded machine): keep its connection.
        try await withTern(.sqlite, live: true, configure: { $0.requestReadTimeout = .seconds(600) }) { api in
            let port = try #require(api.port)
            let (orgID, key) = try await api.organization("Acme Shop", plan: "free")
            let app = try await api.application(key, name: "Acme Shop", extra: ##", "retry_schedule": [], "portal": {"brand_color": "#0b7a75"}"##)
            _ = try await api.post(
                "/v1/applications/\(app)/event-types", key: key,
                """
                {"name": "order.created", "description": "A customer placed an order.", "example": {"order_id": 1001, "total": 12.5},
                 "schema": {"type": "object", "required": ["order_id"], "properties": {"order_id": {"type": "integer"}}}}
                """)
            try await api.eventType(key, app: app, name: "order.shipped")
            let session = try await api.post("/v1/applications/\(app)/portal-sessions", key: key, #"{"tenant_id": "customer-42"}"#)
            let token = try #require(session.string("token"))
            let base = "http://127.0.0.1:\(port)"
            let input: [String: Any] = [
                "base": base, "portal_url": "\(base)/portal?token=\(token)", "api_key": key, "app": app, "tenant": "customer-42",
                "fail_url": receiver.url("/fail"), "flaky_url": receiver.url("/flaky"), "admin_key": testAdminKey, "org": orgID,
                "screenshots": ProcessInfo.processInfo.environment["TERN_SCREENSHOTS"] ?? "",
            ]
            let file = Leftovers.temporary("browser", suffix: ".json")
            try JSONSerialization.data(withJSONObject: input).write(to: file)
            let (status, output) = try await InteropTests.python(
                repositoryRoot.appendingPathComponent("Tests/browser/portal_browser.py").path, file.path)
            #expect(status == 0, "\(output)")
            let result = try #require(
                output.split(separator: "\n").last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })

            // What the browser did is what the API now shows.
            let endpointID = try #require(result["endpoint_id"] as? String)
            let endpoint = try await api.get("/v1/applications/\(app)/endpoints/\(endpointID)", key: key)
            #expect(endpoint.string("tenant_id") == "customer-42" && endpoint.string("status") == "active")
            #expect(endpoint["events"] as? [String] == ["order.created"])
            let deliveryID = try #require(result["delivery_id"] as? String)
            _ = try await eventually { (try await api.delivery(key, app: app, deliveryID)["attempt_count"] as? Int) == 2 }
            let attempts = try await api.get("/v1/applications/\(app)/deliveries/\(deliveryID)/attempts", key: key).items
            #expect(attempts.map { $0["trigger"] as? String } == ["manual", "scheduled"], "the replay made a manual attempt")
            #expect(try await api.get("/v1/admin/organizations/\(orgID)", key: testAdminKey).string("plan") == "starter")
            let reenabled = try #require(result["reenabled_endpoint_id"] as? String)
            #expect(try await api.get("/v1/applications/\(app)/endpoints/\(reenabled)", key: key).string("status") == "active")
        }
    }
}
