import AsyncHTTPClient
import Foundation
import Histogram
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import TernStorage

/// The measurement toolkit every benchmark uses: HdrHistogram latencies, closed loops, a JSON client, waiting,
/// free ports and resident memory.
enum Toolkit {
    struct Latency: Encodable, Sendable {
        var p50: Double
        var p90: Double
        var p99: Double
        var max: Double
        var count: Int

        init(p50: Double, p90: Double, p99: Double, max: Double, count: Int) {
            (self.p50, self.p90, self.p99, self.max, self.count) = (p50, p90, p99, max, count)
        }

        init(_ histogram: Histogram<UInt64>) {
            func ms(_ microseconds: UInt64) -> Double { (Double(microseconds) / 10).rounded() / 100 }
            self.p50 = ms(histogram.valueAtPercentile(50))
            self.p90 = ms(histogram.valueAtPercentile(90))
            self.p99 = ms(histogram.valueAtPercentile(99))
            self.max = ms(histogram.max)
            self.count = Int(histogram.totalCount)
        }
    }

    /// Latencies recorded from many tasks.
    final class Recorder: Sendable {
        let histogram = Mutex(Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three))

        func record(_ duration: Duration) {
            let microseconds = UInt64(max(0, duration.nanoseconds / 1_000))
            self.histogram.withLock { _ = $0.record(microseconds) }
        }

        var latency: Latency { self.histogram.withLock { Latency($0) } }
    }

    /// Receipts: how many, when the last came, and (from the send time carried in the payload) their latency.
    final class Sink: Sendable {
        let base = ContinuousClock.now
        let state = Mutex<(count: Int, last: ContinuousClock.Instant?)>((0, nil))
        let recorder = Mutex(Recorder())

        func receive(_ body: ByteBuffer) {
            let now = ContinuousClock.now
            let sent = Self.sentNanos(body)
            self.recorder.withLock { $0 }.record(.nanoseconds((now - self.base).nanoseconds - sent))
            self.state.withLock { state in
                state.count += 1
                state.last = now
            }
        }

        /// Starts counting afresh; returns the recorder of what arrives from now on.
        func reset() -> Recorder {
            let recorder = Toolkit.Recorder()
            self.recorder.withLock { $0 = recorder }
            self.state.withLock { $0 = (0, nil) }
            return recorder
        }

        var count: Int { self.state.withLock { $0.count } }
        var last: ContinuousClock.Instant? { self.state.withLock { $0.last } }

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

    static func ratio(_ value: Double, _ ceiling: Double) -> Double {
        ceiling > 0 ? (value / ceiling * 1000).rounded() / 1000 : 0
    }

    /// Runs `body` `count` times from `concurrency` tasks, each starting its next call when its last returns.
    static func closedLoop(count: Int, concurrency: Int, _ body: @escaping @Sendable (Int) async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { clients in
            for client in 0..<concurrency {
                clients.addTask {
                    for index in stride(from: client, to: count, by: concurrency) { try await body(index) }
                }
            }
            try await clients.waitForAll()
        }
    }

    /// Calls per second of `body` in a closed loop.
    static func rate(requests: Int, concurrency: Int, _ body: @escaping @Sendable () async throws -> Void) async throws -> Double {
        let start = ContinuousClock.now
        try await Toolkit.closedLoop(count: requests, concurrency: concurrency) { _ in try await body() }
        return (Double(requests) / (ContinuousClock.now - start).seconds).rounded()
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

    /// A process's CPU time so far (user + system), in seconds, from its `/proc/<pid>/stat`.
    static func cpuSeconds(statFile: String = "/proc/self/stat") -> Double {
        guard let stat = try? String(contentsOfFile: statFile, encoding: .utf8), let end = stat.lastIndex(of: ")") else { return 0 }
        // After "pid (comm)": state is field 3, utime and stime are fields 14 and 15.
        let fields = stat[stat.index(after: end)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
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

extension Toolkit {
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
            await Toolkit.until(timeout: .seconds(30)) {
                let request = HTTPClientRequest(url: self.base + "/health")
                return (try? await self.http.execute(request, timeout: .seconds(2)).status.code) == 200
            }
        }
    }
}

extension Duration {
    var nanoseconds: Int64 {
        self.components.seconds * 1_000_000_000 + self.components.attoseconds / 1_000_000_000
    }

    var seconds: Double { Double(self.nanoseconds) / 1e9 }
}
