import Crypto
import Foundation
import TernCore
import Testing

@testable import TernTesting

/// Inbound sources: each provider's request signed the way the provider documents it, verified, deduplicated,
/// and delivered onward to a real receiver. The signing here is written from the providers' docs, not Tern's code.
@Suite struct InboundTests {
    static func hmacHex(_ secret: String, _ message: String) -> String {
        HMAC<SHA256>.authenticationCode(for: Array(message.utf8), using: SymmetricKey(data: Array(secret.utf8))).map { String(format: "%02x", $0) }
            .joined()
    }

    static func hmacBase64(key: [UInt8], _ message: String) -> String {
        Data(HMAC<SHA256>.authenticationCode(for: Array(message.utf8), using: SymmetricKey(data: key))).base64EncodedString()
    }

    /// An application with one all-events endpoint of tenant-1 at the receiver; returns (key, app).
    static func setUp(_ api: API, _ receiver: Receiver) async throws -> (String, String) {
        let (_, key) = try await api.organization()
        let app = try await api.application(key)
        _ = try await api.endpoint(key, app: app, url: receiver.url("/forwarded"))
        return (key, app)
    }

    static func source(_ api: API, key: String, app: String, _ body: String) async throws -> (String, String, String) {
        let reply = try await api.post("/v1/applications/\(app)/sources", key: key, body)
        try #require(reply.status == 201, "\(reply.text)")
        let id = try #require(reply.string("id"))
        #expect(reply.string("ingress_url")?.hasSuffix("/in/\(id)") == true)
        return (id, try #require(reply.string("secret")), "/in/\(id)")
    }

    static func send(_ api: API, _ path: String, _ body: String, _ headers: [String: String]) async throws -> Reply {
        try await api.call(.post, path, json: body, headers: headers)
    }

    @Test(arguments: Backend.available)
    func stripeEventsAreVerifiedDeduplicatedAndDelivered(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        try await withTern(backend) { api in
            let (key, app) = try await Self.setUp(api, receiver)
            let secret = "whsec_stripe_test_0123456789"
            let (_, _, path) = try await Self.source(
                api, key: key, app: app, #"{"name": "Stripe", "provider": "stripe", "secret": "\#(secret)", "tenant_id": "tenant-1"}"#)
            let body = #"{"id": "evt_1Nx", "object": "event", "type": "payment_intent.succeeded", "data": {"object": {"amount": 2000}}}"#
            // Stripe: t=<unix>, v1=hex(HMAC-SHA256(secret, "<t>.<payload>")).
            let now = Int(Date().timeIntervalSince1970)
            let header = "t=\(now),v1=\(Self.hmacHex(secret, "\(now).\(body)"))"
            let accepted = try await Self.send(api, path, body, ["Stripe-Signature": header])
            #expect(accepted.status == 202, "\(accepted.text)")
            #expect(accepted.string("event_type") == "payment_intent.succeeded")
            let messageID = try #require(accepted.string("message_id"))
            let forwarded = try #require(await receiver.waitFor(1).first)
            #expect(forwarded.body == Array(body.utf8), "the raw body is forwarded byte for byte")
            #expect(forwarded.messageID == messageID)

            let again = try await Self.send(api, path, body, ["Stripe-Signature": header])
            #expect(again.status == 200 && again.string("message_id") == messageID && again["duplicate"] as? Bool == true)

            let old = now - 600
            let stale = try await Self.send(api, path, body, ["Stripe-Signature": "t=\(old),v1=\(Self.hmacHex(secret, "\(old).\(body)"))"])
            #expect(stale.status == 401, "outside the 5-minute tolerance")
            #expect(
                try await Self.send(api, path, body, ["Stripe-Signature": "t=\(now),v1=\(Self.hmacHex("wrong", "\(now).\(body)"))"]).status == 401)
            #expect(try await Self.send(api, path, body, [:]).status == 401)
            let notJSON = "not json"
            #expect(
                try await Self.send(api, path, notJSON, ["Stripe-Signature": "t=\(now),v1=\(Self.hmacHex(secret, "\(now).\(notJSON)"))"]).status
                    == 400)
            try await Task.sleep(for: .milliseconds(300))
            #expect(receiver.received.count == 1, "no second delivery, and nothing unverified")
            #expect(try await api.get("/v1/applications/\(app)/events", key: key).items.count == 1)
            let metrics = try await api.get("/metrics", key: nil).text
            #expect(
                metrics.contains(#"tern_inbound_requests_total{provider="stripe",outcome="rejected"}"#)
                    || metrics.contains(#"tern_inbound_requests_total{outcome="rejected",provider="stripe"}"#), "rejections are counted")
        }
    }

    @Test(arguments: Backend.available)
    func gitHubDeliveriesAreVerifiedByTheirHubSignature(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        try await withTern(backend) { api in
            let (key, app) = try await Self.setUp(api, receiver)
            let secret = "my-github-webhook-secret"
            let (_, _, path) = try await Self.source(api, key: key, app: app, #"{"name": "GitHub", "provider": "github", "secret": "\#(secret)"}"#)
            let body = #"{"ref": "refs/heads/main", "repository": {"full_name": "acme/shop"}}"#
            // GitHub: X-Hub-Signature-256: sha256=hex(HMAC-SHA256(secret, payload)).
            let headers = [
                "X-Hub-Signature-256": "sha256=" + Self.hmacHex(secret, body), "X-GitHub-Event": "push",
                "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            ]
            #expect(try await Self.send(api, path, body, headers).status == 400, "no tenant on the source or in the URL")
            let accepted = try await Self.send(api, path + "?tenant_id=tenant-1", body, headers)
            #expect(accepted.status == 202, "\(accepted.text)")
            #expect(accepted.string("event_type") == "push")
            await receiver.waitFor(1)
            #expect(try await Self.send(api, path + "?tenant_id=tenant-1", body, headers).status == 200)
            var forged = headers
            forged["X-Hub-Signature-256"] = "sha256=" + Self.hmacHex(secret, body + " ")
            #expect(try await Self.send(api, path + "?tenant_id=tenant-1", body, forged).status == 401)
            try await Task.sleep(for: .milliseconds(300))
            #expect(receiver.received.count == 1)
        }
    }

    @Test(arguments: Backend.available)
    func standardWebhooksHMACAndTokenSourcesVerifyAndForward(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        try await withTern(backend) { api in
            let (key, app) = try await Self.setUp(api, receiver)
            // Standard Webhooks: the secret Tern made (whsec_ + base64 key); signature v1,base64(HMAC(key, "id.ts.body")).
            let (_, swSecret, swPath) = try await Self.source(
                api, key: key, app: app, #"{"name": "SW", "provider": "standard-webhooks", "tenant_id": "tenant-1"}"#)
            #expect(swSecret.hasPrefix("whsec_"))
            let swKey = try #require(Data(base64Encoded: String(swSecret.dropFirst(6))))
            let body = #"{"type": "invoice.paid", "data": {"id": 9}}"#
            let now = Int(Date().timeIntervalSince1970)
            let signature = "v1," + Self.hmacBase64(key: Array(swKey), "msg_abc.\(now).\(body)")
            let sw = try await Self.send(
                api, swPath, body, ["webhook-id": "msg_abc", "webhook-timestamp": String(now), "webhook-signature": signature])
            #expect(sw.status == 202 && sw.string("event_type") == "invoice.paid", "\(sw.text)")
            #expect(
                try await Self.send(api, swPath, body, ["webhook-id": "msg_abc", "webhook-timestamp": String(now), "webhook-signature": "v1,AAAA"])
                    .status == 401)

            // Generic HMAC, base64 in a header of our choosing.
            let (_, hmacSecret, hmacPath) = try await Self.source(
                api, key: key, app: app,
                #"{"name": "Shop", "provider": "hmac", "tenant_id": "tenant-1", "header": "X-Shop-Signature", "encoding": "base64"}"#
            )
            let generic = #"{"order": 5}"#
            let hmac = try await Self.send(api, hmacPath, generic, ["X-Shop-Signature": Self.hmacBase64(key: Array(hmacSecret.utf8), generic)])
            #expect(hmac.status == 202 && hmac.string("event_type") == "inbound.hmac", "\(hmac.text)")
            #expect(
                try await Self.send(api, hmacPath, generic, ["X-Signature": Self.hmacHex(hmacSecret, generic)]).status == 401,
                "the configured header only")

            // Shared token.
            let (_, token, tokenPath) = try await Self.source(
                api, key: key, app: app, #"{"name": "Legacy", "provider": "token", "tenant_id": "tenant-1"}"#)
            #expect(try await Self.send(api, tokenPath, generic, ["X-Webhook-Token": token]).status == 202)
            #expect(try await Self.send(api, tokenPath, generic, ["X-Webhook-Token": token + "x"]).status == 401)
            #expect(try await Self.send(api, tokenPath, generic, [:]).status == 401)
            let large = #"{"blob": "\#(String(repeating: "x", count: 262_200))"}"#
            #expect(try await Self.send(api, tokenPath, large, ["X-Webhook-Token": token]).status == 413)
            #expect(try await Self.send(api, "/in/src_missing", generic, ["X-Webhook-Token": token]).status == 404)

            await receiver.waitFor(3)
            try await Task.sleep(for: .milliseconds(300))
            #expect(receiver.received.count == 3, "one delivery per verified request")
            let bad = try await api.post("/v1/applications/\(app)/sources", key: key, #"{"name": "x", "provider": "carrier-pigeon"}"#)
            #expect(bad.status == 422 && bad.fieldErrors == ["provider"])
            #expect(
                try await api.post("/v1/applications/\(app)/sources", key: key, #"{"name": "x", "provider": "stripe"}"#).fieldErrors == ["secret"])
            let listed = try await api.get("/v1/applications/\(app)/sources", key: key)
            #expect(listed.items.count == 3 && !listed.text.contains(token) && !listed.text.contains(hmacSecret), "secrets are shown once")
        }
    }

    /// Inbound rules: an allowlist of addresses (a real connection from 127.0.0.1; behind a trusted proxy, its
    /// `X-Forwarded-For`), and headers kept with the message, which endpoint filters can match with the source id.
    @Test(arguments: Backend.available)
    func allowedAddressesAndForwardedHeadersRouteInboundEvents(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        try await withTern(backend, live: true, configure: { $0.trustedProxies = [IPRange("127.0.0.1/32")!] }) { api in
            let (key, app) = try await Self.setUp(api, receiver)
            let generic = #"{"type": "shipment.sent", "id": "s-1"}"#
            let (elsewhereID, token, elsewhere) = try await Self.source(
                api, key: key, app: app, #"{"name": "Carrier", "provider": "token", "tenant_id": "tenant-1", "allowed_ips": ["192.0.2.0/24"]}"#)
            let refused = try await Self.send(api, elsewhere, generic, ["X-Webhook-Token": token])
            #expect(refused.status == 403 && refused.text.contains("127.0.0.1"), "\(refused.text)")
            // Through the trusted proxy on 127.0.0.1, the forwarded client is what counts; an untrusted hop to its left is not.
            let proxied = try await Self.send(api, elsewhere, generic, ["X-Webhook-Token": token, "X-Forwarded-For": "198.51.100.7, 192.0.2.44"])
            #expect(proxied.status == 202, "\(proxied.text)")
            let spoofed = try await Self.send(api, elsewhere, generic, ["X-Webhook-Token": token, "X-Forwarded-For": "192.0.2.44, 198.51.100.7"])
            #expect(spoofed.status == 403, "\(spoofed.text)")
            let metrics = try await api.get("/metrics", key: nil).text
            #expect(metrics.contains(#"outcome="forbidden_address""#))

            // A source that forwards x-carrier: a filter on the source and the header routes its events.
            let (carrierID, carrierToken, carrier) = try await Self.source(
                api, key: key, app: app,
                #"{"name": "Parcels", "provider": "token", "tenant_id": "tenant-1", "allowed_ips": ["127.0.0.1", "::1"], "forward_headers": ["X-Carrier"]}"#
            )
            let source = try await api.get("/v1/applications/\(app)/sources/\(carrierID)", key: key)
            #expect(source["forward_headers"] as? [String] == ["x-carrier"] && source["allowed_ips"] as? [String] == ["127.0.0.1", "::1"])
            _ = try await api.endpoint(
                key, app: app, url: receiver.url("/dhl"), extra: #", "filter": {"source_id": "\#(carrierID)", "headers.x-carrier": "dhl"}"#)
            let dhl = try await Self.send(
                api, carrier, #"{"type": "parcel.sent", "id": "p-1"}"#, ["X-Webhook-Token": carrierToken, "X-Carrier": "dhl"])
            #expect(dhl.status == 202 && dhl["deliveries"] as? Int == 2, "\(dhl.text)")
            let ups = try await Self.send(
                api, carrier, #"{"type": "parcel.sent", "id": "p-2"}"#, ["X-Webhook-Token": carrierToken, "X-Carrier": "ups"])
            #expect(ups["deliveries"] as? Int == 1, "\(ups.text)")
            let message = try await api.get("/v1/applications/\(app)/events/\(try #require(dhl.string("message_id")))", key: key)
            #expect(message.string("source_id") == carrierID && message["headers"] as? [String: String] == ["x-carrier": "dhl"], "\(message.text)")
            _ = elsewhereID

            // Credentials and signatures are never forwarded; addresses must parse.
            let bad = try await api.post(
                "/v1/applications/\(app)/sources", key: key,
                #"{"name": "Bad", "provider": "token", "forward_headers": ["Authorization"], "allowed_ips": ["10.0.0.0/33", "example.com"]}"#)
            #expect(bad.status == 422 && Set(bad.fieldErrors) == ["forward_headers[0]", "allowed_ips[0]", "allowed_ips[1]"], "\(bad.text)")
        }
    }
}
