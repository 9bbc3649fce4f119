import Foundation
import TernCore
import Testing

@testable import TernTesting

/// Delivery controls against real receivers: endpoint filters decide at fan-out which endpoints get a delivery, and
/// `deliver_at` holds every attempt until its time.
@Suite struct DeliveryControlTests {
    @Test(arguments: Backend.available)
    func onlyEndpointsWhoseFilterMatchesGetADelivery(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        try await withTern(backend) { api in
            let (key, app) = try await api.shop(#", "allow_unregistered_event_types": true"#)
            let filters: [String: String?] = [
                "/all": nil,
                "/big": #"{"payload.total": {"$gt": 100}}"#,
                "/eur-orders": #"{"payload.currency": "EUR", "event_type": "order.created"}"#,
                "/vip-or-huge": #"{"$or": [{"payload.customer.vip": true}, {"payload.total": {"$gte": 1000}}]}"#,
                "/not-test": #"{"$not": {"payload.test": true}}"#,
                "/gifts": #"{"payload.tags": {"$contains": "gift"}, "channels": {"$contains": "eu"}}"#,
            ]
            var endpoints: [String: String] = [:]
            for (path, filter) in filters {
                let (id, _) = try await api.endpoint(key, app: app, url: receiver.url(path), extra: filter.map { #", "filter": \#($0)"# } ?? "")
                endpoints[path] = id
            }
            let shown = try await api.get("/v1/applications/\(app)/endpoints/\(endpoints["/big"]!)", key: key)
            #expect((shown["filter"] as? [String: Any])?["payload.total"] != nil && shown.status == 200, "\(shown.text)")

            let events: [(type: String, payload: String, channels: String?, expected: Set<String>)] = [
                ("order.created", #"{"n": 1, "total": 150, "currency": "EUR"}"#, nil, ["/all", "/big", "/eur-orders", "/not-test"]),
                (
                    "order.created", #"{"n": 2, "total": 50, "currency": "USD", "customer": {"vip": true}}"#, nil,
                    ["/all", "/vip-or-huge", "/not-test"]
                ),
                ("order.paid", #"{"n": 3, "total": 5000, "currency": "EUR", "test": true}"#, nil, ["/all", "/big", "/vip-or-huge"]),
                ("order.created", #"{"n": 4, "total": 20, "tags": ["gift"]}"#, #"["eu"]"#, ["/all", "/not-test", "/gifts"]),
                ("order.created", #"{"n": 5, "total": 20, "tags": ["gift"]}"#, #"["us"]"#, ["/all", "/not-test"]),
            ]
            for event in events {
                var body = #"{"event_type": "\#(event.type)", "tenant_id": "tenant-1", "payload": \#(event.payload)"#
                if let channels = event.channels { body += #", "channels": \#(channels)"# }
                let published = try await api.post("/v1/applications/\(app)/events", key: key, body + "}")
                #expect(published["deliveries"] as? Int == event.expected.count, "\(event.payload): \(published.text)")
            }
            let total = events.reduce(0) { $0 + $1.expected.count }
            let received = await receiver.waitFor(total)
            #expect(received.count == total)
            for (index, event) in events.enumerated() {
                let paths = Set(
                    received.filter { (try? JSONSerialization.jsonObject(with: Data($0.body)) as? [String: Any])?["n"] as? Int == index + 1 }.map(
                        \.path))
                #expect(paths == event.expected, "event \(index + 1)")
            }

            // The test routes say whether a filter matches a message, and why not.
            let no = try await api.post(
                "/v1/applications/\(app)/endpoints/\(endpoints["/big"]!)/filter-test", key: key,
                #"{"payload": {"total": 50}, "event_type": "order.created"}"#)
            #expect(no["matches"] as? Bool == false && no.string("reason") == "payload.total is 50, not $gt 100", "\(no.text)")
            let yes = try await api.post(
                "/v1/applications/\(app)/filter-test", key: key, #"{"filter": {"payload.total": {"$lte": 50}}, "payload": {"total": 50}}"#)
            #expect(yes["matches"] as? Bool == true, "\(yes.text)")
            let unfiltered = try await api.post("/v1/applications/\(app)/endpoints/\(endpoints["/all"]!)/filter-test", key: key, #"{"payload": {}}"#)
            #expect(unfiltered["matches"] as? Bool == true)

            // An invalid filter is 422 naming the path and the operator, and changes nothing.
            let before = try await api.get("/v1/applications/\(app)/endpoints", key: key).items.count
            let invalid = try await api.post(
                "/v1/applications/\(app)/endpoints", key: key,
                #"{"tenant_id": "tenant-1", "url": "\#(receiver.url("/x"))", "filter": {"payload.total": {"$gt": [1]}, "$xor": []}}"#)
            #expect(invalid.status == 422 && Set(invalid.fieldErrors) == ["filter.payload.total.$gt", "filter.$xor"], "\(invalid.text)")
            #expect(try await api.get("/v1/applications/\(app)/endpoints", key: key).items.count == before)
            let badPatch = try await api.call(
                .patch, "/v1/applications/\(app)/endpoints/\(endpoints["/big"]!)", key: key, json: #"{"filter": {"payload.total": {"$in": 3}}}"#)
            #expect(badPatch.status == 422 && badPatch.fieldErrors == ["filter.payload.total.$in"], "\(badPatch.text)")
            // Clearing the filter lets every message through again.
            let cleared = try await api.call(.patch, "/v1/applications/\(app)/endpoints/\(endpoints["/big"]!)", key: key, json: #"{"filter": null}"#)
            #expect(cleared["filter"] is NSNull, "\(cleared.text)")
            let again = try await api.publish(key, app: app, payload: #"{"n": 6, "total": 1}"#)
            #expect(again["deliveries"] as? Int == 3, "\(again.text)")
        }
    }

    /// Filters with an equality are found by the message's keys: 1,000 endpoints routed on a customer, ten per
    /// customer, and a publish for one customer delivers to its ten; moving an endpoint's filter moves its route, and
    /// filters without one (ranges) and routed ones on other paths still match alongside.
    @Test(arguments: Backend.available)
    func routedFiltersFindTheEndpointsOfTheMessagesKeys(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        try await withTern(backend) { api in
            let (orgID, _) = try await api.organization(plan: "scale")
            let key = try await api.createKey(orgID: orgID)
            let app = try await api.application(key, extra: #", "allow_unregistered_event_types": true"#)
            var ids: [String] = []
            for index in 0..<1_000 {
                let filter = #"{"payload.customer": "c\#(index % 100)", "payload.total": {"$gte": 0}}"#
                ids.append(try await api.endpoint(key, app: app, url: receiver.url("/e\(index)"), extra: #", "filter": \#(filter)"#).0)
            }
            let many = try await api.publish(key, app: app, payload: #"{"customer": "c7", "total": 5}"#)
            #expect(many["deliveries"] as? Int == 10, "\(many.text)")
            let received = await receiver.waitFor(10)
            #expect(Set(received.map(\.path)) == Set(stride(from: 7, to: 1_000, by: 100).map { "/e\($0)" }))

            // Moved to c7, then to a range only (no route), an $in over two customers, and a filter on another path.
            _ = try await api.call(.patch, "/v1/applications/\(app)/endpoints/\(ids[0])", key: key, json: #"{"filter": {"payload.customer": "c7"}}"#)
            #expect(try await api.publish(key, app: app, payload: #"{"customer": "c7", "total": 5}"#)["deliveries"] as? Int == 11)
            #expect(try await api.publish(key, app: app, payload: #"{"customer": "c0", "total": 5}"#)["deliveries"] as? Int == 9)
            _ = try await api.call(
                .patch, "/v1/applications/\(app)/endpoints/\(ids[0])", key: key, json: #"{"filter": {"payload.total": {"$gt": 3}}}"#)
            _ = try await api.call(
                .patch, "/v1/applications/\(app)/endpoints/\(ids[1])", key: key, json: #"{"filter": {"payload.customer": {"$in": ["c7", "c8"]}}}"#)
            _ = try await api.call(.patch, "/v1/applications/\(app)/endpoints/\(ids[2])", key: key, json: #"{"filter": {"payload.region": "eu"}}"#)
            #expect(try await api.publish(key, app: app, payload: #"{"customer": "c7", "total": 5}"#)["deliveries"] as? Int == 12)
            #expect(try await api.publish(key, app: app, payload: #"{"customer": "c8", "total": 1}"#)["deliveries"] as? Int == 11)
            #expect(try await api.publish(key, app: app, payload: #"{"customer": "c8", "total": 1, "region": "eu"}"#)["deliveries"] as? Int == 12)
            // A deleted endpoint takes its route with it; a missing path matches no routed filter.
            #expect(try await api.call(.delete, "/v1/applications/\(app)/endpoints/\(ids[1])", key: key).status == 204)
            #expect(try await api.publish(key, app: app, payload: #"{"customer": "c8", "total": 1}"#)["deliveries"] as? Int == 10)
            #expect(try await api.publish(key, app: app, payload: #"{"total": 9}"#)["deliveries"] as? Int == 1)
        }
    }

    /// A FIFO line waits behind its head and moves on when the head ends, whichever way it ends: delivered, exhausted
    /// after its retries, expunged while paused. Deliveries waiting in line list as pending with no attempt time;
    /// a recovered delivery goes again.
    @Test(arguments: Backend.available)
    func aFifoLineMovesOnWhenItsHeadEndsHoweverItEnds(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        receiver.script("/line", [.init(status: 500), .init(status: 500)], then: .init(status: 200, delay: .milliseconds(2)))
        try await withTern(backend) { api in
            let (orgID, _) = try await api.organization(plan: "scale")
            let key = try await api.createKey(orgID: orgID)
            let app = try await api.application(key, extra: #", "retry_schedule": [0], "allow_unregistered_event_types": true"#)
            let (endpointID, _) = try await api.endpoint(key, app: app, url: receiver.url("/line"), extra: #", "ordering": "fifo""#)
            func numbers() -> [Int] {
                receiver.received.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.body)) as? [String: Int])?["n"] }
            }
            var messages: [String] = []
            for index in 0..<20 { messages.append(try #require(try await api.publish(key, app: app, payload: #"{"n": \#(index)}"#).string("id"))) }
            // n = 0 fails twice (its one retry) and is exhausted; the line goes on behind it.
            #expect(await eventually { numbers().count >= 21 })
            #expect(numbers() == [0, 0] + Array(1..<20), "\(numbers())")

            // Paused: the line waits; its head is due, the others wait in line with no time.
            _ = try await api.call(.patch, "/v1/applications/\(app)/endpoints/\(endpointID)", key: key, json: #"{"status": "paused"}"#)
            for index in 20..<30 { messages.append(try #require(try await api.publish(key, app: app, payload: #"{"n": \#(index)}"#).string("id"))) }
            let head = try await api.deliveries(key, app: app, message: messages[20])
            let waiting = try await api.deliveries(key, app: app, message: messages[25])
            #expect(head.first?["next_attempt_at"] is String && head.first?["status"] as? String == "pending", "\(head)")
            #expect(waiting.first?["next_attempt_at"] is NSNull && waiting.first?["status"] as? String == "pending", "\(waiting)")
            // The head is expunged (nothing left to send): the next takes its place.
            let expunged = messages[20]
            try await api.withStore { store in try await store.expungeMessage(organizationID: orgID, applicationID: app, id: expunged) }
            #expect(try await api.deliveries(key, app: app, message: messages[21]).first?["next_attempt_at"] is String)
            _ = try await api.call(.patch, "/v1/applications/\(app)/endpoints/\(endpointID)", key: key, json: #"{"status": "active"}"#)
            #expect(await eventually { numbers().count >= 30 })
            #expect(Array(numbers().dropFirst(21)) == Array(21..<30), "\(numbers())")

            // Recovered: n = 0 goes again (the expunged one has nothing to send and stays in the dead-letter queue).
            let recovered = try await api.post(
                "/v1/applications/\(app)/endpoints/\(endpointID)/recover", key: key, #"{"since": "\#(Timestamp.now().adding(seconds: -3600))"}"#)
            #expect(recovered["count"] as? Int == 1, "\(recovered.text)")
            #expect(await eventually { receiver.received.count >= 31 })
            #expect(receiver.received.last.map { String(decoding: $0.body, as: UTF8.self) } == #"{"n": 0}"#)
        }
    }

    @Test(arguments: Backend.available)
    func deliverAtHoldsEveryAttemptUntilItsTime(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        try await withTern(backend) { api in
            let (key, app) = try await api.shop()
            _ = try await api.endpoint(key, app: app, url: receiver.url())
            // A minute ahead: listed as pending with its time.
            let later = Timestamp.now().adding(seconds: 60)
            let scheduled = try await api.post(
                "/v1/applications/\(app)/events", key: key,
                #"{"event_type": "order.created", "tenant_id": "tenant-1", "payload": {"n": 0}, "deliver_at": "\#(later)"}"#)
            let pending = try await api.deliveries(key, app: app, message: try #require(scheduled.string("id")))
            #expect(
                pending.first?["status"] as? String == "pending" && pending.first?["next_attempt_at"] as? String == later.description, "\(pending)")
            // Two seconds ahead: attempted at that time, not before.
            let due = Timestamp.now().adding(seconds: 2)
            let published = try await api.post(
                "/v1/applications/\(app)/events", key: key,
                #"{"event_type": "order.created", "tenant_id": "tenant-1", "payload": {"n": 1}, "deliver_at": "\#(due)"}"#)
            #expect(published.status == 202, "\(published.text)")
            let messageID = try #require(published.string("id"))
            let waiting = try await api.deliveries(key, app: app, message: messageID)
            #expect(try await api.get("/v1/applications/\(app)/events/\(messageID)", key: key).string("deliver_at") == due.description)
            let received = await receiver.waitFor(1)
            let arrived = try #require(received.first)
            let delivery = try await api.waitForDelivery(key, app: app, try #require(waiting.first?["id"] as? String), status: "delivered")
            let attemptedAt = try #require((delivery["last_attempt_at"] as? String).flatMap(Timestamp.init(rfc3339:)))
            #expect(attemptedAt >= due && arrived.path == "/hook")
            print("DELIVER_AT \(backend.rawValue): attempted \(Double(attemptedAt.microseconds - due.microseconds) / 1000) ms after deliver_at")

            let tooLate = Timestamp.now().adding(seconds: 31 * 86_400)
            let refused = try await api.post(
                "/v1/applications/\(app)/events", key: key,
                #"{"event_type": "order.created", "tenant_id": "tenant-1", "payload": {}, "deliver_at": "\#(tooLate)"}"#)
            #expect(refused.status == 422 && refused.fieldErrors == ["deliver_at"], "\(refused.text)")
        }
    }
}
