import Foundation
import HTTPTypes
import Hummingbird
import Logging
import TernCore
import TernHTTP
import TernStorage
import Testing
import Yams

@testable import TernTesting

/// Every route the router serves, read from the router itself so that a new route cannot be left out.
func servedRoutes() async throws -> [(method: HTTPRequest.Method, path: String)] {
    let database = try await Database.open(.sqliteMemory, logger: Logger(label: "routes"))
    let store = Store(database: database, secretBox: SecretBox(keyBase64: testEncryptionKey)!)
    let authenticator = Authenticator(store: store, adminKey: nil, logger: Logger(label: "routes"))
    let router = try buildRouter(store: store, authenticator: authenticator, configuration: testConfiguration("sqlite://:memory:"))
    let routes = router.routes.map { (method: $0.method, path: "/" + $0.path.description.split(separator: "/").joined(separator: "/")) }
    try await database.whileRunning {}
    return routes
}

@Suite struct IsolationTests {
    @Test(arguments: Backend.available)
    func anotherOrganizationsObjectsAre404OnEveryRoute(_ backend: Backend) async throws {
        let routes = try await servedRoutes()
        try await withTern(backend) { api in
            let (_, keyA) = try await api.organization("A")
            let (orgB, keyB) = try await api.organization("B")
            _ = try await api.application(keyA, name: "A's")
            let appB = try await api.application(keyB, name: "B's")
            try await api.eventType(keyB, app: appB, name: "b.happened")
            let endpointB = try #require(try await api.endpoint(keyB, app: appB, events: #"["b.happened"]"#).string("id"))
            let keyBID = try #require(try await api.get("/v1/api-keys", key: keyB).items.first?["id"] as? String)
            let messageB = try #require(try await api.publish(keyB, app: appB, type: "b.happened").string("id"))
            let deliveryB = try #require(try await api.deliveries(keyB, app: appB, message: messageB).first?["id"] as? String)
            let sourceB = try #require(
                try await api.post("/v1/applications/\(appB)/sources", key: keyB, #"{"name": "B's", "provider": "token"}"#).string("id"))
            let values = [
                "app_id": appB, "endpoint_id": endpointB, "name": "b.happened", "key_id": keyBID, "org_id": orgB, "plan_id": "free",
                "message_id": messageB, "delivery_id": deliveryB, "source_id": sourceB, "tenant_id": "tenant-1",
            ]
            // Bodies valid for every route of their method, so that only ownership decides the answer.
            let createBody =
                #"{"name": "x", "tenant_id": "t", "url": "http://127.0.0.1:9/x", "description": "x", "event_type": "b.happened", "payload": {}, "#
                + #""since": "2020-01-01T00:00:00Z", "provider": "token"}"#
            let changeBody = #"{"description": "x", "status": "paused"}"#
            // A key of B's own organization that is restricted to B's other application.
            let appB2 = try await api.application(keyB, name: "B's second")
            let restrictedB = try await api.createKey(orgID: orgB, applicationID: appB2)
            var checked = 0
            for route in routes where route.path.hasPrefix("/v1") {
                // The router shows parameters as `{name}`.
                let path = try route.path.split(separator: "/").map { segment in
                    guard segment.hasPrefix("{") || segment.hasPrefix(":") else { return String(segment) }
                    let name = segment.trimmingCharacters(in: CharacterSet(charactersIn: "{}:"))
                    return try #require(values[name], "no value of B's for the parameter \(name)")
                }.joined(separator: "/")
                #expect(!path.contains("{") && !path.contains(":"))
                let body = route.method == .post ? createBody : [.put, .patch].contains(route.method) ? changeBody : nil
                let reply = try await api.call(route.method, "/" + path, key: keyA, json: body)
                if route.path.hasPrefix("/v1/admin") {
                    #expect(reply.status == 403, "\(route.method) \(route.path) with an organization key")
                } else if route.path.contains("{") || route.path.contains(":") {
                    #expect(reply.status == 404, "\(route.method) \(route.path) answered \(reply.status): \(reply.text)")
                } else if route.method == .get {
                    #expect(!reply.text.contains(appB) && !reply.text.contains(endpointB) && !reply.text.contains(keyBID), "\(route.path) leaks")
                }
                if route.path.hasPrefix("/v1/applications/{app_id}") {
                    let restricted = try await api.call(route.method, "/" + path, key: restrictedB, json: body)
                    #expect(
                        restricted.status == 404,
                        "a key restricted to another application: \(route.method) \(route.path) answered \(restricted.status)")
                }
                checked += 1
            }
            #expect(checked >= 20)
            print("ISOLATION routes_checked=\(checked) (each with organization A's key, and with B's key restricted to another application)")
            // B's objects are untouched.
            #expect(try await api.get("/v1/applications/\(appB)", key: keyB).string("name") == "B's")
            let endpoint = try await api.get("/v1/applications/\(appB)/endpoints/\(endpointB)", key: keyB)
            #expect(endpoint.string("status") == "active")
            #expect(try await api.get("/v1/applications/\(appB)/event-types/b.happened", key: keyB)["archived"] as? Bool == false)
            #expect(try await api.get("/v1/applications", key: keyB).status == 200)
            #expect(try await api.get("/v1/applications/\(appB)/events", key: keyB).items.count == 1, "A published nothing into B's application")
            #expect(try await api.get("/v1/applications/\(appB)/events/\(messageB)", key: keyB).status == 200)
        }
    }
}

