import Foundation
import SQLKit
import TernCore
import Testing

@testable import TernStorage
@testable import TernTesting

/// Operational webhooks: every event type, once per cause, delivered by the engine to a real receiver, on SQLite and
/// PostgreSQL; nothing for a change that rolled back; a dead operational endpoint costs customers nothing.
@Suite struct OperationalWebhookTests {
    /// The operational events a receiver got, as (type, data).
    static func events(_ received: [Receiver.Received]) -> [(String, [String: Any])] {
        received.compactMap { request in
            guard let json = try? JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any] else { return nil }
            return ((json["type"] as? String) ?? "", (json["data"] as? [String: Any]) ?? [:])
        }
    }

    static func count(_ received: [Receiver.Received], _ type: String) -> Int {
        Self.events(received).filter { $0.0 == type }.count
    }

    @Test(arguments: Backend.available)
    func everyEventTypeIsSentExactlyOncePerCause(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        receiver.script("/hook", then: Receiver.Answer(status: 500))
        receiver.script("/gone", then: Receiver.Answer(status: 410))
        try await withTern(backend) { api in
            // No retries and a breaker at 10: ten failed publishes are ten dead letters, `endpoint.failing` at 5 and 9
            // failures in a row, and `endpoint.disabled` at the tenth.
            let (key, app) = try await api.shop(#", "retry_schedule": [], "circuit_breaker": {"failure_threshold": 10}"#)
            let created = try await api.post("/v1/operational-endpoints", key: key, #"{"url": "\#(receiver.url("/ops"))"}"#)
            try #require(created.status == 201, "\(created.text)")
            let operationalID = try #require(created.string("id"))
            let secret = try #require(created.string("secret"))
            #expect(created["application_id"] is NSNull && created.string("format") == "native" && created["disabled"] as? Bool == false)

            let (endpointID, _) = try await api.endpoint(key, app: app, url: receiver.url(), extra: #", "uid": "orders""#)
            let patched = try await api.call(.patch, "/v1/applications/\(app)/endpoints/\(endpointID)", key: key, json: #"{"description": "d"}"#)
            #expect(patched.status == 200)
            for _ in 0..<10 { _ = try await api.publish(key, app: app) }
            var received = await receiver.waitFor(2 + 10 + 10 + 2 + 1)
            let disabled = Self.events(received).first { $0.0 == "endpoint.disabled" }?.1
            #expect(disabled?["reason"] as? String == "circuit_breaker" && disabled?["fail_since"] is String, "\(String(describing: disabled))")
            #expect(disabled?["endpoint_uid"] as? String == "orders" && disabled?["tenant_id"] as? String == "tenant-1")
            let failing = Self.events(received).filter { $0.0 == "endpoint.failing" }.map { $0.1["consecutive_failures"] as? Int ?? 0 }
            #expect(failing.sorted() == [5, 9], "\(failing)")
            let exhausted = try #require(Self.events(received).first { $0.0 == "message.attempt.exhausted" }?.1)
            let lastAttempt = exhausted["last_attempt"] as? [String: Any]
            #expect(exhausted["message_id"] is String && exhausted["delivery_id"] is String && lastAttempt?["status_code"] as? Int == 500)

            // Enabled again, the endpoint answers 200: the dead letters replayed all recover.
            receiver.script("/hook", then: Receiver.Answer())
            let enabled = try await api.call(.patch, "/v1/applications/\(app)/endpoints/\(endpointID)", key: key, json: #"{"status": "active"}"#)
            #expect(enabled.status == 200)
            let replayed = try await api.post("/v1/applications/\(app)/deliveries/replay", key: key, "{}")
            #expect(replayed["count"] as? Int == 10, "\(replayed.text)")
            received = await receiver.waitFor(25 + 1 + 10 + 10)

            // A 410 disables at once: `gone`, and its delivery is a dead letter.
            _ = try await api.endpoint(key, app: app, url: receiver.url("/gone"), tenant: "tenant-2")
            _ = try await api.publish(key, app: app, tenant: "tenant-2")
            received = await receiver.waitFor(46 + 4)
            #expect(try await api.call(.delete, "/v1/applications/\(app)/endpoints/\(endpointID)", key: key).status == 204)
            received = await receiver.waitFor(50 + 1)
            let operational = received.filter { $0.path == "/ops" }
            let expected: [String: Int] = [
                "endpoint.created": 2, "endpoint.updated": 1, "endpoint.deleted": 1, "endpoint.disabled": 2, "endpoint.enabled": 1,
                "endpoint.failing": 2, "message.attempt.exhausted": 11, "message.attempt.recovered": 10,
            ]
            for (type, count) in expected { #expect(Self.count(operational, type) == count, "\(type)") }
            #expect(operational.count == expected.values.reduce(0, +))
            let gone = Self.events(operational).filter { $0.0 == "endpoint.disabled" }.map { $0.1["reason"] as? String ?? "" }
            #expect(gone.sorted() == ["circuit_breaker", "gone"])

            // Every event was a delivery of the engine: listed, delivered (once the worker has recorded the last answer),
            // with its attempt, and counted in /metrics.
            var deliveries = Reply(status: 0, headers: [:], text: "", json: nil)
            let recorded = try await eventually {
                deliveries = try await api.get("/v1/operational-endpoints/\(operationalID)/deliveries?limit=100", key: key)
                return deliveries.items.allSatisfy { $0["status"] as? String == "delivered" }
            }
            #expect(recorded && deliveries.items.count == operational.count, "\(deliveries.text)")
            let attempts = try await api.get("/v1/operational-endpoints/\(operationalID)/attempts?limit=100", key: key)
            #expect(attempts.items.count == operational.count)
            let metrics = try await api.get("/metrics", key: nil).text.split(separator: "\n")
            #expect(metrics.contains { $0.hasPrefix("tern_operational_webhooks_total{") && $0.contains(#""endpoint.failing""#) })
            // Signed like any delivery: the official Standard Webhooks and Svix libraries verify them.
            let captured: [[String: Any]] = operational.prefix(5).map { request in
                var headers: [String: String] = [:]
                for field in request.headers { headers[field.name.canonicalName] = field.value }
                return ["body_b64": Data(request.body).base64EncodedString(), "headers": headers, "secrets": [secret]]
            }
            let input = Leftovers.temporary("operational", suffix: ".json")
            try JSONSerialization.data(withJSONObject: ["deliveries": captured]).write(to: input)
            let (status, output) = try await runProgram(
                "python3", [repositoryRoot.appendingPathComponent("Tests/interop/verify_signatures.py").path, input.path])
            #expect(status == 0 && output.contains(#""failed": []"#), "\(output)")
        }
    }

    @Test(arguments: Backend.available)
    func aChangeThatRollsBackSendsNothing(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        try await withTern(backend) { api in
            let (key, app) = try await api.shop()
            _ = try await api.post("/v1/operational-endpoints", key: key, #"{"url": "\#(receiver.url("/ops"))"}"#)
            let (endpointID, _) = try await api.endpoint(key, app: app, url: receiver.url(), extra: #", "uid": "taken""#)
            let (otherID, _) = try await api.endpoint(key, app: app, url: receiver.url())
            await receiver.waitFor(2)
            // Refused changes send nothing.
            let conflict = try await api.call(.patch, "/v1/applications/\(app)/endpoints/\(otherID)", key: key, json: #"{"uid": "taken"}"#)
            #expect(conflict.status == 409, "\(conflict.text)")
            let invalid = try await api.call(
                .patch, "/v1/applications/\(app)/endpoints/\(endpointID)", key: key, json: #"{"events": ["not.registered"]}"#)
            #expect(invalid.status == 422, "\(invalid.text)")
            // One change that commits marks the end: its event is the third and last.
            _ = try await api.call(.patch, "/v1/applications/\(app)/endpoints/\(otherID)", key: key, json: #"{"description": "after"}"#)
            let received = await receiver.waitFor(3)
            #expect(received.count == 3 && Self.count(received, "endpoint.updated") == 1)
            let operational = try await api.get("/v1/operational-endpoints", key: key)
            let id = try #require(operational.items.first?["id"] as? String)
            #expect(try await api.get("/v1/operational-endpoints/\(id)/deliveries", key: key).items.count == 3)
            // An event emitted in a transaction that then fails is gone with it.
            struct RolledBack: Error {}
            let organizationID = try #require(try await api.get("/v1/applications/\(app)", key: key).string("organization_id"))
            await #expect(throws: RolledBack.self) {
                try await api.withStore { store in
                    try await store.database.write { sql in
                        let event = OperationalEvent(
                            type: .endpointUpdated, organizationID: organizationID, applicationID: app, tenantID: "tenant-1", endpointID: endpointID,
                            endpointUID: "taken")
                        #expect(try await Store.emitOperational([event], sql))
                        throw RolledBack()
                    }
                }
            }
            #expect(try await api.get("/v1/operational-endpoints/\(id)/deliveries", key: key).items.count == 3)
            _ = try await api.call(.patch, "/v1/applications/\(app)/endpoints/\(otherID)", key: key, json: #"{"description": "last"}"#)
            #expect(await receiver.waitFor(4).count == 4)
            #expect(try await api.get("/v1/operational-endpoints/\(id)/deliveries", key: key).items.count == 4)
        }
    }

    @Test(arguments: Backend.available)
    func aDownOperationalEndpointNeitherSlowsNorDisablesCustomerEndpoints(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        try await withTern(backend) { api in
            let (key, app) = try await api.shop(#", "retry_schedule": [1, 1], "circuit_breaker": {"failure_threshold": 3}"#)
            // The operational receiver hangs past the attempt's timeout, made the longest (30 s) so that a loaded machine
            // still has the customers' deliveries done while it hangs.
            receiver.script("/ops", then: Receiver.Answer(delay: .seconds(60)))
            let operational = try await api.post("/v1/operational-endpoints", key: key, #"{"url": "\#(receiver.url("/ops"))"}"#)
            let operationalID = try #require(operational.string("id"))
            try await api.withDatabase { sql in
                try await sql.raw("UPDATE endpoints SET timeout_seconds = 30 WHERE id = \(bind: operationalID)").run()
            }
            let (endpointID, _) = try await api.endpoint(key, app: app, url: receiver.url())
            _ = await receiver.waitFor(1)
            for index in 0..<20 { _ = try await api.publish(key, app: app, payload: #"{"n": \#(index)}"#) }
            _ = try await eventually { receiver.received.filter { $0.path == "/hook" }.count >= 20 }
            #expect(receiver.received.filter { $0.path == "/hook" }.count == 20)
            // All twenty arrived while the operational delivery was still hanging: no customer waits behind it.
            let inFlight = try await api.get("/v1/operational-endpoints/\(operationalID)/deliveries", key: key)
            #expect(inFlight.items.first?["status"] as? String == "delivering", "\(inFlight.text)")
            let endpoint = try await api.get("/v1/applications/\(app)/endpoints/\(endpointID)", key: key)
            #expect(endpoint.string("status") == "active")
            // Its own failures are its own: the event waits for its retry, and no event is raised about it.
            var deliveries = Reply(status: 0, headers: [:], text: "", json: nil)
            let retrying = try await eventually {
                deliveries = try await api.get("/v1/operational-endpoints/\(operationalID)/deliveries", key: key)
                return deliveries.items.first?["status"] as? String == "failed"
            }
            #expect(retrying, "\(deliveries.text)")
            #expect(deliveries.items.count == 1 && deliveries.items[0]["event_type"] as? String == "endpoint.created", "\(deliveries.text)")
            let attempts = try await api.get("/v1/operational-endpoints/\(operationalID)/attempts", key: key)
            #expect(attempts.items.count == 1 && attempts.items[0]["error"] is String, "\(attempts.text)")
            #expect(try await api.get("/v1/applications/\(app)/endpoints", key: key).items.count == 1)
        }
    }

    @Test func operationalEndpointsAreCheckedScopedAndHidden() async throws {
        try await withTern(.sqlite) { api in
            let (orgID, key) = try await api.organization()
            let app = try await api.application(key)
            let other = try await api.application(key, name: "Other")
            let bad = try await api.post("/v1/operational-endpoints", key: key, #"{"url": "ftp://x", "events": ["order.created"]}"#)
            #expect(bad.status == 422 && Set(bad.fieldErrors) == ["url", "events[0]"], "\(bad.text)")
            let unknown = try await api.post("/v1/operational-endpoints", key: key, #"{"url": "http://127.0.0.1:9/", "application_id": "app_x"}"#)
            #expect(unknown.status == 422 && unknown.fieldErrors == ["application_id"])
            let scoped = try await api.post(
                "/v1/operational-endpoints", key: key,
                #"{"url": "http://127.0.0.1:9/a", "application_id": "\#(app)", "events": ["endpoint.disabled"], "format": "svix"}"#)
            #expect(scoped.status == 201 && scoped.string("application_id") == app && scoped.string("format") == "svix", "\(scoped.text)")
            _ = try await api.post("/v1/operational-endpoints", key: key, #"{"url": "http://127.0.0.1:9/all"}"#)
            // A key restricted to the other application sees none of these, and can only make endpoints watching it.
            let restricted = try await api.createKey(orgID: orgID, applicationID: other)
            #expect(try await api.get("/v1/operational-endpoints", key: restricted).items.isEmpty)
            let id = try #require(scoped.string("id"))
            #expect(try await api.get("/v1/operational-endpoints/\(id)", key: restricted).status == 404)
            let own = try await api.post("/v1/operational-endpoints", key: restricted, #"{"url": "http://127.0.0.1:9/b"}"#)
            #expect(own.string("application_id") == other)
            // A key without the scope is refused.
            let reader = try await api.createKey(orgID: orgID, scopes: #"["read:endpoints"]"#)
            #expect(try await api.get("/v1/operational-endpoints", key: reader).status == 403)
            // PATCH: disable by hand, watch all applications.
            let patched = try await api.call(
                .patch, "/v1/operational-endpoints/\(id)", key: key, json: #"{"disabled": true, "application_id": null}"#)
            #expect(patched.string("status") == "disabled" && patched["application_id"] is NSNull, "\(patched.text)")
            let rotated = try await api.post("/v1/operational-endpoints/\(id)/rotate-secret", key: key, "{}")
            #expect(rotated.string("secret")?.hasPrefix("whsec_") == true)
            // The hidden application shows nowhere: two applications, no extra endpoints, plan counts unchanged.
            #expect(try await api.get("/v1/applications", key: key).items.count == 2)
            let usage = try await api.get("/v1/admin/organizations/\(orgID)/usage", key: testAdminKey)
            let used = { (name: String) in ((usage["usage"] as? [String: Any])?[name] as? [String: Any])?["used"] as? Int }
            #expect(used("applications") == 2 && used("endpoints") == 0, "\(usage.text)")
            #expect(try await api.call(.delete, "/v1/operational-endpoints/\(id)", key: key).status == 204)
            #expect(try await api.get("/v1/operational-endpoints", key: key).items.count == 2)
        }
    }
}
