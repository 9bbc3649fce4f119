import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization
import TernCore
import TernStorage

/// `tern bench delivery`: starts Tern (all roles) and a receiver on 127.0.0.1 in this process, then measures
/// (1) a closed-loop burst: publish throughput and latency, and delivery throughput, and (2) an open-loop run at
/// a fixed rate: publish→receipt latency timed from each event's scheduled send time. Prints one JSON object.
public enum DeliveryBenchmark {
    public struct Options: Sendable {
        public var resources: URL
        public var databaseURL: String?
        public var events = 5_000
        public var concurrency = 32
        public var rate = 200
        public var seconds = 10
        public var payloadBytes = 1_024

        public init(resources: URL) {
            self.resources = resources
        }
    }

    public struct Result: Encodable, Sendable {
        var database: String
        var events: Int
        var concurrency: Int
        var payload_bytes: Int
        var publish_per_second: Double
        var publish_latency_ms: Percentiles
        var deliveries_per_second: Double
        var open_loop_rate: Int
        var open_loop_seconds: Int
        var open_loop_publish_to_receipt_ms: Percentiles
        var rss_idle_mib: Double
        var rss_peak_mib: Double
    }

    public struct Percentiles: Encodable, Sendable {
        var p50: Double
        var p90: Double
        var p99: Double
        var max: Double

        init(_ values: [Double]) {
            let sorted = values.sorted()
            func at(_ q: Double) -> Double {
                guard !sorted.isEmpty else { return 0 }
                return (sorted[min(sorted.count - 1, Int((Double(sorted.count) * q).rounded(.up)) - 1)] * 100).rounded() / 100
            }
            self.p50 = at(0.5)
            self.p90 = at(0.9)
            self.p99 = at(0.99)
            self.max = at(1)
        }
    }

    /// Counts receipts and their latencies; the send time travels in the payload as nanoseconds since `base`.
    final class Sink: Sendable {
        let base: ContinuousClock.Instant
        let state = Mutex<(count: Int, latencies: [Double], last: ContinuousClock.Instant?)>((0, [], nil))

        init(base: ContinuousClock.Instant) {
            self.base = base
        }

        func receive(_ body: ByteBuffer) {
            let now = ContinuousClock.now
            let sentNanos = Self.sentNanos(body)
            let latency = Double((now - self.base).nanoseconds - sentNanos) / 1_000_000
            self.state.withLock { state in
                state.count += 1
                state.latencies.append(latency)
                state.last = now
            }
        }

        func reset() { self.state.withLock { $0 = (0, [], nil) } }
        var count: Int { self.state.withLock { $0.count } }

        /// Reads `"t":<digits>` at the start of the payload.
        static func sentNanos(_ body: ByteBuffer) -> Int64 {
            var value: Int64 = 0
            for byte in body.readableBytesView.dropFirst(5) {
                guard byte >= 48 && byte <= 57 else { break }
                value = value * 10 + Int64(byte - 48)
            }
            return value
        }
    }

    public static func run(_ options: Options) async throws -> Result {
        let sink = Sink(base: ContinuousClock.now)
        return try await BenchRig.run(
            resources: options.resources, databaseURL: options.databaseURL, connections: max(options.concurrency, 64), receive: sink.receive
        ) { rig in
            try await Self.measure(options, rig: rig, sink: sink)
        }
    }

