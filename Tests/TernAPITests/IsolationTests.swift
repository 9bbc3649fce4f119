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
