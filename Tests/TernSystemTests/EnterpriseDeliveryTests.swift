import Foundation
import TernCore
import TernDelivery
import TernHTTP
import Testing

@testable import TernTesting

/// Enterprise delivery against real peers on 127.0.0.1: an HTTPS receiver (Python's `ssl`, certificates made now with
/// `openssl`) that demands a client certificate from its own CA, a bearer token from a local OAuth2 token server and
/// an Ed25519 signature (checked with `cryptography`), reached through Debian's `tinyproxy`; and every wrong setting
/// as a clear attempt error.
@Suite(.serialized) struct EnterpriseDeliveryTests {
    /// Certificates for one test: a CA for the receiver's certificate (IP 127.0.0.1), a CA for client certificates,
    /// a client certificate it signed, and a self-signed one it did not.
    struct Certificates {
        let directory: URL
        func path(_ name: String) -> String { self.directory.appendingPathComponent(name).path }
        func text(_ name: String) throws -> String { try String(contentsOfFile: self.path(name), encoding: .utf8) }

        static func make() async throws -> Certificates {
            let directory = Leftovers.temporary("tls")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let certificates = Certificates(directory: directory)
            try "subjectAltName=IP:127.0.0.1\n".write(toFile: certificates.path("server.ext"), atomically: true, encoding: .utf8)
            let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
            for (name, subject) in [("server-ca", "/CN=Receiver CA"), ("client-ca", "/CN=Client CA"), ("stranger", "/CN=stranger")] {
                try await Self.runOpenSSL(
                    ["req", "-x509"] + ec + [
                        "-keyout", certificates.path("\(name).key"), "-out", certificates.path("\(name).pem"), "-days", "2", "-subj", subject,
                    ])
            }
            for (name, ca, subject) in [("server", "server-ca", "/CN=127.0.0.1"), ("client", "client-ca", "/CN=tern-client")] {
                try await Self.runOpenSSL(
                    ["req"] + ec + ["-keyout", certificates.path("\(name).key"), "-out", certificates.path("\(name).csr"), "-subj", subject])
                try await Self.runOpenSSL(
                    [
                        "x509", "-req", "-in", certificates.path("\(name).csr"), "-CA", certificates.path("\(ca).pem"), "-CAkey",
                        certificates.path("\(ca).key"),
                        "-CAcreateserial", "-out", certificates.path("\(name).pem"), "-days", "2",
                    ] + (name == "server" ? ["-extfile", certificates.path("server.ext")] : []))
            }
            return certificates
        }

        static func runOpenSSL(_ arguments: [String]) async throws {
            let (status, output) = try await runProgram("openssl", arguments)
            try #require(status == 0, "openssl \(arguments.joined(separator: " ")): \(output)")
        }
    }

    /// A background program (the TLS receiver, tinyproxy), killed at the end. SIGKILL: the test process blocks
    /// SIGTERM and its children inherit the mask, so a SIGTERM left them running after the tests.
    final class Background: Sendable {
        let process: Process

        init(_ executable: String, _ arguments: [String], log: URL) throws {
            FileManager.default.createFile(atPath: log.path, contents: nil)
            let handle = try FileHandle(forWritingTo: log)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [executable] + arguments
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
            self.process = process
        }

        func stop() {
            guard self.process.isRunning else { return }
            kill(self.process.processIdentifier, SIGKILL)
            self.process.waitUntilExit()
        }
    }

    /// Starts the TLS receiver; returns it and its port.
    static func tlsReceiver(_ certificates: Certificates, _ extra: [String]) async throws -> (Background, Int, URL) {
        let portFile = certificates.directory.appendingPathComponent("port-\(UUID().uuidString)")
        let log = certificates.directory.appendingPathComponent("requests-\(UUID().uuidString).jsonl")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let receiver = try Background(
            "python3",
            [
                repositoryRoot.appendingPathComponent("Tests/interop/tls_receiver.py").path, portFile.path, log.path, certificates.path("server.pem"),
                certificates.path("server.key"),
            ] + extra, log: certificates.directory.appendingPathComponent("receiver-\(UUID().uuidString).log"))
        var port = 0
        _ = await eventually(timeout: .seconds(20)) {
            port = Int((try? String(contentsOf: portFile, encoding: .utf8)) ?? "") ?? 0
            return port > 0
        }
        try #require(port > 0, "the TLS receiver did not start")
        return (receiver, port, log)
    }