    static func measure(_ options: Options, rig: BenchRig, sink: Sink) async throws -> Result {
        let base = sink.base
        let (api, key, app) = (rig.api, rig.key, rig.app)
        _ = try await api.post("/v1/applications/\(app)/event-types", key: key, #"{"name": "bench.event"}"#)
        try await rig.endpoint()
        let path = "/v1/applications/\(app)/events"
        let padding = String(repeating: "x", count: max(0, options.payloadBytes - 40))
        func body(_ sentNanos: Int64) -> String {
            #"{"event_type": "bench.event", "tenant_id": "tenant-1", "payload": {"t":\#(sentNanos),"pad":"\#(padding)"}}"#
        }
        try await Task.sleep(for: .milliseconds(500))
        let idle = Self.residentMiB().current

        // 1. Closed loop: `concurrency` clients publish `events` as fast as they are answered.
        let burstStart = ContinuousClock.now
        let publishLatencies = try await withThrowingTaskGroup(of: [Double].self) { clients in
            for client in 0..<options.concurrency {
                clients.addTask {
                    var latencies: [Double] = []
                    for _ in stride(from: client, to: options.events, by: options.concurrency) {
                        let start = ContinuousClock.now
                        try await api.publish(path, key: key, body((start - base).nanoseconds))
                        latencies.append(Double((ContinuousClock.now - start).nanoseconds) / 1_000_000)
                    }
                    return latencies
                }
            }
            return try await clients.reduce(into: [Double]()) { $0 += $1 }
        }
        let publishSeconds = Double((ContinuousClock.now - burstStart).nanoseconds) / 1e9
        let delivered = await Self.until(timeout: .seconds(300)) { sink.count >= options.events }
        guard delivered, let last = sink.state.withLock({ $0.last }) else { throw ConfigurationError("not every event was delivered") }
        let deliverySeconds = Double((last - burstStart).nanoseconds) / 1e9

        // 2. Open loop: one event every 1/rate s, each timed from when it was due to be sent.
        sink.reset()
        let total = options.rate * options.seconds
        let openStart = ContinuousClock.now + .milliseconds(100)
        try await withThrowingTaskGroup(of: Void.self) { sends in
            for index in 0..<total {
                let due = openStart + .nanoseconds(Int64(index) * 1_000_000_000 / Int64(options.rate))
                try await Task.sleep(until: due, clock: .continuous)
                sends.addTask { try await api.publish(path, key: key, body((due - base).nanoseconds)) }
            }
            try await sends.waitForAll()
        }
        _ = await Self.until(timeout: .seconds(120)) { sink.count >= total }
        let openLatencies = sink.state.withLock { $0.latencies }
        let memory = Self.residentMiB()

        return Result(
            database: rig.databaseKind, events: options.events,
            concurrency: options.concurrency, payload_bytes: options.payloadBytes,
            publish_per_second: (Double(options.events) / publishSeconds).rounded(),
            publish_latency_ms: Percentiles(publishLatencies),
            deliveries_per_second: (Double(options.events) / deliverySeconds).rounded(),
            open_loop_rate: options.rate, open_loop_seconds: options.seconds,
            open_loop_publish_to_receipt_ms: Percentiles(openLatencies),
            rss_idle_mib: idle, rss_peak_mib: memory.peak
        )
    }

    /// A small JSON client over async-http-client.
    struct Client: Sendable {
        let http: HTTPClient
        let base: String

        func post(_ path: String, key: String, _ json: String) async throws -> [String: String] {
            let (status, body) = try await self.send(path, key: key, json)
            guard (200..<300).contains(status) else { throw ConfigurationError("POST \(path) answered \(status): \(body)") }
            let object = (try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]) ?? [:]
            return object.compactMapValues { $0 as? String }
        }

        func publish(_ path: String, key: String, _ json: String) async throws {
            let (status, body) = try await self.send(path, key: key, json)
            guard status == 202 else { throw ConfigurationError("publish answered \(status): \(body)") }
        }

        /// POSTs `json`, or GETs when it is nil; returns the status and body.
        func send(_ path: String, absolute: Bool = false, key: String, _ json: String?, method: HTTPMethod = .POST) async throws -> (Int, String) {
            var request = HTTPClientRequest(url: absolute ? path : self.base + path)
            if !key.isEmpty { request.headers.add(name: "authorization", value: "Bearer \(key)") }
            if let json {
                request.method = method
                request.headers.add(name: "content-type", value: "application/json")
                request.body = .bytes(ByteBuffer(string: json))
            }
            let response = try await self.http.execute(request, timeout: .seconds(30))
            let body = try await response.body.collect(upTo: 1 << 20)
            return (Int(response.status.code), String(buffer: body))
        }

        func waitForHealth() async -> Bool {
            await DeliveryBenchmark.until(timeout: .seconds(30)) {
                let request = HTTPClientRequest(url: self.base + "/health")
                return (try? await self.http.execute(request, timeout: .seconds(2)).status.code) == 200
            }
        }
    }

    static func until(timeout: Duration, _ condition: () async -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return await condition()
    }

    static func freePort() throws -> Int {
        let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).wait()
        defer { try? channel.close().wait() }
        return channel.localAddress?.port ?? 0
    }

    /// Resident memory now and at its peak (VmRSS, VmHWM), in MiB.
    static func residentMiB(statusFile: String = "/proc/self/status") -> (current: Double, peak: Double) {
        let status = (try? String(contentsOfFile: statusFile, encoding: .utf8)) ?? ""
        func field(_ name: String) -> Double {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name) }) else { return 0 }
            let kib = Double(line.split(separator: " ").dropFirst().first ?? "") ?? 0
            return (kib / 1024 * 10).rounded() / 10
        }
        return (field("VmRSS:"), field("VmHWM:"))
    }
}

extension Duration {
    var nanoseconds: Int64 {
        self.components.seconds * 1_000_000_000 + self.components.attoseconds / 1_000_000_000
    }
}
