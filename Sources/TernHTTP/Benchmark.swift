import AsyncHTTPClient
import Foundation
import Histogram
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import TernCore
import TernStorage

/// `tern bench`: Tern against this machine's own limits, in one run. For SQLite (a temporary file) and, when a URL is
/// given, PostgreSQL, it starts `tern serve` as a child process and a receiver answering 204 in this process, both on
/// 127.0.0.1, and measures:
/// - the ceilings: the receiver's own acceptance rate, Tern's HTTP rate on a trivial route (`/livez`), and the
///   database's single-row insert rate (one transaction per row, from `concurrency` writers);
/// - a closed-loop burst of `events` publishes of about 1 KB from `concurrency` keep-alive clients to one endpoint:
///   publish throughput and latency, delivery throughput, publish→receipt latency;
/// - a fan-out burst to a tenant with `fanoutEndpoints` endpoints;
/// - an open-loop run at `rate` events/s for `seconds`, each event timed from when it was due to be sent;
/// - the server process's resident memory, idle and at its peak.
/// Latencies go into HdrHistograms (microsecond resolution, 3 significant digits). It prints one JSON object.
public enum Benchmark {
    public struct Options: Sendable {
        public var resources: URL
        public var executable: URL
        public var postgresURL: String?
        public var events = 20_000
        public var fanoutEvents = 2_000
        public var fanoutEndpoints = 10
        public var concurrency = 64
        public var rate = 1_000
        public var seconds = 30
        public var payloadBytes = 1_024

        public init(resources: URL, executable: URL) {
            self.resources = resources
            self.executable = executable
        }
    }

    public struct Report: Encodable, Sendable {
        var machine: Machine
        var sqlite: DatabaseReport
        var postgres: DatabaseReport?
    }

    struct Machine: Encodable, Sendable {
        var cores: Int
        var events: Int
        var concurrency: Int
        var payload_bytes: Int
    }

    struct DatabaseReport: Encodable, Sendable {
        var ceilings: Ceilings
        var publish_per_second: Double
        var publish_latency_ms: Latency
        var publish_ratio_to_http_ceiling: Double
        var publish_ratio_to_insert_ceiling: Double
        var deliveries_per_second: Double
        var delivery_ratio_to_receiver_ceiling: Double
        var burst_publish_to_receipt_ms: Latency
        var fanout: Fanout
        var open_loop: OpenLoop
        var rss_idle_mib: Double
        var rss_peak_mib: Double
    }

    struct Ceilings: Encodable, Sendable {
        var receiver_requests_per_second: Double
        var http_trivial_route_requests_per_second: Double
        var database_single_row_inserts_per_second: Double
    }

    struct Fanout: Encodable, Sendable {
        var endpoints_per_tenant: Int
        var events: Int
        var deliveries: Int
        var publish_per_second: Double
        var deliveries_per_second: Double
    }

    struct OpenLoop: Encodable, Sendable {
        var rate: Int
        var seconds: Int
        var sent: Int
        var received: Int
        var publish_to_receipt_ms: Latency
        /// From the scheduled send time to the 202: the publish's share of the latency above.
        var publish_answered_ms: Latency
    }

    /// Percentiles of a histogram of microseconds, in milliseconds.
    struct Latency: Encodable, Sendable {
        var p50: Double
        var p90: Double
        var p99: Double
        var max: Double
        var count: Int

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
            let sent = DeliveryBenchmark.Sink.sentNanos(body)
            self.recorder.withLock { $0 }.record(.nanoseconds((now - self.base).nanoseconds - sent))
            self.state.withLock { state in
                state.count += 1
                state.last = now
            }
        }

        /// Starts counting afresh; returns the recorder of what arrives from now on.
        func reset() -> Recorder {
            let recorder = Recorder()
            self.recorder.withLock { $0 = recorder }
            self.state.withLock { $0 = (0, nil) }
            return recorder
        }

