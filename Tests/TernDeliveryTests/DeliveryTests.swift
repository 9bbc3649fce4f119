import Foundation
import SQLKit
import TernCore
import Testing

@testable import TernTesting

/// Publishing and delivering, end to end: the API publishes, the in-process workers deliver to a real receiver on
/// 127.0.0.1, and the API shows the deliveries and attempts.
@Suite struct DeliveryTests {
    @Test(arguments: Backend.available)
    func publishDeliversTheExactPayloadSignedToEveryMatchingEndpoint(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        try await withTern(backend) { api in
            let (key, app) = try await api.shop()
            try await api.eventType(key, app: app, name: "order.shipped")
            let (subscribed, secret) = try await api.endpoint(
                key, app: app, url: receiver.url("/subscribed"), extra: #", "events": ["order.created"], "headers": {"X-Shop": "acme"}"#
            )
            _ = try await api.endpoint(key, app: app, url: receiver.url("/all"))
            _ = try await api.endpoint(key, app: app, url: receiver.url("/other-type"), extra: #", "events": ["order.shipped"]"#)
            _ = try await api.endpoint(key, app: app, url: receiver.url("/other-tenant"), tenant: "tenant-2")
            _ = try await api.endpoint(key, app: app, url: receiver.url("/disabled"), extra: #", "status": "disabled""#)

            // Odd spacing, key order, a float with a trailing zero and non-ASCII text: delivered byte for byte.
            let payload = #"{ "z": 1,  "a": [1.50, true, null], "name": "Zoë \u00e9", "nested": {"b": 2, "a": 1} }"#
            let published = try await api.publish(key, app: app, payload: payload)
            #expect(published.status == 202, "\(published.text)")
            #expect(published["deliveries"] as? Int == 2)
            let messageID = try #require(published.string("id"))
            #expect(messageID.hasPrefix("msg_"))

            let received = await receiver.waitFor(2)
            #expect(Set(received.map(\.path)) == ["/subscribed", "/all"])
            for request in received {
                #expect(request.body == Array(payload.utf8))
                #expect(request.messageID == messageID)
                #expect(request.header("content-type") == "application/json")
                #expect(request.header("user-agent")?.hasPrefix("Tern/") == true)
            }
            let toSubscribed = try #require(received.first { $0.path == "/subscribed" })
            #expect(toSubscribed.header("x-shop") == "acme")
            let timestamp = try #require(Int64(toSubscribed.header("webhook-timestamp") ?? ""))
            #expect(abs(timestamp - Int64(Date().timeIntervalSince1970)) < 60)
            let signature = try #require(toSubscribed.header("webhook-signature"))
            #expect(signature.hasPrefix("v1,") && !signature.contains(" "))
            #expect(WebhookSignature.verify(header: signature, secret: secret, messageID: messageID, timestamp: timestamp, body: toSubscribed.body))
            #expect(
                !WebhookSignature.verify(
                    header: signature, secret: EndpointSecret.generate(), messageID: messageID, timestamp: timestamp, body: toSubscribed.body))

            var deliveries: [[String: Any]] = []
            _ = try await eventually {
                deliveries = try await api.deliveries(key, app: app, message: messageID)
                return deliveries.count == 2 && deliveries.allSatisfy { $0["status"] as? String == "delivered" }
            }
            #expect(deliveries.map { $0["status"] as? String } == ["delivered", "delivered"])
            let delivery = try #require(deliveries.first { $0["endpoint_id"] as? String == subscribed })
            #expect(delivery["attempt_count"] as? Int == 1)
            #expect(delivery["last_status_code"] as? Int == 200)
            let deliveryID = try #require(delivery["id"] as? String)
            let attempts = try await api.get("/v1/applications/\(app)/deliveries/\(deliveryID)/attempts", key: key)
            #expect(attempts.items.count == 1)
            let attempt = try #require(attempts.items.first)
            #expect((attempt["id"] as? String)?.hasPrefix("atmpt_") == true)
            #expect(attempt["status_code"] as? Int == 200)
            #expect(attempt["response_body"] as? String == "ok")
            #expect(attempt["error"] is NSNull)
            #expect(attempt["trigger"] as? String == "scheduled")
            #expect(attempt["duration_ms"] is Int)

            let message = try await api.get("/v1/applications/\(app)/events/\(messageID)", key: key)
            #expect(message.status == 200)
            #expect((message["deliveries"] as? [[String: Any]])?.count == 2)
            #expect((message["payload"] as? [String: Any])?["name"] as? String == "Zoë é")
            let listed = try await api.get("/v1/applications/\(app)/events?tenant_id=tenant-1&event_type=order.created", key: key)
            #expect(listed.items.map { $0["id"] as? String } == [messageID])
            let none = try await api.get("/v1/applications/\(app)/events?tenant_id=tenant-2", key: key)
            #expect(none.items.isEmpty)
        }
    }

    @Test(arguments: Backend.available)
    func publishRejectsBadEventsWithClearProblemsAndStoresNothing(_ backend: Backend) async throws {
        try await withTern(backend) { api in
            let (orgID, key) = try await api.organization()
            let app = try await api.application(key)
            try await api.eventType(key, app: app, name: "order.created")
            try await api.eventType(key, app: app, name: "order.old")
            #expect(try await api.call(.delete, "/v1/applications/\(app)/event-types/order.old", key: key).status == 204)
            _ = try await api.endpoint(key, app: app, url: "http://127.0.0.1:9/hook")

            let unknown = try await api.publish(key, app: app, type: "order.unknown")
            #expect(unknown.status == 422)
            #expect(unknown.fieldErrors == ["event_type"])
            let archived = try await api.publish(key, app: app, type: "order.old")
            #expect(archived.status == 422)
            #expect(try await api.publish(key, app: app, payload: "[1, 2]").fieldErrors == ["payload"])
            #expect(try await api.publish(key, app: app, payload: #""text""#).status == 422)
            #expect(
                try await api.post("/v1/applications/\(app)/events", key: key, #"{"event_type": "order.created", "tenant_id": "t"}"#).fieldErrors == [
                    "payload"
                ])
            #expect(try await api.publish(key, app: app, tenant: "").fieldErrors == ["tenant_id"])
            #expect(try await api.post("/v1/applications/\(app)/events", key: key, #"{"event_type": "order.created", "#).status == 400)
            let large = try await api.publish(key, app: app, payload: #"{"blob": "\#(String(repeating: "x", count: 262_144))"}"#)
            #expect(large.status == 413)
            #expect(large.headers[.contentType] == "application/problem+json")

            let messages = try await api.get("/v1/applications/\(app)/events", key: key)
            #expect(messages.items.isEmpty)
            let usage = try await api.get("/v1/admin/organizations/\(orgID)/usage", key: testAdminKey)
            #expect(((usage["usage"] as? [String: Any])?["messages_this_month"] as? [String: Any])?["used"] as? Int == 0)

            // An application that allows unregistered types accepts any well-formed name.
            let open = try await api.application(key, name: "Open", extra: #", "allow_unregistered_event_types": true"#)
            #expect(try await api.publish(key, app: open, type: "anything.goes").status == 202)
            let counted = try await api.get("/v1/admin/organizations/\(orgID)/usage", key: testAdminKey)
            #expect(((counted["usage"] as? [String: Any])?["messages_this_month"] as? [String: Any])?["used"] as? Int == 1)
        }
    }

    @Test(arguments: Backend.available)
    func aRepeatedEventIDOrIdempotencyKeyReturnsTheFirstMessageWithoutNewDeliveries(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        try await withTern(backend) { api in
            let (key, app) = try await api.shop()
            _ = try await api.endpoint(key, app: app, url: receiver.url())

            let first = try await api.publish(key, app: app, eventID: "evt-1")
            #expect(first.status == 202)
            let again = try await api.publish(key, app: app, payload: #"{"n": 2}"#, eventID: "evt-1")
            #expect(again.status == 200)
            #expect(again.string("id") == first.string("id"))
            #expect(again["deliveries"] as? Int == 1)

            // Ten concurrent publishes of one new event id make one message.
            let ids = try await withThrowingTaskGroup(of: String?.self) { group in
                for _ in 0..<10 { group.addTask { try await api.publish(key, app: app, eventID: "evt-race").string("id") } }
                return try await group.reduce(into: Set<String?>()) { $0.insert($1) }
            }
            #expect(ids.count == 1 && ids.first! != nil)

            let keyed = try await api.publish(key, app: app, headers: ["Idempotency-Key": "k-1"])
            let repeated = try await api.publish(key, app: app, headers: ["Idempotency-Key": "k-1"])
            #expect(keyed.status == 202 && repeated.status == 202)
            #expect(repeated.text == keyed.text)
            let conflicting = try await api.publish(key, app: app, payload: #"{"n": 3}"#, headers: ["Idempotency-Key": "k-1"])
            #expect(conflicting.status == 409)

            await receiver.waitFor(3)
            let messages = try await api.get("/v1/applications/\(app)/events", key: key)
            #expect(messages.items.count == 3)
            try await Task.sleep(for: .milliseconds(300))
            #expect(receiver.received.count == 3, "one delivery per message, none for the repeats")
        }
    }

    @Test(arguments: Backend.available)
    func failuresRetryOnTheScheduleThenExhaustIntoTheDeadLetterQueueAndReplay(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        receiver.script("/hook", then: .init(status: 500, body: "down"))
        try await withTern(backend) { api in
            let (key, app) = try await api.shop(#", "retry_schedule": [1, 1]"#)
            let (endpointID, _) = try await api.endpoint(key, app: app, url: receiver.url())

            let first = try #require(try await api.publish(key, app: app).string("id"))
            let second = try #require(try await api.publish(key, app: app).string("id"))
            let firstDelivery = try #require(try await api.deliveries(key, app: app, message: first).first?["id"] as? String)
            let exhausted = try await api.waitForDelivery(key, app: app, firstDelivery, status: "exhausted")
            #expect(exhausted["attempt_count"] as? Int == 3, "the first attempt and the two retries of [1, 1]")
            #expect(exhausted["last_status_code"] as? Int == 500)
            #expect(exhausted["next_attempt_at"] is NSNull)
            let attempts = try await api.get("/v1/applications/\(app)/deliveries/\(firstDelivery)/attempts", key: key).items
            #expect(attempts.count == 3)
            #expect(
                attempts.allSatisfy {
                    $0["status_code"] as? Int == 500 && $0["trigger"] as? String == "scheduled" && $0["response_body"] as? String == "down"
                })
            let times = attempts.compactMap { ($0["created_at"] as? String).flatMap(Timestamp.init(rfc3339:)) }.sorted()
            #expect(times.count == 3)
            for (earlier, later) in zip(times, times.dropFirst()) {
                #expect(later.microseconds - earlier.microseconds >= 850_000, "a retry waits its scheduled second (less 10% jitter)")
            }
            let secondDelivery = try #require(try await api.deliveries(key, app: app, message: second).first?["id"] as? String)
            _ = try await api.waitForDelivery(key, app: app, secondDelivery, status: "exhausted")
            let dlq = try await api.get("/v1/applications/\(app)/deliveries?status=exhausted", key: key)
            #expect(dlq.items.count == 2)

            // The receiver recovers: replay one delivery, then bulk-replay the rest of the dead-letter queue.
            receiver.script("/hook", then: .init(status: 204, body: ""))
            let replay = try await api.post("/v1/applications/\(app)/deliveries/\(firstDelivery)/replay", key: key, "{}")
            #expect(replay.status == 202)
            #expect(replay.string("status") == "replaying")
            let replayed = try await api.waitForDelivery(key, app: app, firstDelivery, status: "delivered")
            #expect(replayed["attempt_count"] as? Int == 4)
            let latest = try await api.get("/v1/applications/\(app)/deliveries/\(firstDelivery)/attempts?limit=1", key: key).items.first
            #expect(latest?["trigger"] as? String == "manual")
            #expect(latest?["status_code"] as? Int == 204)

            let bulk = try await api.post(
                "/v1/applications/\(app)/deliveries/replay", key: key, #"{"status": "exhausted", "endpoint_id": "\#(endpointID)"}"#)
            #expect(bulk.status == 202)
            #expect(bulk["count"] as? Int == 1)
            _ = try await api.waitForDelivery(key, app: app, secondDelivery, status: "delivered")
            let badFilter = try await api.post("/v1/applications/\(app)/deliveries/replay", key: key, #"{"status": "delivered"}"#)
            #expect(badFilter.status == 422)
        }
    }

    @Test(arguments: Backend.available)
    func retryAfterIsHonouredAndRedirectsCountAsFailures(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        receiver.script("/busy", [.init(status: 429, headers: ["Retry-After": "3"])])
        receiver.script("/moved", then: .init(status: 302, headers: ["Location": receiver.url("/elsewhere")]))
        try await withTern(backend) { api in
            let (key, app) = try await api.shop(#", "retry_schedule": [1]"#)
            _ = try await api.endpoint(key, app: app, url: receiver.url("/busy"))
            _ = try await api.endpoint(key, app: app, url: receiver.url("/moved"))
            let message = try #require(try await api.publish(key, app: app).string("id"))

            let deliveries = try await api.deliveries(key, app: app, message: message)
            let busy = try #require(deliveries.first { ($0["endpoint_id"] as? String) != nil && $0["id"] != nil && true })
            _ = busy
            var throttled: [String: Any] = [:]
            var moved: [String: Any] = [:]
            _ = try await eventually {
                let all = try await api.deliveries(key, app: app, message: message)
                // Seen while it waits for its retry (once a worker holds it again, its next time is the lease's).
                if throttled.isEmpty { throttled = all.first { $0["last_status_code"] as? Int == 429 && $0["status"] as? String == "failed" } ?? [:] }
                moved = all.first { $0["last_status_code"] as? Int == 302 && $0["status"] as? String == "exhausted" } ?? [:]
                return !throttled.isEmpty && !moved.isEmpty
            }
            let last = try #require((throttled["last_attempt_at"] as? String).flatMap(Timestamp.init(rfc3339:)))
            let next = try #require((throttled["next_attempt_at"] as? String).flatMap(Timestamp.init(rfc3339:)))
            #expect(next.microseconds - last.microseconds >= 3_000_000, "Retry-After: 3 outweighs the 1-second schedule")
            #expect(moved["attempt_count"] as? Int == 2)
            #expect(receiver.received(path: "/elsewhere").isEmpty, "redirects are not followed")
            let throttledID = try #require(throttled["id"] as? String)
            _ = try await api.waitForDelivery(key, app: app, throttledID, status: "delivered")
            let times = receiver.received(path: "/busy").map(\.at)
            #expect(times.count == 2)
            if times.count == 2 { #expect(times[1] - times[0] >= .milliseconds(2500), "the retry waited for Retry-After") }
        }
    }

    @Test(arguments: Backend.available)
    func rotationSignsWithBothSecretsForADayThenOnlyTheNewOne(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        try await withTern(backend) { api in
            let (key, app) = try await api.shop()
            let (endpointID, oldSecret) = try await api.endpoint(key, app: app, url: receiver.url())

            let rotated = try await api.post("/v1/applications/\(app)/endpoints/\(endpointID)/rotate-secret", key: key, "{}")
            #expect(rotated.status == 200)
            let newSecret = try #require(rotated.string("secret"))
            #expect(newSecret.hasPrefix("whsec_") && newSecret != oldSecret)
            let expires = try #require(rotated.string("previous_secret_expires_at").flatMap(Timestamp.init(rfc3339:)))
            let day = Timestamp.now().adding(seconds: 24 * 3600).microseconds
            #expect(abs(expires.microseconds - day) < 60_000_000)

            let message = try #require(try await api.publish(key, app: app).string("id"))
            let request = try #require(await receiver.waitFor(1).first)
            let header = try #require(request.header("webhook-signature"))
            let timestamp = try #require(Int64(request.header("webhook-timestamp") ?? ""))
            #expect(header.split(separator: " ").count == 2)
            #expect(header.split(separator: " ").allSatisfy { $0.hasPrefix("v1,") })
            #expect(WebhookSignature.verify(header: header, secret: newSecret, messageID: message, timestamp: timestamp, body: request.body))
            #expect(WebhookSignature.verify(header: header, secret: oldSecret, messageID: message, timestamp: timestamp, body: request.body))

            // A day later the old secret drops out.
            try await api.withDatabase { sql in
                try await sql.raw(
                    "UPDATE endpoints SET previous_secret_expires_at = \(bind: Timestamp.now().microseconds - 1) WHERE id = \(bind: endpointID)"
                ).run()
            }
            let later = try #require(try await api.publish(key, app: app).string("id"))
            let next = try #require(await receiver.waitFor(2).last)
            let laterHeader = try #require(next.header("webhook-signature"))
            let laterTimestamp = try #require(Int64(next.header("webhook-timestamp") ?? ""))
            #expect(!laterHeader.contains(" "))
            #expect(WebhookSignature.verify(header: laterHeader, secret: newSecret, messageID: later, timestamp: laterTimestamp, body: next.body))
            #expect(!WebhookSignature.verify(header: laterHeader, secret: oldSecret, messageID: later, timestamp: laterTimestamp, body: next.body))

            let chosen = "whsec_" + Data(randomBytes(32)).base64EncodedString()
            let own = try await api.post("/v1/applications/\(app)/endpoints/\(endpointID)/rotate-secret", key: key, #"{"secret": "\#(chosen)"}"#)
            #expect(own.string("secret") == chosen)
            let bad = try await api.post("/v1/applications/\(app)/endpoints/\(endpointID)/rotate-secret", key: key, #"{"secret": "nope"}"#)
            #expect(bad.status == 422)
        }
    }

    @Test(arguments: Backend.available)
    func pausedEndpointsQueueDisabledOnesGetNothingAndDeletionDropsPendingDeliveries(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        try await withTern(backend) { api in
            let (key, app) = try await api.shop()
            let (paused, _) = try await api.endpoint(key, app: app, url: receiver.url("/paused"), extra: #", "status": "paused""#)
            let (doomed, _) = try await api.endpoint(key, app: app, url: receiver.url("/doomed"), tenant: "tenant-2", extra: #", "status": "paused""#)
            _ = try await api.endpoint(key, app: app, url: receiver.url("/disabled"), tenant: "tenant-3", extra: #", "status": "disabled""#)

            let message = try #require(try await api.publish(key, app: app).string("id"))
            let toDoomed = try #require(try await api.publish(key, app: app, tenant: "tenant-2").string("id"))
            let toDisabled = try await api.publish(key, app: app, tenant: "tenant-3")
            #expect(toDisabled["deliveries"] as? Int == 0)
            try await Task.sleep(for: .milliseconds(700))
            #expect(receiver.received.isEmpty)
            let queued = try #require(try await api.deliveries(key, app: app, message: message).first)
            #expect(queued["status"] as? String == "pending")

            let resumed = try await api.call(.patch, "/v1/applications/\(app)/endpoints/\(paused)", key: key, json: #"{"status": "active"}"#)
            #expect(resumed.status == 200)
            #expect(resumed["paused_at"] is NSNull)
            let arrived = await receiver.waitFor(1)
            #expect(arrived.map(\.path) == ["/paused"])
            _ = try await api.waitForDelivery(key, app: app, try #require(queued["id"] as? String), status: "delivered")

            #expect(try await api.call(.delete, "/v1/applications/\(app)/endpoints/\(doomed)", key: key).status == 204)
            #expect(try await api.deliveries(key, app: app, message: toDoomed).isEmpty)
            try await Task.sleep(for: .milliseconds(300))
            #expect(receiver.received(path: "/doomed").isEmpty)
        }
    }

    @Test(arguments: Backend.available)
    func theCircuitBreakerDisablesAFailingEndpointAndRecoverBringsItsDeliveriesBack(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        receiver.script("/flaky", then: .init(status: 503))
        try await withTern(backend) { api in
            let (orgID, key) = try await api.organization()
            let app = try await api.application(
                key, extra: #", "retry_schedule": [0, 0, 0, 0, 0, 0, 0, 0], "circuit_breaker": {"failure_threshold": 3}"#)
            try await api.eventType(key, app: app, name: "order.created")
            let (endpointID, _) = try await api.endpoint(key, app: app, url: receiver.url("/flaky"))
            let since = Timestamp.now()
            let first = try #require(try await api.publish(key, app: app).string("id"))

            var endpoint: [String: Any] = [:]
            _ = try await eventually {
                endpoint = (try await api.get("/v1/applications/\(app)/endpoints/\(endpointID)", key: key).json as? [String: Any]) ?? [:]
                return endpoint["status"] as? String == "disabled"
            }
            #expect(endpoint["status"] as? String == "disabled")
            #expect(endpoint["disabled_reason"] as? String == "circuit_breaker")
            #expect(endpoint["disabled_at"] is String)
            let delivery = try #require(try await api.deliveries(key, app: app, message: first).first)
            let deliveryID = try #require(delivery["id"] as? String)
            let exhausted = try await api.waitForDelivery(key, app: app, deliveryID, status: "exhausted")
            #expect(exhausted["attempt_count"] as? Int == 3, "no attempt after the breaker tripped")
            try await Task.sleep(for: .milliseconds(300))
            #expect(receiver.received(path: "/flaky").count == 3)
            #expect(try await api.publish(key, app: app)["deliveries"] as? Int == 0, "a disabled endpoint gets no new deliveries")

            let audit = try await api.withDatabase { sql in
                try await sql.raw(
                    """
                    SELECT action, actor_type, summary FROM audit_entries
                    WHERE entity_id = \(bind: endpointID) AND organization_id = \(bind: orgID) AND actor_type = 'system'
                    """
                ).all()
                    .map {
                        let (action, actor) = (try $0.decode(column: "action", as: String.self), try $0.decode(column: "actor_type", as: String.self))
                        return "\(action)/\(actor)/\(try $0.decode(column: "summary", as: String.self))"
                    }
            }
            #expect(audit.count == 1)
            #expect(audit.first?.hasPrefix("endpoint.disabled/system/") == true)
            #expect(audit.first?.contains("circuit_breaker") == true)
            let metrics = try await api.get("/metrics", key: nil)
            #expect(metrics.text.contains(#"tern_circuit_breaker_trips_total{reason="circuit_breaker"}"#))

            // Recovering needs the endpoint enabled first; then its dead-lettered deliveries flow again.
            let early = try await api.post("/v1/applications/\(app)/endpoints/\(endpointID)/recover", key: key, #"{"since": "\#(since)"}"#)
            #expect(early.status == 409)
            receiver.script("/flaky", then: .init(status: 200))
            let enabled = try await api.call(.patch, "/v1/applications/\(app)/endpoints/\(endpointID)", key: key, json: #"{"status": "active"}"#)
            #expect(enabled.string("status") == "active")
            #expect(enabled["disabled_reason"] is NSNull)
            let recovered = try await api.post("/v1/applications/\(app)/endpoints/\(endpointID)/recover", key: key, #"{"since": "\#(since)"}"#)
            #expect(recovered.status == 202)
            #expect(recovered["count"] as? Int == 1)
            _ = try await api.waitForDelivery(key, app: app, deliveryID, status: "delivered")
            #expect(try await api.post("/v1/applications/\(app)/endpoints/\(endpointID)/recover", key: key, "{}").status == 422)
        }
    }

    @Test(arguments: Backend.available)
    func a410DisablesTheEndpointAtOnce(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        receiver.script("/gone", then: .init(status: 410))
        try await withTern(backend) { api in
            let (key, app) = try await api.shop(#", "retry_schedule": [0, 0, 0]"#)
            let (endpointID, _) = try await api.endpoint(key, app: app, url: receiver.url("/gone"))
            let message = try #require(try await api.publish(key, app: app).string("id"))
            let deliveryID = try #require(try await api.deliveries(key, app: app, message: message).first?["id"] as? String)
            let delivery = try await api.waitForDelivery(key, app: app, deliveryID, status: "exhausted")
            #expect(delivery["attempt_count"] as? Int == 1)
            let endpoint = try await api.get("/v1/applications/\(app)/endpoints/\(endpointID)", key: key)
            #expect(endpoint.string("status") == "disabled")
            #expect(endpoint.string("disabled_reason") == "gone")
            #expect(receiver.received.count == 1)
        }
    }

    @Test(arguments: Backend.available)
    func aRefusedConnectionOrATimeoutIsAFailedAttemptWithAClearError(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        receiver.script("/stuck", then: .init(status: 200, delay: .seconds(3)))
        let closedPort = try WorkerProcess.freePort()
        try await withTern(backend) { api in
            let (key, app) = try await api.shop(#", "retry_schedule": []"#)
            _ = try await api.endpoint(key, app: app, url: "http://127.0.0.1:\(closedPort)/hook")
            _ = try await api.endpoint(key, app: app, url: receiver.url("/stuck"), extra: #", "timeout_seconds": 1"#)
            let message = try #require(try await api.publish(key, app: app).string("id"))
            var deliveries: [[String: Any]] = []
            _ = try await eventually {
                deliveries = try await api.deliveries(key, app: app, message: message)
                return deliveries.count == 2 && deliveries.allSatisfy { $0["status"] as? String == "exhausted" }
            }
            let errors = Set(deliveries.compactMap { $0["last_error"] as? String })
            #expect(errors == ["connection refused", "timed out after 1 s"], "\(errors)")
            #expect(deliveries.allSatisfy { $0["last_status_code"] is NSNull })
        }
    }

    /// A receiver may answer with any bytes; a NUL, which PostgreSQL cannot store in text, is kept as U+FFFD.
    @Test(arguments: Backend.available)
    func aResponseBodyWithNULBytesIsRecordedForSuccessesAndFailures(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        receiver.script("/ok", then: .init(status: 200, body: "ok\u{0}bytes"))
        receiver.script("/down", then: .init(status: 500, body: "down\u{0}"))
        try await withTern(backend) { api in
            let (key, app) = try await api.shop(#", "retry_schedule": []"#)
            _ = try await api.endpoint(key, app: app, url: receiver.url("/ok"))
            _ = try await api.endpoint(key, app: app, url: receiver.url("/down"))
            let message = try #require(try await api.publish(key, app: app).string("id"))
            var deliveries: [[String: Any]] = []
            _ = try await eventually {
                deliveries = try await api.deliveries(key, app: app, message: message)
                return deliveries.count == 2
                    && deliveries.allSatisfy { $0["status"] as? String != "pending" && $0["status"] as? String != "delivering" }
            }
            #expect(Set(deliveries.compactMap { $0["status"] as? String }) == ["delivered", "exhausted"], "\(deliveries)")
            var bodies: Set<String> = []
            for delivery in deliveries {
                let attempts = try await api.get("/v1/applications/\(app)/deliveries/\(try #require(delivery["id"] as? String))/attempts", key: key)
                bodies.formUnion(attempts.items.compactMap { $0["response_body"] as? String })
            }
            #expect(bodies == ["ok\u{FFFD}bytes", "down\u{FFFD}"])
        }
    }

    @Test(arguments: Backend.available)
    func aTestEventReachesTheEndpoint(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        try await withTern(backend) { api in
            let (_, key) = try await api.organization()
            let app = try await api.application(key)
            let (endpointID, _) = try await api.endpoint(key, app: app, url: receiver.url())
            let sent = try await api.post("/v1/applications/\(app)/endpoints/\(endpointID)/test", key: key, #"{"event_type": "ping.check"}"#)
            #expect(sent.status == 202)
            let messageID = try #require(sent.string("message_id"))
            let request = try #require(await receiver.waitFor(1).first)
            #expect(request.messageID == messageID)
            let body = try #require(try JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any])
            #expect(body["type"] as? String == "ping.check")
            let empty = try await api.call(.post, "/v1/applications/\(app)/endpoints/\(endpointID)/test", key: key)
            #expect(empty.status == 202, "the body is optional")
            #expect(try await api.post("/v1/applications/\(app)/endpoints/ep_missing/test", key: key, "{}").status == 404)
        }
    }

    @Test(arguments: Backend.available)
    func metricsArePrometheusText(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        try await withTern(backend) { api in
            let (key, app) = try await api.shop()
            _ = try await api.endpoint(key, app: app, url: receiver.url())
            _ = try await api.publish(key, app: app)
            await receiver.waitFor(1)
            _ = try await eventually { try await api.get("/metrics", key: nil).text.contains(#"tern_deliveries_total{outcome="delivered"}"#) }
            let metrics = try await api.get("/metrics", key: nil)
            #expect(metrics.status == 200)
            #expect(metrics.headers[.contentType]?.hasPrefix("text/plain") == true)
            for name in [
                "tern_events_published_total", #"tern_deliveries_total{outcome="delivered"}"#, "tern_attempt_duration_seconds_bucket",
                "tern_queue_depth", "tern_oldest_due_delivery_age_seconds",
            ] {
                #expect(metrics.text.contains(name), "\(name)")
            }
        }
    }

    @Test(arguments: Backend.available)
    func deliveriesToInternalAddressesAreRefusedAndRecordedWhenPrivateEndpointsAreNotAllowed(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        let databaseURL = try await backend.freshDatabaseURL()
        // Made while private endpoints were allowed, as a developer would on a laptop…
        try await withTern(backend, databaseURL: databaseURL) { api in
            let (key, app) = try await api.shop(#", "retry_schedule": []"#)
            _ = try await api.endpoint(key, app: app, url: receiver.url())
            try await api.withDatabase { sql in
                try await sql.raw("UPDATE organizations SET name = \(bind: key + " " + app)").run()
            }
        }
        // …then the server runs with the guard on: the delivery fails without a request leaving.
        try await withTern(backend, databaseURL: databaseURL, configure: { $0.allowPrivateEndpoints = false }) { api in
            let names = try await api.withDatabase { sql in
                try await sql.raw("SELECT name FROM organizations").first()?.decode(column: "name", as: String.self)
            }
            let parts = try #require(names?.split(separator: " ").map(String.init))
            let (key, app) = (parts[0], parts[1])
            let message = try #require(try await api.publish(key, app: app).string("id"))
            let deliveryID = try #require(try await api.deliveries(key, app: app, message: message).first?["id"] as? String)
            let delivery = try await api.waitForDelivery(key, app: app, deliveryID, status: "exhausted")
            let error = try #require(delivery["last_error"] as? String)
            #expect(error.contains("SSRF guard") && error.contains("127.0.0.1"), "\(error)")
            let attempt = try #require(try await api.get("/v1/applications/\(app)/deliveries/\(deliveryID)/attempts", key: key).items.first)
            #expect(attempt["status_code"] is NSNull)
            #expect((attempt["error"] as? String)?.contains("SSRF guard") == true)
            #expect(receiver.received.isEmpty)
        }
    }
}
