import AsyncHTTPClient
import Foundation
import NIOCore
import Testing

@testable import TernTesting

/// OpenTelemetry: `tern serve` with `TERN_OTEL_EXPORTER_OTLP_ENDPOINT` sends its spans (OTLP/HTTP, JSON here) to a
/// local receiver that decodes them. A publish carrying a `traceparent` continues that trace, and the delivery attempt
/// joins it: one trace shows the request, the publish transaction and the attempt, with no payload or secret in it;
/// the application opted in, so its receiver gets the attempt's `traceparent`.
@Suite struct TracingTests {
    @Test func oneEventsTraceRunsFromThePublishingRequestToTheAttempt() async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        let directory = Leftovers.temporary("tracing")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let port = try WorkerProcess.freePort()
        let server = try EnterpriseDeliveryTests.Background(
            "env",
            [
                "TERN_DATABASE_URL=sqlite://\(directory.path)/tern.sqlite", "TERN_PORT=\(port)", "TERN_ADMIN_KEY=\(testAdminKey)",
                "TERN_ENCRYPTION_KEY=\(testEncryptionKey)", "TERN_ALLOW_PRIVATE_ENDPOINTS=true", "TERN_RESOURCES_DIR=\(repositoryRoot.path)",
                "TERN_OTEL_EXPORTER_OTLP_ENDPOINT=\(receiver.url("/v1/traces"))", "TERN_OTEL_EXPORTER_OTLP_PROTOCOL=http/json",
                "OTEL_BSP_SCHEDULE_DELAY=200", WorkerProcess.executable.path, "serve",
            ], log: directory.appendingPathComponent("server.log"))
        defer { server.stop() }
        let http = HTTPClient.shared
        func call(_ path: String, key: String, _ body: String, headers: [String: String] = [:]) async throws -> [String: Any] {
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
            request.method = .POST
            request.headers.add(name: "authorization", value: "Bearer \(key)")
            request.headers.add(name: "content-type", value: "application/json")
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            request.body = .bytes(ByteBuffer(string: body))
            let response = try await http.execute(request, timeout: .seconds(10))
            let bytes = try await response.body.collect(upTo: 1 << 20)
            return (try JSONSerialization.jsonObject(with: Data(buffer: bytes)) as? [String: Any]) ?? [:]
        }
        let started = await eventually(timeout: .seconds(30)) {
            (try? await http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/livez"), timeout: .seconds(1)).status.code) == 200
        }
        try #require(started, "tern serve did not start")
        let org = try await call("/v1/admin/organizations", key: testAdminKey, #"{"name": "Traced", "plan": "pro"}"#)
        let key = try #require(
            try await call("/v1/admin/organizations/\(org["id"] as? String ?? "")/api-keys", key: testAdminKey, #"{"name": "k"}"#)["key"] as? String)
        let app = try #require(
            try await call("/v1/applications", key: key, #"{"name": "Shop", "allow_unregistered_event_types": true, "send_traceparent": true}"#)["id"]
                as? String)
        _ = try await call("/v1/applications/\(app)/endpoints", key: key, #"{"tenant_id": "t", "url": "\#(receiver.url("/hook"))"}"#)
        let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
        let published = try await call(
            "/v1/applications/\(app)/events", key: key, #"{"event_type": "order.created", "tenant_id": "t", "payload": {"card": "4242-secret"}}"#,
            headers: ["traceparent": "00-\(traceID)-00f067aa0ba902b7-01"])
        try #require(published["id"] is String, "\(published)")

        // Spans arrive in batches: wait for the attempt's.
        func spans() -> [[String: Any]] {
            receiver.received.filter { $0.path == "/v1/traces" }.flatMap { request -> [[String: Any]] in
                let object = (try? JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any]) ?? [:]
                return ((object["resourceSpans"] as? [[String: Any]]) ?? []).flatMap { resource in
                    ((resource["scopeSpans"] as? [[String: Any]]) ?? []).flatMap { ($0["spans"] as? [[String: Any]]) ?? [] }
                }
            }
        }
        let found = await eventually(timeout: .seconds(30)) { spans().contains { $0["name"] as? String == "tern.attempt" } }
        let all = spans()
        #expect(found, "no attempt span among \(all.compactMap { $0["name"] as? String })")
        // OTLP/JSON writes ids as hex (the spec) or, from a generic protobuf JSON encoder, as base64 bytes.
        func hex(_ id: Any?) -> String? {
            guard let text = id as? String else { return nil }
            if text.count == 32, text.allSatisfy(\.isHexDigit) { return text.lowercased() }
            return Data(base64Encoded: text).map { $0.map { String(format: "%02x", $0) }.joined() }
        }
        let trace = all.filter { hex($0["traceId"]) == traceID }
        let names = Set(trace.compactMap { $0["name"] as? String })
        #expect(names.contains("tern.publish.transaction") && names.contains("tern.attempt"), "\(names) of \(all.count) spans")
        #expect(trace.count >= 3, "the request, the publish transaction and the attempt: \(names); \(all.prefix(3))")
        let attempt = try #require(trace.first { $0["name"] as? String == "tern.attempt" })
        let text = String(decoding: try JSONSerialization.data(withJSONObject: attempt), as: UTF8.self)
        #expect(text.contains("tern.endpoint_id") && !text.contains("4242-secret"), "\(text)")
        // The application opted in: the receiver got the attempt's traceparent, in the event's trace.
        let hook = try #require(receiver.received.first { $0.path == "/hook" })
        let traceparent = hook.header("traceparent") ?? ""
        #expect(traceparent.hasPrefix("00-\(traceID)-") && traceparent != "00-\(traceID)-00f067aa0ba902b7-01", "\(traceparent)")
        print("TRACING: \(all.count) spans, \(trace.count) in the event's trace: \(names.sorted())")
    }
}
