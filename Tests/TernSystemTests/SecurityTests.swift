import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import TernCore
import Testing

@testable import TernTesting

/// Hostile input and secrets: what an attacker or a careless log reader must never get.
@Suite(.serialized) struct SecurityTests {
    /// A server that refuses private endpoints refuses every spelling of this machine, and nothing connects to it.
    @Test func endpointsOnLoopbackSpellingsAreRefusedAndNothingConnects() async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        try await withTern(.sqlite, configure: { $0.allowPrivateEndpoints = false }) { api in
            let (key, app) = try await api.shop()
            let port = receiver.port
            for host in [
                "127.0.0.1", "127.8.9.10", "127.1", "localhost", "LOCALHOST.", "[::1]", "[::ffff:127.0.0.1]", "0.0.0.0", "[::]",
                "2130706433", "0x7f000001", "10.0.0.1", "169.254.169.254", "sub.localhost",
            ] {
                let reply = try await api.post(
                    "/v1/applications/\(app)/endpoints", key: key, #"{"tenant_id": "t", "url": "http://\#(host):\#(port)/hook"}"#
                )
                #expect(reply.status == 422 && reply.fieldErrors == ["url"], "\(host): \(reply.status) \(reply.text)")
            }
            try await Task.sleep(for: .milliseconds(200))
            #expect(receiver.received.isEmpty)
            #expect(try await api.get("/v1/applications/\(app)/endpoints", key: key).items.isEmpty)
        }
    }

    /// Every secret Tern hands out, then a flow that logs at debug level: none of them is in the logs, the audit
    /// log, an error body or /metrics.
    @Test func noSecretReachesLogsAuditErrorsOrMetrics() async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        receiver.script("/fail", then: .init(status: 500))
        let databaseURL = try await Backend.sqlite.freshDatabaseURL()
        let logPath = Leftovers.temporary("secrets", suffix: ".log").path
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let port = try WorkerProcess.freePort()
        let process = Process()
        process.executableURL = WorkerProcess.executable
        process.arguments = ["serve"]
        process.environment = [
            "TERN_DATABASE_URL": databaseURL, "TERN_PORT": String(port), "TERN_ADMIN_KEY": testAdminKey, "TERN_ENCRYPTION_KEY": testEncryptionKey,
            "TERN_ALLOW_PRIVATE_ENDPOINTS": "true", "TERN_LOG_LEVEL": "trace", "TERN_RESOURCES_DIR": repositoryRoot.path,
        ]
        let log = FileHandle(forWritingAtPath: logPath)
        process.standardOutput = log
        process.standardError = log
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let base = "http://127.0.0.1:\(port)"
        func call(
            _ method: HTTPMethod, _ path: String, key: String?, _ body: String? = nil, headers: [String: String] = [:]
        ) async throws -> (Int, String) {
            var request = HTTPClientRequest(url: base + path)
            request.method = method
            if let key { request.headers.add(name: "authorization", value: "Bearer \(key)") }
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            if let body {
                request.headers.add(name: "content-type", value: "application/json")
                request.body = .bytes(ByteBuffer(string: body))
            }
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 20)))
        }
        func json(_ text: String) -> [String: Any] { (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:] }
        #expect(await eventually { (try? await call(.GET, "/health", key: nil).0) == 200 })

        var secrets: [String] = [testAdminKey, testEncryptionKey]
        let org = json(try await call(.POST, "/v1/admin/organizations", key: testAdminKey, #"{"name": "Acme", "plan": "pro"}"#).1)
        let orgID = try #require(org["id"] as? String)
        let key = try #require(
            json(try await call(.POST, "/v1/admin/organizations/\(orgID)/api-keys", key: testAdminKey, #"{"name": "k"}"#).1)["key"] as? String)
        secrets.append(key)
        let app = try #require(
            json(try await call(.POST, "/v1/applications", key: key, #"{"name": "Shop", "retry_schedule": [0]}"#).1)["id"] as? String)
        _ = try await call(.POST, "/v1/applications/\(app)/event-types", key: key, #"{"name": "order.created"}"#)
        let endpoint = json(
            try await call(.POST, "/v1/applications/\(app)/endpoints", key: key, #"{"tenant_id": "t1", "url": "\#(receiver.url("/fail"))"}"#).1)
        let endpointID = try #require(endpoint["id"] as? String)
        secrets.append(try #require(endpoint["secret"] as? String))
        let rotated = json(try await call(.POST, "/v1/applications/\(app)/endpoints/\(endpointID)/rotate-secret", key: key, "{}").1)
        secrets.append(try #require(rotated["secret"] as? String))
        let source = json(
            try await call(.POST, "/v1/applications/\(app)/sources", key: key, #"{"name": "s", "provider": "token", "tenant_id": "t1"}"#).1)
        secrets.append(try #require(source["secret"] as? String))
        let portal = json(try await call(.POST, "/v1/applications/\(app)/portal-sessions", key: key, #"{"tenant_id": "t1"}"#).1)
        secrets.append(try #require(portal["token"] as? String))
        // Traffic that logs: deliveries that fail, a bad key, a wrong token on the ingress, a forged portal cookie.
        for _ in 0..<3 {
            _ = try await call(
                .POST, "/v1/applications/\(app)/events", key: key, #"{"event_type": "order.created", "tenant_id": "t1", "payload": {"a": 1}}"#)
        }
        let badKey = try await call(.GET, "/v1/applications", key: key + "x")
        let wrongToken = try await call(.POST, "/in/\(try #require(source["id"] as? String))", key: nil, "{}", headers: ["X-Webhook-Token": "nope"])
        let forged = try await call(
            .GET, "/portal/endpoints", key: nil, headers: ["Cookie": "tern_portal=\(try #require(portal["token"] as? String))x"])
        _ = try await eventually { receiver.received(path: "/fail").count >= 6 }
        let audit = try await call(.GET, "/v1/audit-entries?limit=250", key: key)
        let metrics = try await call(.GET, "/metrics", key: nil)
        Foundation.kill(process.processIdentifier, SIGTERM)
        _ = await eventually { !process.isRunning }
        let logText = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        #expect(logText.contains("delivery_id="), "the log has delivery lines to search")
        for secret in secrets {
            let shown = String(secret.prefix(12))
            #expect(!logText.contains(secret), "a secret (\(shown)…) is in the log")
            for (name, text) in [
                ("audit", audit.1), ("metrics", metrics.1), ("401 body", badKey.1), ("ingress 401", wrongToken.1), ("portal 401", forged.1),
            ] {
                #expect(!text.contains(secret), "a secret (\(shown)…) is in the \(name)")
            }
        }
        #expect(badKey.0 == 401 && wrongToken.0 == 401 && forged.0 == 401)
        // At rest: the key as an argon2id hash, the endpoint and source secrets sealed.
        let file = try Data(contentsOf: URL(fileURLWithPath: String(databaseURL.dropFirst("sqlite://".count))))
        let walPath = String(databaseURL.dropFirst("sqlite://".count)) + "-wal"
        let wal = (try? Data(contentsOf: URL(fileURLWithPath: walPath))) ?? Data()
        for secret in secrets.dropFirst(2) where !secret.hasPrefix("eyJ") {
            // The last 20 characters: random in every kind of secret, long enough never to occur by chance.
            let needle = Data(secret.suffix(20).utf8)
            #expect(file.range(of: needle) == nil && wal.range(of: needle) == nil, "a secret is stored in the clear")
        }
        #expect(file.range(of: Data("$argon2id$".utf8)) != nil || wal.range(of: Data("$argon2id$".utf8)) != nil)
    }

    /// Oversized headers are refused before they are read whole.
    @Test func oversizedHeadersAreRefused() async throws {
        try await withTern(.sqlite, live: true) { api in
            let port = try #require(api.port)
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/health")
            request.headers.add(name: "x-huge", value: String(repeating: "a", count: 32 * 1024))
            do {
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
                #expect(response.status.code >= 400, "a 32 KB header field was accepted")
            } catch {
                // The server closed the connection: refused.
            }
            let normal = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/health"), timeout: .seconds(10))
            #expect(normal.status.code == 200)
        }
    }
}

extension SecurityTests {
    /// A keep-alive connection whose requests each arrive whole in time stays open however long it is used (the
    /// connection's one deadline timer fires, finds the deadline moved and sets itself again), and is closed once its
    /// client stops sending for longer than the request timeout.
    @Test func aConnectionUsedInTimeStaysOpenAndIsClosedOnceItsClientGoesQuiet() async throws {
        // A timeout thirty times the gap between requests: only a client stalled for 3 s would miss it.
        try await withTern(.sqlite, live: true, configure: { $0.requestReadTimeout = .seconds(3) }) { api in
            let port = try #require(api.port)
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port).get()
            let request = ByteBuffer(string: "GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            // Over two request timeouts of requests 100 ms apart.
            let until = ContinuousClock.now + .seconds(7)
            var sent = 0
            while ContinuousClock.now < until, channel.isActive {
                try await channel.writeAndFlush(request)
                sent += 1
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(channel.isActive, "closed after \(sent) requests sent in time")
            let closed = await eventually(timeout: .seconds(20)) { !channel.isActive }
            #expect(closed, "the quiet connection was closed")
        }
    }

    /// 100 slow-loris connections (50 trickle a request head a byte at a time, 50 a body) against a server whose
    /// request timeout is 2 s: requests from other clients are answered meanwhile, and the server closes every slow
    /// connection by itself.
    @Test func slowLorisClientsAreCutOffWithoutTyingUpTheServer() async throws {
        try await withTern(.sqlite, live: true, configure: { $0.requestReadTimeout = .seconds(2) }) { api in
            let port = try #require(api.port)
            let closed = Accepted()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<100 {
                    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port).get()
                    channel.closeFuture.whenComplete { _ in closed.add(String(index)) }
                    let head = "POST /v1/applications HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                    group.addTask {
                        // Half send the head at once and trickle the body; half trickle the head itself.
                        var bytes = Array(index.isMultiple(of: 2) ? head.utf8 : "X-Padding: 1234567890123456789012345678901234567890\r\n".utf8)
                        if index.isMultiple(of: 2) {
                            try? await channel.writeAndFlush(ByteBuffer(bytes: bytes))
                            bytes = Array(String(repeating: "a", count: 100).utf8)
                        } else {
                            try? await channel.writeAndFlush(ByteBuffer(string: "POST /v1/applications HTTP/1.1\r\n"))
                        }
                        let stop = ContinuousClock.now + .seconds(30)
                        for byte in bytes where channel.isActive && ContinuousClock.now < stop {
                            try? await channel.writeAndFlush(ByteBuffer(bytes: [byte]))
                            try? await Task.sleep(for: .milliseconds(400))
                        }
                        try? await channel.close()
                    }
                }
                // Meanwhile the server answers others (`/livez`: HTTP alone; `/health`'s write check has a time limit a
                // loaded machine can pass).
                for _ in 0..<20 {
                    let response = try await HTTPClient.shared.execute(
                        HTTPClientRequest(url: "http://127.0.0.1:\(port)/livez"), timeout: .seconds(5))
                    #expect(response.status.code == 200)
                    try await Task.sleep(for: .milliseconds(50))
                }
                let allClosed = await eventually(timeout: .seconds(15)) { closed.count == 100 }
                #expect(allClosed, "the server closed every slow connection (\(closed.count) of 100)")
                group.cancelAll()
            }
        }
    }
}