        var count: Int { self.state.withLock { $0.count } }
        var last: ContinuousClock.Instant? { self.state.withLock { $0.last } }
    }

    public static func run(_ options: Options) async throws -> Report {
        let sqlite = try await Self.measure(options, databaseURL: nil)
        var postgres: DatabaseReport?
        if let url = options.postgresURL { postgres = try await Self.measure(options, databaseURL: url) }
        return Report(
            machine: Machine(
                cores: ProcessInfo.processInfo.activeProcessorCount, events: options.events, concurrency: options.concurrency,
                payload_bytes: options.payloadBytes
            ),
            sqlite: sqlite, postgres: postgres
        )
    }

    static func measure(_ options: Options, databaseURL: String?) async throws -> DatabaseReport {
        let sink = Sink()
        return try await ServerRig.run(
            options: options, databaseURL: databaseURL, receive: sink.receive
        ) { rig in
            let (api, key, app) = (rig.api, rig.key, rig.app)
            _ = try await api.post("/v1/applications/\(app)/event-types", key: key, #"{"name": "bench.event"}"#)
            try await rig.endpoint(tenant: "tenant-1")
            try await Task.sleep(for: .seconds(1))
            let idle = rig.server.residentMiB().current

            // Ceilings.
            let receiverCeiling = try await Self.rate(requests: options.events, concurrency: options.concurrency) {
                _ = try await api.send("http://127.0.0.1:\(rig.receiverPort)/hook", absolute: true, key: "", String(repeating: "x", count: options.payloadBytes))
            }
            let httpCeiling = try await Self.rate(requests: options.events, concurrency: options.concurrency) {
                _ = try await api.send("/livez", key: "", nil)
            }
            let insertCeiling = try await Self.insertRate(databaseURL: rig.databaseURL, seconds: 3, concurrency: options.concurrency)

            // Closed loop, one endpoint.
            let path = "/v1/applications/\(app)/events"
            let padding = String(repeating: "x", count: max(0, options.payloadBytes - 40))
            @Sendable func body(_ tenant: String, _ sentNanos: Int64) -> String {
                #"{"event_type": "bench.event", "tenant_id": "\#(tenant)", "payload": {"t":\#(sentNanos),"pad":"\#(padding)"}}"#
            }
            let burstReceipts = sink.reset()
            let publishLatency = Recorder()
            let burstStart = ContinuousClock.now
            try await Self.closedLoop(count: options.events, concurrency: options.concurrency) { _ in
                let start = ContinuousClock.now
                try await api.publish(path, key: key, body("tenant-1", (start - sink.base).nanoseconds))
                publishLatency.record(ContinuousClock.now - start)
            }
            let publishSeconds = (ContinuousClock.now - burstStart).seconds
            guard await DeliveryBenchmark.until(timeout: .seconds(600), { sink.count >= options.events }), let last = sink.last else {
                throw ConfigurationError("not every event was delivered")
            }
            let deliverySeconds = (last - burstStart).seconds

            // Fan-out: a tenant with several endpoints.
            for _ in 0..<options.fanoutEndpoints { try await rig.endpoint(tenant: "tenant-fanout") }
            _ = sink.reset()
            let fanoutStart = ContinuousClock.now
            try await Self.closedLoop(count: options.fanoutEvents, concurrency: options.concurrency) { _ in
                try await api.publish(path, key: key, body("tenant-fanout", (ContinuousClock.now - sink.base).nanoseconds))
            }
            let fanoutPublishSeconds = (ContinuousClock.now - fanoutStart).seconds
            let fanoutDeliveries = options.fanoutEvents * options.fanoutEndpoints
            guard await DeliveryBenchmark.until(timeout: .seconds(600), { sink.count >= fanoutDeliveries }), let fanoutLast = sink.last else {
                throw ConfigurationError("not every fan-out delivery arrived")
            }
            let fanoutSeconds = (fanoutLast - fanoutStart).seconds

            // Open loop: one event every 1/rate s, each timed from when it was due.
            let openReceipts = sink.reset()
            let total = options.rate * options.seconds
            let openStart = ContinuousClock.now + .milliseconds(100)
            let answered = Recorder()
            await withTaskGroup(of: Void.self) { sends in
                for index in 0..<total {
                    let due = openStart + .nanoseconds(Int64(index) * 1_000_000_000 / Int64(options.rate))
                    try? await Task.sleep(until: due, clock: .continuous)
                    sends.addTask {
                        // A publish that fails is not counted: `sent` is what was answered 202.
                        guard (try? await api.publish(path, key: key, body("tenant-1", (due - sink.base).nanoseconds))) != nil else { return }
                        answered.record(ContinuousClock.now - due)
                    }
                }
            }
            _ = await DeliveryBenchmark.until(timeout: .seconds(120)) { sink.count >= total }
            let memory = rig.server.residentMiB()

            let publishRate = (Double(options.events) / publishSeconds).rounded()
            let deliveryRate = (Double(options.events) / deliverySeconds).rounded()
            return DatabaseReport(
                ceilings: Ceilings(
                    receiver_requests_per_second: receiverCeiling, http_trivial_route_requests_per_second: httpCeiling,
                    database_single_row_inserts_per_second: insertCeiling
                ),
                publish_per_second: publishRate,
                publish_latency_ms: publishLatency.latency,
                publish_ratio_to_http_ceiling: Self.ratio(publishRate, httpCeiling),
                publish_ratio_to_insert_ceiling: Self.ratio(publishRate, insertCeiling),
                deliveries_per_second: deliveryRate,
                delivery_ratio_to_receiver_ceiling: Self.ratio(deliveryRate, receiverCeiling),
                burst_publish_to_receipt_ms: burstReceipts.latency,
                fanout: Fanout(
                    endpoints_per_tenant: options.fanoutEndpoints, events: options.fanoutEvents, deliveries: fanoutDeliveries,
                    publish_per_second: (Double(options.fanoutEvents) / fanoutPublishSeconds).rounded(),
                    deliveries_per_second: (Double(fanoutDeliveries) / fanoutSeconds).rounded()
                ),
                open_loop: OpenLoop(
                    rate: options.rate, seconds: options.seconds, sent: answered.latency.count, received: sink.count,
                    publish_to_receipt_ms: openReceipts.latency, publish_answered_ms: answered.latency
                ),
                rss_idle_mib: idle, rss_peak_mib: memory.peak
            )
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
        try await Self.closedLoop(count: requests, concurrency: concurrency) { _ in try await body() }
        return (Double(requests) / (ContinuousClock.now - start).seconds).rounded()
    }

    /// Single-row inserts per second into a scratch table, one transaction each, from `concurrency` writers for
    /// `seconds`, through the same `Database` layer Tern uses.
    static func insertRate(databaseURL: String, seconds: Int, concurrency: Int) async throws -> Double {
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let database = try await Database.open(try DatabaseLocation(url: databaseURL), logger: logger)
        return try await database.whileRunning {
            let table = "bench_inserts_\(UInt32.random(in: 0...UInt32.max))"
            try await database.write { sql in
                try await sql.raw("CREATE TABLE \(unsafeRaw: table) (id TEXT PRIMARY KEY, body TEXT NOT NULL, created_at BIGINT NOT NULL)").run()
            }
            let row = String(repeating: "x", count: 1_024)
            let deadline = ContinuousClock.now + .seconds(seconds)
            let start = ContinuousClock.now
            let inserted = try await withThrowingTaskGroup(of: Int.self) { writers in
                for _ in 0..<concurrency {
                    writers.addTask {
                        var count = 0
                        while ContinuousClock.now < deadline {
                            let id = Identifier.make("bench")
                            try await database.write { sql in
                                try await sql.raw("INSERT INTO \(unsafeRaw: table) (id, body, created_at) VALUES (\(bind: id), \(bind: row), \(bind: Timestamp.now().microseconds))").run()
                            }
                            count += 1
                        }
                        return count
                    }
                }
                return try await writers.reduce(0, +)
            }
            let elapsed = (ContinuousClock.now - start).seconds
            try await database.write { sql in try await sql.raw("DROP TABLE \(unsafeRaw: table)").run() }
            return (Double(inserted) / elapsed).rounded()
        }
    }
}

/// `tern serve` as a child process on a free port of 127.0.0.1 (all roles), a receiver in this process answering
/// 204 at `/hook`, and an organization on a plan without publish limits with its key and an application.
struct ServerRig: Sendable {
    let api: DeliveryBenchmark.Client
    let key: String
    let app: String
    let receiverPort: Int
    let databaseURL: String
    let server: ChildServer

    static func run<T: Sendable>(
        options: Benchmark.Options, databaseURL: String?, receive: @escaping @Sendable (ByteBuffer) -> Void, _ body: (ServerRig) async throws -> T
    ) async throws -> T {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tern-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let (receiver, receiverPort) = try BenchRig.receiver(receive)
        let receiving = Task { try await receiver.runService(gracefulShutdownSignals: []) }
        defer { receiving.cancel() }

        let url = databaseURL ?? "sqlite://\(directory.path)/bench.sqlite"
        let admin = "bench-admin-" + Base64URL.encode(randomBytes(18))
        let port = try DeliveryBenchmark.freePort()
        let server = try ChildServer.start(executable: options.executable, environment: [
            "TERN_DATABASE_URL": url, "TERN_PORT": String(port), "TERN_ADMIN_KEY": admin, "TERN_ENCRYPTION_KEY": SecretBox.generateKeyBase64(),
            "TERN_ALLOW_PRIVATE_ENDPOINTS": "true", "TERN_LOG_LEVEL": "error", "TERN_RESOURCES_DIR": options.resources.path,
        ], log: directory.appendingPathComponent("server.log"))
        defer { server.stop() }
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: .init(
            connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(options.concurrency, 64))
        ))
        let outcome: Result<T, any Error>
        do {
            let api = DeliveryBenchmark.Client(http: client, base: "http://127.0.0.1:\(port)")
            guard await api.waitForHealth() else { throw ConfigurationError("tern serve did not start: \(server.log)") }
            let (key, app) = try await BenchRig.application(api, admin: admin)
            let rig = ServerRig(api: api, key: key, app: app, receiverPort: receiverPort, databaseURL: url, server: server)
            outcome = .success(try await body(rig))
        } catch {
            outcome = .failure(error)
        }
        try? await client.shutdown()
        return try outcome.get()
    }

    /// Creates an endpoint of `tenant` at the receiver; returns its id.
    @discardableResult
    func endpoint(tenant: String) async throws -> String {
        try await self.api.post("/v1/applications/\(self.app)/endpoints", key: self.key,
                                    #"{"tenant_id": "\#(tenant)", "url": "http://127.0.0.1:\#(self.receiverPort)/hook"}"#)["id"] ?? ""
    }
}

