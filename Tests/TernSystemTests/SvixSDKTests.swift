import Foundation
import TernCore
import Testing

@testable import TernTesting

/// The Svix-compatible API (`/api/v1`) as the official Svix SDK from PyPI drives it, and its error shapes, which the
/// SDK parses on every non-2xx (`{code, detail}`, 422 `{detail: [{loc, msg, type}]}`).
@Suite struct SvixSDKTests {
    @Test func theSvixSDKReachesTernAndEveryErrorUnderApiV1HasTheSvixShape() async throws {
        try await withTern(.sqlite, live: true) { api in
            let port = try #require(api.port)
            let (_, key) = try await api.organization()
            let (status, output) = try await InteropTests.python(
                repositoryRoot.appendingPathComponent("Tests/interop/svix_sdk.py").path, "http://127.0.0.1:\(port)", key)
            #expect(status == 0, "\(output)")
            let result = try #require(Self.summary(output) as? [String: String])
            #expect(result == ["health_sync": "ok", "health_async": "ok"])

            let unknown = try await api.get("/api/v1/no-such-thing", key: key)
            #expect(unknown.status == 404 && unknown.string("code") == "not_found" && unknown.string("detail") != nil)
            #expect(unknown.headers[.contentType] == "application/json")
            let method = try await api.call(.delete, "/api/v1/health", key: key)
            #expect(method.status == 405 && method.string("code") == "method_not_allowed")
            #expect(method.headers[.allow] == "GET")
            // Native paths keep problem+json.
            #expect(try await api.get("/v1/no-such-thing", key: key).headers[.contentType] == "application/problem+json")
        }
    }

    /// Every operation of the core subset through the SDK (sync and async clients): applications, event types,
    /// endpoints with secrets, headers, rotation, stats and recovery, messages with channels and idempotent retries,
    /// attempts by message and endpoint, resend, the portal link; deliveries verified with `svix.Webhook`.
    @Test(arguments: Backend.available)
    func theSvixSDKDrivesAWholeFlowEndToEnd(_ backend: Backend) async throws {
        try await withTern(backend, live: true) { api in
            let port = try #require(api.port)
            let (_, key) = try await api.organization(plan: "pro")
            _ = try await api.application(key)
            let (status, output) = try await InteropTests.python(
                repositoryRoot.appendingPathComponent("Tests/interop/svix_flow.py").path, "http://127.0.0.1:\(port)", key)
            #expect(status == 0, "\(output)")
            let summary = try #require(Self.summary(output) as? [String: Any], "\(output)")
            #expect(summary["portal"] as? String == "ok")
            #expect((summary["applications_listed"] as? Int ?? 0) >= 5)
            #expect((summary["deliveries"] as? Int ?? 0) >= 8)
            #expect(summary["async_attempts"] as? Int == 1)
        }
    }

