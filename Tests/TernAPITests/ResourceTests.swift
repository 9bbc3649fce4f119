import Foundation
import Testing

@testable import TernTesting

@Suite struct ResourceTests {
    @Test(arguments: Backend.available)
    func aNewUserCreatesAnOrganizationKeyApplicationEventTypesAndEndpoints(_ backend: Backend) async throws {
        try await withTern(backend) { api in
            let (orgID, key) = try await api.organization()
            #expect(key.hasPrefix("tern_key_"))
            let app = try await api.application(key)
            try await api.eventType(key, app: app, name: "order.created")
            let endpoint = try await api.endpoint(key, app: app, events: #"["order.created"]"#)
            #expect(endpoint.status == 201)
            #expect(endpoint.string("secret")?.hasPrefix("whsec_") == true)
            #expect(endpoint.string("status") == "active")
            #expect(endpoint.string("tenant_id") == "tenant-1")
            let endpointID = try #require(endpoint.string("id"))

            let fetched = try await api.get("/v1/applications/\(app)/endpoints/\(endpointID)", key: key)
            #expect(fetched.status == 200)
            #expect(fetched["secret"] == nil, "the secret is shown only on creation")
            let tenants = try await api.get("/v1/applications/\(app)/tenants", key: key)
            #expect(tenants.items.first?["tenant_id"] as? String == "tenant-1")
            #expect(tenants.items.first?["endpoint_count"] as? Int == 1)
            let usage = try await api.get("/v1/admin/organizations/\(orgID)/usage", key: testAdminKey)
            let figures = try #require(usage["usage"] as? [String: [String: Any]])
            #expect(figures["endpoints"]?["used"] as? Int == 1)
            #expect(figures["endpoints"]?["limit"] as? Int == 10)
            #expect(figures["applications"]?["used"] as? Int == 1)
            #expect(usage.string("plan") == "free")
        }
    }

    @Test(arguments: Backend.available)
    func badInputGetsAClearProblemAndWritesNothing(_ backend: Backend) async throws {
        try await withTern(backend) { api in
            let (_, key) = try await api.organization()
            let app = try await api.application(key)
            let path = "/v1/applications/\(app)/endpoints"

            let malformed = try await api.post(path, key: key, #"{"tenant_id": "#)
            #expect(malformed.status == 400)
            #expect(malformed.headers[.contentType] == "application/problem+json")
            #expect(malformed.string("instance")?.hasPrefix("urn:tern:request:") == true)

            let notJSON = try await api.call(.post, path, key: key, json: "tenant_id=x", contentType: "text/plain")
            #expect(notJSON.status == 415)

            let invalid = try await api.post(
                path, key: key,
                """
                {"tenant_id": "\(String(repeating: "t", count: 256))", "url": "ftp://example.com", "events": ["bad name"],
                 "timeout_seconds": 31, "headers": {"Connection": "close", "Bad Name": "x"}}
                """)
            #expect(invalid.status == 422)
            #expect(Set(invalid.fieldErrors) == ["tenant_id", "url", "events[0]", "timeout_seconds", "headers.Connection", "headers.Bad Name"])

            let missing = try await api.post(path, key: key, "{}")
            #expect(missing.status == 422)
            #expect(Set(missing.fieldErrors) == ["tenant_id", "url"])

            let wrongType = try await api.post(path, key: key, #"{"tenant_id": 5, "url": "http://x.test"}"#)
            #expect(wrongType.status == 422)
            #expect(wrongType.fieldErrors == ["tenant_id"])

            let badEnum = try await api.post(path, key: key, #"{"tenant_id": "t", "url": "http://x.test", "status": "sleeping"}"#)
            #expect(badEnum.status == 422)
            #expect(badEnum.fieldErrors == ["status"])

            let unregistered = try await api.post(path, key: key, #"{"tenant_id": "t", "url": "http://x.test", "events": ["nope"]}"#)
            #expect(unregistered.status == 422)

            let noHost = try await api.post(path, key: key, #"{"tenant_id": "t", "url": "https://"}"#)
            #expect(noHost.status == 422)

            let array = try await api.post(path, key: key, "[]")
            #expect(array.status == 422)

            let unknownApp = try await api.post(
                "/v1/applications/app_01m85kc8g1vxt7zk8c3xn62s9y/endpoints", key: key, #"{"tenant_id": "t", "url": "http://x.test"}"#)
            #expect(unknownApp.status == 404)

            let badApp = try await api.post(
                "/v1/applications", key: key,
                """
                {"name": "", "retry_schedule": [5, -1], "circuit_breaker": {"failure_threshold": 0},
                 "portal": {"allowed_origins": ["not an origin"], "brand_color": "red", "logo_url": "javascript:alert(1)"}}
                """)
            #expect(badApp.status == 422)
            #expect(
                Set(badApp.fieldErrors) == [
                    "name", "retry_schedule[1]", "circuit_breaker.failure_threshold", "portal.allowed_origins[0]", "portal.brand_color",
                    "portal.logo_url",
                ])

            let badEventType = try await api.post("/v1/applications/\(app)/event-types", key: key, #"{"name": "order created!", "schema": 5}"#)
            #expect(badEventType.status == 422)
            #expect(Set(badEventType.fieldErrors) == ["name", "schema"])

            let endpoints = try await api.get(path, key: key)
            #expect(endpoints.items.isEmpty, "nothing was written")
            let applications = try await api.get("/v1/applications", key: key)
            #expect(applications.items.count == 1)
            let eventTypes = try await api.get("/v1/applications/\(app)/event-types", key: key)
            #expect(eventTypes.items.isEmpty)

            let bigBody = "{\"name\": \"" + String(repeating: "x", count: 1_100_000) + "\"}"
            let tooLarge = try await api.post("/v1/applications", key: key, bigBody)
            #expect(tooLarge.status == 413)

            let badLimit = try await api.get("/v1/applications?limit=0", key: key)
            #expect(badLimit.status == 422)
            let badCursor = try await api.get("/v1/applications?cursor=%%%", key: key)
            #expect(badCursor.status == 422)
            let noRoute = try await api.get("/v1/nothing-here", key: key)
            #expect(noRoute.status == 404)
            #expect(noRoute.headers[.contentType] == "application/problem+json")
        }
    }

    @Test(arguments: Backend.available)
    func endpointStatusChangesStampTheirTimes(_ backend: Backend) async throws {
        try await withTern(backend) { api in
            let (_, key) = try await api.organization()
            let app = try await api.application(key)
            let created = try await api.endpoint(key, app: app)
            let path = "/v1/applications/\(app)/endpoints/\(try #require(created.string("id")))"

            let paused = try await api.call(.patch, path, key: key, json: #"{"status": "paused"}"#)
            #expect(paused.string("status") == "paused")
            #expect(paused.string("paused_at") != nil)

            let disabled = try await api.call(.patch, path, key: key, json: #"{"status": "disabled"}"#)
            #expect(disabled.string("disabled_reason") == "manual")
            #expect(disabled.string("disabled_at") != nil)

            let active = try await api.call(.patch, path, key: key, json: #"{"status": "active", "name": "Primary", "timeout_seconds": 5}"#)
            #expect(active.string("status") == "active")
            #expect(active["paused_at"] is NSNull && active["disabled_at"] is NSNull && active["disabled_reason"] is NSNull)
            #expect(active.string("name") == "Primary")
            #expect(active["timeout_seconds"] as? Int == 5)

            let tenantChange = try await api.call(.patch, path, key: key, json: #"{"tenant_id": "other"}"#)
            #expect(tenantChange.status == 422)

            let filtered = try await api.get("/v1/applications/\(app)/endpoints?status=paused", key: key)
            #expect(filtered.items.isEmpty)
            let badFilter = try await api.get("/v1/applications/\(app)/endpoints?status=sleeping", key: key)
            #expect(badFilter.status == 422)

            #expect(try await api.call(.delete, path, key: key).status == 204)
            #expect(try await api.get(path, key: key).status == 404)
        }
    }

    @Test(arguments: Backend.available)
    func archivingAnEventTypeKeepsItReadableAndStopsNewSubscriptions(_ backend: Backend) async throws {
        try await withTern(backend) { api in
            let (_, key) = try await api.organization()
            let app = try await api.application(key)
            try await api.eventType(key, app: app, name: "invoice.paid")
            let duplicate = try await api.post("/v1/applications/\(app)/event-types", key: key, #"{"name": "invoice.paid"}"#)
            #expect(duplicate.status == 409)
            let path = "/v1/applications/\(app)/event-types/invoice.paid"
            let patched = try await api.call(
                .patch, path, key: key, json: #"{"description": "Paid", "schema": {"type": "object"}, "example": {"amount": 5}}"#)
            #expect(patched.string("description") == "Paid")
            #expect((patched["example"] as? [String: Any])?["amount"] as? Int == 5)

            #expect(try await api.call(.delete, path, key: key).status == 204)
            let archived = try await api.get(path, key: key)
            #expect(archived.status == 200)
            #expect(archived["archived"] as? Bool == true)
            #expect(try await api.get("/v1/applications/\(app)/event-types", key: key).items.isEmpty)
            #expect(try await api.get("/v1/applications/\(app)/event-types?include_archived=true", key: key).items.count == 1)
            let subscribe = try await api.endpoint(key, app: app, events: #"["invoice.paid"]"#)
            #expect(subscribe.status == 422)
            let open = try await api.application(key, name: "Open", extra: #", "allow_unregistered_event_types": true"#)
            #expect(try await api.endpoint(key, app: open, events: #"["anything.goes"]"#).status == 201)

            // Publishing: an archived or unregistered type is refused, each publish of a batch on its own.
            try await api.eventType(key, app: app, name: "invoice.sent")
            let replies = try await withThrowingTaskGroup(of: (String, Int).self) { group in
                for index in 0..<30 {
                    let type = ["invoice.paid", "invoice.sent", "invoice.unknown"][index % 3]
                    group.addTask { (type, try await api.publish(key, app: app, type: type).status) }
                }
                return try await group.reduce(into: [(String, Int)]()) { $0.append($1) }
            }
            #expect(replies.allSatisfy { $0.1 == ($0.0 == "invoice.sent" ? 202 : 422) }, "\(replies)")
            let refused = try await api.publish(key, app: app, type: "invoice.paid")
            #expect(refused.fieldErrors == ["event_type"] && refused.text.contains("archived"), "\(refused.text)")
            #expect(try await api.publish(key, app: app, type: "invoice.unknown").text.contains("not a registered event type"))
            #expect(try await api.publish(key, app: open, type: "anything.goes").status == 202)
        }
    }

    @Test(arguments: Backend.available)
    func listsPageNewestFirstWithOpaqueCursors(_ backend: Backend) async throws {
        try await withTern(backend) { api in
            let (_, key) = try await api.organization(plan: "enterprise")
            var created: [String] = []
            for index in 0..<5 { created.append(try await api.application(key, name: "app \(index)")) }
            var seen: [String] = []
            var cursor: String?
            repeat {
                let page = try await api.get("/v1/applications?limit=2" + (cursor.map { "&cursor=\($0)" } ?? ""), key: key)
                #expect(page.status == 200)
                seen += page.items.compactMap { $0["id"] as? String }
                cursor = page["next_cursor"] as? String
                #expect((page["has_more"] as? Bool) == (cursor != nil))
            } while cursor != nil
            #expect(seen == created.reversed())
        }
    }

    @Test(arguments: Backend.available)
    func idempotencyKeysReplayTheFirstResponse(_ backend: Backend) async throws {
        try await withTern(backend) { api in
            let (_, key) = try await api.organization(plan: "enterprise")
            let headers = ["Idempotency-Key": "create-shop-1"]
            let first = try await api.post("/v1/applications", key: key, #"{"name": "Shop"}"#, headers: headers)
            let second = try await api.post("/v1/applications", key: key, #"{"name": "Shop"}"#, headers: headers)
            #expect(first.status == 201 && second.status == 201)
            #expect(first.string("id") == second.string("id"))
            #expect(second.headers[.init("Idempotent-Replayed")!] == "true")
            let other = try await api.post("/v1/applications", key: key, #"{"name": "Other"}"#, headers: headers)
            #expect(other.status == 409)
            #expect(try await api.get("/v1/applications", key: key).items.count == 1)
            let failed = try await api.post("/v1/applications", key: key, #"{"name": ""}"#, headers: ["Idempotency-Key": "k2"])
            #expect(failed.status == 422)
            let retried = try await api.post("/v1/applications", key: key, #"{"name": "Fixed"}"#, headers: ["Idempotency-Key": "k2"])
            #expect(retried.status == 201, "a failed request does not use up its key")
        }
    }

    @Test(arguments: Backend.available)
    func everyResponseCarriesARequestID(_ backend: Backend) async throws {
        try await withTern(backend) { api in
            // Under a loaded machine the write check can pass its 2-second limit (503, "degraded") and recover with the
            // next check: health is read until it answers 200; the request ID is on every answer.
            var health = try await api.get("/health", key: nil)
            let healthy = try await eventually {
                if health.status != 200 { health = try await api.get("/health", key: nil) }
                return health.status == 200
            }
            #expect(healthy, "\(health.text)")
            #expect((health["checks"] as? [String: [String: Any]])?["database"]?["status"] as? String == "ok")
            #expect(health.headers[.init("X-Request-Id")!]?.hasPrefix("req_") == true)
            let echoed = try await api.call(.get, "/v1/applications", headers: ["X-Request-Id": "trace-123"])
            #expect(echoed.status == 401)
            #expect(echoed.headers[.init("X-Request-Id")!] == "trace-123")
            #expect(echoed.string("instance") == "urn:tern:request:trace-123")
        }
    }
}