/// A `tern serve` child process.
final class ChildServer: Sendable {
    let process: Process
    let logURL: URL

    private init(process: Process, logURL: URL) {
        self.process = process
        self.logURL = logURL
    }

    static func start(executable: URL, environment: [String: String], log: URL) throws -> ChildServer {
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        let process = Process()
        process.executableURL = executable
        process.arguments = ["serve"]
        process.environment = environment.merging(["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]) { $1 }
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return ChildServer(process: process, logURL: log)
    }

    var log: String { String((try? String(contentsOf: self.logURL, encoding: .utf8))?.suffix(2_000) ?? "") }

    /// SIGTERM, then up to 30 s for the process to end.
    func stop() {
        guard self.process.isRunning else { return }
        self.process.terminate()
        let deadline = Date().addingTimeInterval(30)
        while self.process.isRunning && Date() < deadline { usleep(20_000) }
        if self.process.isRunning { kill(self.process.processIdentifier, SIGKILL) }
    }

    /// The child's resident memory now and at its peak (VmRSS, VmHWM), in MiB.
    func residentMiB() -> (current: Double, peak: Double) {
        DeliveryBenchmark.residentMiB(statusFile: "/proc/\(self.process.processIdentifier)/status")
    }
}

extension Duration {
    var seconds: Double { Double(self.nanoseconds) / 1e9 }
}
