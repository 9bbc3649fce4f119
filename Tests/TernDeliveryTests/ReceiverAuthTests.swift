import Crypto
import Foundation
import TernCore
import Testing

@testable import TernTesting

/// Receiver authentication against real receivers on 127.0.0.1: basic and bearer credentials as the receiver reads
/// them, an OAuth2 token server asked once per token (not per delivery) and once more after a revoked token, a token
/// server's refusal as the attempt's error, and Ed25519 signatures verified with the public key.
@Suite struct ReceiverAuthTests {
    @Test(arguments: Backend.available)
    func basicAndBearerCredentialsReachTheReceiverAndNeverShow(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        try await withTern(backend) { api in
            let (key, app) = try await api.shop()
            let (basicID, _) = try await api.endpoint(
                key, app: app, url: receiver.url("/basic"),
                extra: #", "headers": {"Authorization": "Bearer overridden"}, "auth": {"type": "basic", "username": "tern", "password": "s3cr3t-pw"}"#
            )
            _ = try await api.endpoint(
                key, app: app, url: receiver.url("/bearer"), extra: #", "auth": {"type": "bearer", "token": "tok-static-123"}"#)
            let shown = try await api.get("/v1/applications/\(app)/endpoints/\(basicID)", key: key)
            #expect((shown["auth"] as? [String: String]) == ["type": "basic", "username": "tern"], "\(shown.text)")
            #expect(!shown.text.contains("s3cr3t-pw"))

            let published = try await api.publish(key, app: app)
            let received = await receiver.waitFor(2)
            let basic = try #require(received.first { $0.path == "/basic" })
            #expect(basic.header("authorization") == "Basic " + Data("tern:s3cr3t-pw".utf8).base64EncodedString())
            #expect(received.first { $0.path == "/bearer" }?.header("authorization") == "Bearer tok-static-123")
            // The attempt shows that credentials went, never which.
            let deliveries = try await api.deliveries(key, app: app, message: try #require(published.string("id")))
            for delivery in deliveries {
                let id = try #require(delivery["id"] as? String)
                _ = try await api.waitForDelivery(key, app: app, id, status: "delivered")
                let attempts = try await api.get("/v1/applications/\(app)/deliveries/\(id)/attempts", key: key)
                #expect(
                    attempts.text.contains("[redacted]") && !attempts.text.contains("s3cr3t") && !attempts.text.contains("tok-static"),
                    "\(attempts.text)")
            }
            // Bad settings are 422 naming the field, and change nothing.
            let bad = try await api.post(
                "/v1/applications/\(app)/endpoints", key: key,
                #"{"tenant_id": "tenant-1", "url": "\#(receiver.url("/x"))", "auth": {"type": "basic", "username": "a:b"}}"#)
            #expect(bad.status == 422 && Set(bad.fieldErrors) == ["auth.username", "auth.password"], "\(bad.text)")
            let unknown = try await api.call(.patch, "/v1/applications/\(app)/endpoints/\(basicID)", key: key, json: #"{"auth": {"type": "digest"}}"#)
            #expect(unknown.status == 422 && unknown.fieldErrors == ["auth.type"], "\(unknown.text)")
            let cleared = try await api.call(.patch, "/v1/applications/\(app)/endpoints/\(basicID)", key: key, json: #"{"auth": null}"#)
            #expect(cleared["auth"] is NSNull, "\(cleared.text)")
        }
    }

    @Test(arguments: Backend.available)
    func oauth2TokensAreFetchedOncePerExpiryAndRefreshedOnceAfterA401(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        func token(_ value: String) -> Receiver.Answer {
            Receiver.Answer(
                status: 200, headers: ["content-type": "application/json"],
                body: #"{"access_token": "\#(value)", "token_type": "Bearer", "expires_in": 3600}"#)
        }
        receiver.script("/token", [token("tok-1")], then: token("tok-2"))
        receiver.script("/refused-token", [], then: .init(status: 401, body: #"{"error": "invalid_client", "error_description": "bad client"}"#))
        try await withTern(backend) { api in
            let (key, app) = try await api.shop()
            let grant =
                #"{"type": "oauth2_client_credentials", "token_url": "\#(receiver.url("/token"))", "client_id": "tern", "client_secret": "client-s3cret", "scope": "webhooks:write"}"#
            let (endpointID, _) = try await api.endpoint(key, app: app, url: receiver.url("/hook"), extra: #", "auth": \#(grant)"#)
            for index in 0..<20 { _ = try await api.publish(key, app: app, payload: #"{"n": \#(index)}"#) }
            _ = await eventually { receiver.received.filter { $0.path == "/hook" }.count >= 20 }
            let hooks = receiver.received.filter { $0.path == "/hook" }
            #expect(hooks.count == 20 && hooks.allSatisfy { $0.header("authorization") == "Bearer tok-1" })
            let tokenRequests = receiver.received.filter { $0.path == "/token" }
            #expect(tokenRequests.count == 1, "one token for 20 deliveries, not one each")
            let request = try #require(tokenRequests.first)
            #expect(request.header("authorization") == "Basic " + Data("tern:client-s3cret".utf8).base64EncodedString())
            #expect(String(decoding: request.body, as: UTF8.self) == "grant_type=client_credentials&scope=webhooks%3Awrite")

            // The receiver revokes tok-1: one 401, one new token, and the same attempt succeeds with it.
            receiver.script("/hook", [.init(status: 401)], then: .init())
            let revoked = try await api.publish(key, app: app, payload: #"{"n": 20}"#)
            let revokedID = try #require(revoked.string("id"))
            let delivery = try #require(try await api.deliveries(key, app: app, message: revokedID).first?["id"] as? String)
            let done = try await api.waitForDelivery(key, app: app, delivery, status: "delivered")
            #expect(done["attempt_count"] as? Int == 1, "\(done)")
            #expect(receiver.received.filter { $0.path == "/token" }.count == 2)
            #expect(receiver.received.last { $0.path == "/hook" }?.header("authorization") == "Bearer tok-2")

            // A token server that refuses: the attempt's error says so, without the secret.
            let refused =
                #"{"type": "oauth2_client_credentials", "token_url": "\#(receiver.url("/refused-token"))", "client_id": "tern", "client_secret": "client-s3cret"}"#
            _ = try await api.call(.patch, "/v1/applications/\(app)/endpoints/\(endpointID)", key: key, json: #"{"auth": \#(refused)}"#)
            let failing = try await api.publish(key, app: app, payload: #"{"n": 21}"#)
            let failingID = try #require(failing.string("id"))
            let failed = try #require(try await api.deliveries(key, app: app, message: failingID).first?["id"] as? String)
            let after = try await api.waitForDelivery(key, app: app, failed, status: "failed")
            #expect(
                after["last_error"] as? String
                    == "the OAuth2 token request to \(receiver.url("/refused-token")) answered HTTP 401 (invalid_client: bad client)", "\(after)")
            let shown = try await api.get("/v1/applications/\(app)/endpoints/\(endpointID)", key: key)
            #expect(!shown.text.contains("client-s3cret") && (shown["auth"] as? [String: Any])?["client_id"] as? String == "tern")
            let audit = try await api.get("/v1/audit-entries?limit=250", key: key)
            #expect(audit.status == 200 && audit.items.contains { $0["action"] as? String == "endpoint.updated" }, "\(audit.text)")
            #expect(!audit.text.contains("client-s3cret"))
        }
    }

    @Test(arguments: Backend.available)
    func ed25519SignaturesVerifyWithThePublicKeyThroughARotation(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        try await withTern(backend) { api in
            let (key, app) = try await api.shop()
            let created = try await api.post(
                "/v1/applications/\(app)/endpoints", key: key, #"{"tenant_id": "tenant-1", "url": "\#(receiver.url())", "signing": "ed25519"}"#)
            #expect(created.status == 201 && created.string("signing") == "ed25519" && created["secret"] == nil, "\(created.text)")
            let publicKey = try #require(created.string("public_key"))
            #expect(publicKey.hasPrefix("whpk_"))
            _ = try await api.publish(key, app: app, payload: #"{"n": 1}"#)
            let first = try #require(await receiver.waitFor(1).first)
            #expect(try Self.verify(first, publicKey))

            // Rotation: the new key signs at once, the old one beside it for 24 hours.
            let endpointID = try #require(created.string("id"))
            let rotated = try await api.post("/v1/applications/\(app)/endpoints/\(endpointID)/rotate-secret", key: key, "{}")
            let newKey = try #require(rotated.string("public_key"))
            #expect(rotated["secret"] is NSNull && newKey != publicKey, "\(rotated.text)")
            _ = try await api.publish(key, app: app, payload: #"{"n": 2}"#)
            let second = try #require(await receiver.waitFor(2).last)
            #expect(second.header("webhook-signature")?.split(separator: " ").count == 2)
            #expect(try Self.verify(second, newKey) && Self.verify(second, publicKey))

            // The Standard Webhooks spec's algorithm, run by the `cryptography` package.
            let (status, output) = try await runProgram(
                "python3",
                [
                    repositoryRoot.appendingPathComponent("Tests/interop/verify_ed25519.py").path, newKey, second.messageID,
                    second.header("webhook-timestamp") ?? "", second.header("webhook-signature") ?? "", String(decoding: second.body, as: UTF8.self),
                ])
            #expect(status == 0 && output.contains("verified"), "\(output)")
            let mismatch = try await api.post(
                "/v1/applications/\(app)/endpoints", key: key,
                #"{"tenant_id": "tenant-1", "url": "\#(receiver.url())", "signing": "ed25519", "secret": "\#(EndpointSecret.generate())"}"#)
            #expect(mismatch.status == 422 && mismatch.fieldErrors == ["secret"], "\(mismatch.text)")
        }
    }

    /// Verifies a `v1a,` signature of the received request with a `whpk_` key, as a receiver would.
    static func verify(_ request: Receiver.Received, _ publicKey: String) throws -> Bool {
        let raw = try #require(Data(base64Encoded: String(publicKey.dropFirst(5))))
        let key = try Curve25519.Signing.PublicKey(rawRepresentation: raw)
        let signed = Array("\(request.messageID).\(request.header("webhook-timestamp") ?? "").".utf8) + request.body
        return (request.header("webhook-signature") ?? "").split(separator: " ").contains { candidate in
            guard candidate.hasPrefix("v1a,"), let signature = Data(base64Encoded: String(candidate.dropFirst(4))) else { return false }
            return key.isValidSignature(signature, for: signed)
        }
    }
}