    static func lines(_ log: URL) -> [[String: Any]] {
        ((try? String(contentsOf: log, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    static func json(_ text: String) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: text, options: .fragmentsAllowed), as: UTF8.self)
    }

    /// mTLS with a private CA: the right client certificate is accepted; none, a stranger's, or no CA bundle each
    /// fail with the TLS error in the attempt; invalid or mismatched PEM is 422 at create.
    @Test(arguments: Backend.available)
    func mutualTLSWithAPrivateCA(_ backend: Backend) async throws {
        let certificates = try await Certificates.make()
        let (receiver, port, log) = try await Self.tlsReceiver(certificates, ["--client-ca", certificates.path("client-ca.pem")])
        defer { receiver.stop() }
        try await withTern(backend) { api in
            let (key, app) = try await api.shop(#", "retry_schedule": []"#)
            let url = "https://127.0.0.1:\(port)"
            let ca = Self.json(try certificates.text("server-ca.pem"))
            let good =
                #""client_certificate_pem": \#(Self.json(try certificates.text("client.pem"))), "client_key_pem": \#(Self.json(try certificates.text("client.key")))"#
            let stranger =
                #""client_certificate_pem": \#(Self.json(try certificates.text("stranger.pem"))), "client_key_pem": \#(Self.json(try certificates.text("stranger.key")))"#
            let cases: [(path: String, tls: String?, error: String?)] = [
                ("/right", #"{\#(good), "ca_bundle_pem": \#(ca)}"#, nil),
                (
                    "/no-certificate", #"{"ca_bundle_pem": \#(ca)}"#,
                    "TLS: the receiver requires a client certificate (TLSV1_ALERT_CERTIFICATE_REQUIRED); set tls.client_certificate_pem and tls.client_key_pem"
                ),
                (
                    "/stranger", #"{\#(stranger), "ca_bundle_pem": \#(ca)}"#,
                    "TLS: the receiver rejected the client certificate (TLSV1_ALERT_UNKNOWN_CA)"
                ),
                (
                    "/no-bundle", #"{\#(good)}"#,
                    "TLS: the receiver's certificate is not trusted (CERTIFICATE_VERIFY_FAILED); for a private CA set tls.ca_bundle_pem"
                ),
            ]
            var endpoints: [String: String] = [:]
            for (path, tls, _) in cases {
                let (id, _) = try await api.endpoint(key, app: app, url: url + path, extra: tls.map { #", "tls": \#($0)"# } ?? "")
                endpoints[path] = id
            }
            let shown = try await api.get("/v1/applications/\(app)/endpoints/\(endpoints["/right"]!)", key: key)
            let tls = try #require(shown["tls"] as? [String: Any])
            #expect(tls["client_key_set"] as? Bool == true && tls["client_key_pem"] == nil && !shown.text.contains("PRIVATE KEY"), "\(shown.text)")

            let published = try await api.publish(key, app: app)
            let deliveries = try await api.deliveries(key, app: app, message: try #require(published.string("id")))
            for (path, _, expected) in cases {
                let delivery = try #require(deliveries.first { $0["endpoint_id"] as? String == endpoints[path] }?["id"] as? String)
                let done = try await api.waitForDelivery(key, app: app, delivery, status: expected == nil ? "delivered" : "exhausted")
                #expect(done["last_error"] as? String == expected, "\(path): \(done)")
            }
            let requests = Self.lines(log)
            #expect(requests.count == 1 && requests.first?["client"] as? String == "tern-client", "\(requests)")

            // Bad material is refused before anything is stored.
            let mismatched = try await api.post(
                "/v1/applications/\(app)/endpoints", key: key,
                #"{"tenant_id": "tenant-1", "url": "\#(url)", "tls": {"client_certificate_pem": \#(Self.json(try certificates.text("client.pem"))), "client_key_pem": \#(Self.json(try certificates.text("stranger.key")))}}"#
            )
            #expect(mismatched.status == 422 && mismatched.fieldErrors == ["tls.client_key_pem"], "\(mismatched.text)")
            let garbage = try await api.post(
                "/v1/applications/\(app)/endpoints", key: key,
                #"{"tenant_id": "tenant-1", "url": "\#(url)", "tls": {"ca_bundle_pem": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----"}}"#
            )
            #expect(garbage.status == 422 && garbage.fieldErrors == ["tls.ca_bundle_pem"], "\(garbage.text)")
        }
    }

    /// The enterprise receiver: mTLS, a bearer token from the OAuth2 server, an Ed25519 signature, and deliveries
    /// that leave through the operator's proxy (tinyproxy logs each CONNECT).
    @Test(arguments: Backend.available)
    func anEnterpriseReceiverBehindAProxyGetsEveryDelivery(_ backend: Backend) async throws {
        let certificates = try await Certificates.make()
        let tokenServer = try await Receiver.start()
        defer { Task { await tokenServer.stop() } }
        tokenServer.script(
            "/token", [],
            then: .init(status: 200, headers: ["content-type": "application/json"], body: #"{"access_token": "enterprise-token", "expires_in": 600}"#)
        )
        let publicKeyFile = certificates.directory.appendingPathComponent("whpk")
        let (receiver, port, log) = try await Self.tlsReceiver(
            certificates,
            ["--client-ca", certificates.path("client-ca.pem"), "--bearer", "enterprise-token", "--public-key-file", publicKeyFile.path])
        defer { receiver.stop() }
        // tinyproxy on a free port, logging every connection.
        let proxyPort = try WorkerProcess.freePort()
        let proxyLog = certificates.directory.appendingPathComponent("tinyproxy.log")
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: certificates.directory.path)
        try """
        Port \(proxyPort)
        Listen 127.0.0.1
        Timeout 30
        LogFile "\(proxyLog.path)"
        LogLevel Connect
        MaxClients 50
        Allow 127.0.0.1
        """.write(to: certificates.directory.appendingPathComponent("tinyproxy.conf"), atomically: true, encoding: .utf8)
        let proxy = try Background(
            "tinyproxy", ["-d", "-c", certificates.path("tinyproxy.conf")], log: certificates.directory.appendingPathComponent("tinyproxy.out"))
        defer { proxy.stop() }
        try await Task.sleep(for: .milliseconds(500))
        try await withTern(backend, configure: { $0.deliverySettings.proxy = DeliveryProxy(url: "http://127.0.0.1:\(proxyPort)") }) { api in
            let (key, app) = try await api.shop()
            let tls =
                #"{"client_certificate_pem": \#(Self.json(try certificates.text("client.pem"))), "client_key_pem": \#(Self.json(try certificates.text("client.key"))), "ca_bundle_pem": \#(Self.json(try certificates.text("server-ca.pem")))}"#
            let auth =
                #"{"type": "oauth2_client_credentials", "token_url": "\#(tokenServer.url("/token"))", "client_id": "tern", "client_secret": "enterprise-secret"}"#
            let created = try await api.post(
                "/v1/applications/\(app)/endpoints", key: key,
                #"{"tenant_id": "tenant-1", "url": "https://127.0.0.1:\#(port)/enterprise", "signing": "ed25519", "tls": \#(tls), "auth": \#(auth)}"#)
            try #require(created.status == 201, "\(created.text)")
            try #require(created.string("public_key")).write(to: publicKeyFile, atomically: true, encoding: .utf8)
            for index in 0..<5 { _ = try await api.publish(key, app: app, payload: #"{"n": \#(index)}"#) }
            _ = await eventually(timeout: .seconds(30)) { Self.lines(log).count >= 5 }
            let requests = Self.lines(log)
            #expect(
                requests.count == 5 && requests.allSatisfy { $0["status"] as? Int == 204 && $0["client"] as? String == "tern-client" }, "\(requests)")
            #expect(tokenServer.received.filter { $0.path == "/token" }.count == 1)
            let proxied = ((try? String(contentsOf: proxyLog, encoding: .utf8)) ?? "").split(separator: "\n").filter {
                $0.contains("CONNECT 127.0.0.1:\(port)")
            }
            #expect(!proxied.isEmpty, "tinyproxy saw no CONNECT to the receiver")
            print("ENTERPRISE \(backend.rawValue): \(requests.count) deliveries accepted, \(proxied.count) CONNECTs through tinyproxy")
        }
    }
}
