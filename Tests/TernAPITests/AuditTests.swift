import Foundation
import TernCore
import Testing

@testable import TernTesting

/// Every kind of write, through the API, the portal, the admin area and the engine itself, lands in the audit log.
@Suite struct AuditTests {
    @Test(arguments: Backend.available)
    func everyKindOfWriteIsAuditedWithoutSecrets(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        receiver.script("/down", then: .init(status: 500))
        try await withTern(backend) { api in
            let (orgID, key) = try await api.organization("Audited")
            let (_, otherKey) = try await api.organization("Other")
            // API writes.
            let minted = try await api.post("/v1/api-keys", key: key, #"{"name": "ci"}"#)
            #expect(try await api.call(.delete, "/v1/api-keys/\(try #require(minted.string("id")))", key: key).status == 204)
            let app = try await api.application(key, extra: #", "retry_schedule": [], "circuit_breaker": {"failure_threshold": 1}"#)
            #expect(try await api.call(.patch, "/v1/applications/\(app)", key: key, json: #"{"name": "Renamed"}"#).status == 200)
            try await api.eventType(key, app: app, name: "order.created")
            #expect(
                try await api.call(.patch, "/v1/applications/\(app)/event-types/order.created", key: key, json: #"{"description": "x"}"#).status
                    == 200)
            try await api.eventType(key, app: app, name: "order.old")
            #expect(try await api.call(.delete, "/v1/applications/\(app)/event-types/order.old", key: key).status == 204)
            let (endpoint, secret) = try await api.endpoint(key, app: app, url: receiver.url("/ok"))
            #expect(
                try await api.call(.patch, "/v1/applications/\(app)/endpoints/\(endpoint)", key: key, json: #"{"status": "paused"}"#).status == 200)
            let rotated = try await api.post("/v1/applications/\(app)/endpoints/\(endpoint)/rotate-secret", key: key, "{}")
            let newSecret = try #require(rotated.string("secret"))
            #expect(
                try await api.call(.patch, "/v1/applications/\(app)/endpoints/\(endpoint)", key: key, json: #"{"status": "active"}"#).status == 200)
            #expect(try await api.post("/v1/applications/\(app)/endpoints/\(endpoint)/test", key: key, "{}").status == 202)
            #expect(
                try await api.post("/v1/applications/\(app)/endpoints/\(endpoint)/recover", key: key, #"{"since": "2020-01-01T00:00:00Z"}"#).status
                    == 202)
            let message = try #require(try await api.publish(key, app: app).string("id"))
            let delivery = try #require(try await api.deliveries(key, app: app, message: message).first?["id"] as? String)
            _ = try await api.waitForDelivery(key, app: app, delivery, status: "delivered")
            #expect(try await api.post("/v1/applications/\(app)/deliveries/\(delivery)/replay", key: key, "{}").status == 202)
            #expect(try await api.post("/v1/applications/\(app)/deliveries/replay", key: key, "{}").status == 202)
            let source = try await api.post(
                "/v1/applications/\(app)/sources", key: key, #"{"name": "Hooks", "provider": "token", "tenant_id": "tenant-1"}"#)
            let sourceID = try #require(source.string("id"))
            let sourceSecret = try #require(source.string("secret"))
            #expect(try await api.call(.patch, "/v1/applications/\(app)/sources/\(sourceID)", key: key, json: #"{"name": "Hooks 2"}"#).status == 200)
            #expect(try await api.call(.delete, "/v1/applications/\(app)/sources/\(sourceID)", key: key).status == 204)
            // The portal.
            let (token, cookie) = try await PortalTests.session(api, key: key, app: app)
            _ = token
            let csrf = PortalTests.csrf(try await PortalTests.page(api, "/portal/endpoints/\(endpoint)", cookie: cookie).text)
            let created = try await PortalTests.page(
                api, "/portal/endpoints", cookie: cookie, method: .post, form: "_csrf=\(csrf)&url=https%3A%2F%2Fexample.com%2Fh")
            #expect(created.status == 201)
            #expect(
                try await PortalTests.page(
                    api, "/portal/endpoints/\(endpoint)/status", cookie: cookie, method: .post, form: "_csrf=\(csrf)&status=paused"
                ).status == 303)
            // The admin API and the admin area.
            #expect(try await api.call(.patch, "/v1/admin/organizations/\(orgID)", key: testAdminKey, json: #"{"plan": "starter"}"#).status == 200)
            let signedIn = try await PortalTests.page(api, "/admin/login", cookie: nil, method: .post, form: "key=\(testAdminKey)")
            let adminCookie = try #require(signedIn.headers[.setCookie]?.split(separator: ";").first.map(String.init))
            let adminCSRF = PortalTests.csrf(try await PortalTests.page(api, "/admin/organizations/\(orgID)", cookie: adminCookie).text)
            #expect(
                try await PortalTests.page(
                    api, "/admin/organizations/\(orgID)/plan", cookie: adminCookie, method: .post, form: "_csrf=\(adminCSRF)&plan=pro"
                ).status == 303)
            // The engine: the circuit breaker disables a failing endpoint.
            let (failing, _) = try await api.endpoint(key, app: app, url: receiver.url("/down"), tenant: "tenant-9")
            _ = try await api.publish(key, app: app, tenant: "tenant-9")
            _ = try await eventually { try await api.get("/v1/applications/\(app)/endpoints/\(failing)", key: key).string("status") == "disabled" }

            let log = try await api.get("/v1/audit-entries?limit=250", key: key)
            #expect(log.status == 200)
            let actions = Set(log.items.compactMap { $0["action"] as? String })
            for action in [
                "api_key.created", "api_key.revoked", "application.created", "application.updated", "event_type.created",
                "event_type.updated", "event_type.archived", "endpoint.created", "endpoint.updated", "endpoint.secret_rotated",
                "endpoint.test_sent", "endpoint.recovered", "delivery.replayed", "deliveries.replayed", "source.created",
                "source.updated", "source.deleted", "portal_session.created", "organization.updated", "endpoint.disabled",
            ] {
                #expect(actions.contains(action), "\(action) is missing from \(actions.sorted())")
            }
            let actors = Set(log.items.compactMap { ($0["actor"] as? [String: Any])?["type"] as? String })
            #expect(actors == ["api_key", "portal", "admin", "system"], "\(actors)")
            for secretText in [secret, newSecret, sourceSecret, testAdminKey] { #expect(!log.text.contains(secretText), "a secret in the audit log") }
            let planChanges = log.items.filter { $0["action"] as? String == "organization.updated" }
            #expect(planChanges.contains { ($0["summary"] as? [String: Any])?["plan"] as? String == "pro" })
            let rotation = try #require(log.items.first { $0["action"] as? String == "endpoint.secret_rotated" })
            #expect(rotation["entity_type"] as? String == "endpoint" && rotation["entity_id"] as? String == endpoint)

            let filtered = try await api.get("/v1/audit-entries?entity_id=\(endpoint)&action=endpoint.updated", key: key)
            #expect(
                !filtered.items.isEmpty
                    && filtered.items.allSatisfy { $0["entity_id"] as? String == endpoint && $0["action"] as? String == "endpoint.updated" })
            let byType = try await api.get("/v1/audit-entries?entity_type=source", key: key)
            #expect(byType.items.count == 3)
            let paged = try await api.get("/v1/audit-entries?limit=2", key: key)
            #expect(paged.items.count == 2 && paged["has_more"] as? Bool == true)
            let other = try await api.get("/v1/audit-entries?limit=250", key: otherKey)
            #expect(
                other.status == 200 && !other.text.contains(app) && !other.text.contains(endpoint) && !other.text.contains(orgID),
                "another organization sees only its own entries")
        }
    }
}