    /// Operational webhooks through the SDK's `operational_webhook.endpoint` API, received with Svix's payload shapes
    /// and verified with `svix.Webhook`: created, failing, exhausted, disabled, enabled, deleted.
    @Test(arguments: Backend.available)
    func theSvixSDKManagesOperationalWebhooksAndVerifiesTheirSvixShapedEvents(_ backend: Backend) async throws {
        try await withTern(backend, live: true) { api in
            let port = try #require(api.port)
            let (orgID, key) = try await api.organization(plan: "pro")
            let app = try await api.application(key, extra: #", "retry_schedule": [], "circuit_breaker": {"failure_threshold": 4}"#)
            let restricted = try await api.createKey(orgID: orgID, applicationID: app)
            let (status, output) = try await InteropTests.python(
                repositoryRoot.appendingPathComponent("Tests/interop/svix_operational.py").path, "http://127.0.0.1:\(port)", restricted)
            #expect(status == 0, "\(output)")
            let summary = try #require(Self.summary(output) as? [String: Any], "\(output)")
            #expect(summary["operational_webhooks"] as? Int == 9)
            // Both APIs show the same operational endpoints and events: the Svix-made one was deleted, so none is left.
            #expect(try await api.get("/v1/operational-endpoints", key: key).items.isEmpty)
        }
    }

    /// SDK 1.x (svix<2, installed here from PyPI) on the create, list and get paths, with its aliases.
    @Test func theLastSvixSDK1DrivesCreateListAndGet() async throws {
        let target = FileManager.default.temporaryDirectory.appendingPathComponent("tern-svix1-\(UUID().uuidString)")
        let (installed, log) = try await runProgram(
            "python3", ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target", target.path, "svix<2"])
        try #require(installed == 0, "\(log)")
        defer { try? FileManager.default.removeItem(at: target) }
        try await withTern(.sqlite, live: true) { api in
            let port = try #require(api.port)
            let (_, key) = try await api.organization()
            _ = try await api.application(key)
            let (status, output) = try await runProgram(
                "env",
                [
                    "PYTHONPATH=\(target.path)", "python3", repositoryRoot.appendingPathComponent("Tests/interop/svix_v1.py").path,
                    "http://127.0.0.1:\(port)", key,
                ])
            #expect(status == 0, "\(output)")
            #expect((Self.summary(output) as? [String: Any])?["ok"] as? Bool == true, "\(output)")
        }
    }

    /// The key picks the Svix environment; another application's tenants are 404; what either API creates, the other shows.
    @Test(arguments: Backend.available)
    func keysPickTheEnvironmentAndBothAPIsShowTheSameObjects(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        try await withTern(backend) { api in
            let (orgID, key) = try await api.organization(plan: "pro")
            let appA = try await api.application(key, name: "A")
            let appB = try await api.application(key, name: "B")
            let several = try await api.get("/api/v1/app", key: key)
            #expect(several.status == 403 && several.string("code") == "insufficient access", "\(several.text)")
            let keyA = try await api.createKey(orgID: orgID, applicationID: appA)
            let keyB = try await api.createKey(orgID: orgID, applicationID: appB)

            let created = try await api.post("/api/v1/app", key: keyA, #"{"name": "Tenant one", "uid": "t1"}"#)
            #expect(created.status == 201 && created.string("uid") == "t1", "\(created.text)")
            let missing = try await api.post("/api/v1/app", key: keyA, #"{"uid": "t2"}"#)
            #expect(missing.status == 422, "\(missing.text)")
            let loc = ((missing["detail"] as? [[String: Any]])?.first?["loc"] as? [String]) ?? []
            #expect(loc == ["body", "name"], "\(missing.text)")
            let endpoint = try await api.post(
                "/api/v1/app/t1/endpoint", key: keyA, #"{"url": "\#(receiver.url())", "uid": "main", "channels": ["eu"]}"#)
            #expect(endpoint.status == 201, "\(endpoint.text)")
            let message = try await api.post("/api/v1/app/t1/msg", key: keyA, #"{"eventType": "a.b", "payload": {"x": 1}, "channels": ["eu"]}"#)
            #expect(message.status == 202, "\(message.text)")
            let messageID = try #require(message.string("id"))
            for path in [
                "/api/v1/app/t1", "/api/v1/app/t1/endpoint", "/api/v1/app/t1/endpoint/main", "/api/v1/app/t1/msg/\(messageID)",
                "/api/v1/app/t1/attempt/msg/\(messageID)", "/api/v1/app/t1/msg/\(messageID)/endpoint",
            ] {
                let other = try await api.get(path, key: keyB)
                #expect(other.status == 404 && other.string("code") == "not_found", "\(path): \(other.text)")
            }

            // The Svix endpoint is the tenant's endpoint in /v1, uid and channels included, and addressable by its uid there.
            let native = try await api.get("/v1/applications/\(appA)/endpoints/main", key: key)
            #expect(native.status == 200 && native.string("tenant_id") == "t1" && native.string("uid") == "main", "\(native.text)")
            #expect(native["channels"] as? [String] == ["eu"])
            let nativeMessage = try await api.get("/v1/applications/\(appA)/events/\(messageID)", key: key)
            #expect(nativeMessage["channels"] as? [String] == ["eu"], "\(nativeMessage.text)")
            // A tenant of /v1 is a Svix application, found by its tenant id.
            _ = try await api.endpoint(key, app: appA, url: receiver.url(), tenant: "shop-9")
            let svixView = try await api.get("/api/v1/app/shop-9/endpoint", key: keyA)
            #expect(svixView.status == 200 && svixView.items.count == 1, "\(svixView.text)")
            let listed = try await api.get("/api/v1/app", key: keyA)
            #expect(Set(listed.items.compactMap { $0["uid"] as? String }) == ["t1", "shop-9"], "\(listed.text)")

            // Svix header names for receivers written for Svix, beside the standard ones.
            let patched = try await api.call(.patch, "/v1/applications/\(appA)", key: key, json: #"{"webhook_headers": "both"}"#)
            #expect(patched.string("webhook_headers") == "both", "\(patched.text)")
            let second = try await api.post("/api/v1/app/t1/msg", key: keyA, #"{"eventType": "a.b", "payload": {"x": 2}, "channels": ["eu"]}"#)
            let secondID = try #require(second.string("id"))
            let received = await receiver.waitFor(2)
            let both = try #require(received.first { $0.header("svix-id") == secondID })
            #expect(both.header("webhook-id") == secondID && both.header("svix-signature") == both.header("webhook-signature"))
            #expect(received.first { $0.messageID == messageID }?.header("svix-id") == nil)

            // Idempotency is keyed on the credential, the key and the full URI: the same three replay the first answer.
            let first = try await api.post("/api/v1/app", key: keyA, #"{"name": "Once"}"#, headers: ["idempotency-key": "k-1"])
            let replay = try await api.post("/api/v1/app", key: keyA, #"{"name": "Twice"}"#, headers: ["idempotency-key": "k-1"])
            #expect(first.status == 201 && replay.status == 201 && replay.text == first.text)
            let otherURI = try await api.post("/api/v1/app?x=1", key: keyA, #"{"name": "Other"}"#, headers: ["idempotency-key": "k-1"])
            #expect(otherURI.string("id") != first.string("id"))
        }
    }

    /// The JSON object a script printed last.
    static func summary(_ output: String) -> Any? {
        output.split(separator: "\n").last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) }
    }
}