/// The Svix API (`/api/v1`): a key works in its own application (environment) only. Another application's or another
/// organization's tenants, endpoints, messages, attempts, event types and tasks are 404 on every route; an upsert makes
/// the caller's own object and leaves the other's alone.
@Suite struct SvixIsolationTests {
    @Test(arguments: Backend.available)
    func anotherEnvironmentsObjectsAre404OnEverySvixRoute(_ backend: Backend) async throws {
        let routes = try await servedRoutes().filter { $0.path.hasPrefix("/api/v1/") }
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        try await withTern(backend) { api in
            let (orgID, key) = try await api.organization("Both", plan: "pro")
            let appA = try await api.application(key, name: "A")
            let appB = try await api.application(key, name: "B")
            let keyA = try await api.createKey(orgID: orgID, applicationID: appA)
            let keyB = try await api.createKey(orgID: orgID, applicationID: appB)
            let (_, keyC) = try await api.organization("Other")
            _ = try await api.application(keyC, name: "C")

            try #require(try await api.post("/api/v1/event-type", key: keyB, #"{"name": "b.type", "description": "B's"}"#).status == 201)
            let tenant = try await api.post("/api/v1/app", key: keyB, #"{"name": "B tenant", "uid": "tb"}"#)
            let svixID = try #require(tenant.string("id"))
            let endpoint = try await api.post("/api/v1/app/tb/endpoint", key: keyB, #"{"url": "\#(receiver.url())", "uid": "eb"}"#)
            let endpointID = try #require(endpoint.string("id"))
            let operational = try await api.post("/api/v1/operational-webhook/endpoint", key: keyB, #"{"url": "\#(receiver.url())", "uid": "eb"}"#)
            let operationalID = try #require(operational.string("id"), "\(operational.text)")
            let message = try await api.post("/api/v1/app/tb/msg", key: keyB, #"{"eventType": "b.type", "payload": {"b": 1}}"#)
            let messageID = try #require(message.string("id"))
            var attemptID: String?
            for _ in 0..<300 where attemptID == nil {
                attemptID = try await api.get("/api/v1/app/tb/attempt/msg/\(messageID)", key: keyB).items.first?["id"] as? String
                if attemptID == nil { try await Task.sleep(for: .milliseconds(100)) }
            }
            let since = Timestamp.now().adding(seconds: -3600).description
            let task = try await api.post("/api/v1/app/tb/endpoint/eb/recover", key: keyB, #"{"since": "\#(since)"}"#)
            let values = [
                "app_id": "tb", "endpoint_id": "eb", "msg_id": messageID, "attempt_id": try #require(attemptID), "name": "b.type",
                "task_id": try #require(task.string("id")),
            ]
            let createBody =
                #"{"name": "x", "url": "http://127.0.0.1:9/x", "description": "x", "eventType": "b.type", "payload": {}, "since": "\#(since)"}"#
            let changeBody = #"{"name": "x", "description": "x", "url": "http://127.0.0.1:9/x", "headers": {"X-A": "1"}}"#
            var checked = 0
            let upserts = ["/api/v1/app/{app_id}", "/api/v1/event-type/{name}", "/api/v1/operational-webhook/endpoint/{endpoint_id}"]
            // The router shows parameters as `{name}`.
            func isUpsert(_ route: (method: HTTPRequest.Method, path: String)) -> Bool {
                route.method == .put && upserts.contains(route.path)
            }
            func concrete(_ route: (method: HTTPRequest.Method, path: String)) throws -> String {
                try route.path.split(separator: "/").map { segment in
                    guard segment.hasPrefix("{") || segment.hasPrefix(":") else { return String(segment) }
                    let name = segment.trimmingCharacters(in: CharacterSet(charactersIn: "{}:"))
                    return try #require(values[name], "no value of B's for the parameter \(name)")
                }.joined(separator: "/")
            }
            func body(_ method: HTTPRequest.Method) -> String? {
                method == .post ? createBody : [.put, .patch].contains(method) ? changeBody : nil
            }
            let parameterized = routes.filter { $0.path.contains("{") || $0.path.contains(":") }
            for other in [keyA, keyC] {
                for route in parameterized where !isUpsert(route) {
                    let reply = try await api.call(route.method, "/" + (try concrete(route)), key: other, json: body(route.method))
                    #expect(
                        reply.status == 404 && reply.string("code") == "not_found",
                        "\(route.method) \(route.path) answered \(reply.status): \(reply.text)")
                    checked += 1
                }
                for path in ["/api/v1/app", "/api/v1/event-type?include_archived=true"] {
                    let list = try await api.get(path, key: other)
                    #expect(list.status == 200 && !list.text.contains(svixID) && !list.text.contains("b.type"), "\(path) leaks: \(list.text)")
                }
                // An upsert by the same name makes the caller's own object.
                for route in parameterized where isUpsert(route) {
                    let reply = try await api.call(route.method, "/" + (try concrete(route)), key: other, json: body(route.method))
                    #expect(reply.status == 201, "\(route.method) \(route.path) makes the caller's own: \(reply.status) \(reply.text)")
                    #expect(!reply.text.contains(svixID))
                    checked += 1
                }
            }
            #expect(checked >= 60)
            print("SVIX ISOLATION routes_checked=\(checked) (with a key of another application and a key of another organization)")
            // B's objects are untouched.
            let after = try await api.get("/api/v1/app/tb", key: keyB)
            #expect(after.string("id") == svixID && after.string("name") == "B tenant")
            #expect(try await api.get("/api/v1/app/tb/endpoint/eb", key: keyB).string("id") == endpointID)
            #expect(try await api.get("/api/v1/app/tb/endpoint/eb/headers", key: keyB)["headers"] as? [String: String] == [:])
            #expect(try await api.get("/api/v1/operational-webhook/endpoint/eb", key: keyB).string("id") == operationalID)
            #expect(try await api.get("/api/v1/operational-webhook/endpoint", key: keyB).items.count == 1)
            let eventType = try await api.get("/api/v1/event-type/b.type", key: keyB)
            #expect(eventType.string("description") == "B's" && eventType["archived"] as? Bool == false)
            let content = try await api.get("/api/v1/app/tb/msg/\(messageID)?with_content=true", key: keyB)
            #expect(content["payload"] as? [String: Int] == ["b": 1], "\(content.text)")
            #expect(try await api.get("/api/v1/app/tb/msg", key: keyB).items.count == 1)
        }
    }
}

@Suite struct OpenAPITests {
    @Test func theSpecParsesAndDescribesEveryServedRoute() async throws {
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/openapi.yaml"), encoding: .utf8)
        let spec = try #require(try Yams.load(yaml: text) as? [String: Any])
        #expect((spec["openapi"] as? String)?.hasPrefix("3.1") == true)
        let paths = try #require(spec["paths"] as? [String: Any])
        let routes = try await servedRoutes()
        #expect(!routes.isEmpty)
        // The portal and admin pages under /portal/ and /admin are HTML for browsers, not API: docs/portal.md. The
        // Svix-compatible API under /api/v1 follows Svix's own contract: docs/svix.md.
        let own = routes.filter { !$0.path.hasPrefix("/portal/") && !$0.path.hasPrefix("/admin") && !$0.path.hasPrefix("/api/v1/") }
        for route in own {
            let path = route.path.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(separator: "/")
            #expect(!path.contains(":"), "\(path)")
            let operations = paths["/" + path] as? [String: Any]
            #expect(operations?[route.method.rawValue.lowercased()] != nil, "docs/openapi.yaml lacks \(route.method) /\(path)")
        }
    }
}
