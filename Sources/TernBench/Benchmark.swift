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
///   publish throughput and latency, delivery throughput, publish→receipt latency; then the same publishes to a
///   tenant without endpoints, for the server CPU an event costs without its delivery;
/// - a fan-out burst to a tenant with `fanoutEndpoints` endpoints, and single publishes to `wideFanoutEndpoints`;
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
        /// One publish at a time to a tenant with this many endpoints, `wideFanoutPublishes` times.
        public var wideFanoutEndpoints = 1_000
        public var wideFanoutPublishes = 5
        public var concurrency = 64
        public var rate = 1_000
        public var seconds = 30
        public var payloadBytes = 1_024
        /// Also measure `/livez` and the publish burst with wrk (`wrkSeconds` each).
        public var wrk = false
        public var wrkSeconds = 10
        /// Publish under a plan with a rate limit and a monthly quota too high to refuse anything, so that every
        /// publish takes a token and counts against the quota (their rows' locking is measured, not their refusals).
        public var limited = false

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
        var publish_latency_ms: Toolkit.Latency
        /// The same publishes through the Svix API (`/api/v1/app/{tenant}/msg`), and their rate over the native one.
        var svix_publish_per_second: Double
        var svix_publish_ratio_to_native: Double
        var publish_ratio_to_http_ceiling: Double
        var publish_ratio_to_insert_ceiling: Double
        var deliveries_per_second: Double
        var delivery_ratio_to_receiver_ceiling: Double
        var burst_publish_to_receipt_ms: Toolkit.Latency
        var fanout: Fanout
        var wide_fanout: WideFanout
        var open_loop: OpenLoop
        var rss_idle_mib: Double
        var rss_peak_mib: Double
        var cpu: CPU
        /// The same figures with wrk as the client, when asked for.
        var wrk: WrkFigures?
    }

    /// `/livez` and publishing (1 KB, one endpoint, deliveries flowing) under wrk, 64 connections, and the server's CPU
    /// per `/livez` request and per delivered event (from the first publish to the last receipt).
    struct WrkFigures: Encodable, Sendable {
        var livez: Wrk.Result
        var publish: Wrk.Result
        var delivered: Int
        var publish_ratio_to_livez: Double
        var cpu: CPU
    }

    /// The server's CPU time (user + system, from /proc/<pid>/stat), per `/livez` request during the trivial-route
    /// ceiling and per event from the first publish of the burst to its last receipt (publish, claim, send, record).
    /// With the built-in client, also per publish to a tenant without endpoints (the inbound half of an event: the
    /// request and its share of the publish transaction, no delivery).
    struct CPU: Encodable, Sendable {
        var per_livez_request_ms: Double
        var per_delivered_event_ms: Double
        var event_to_livez_ratio: Double
        var per_publish_without_endpoints_ms: Double?
        var publish_without_endpoints_to_livez_ratio: Double?

        /// From CPU seconds per request, per event and per publish alone, in milliseconds to the microsecond.
        init(perLivez: Double, perEvent: Double, perPublishAlone: Double? = nil) {
            func milliseconds(_ seconds: Double) -> Double { (seconds * 1e6).rounded() / 1e3 }
            func ratio(_ seconds: Double) -> Double { perLivez > 0 ? (seconds / perLivez * 100).rounded() / 100 : 0 }
            self.per_livez_request_ms = milliseconds(perLivez)
            self.per_delivered_event_ms = milliseconds(perEvent)
            self.event_to_livez_ratio = ratio(perEvent)
            self.per_publish_without_endpoints_ms = perPublishAlone.map(milliseconds)
            self.publish_without_endpoints_to_livez_ratio = perPublishAlone.map(ratio)
        }
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

    /// Single publishes, one after the other, each to every endpoint of a wide tenant: how long the publish takes to
    /// be answered (its deliveries are written in the same transaction) and until the last of its deliveries arrives.
    struct WideFanout: Encodable, Sendable {
        var endpoints: Int
        var publishes: Int
        var answered_ms: Toolkit.Latency
        var all_delivered_ms: Toolkit.Latency
    }

    struct OpenLoop: Encodable, Sendable {
        var rate: Int
        var seconds: Int
        var sent: Int
        var received: Int
        var publish_to_receipt_ms: Toolkit.Latency
        /// From the scheduled send time to the 202: the publish's share of the latency above.
        var publish_answered_ms: Toolkit.Latency
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
        let sink = Toolkit.Sink()
        return try await ServerRig.run(
            executable: options.executable, resources: options.resources, databaseURL: databaseURL, concurrency: options.concurrency,
            receive: sink.receive,
            planLimits: options.limited
                ? #""rate_limit_per_minute": 600000000, "rate_limit_burst": 100000000, "max_messages_per_month": 1000000000"# : nil
        ) { rig in
            let (api, key, app) = (rig.api, rig.key, rig.app)
            _ = try await api.post("/v1/applications/\(app)/event-types", key: key, #"{"name": "bench.event"}"#)
            try await rig.endpoint(tenant: "tenant-1")
            try await Task.sleep(for: .seconds(1))
            let idle = rig.server.residentMiB().current

            // Ceilings.
            let receiverCeiling = try await Toolkit.rate(requests: options.events, concurrency: options.concurrency) {
                _ = try await api.send(
                    "http://127.0.0.1:\(rig.receiverPort)/hook", absolute: true, key: "", String(repeating: "x", count: options.payloadBytes))
            }
            let livezCPU = rig.server.cpuSeconds()
            let httpCeiling = try await Toolkit.rate(requests: options.events, concurrency: options.concurrency) {
                _ = try await api.send("/livez", key: "", nil)
            }
            let perLivez = (rig.server.cpuSeconds() - livezCPU) / Double(options.events)
            let insertCeiling = try await Self.insertRate(databaseURL: rig.databaseURL, seconds: 3, concurrency: options.concurrency)

            // Closed loop, one endpoint.
            let path = rig.eventsPath
            let padding = String(repeating: "x", count: max(0, options.payloadBytes - 40))
            @Sendable func body(_ tenant: String, _ sentNanos: Int64) -> String {
                #"{"event_type": "bench.event", "tenant_id": "\#(tenant)", "payload": {"t":\#(sentNanos),"pad":"\#(padding)"}}"#
            }
            let burstReceipts = sink.reset()
            let publishLatency = Toolkit.Recorder()
            let burstCPU = rig.server.cpuSeconds()
            let burstStart = ContinuousClock.now
            try await Toolkit.closedLoop(count: options.events, concurrency: options.concurrency) { _ in
                let start = ContinuousClock.now
                try await api.publish(path, key: key, body("tenant-1", (start - sink.base).nanoseconds))
                publishLatency.record(ContinuousClock.now - start)
            }
            let publishSeconds = (ContinuousClock.now - burstStart).seconds
            guard await Toolkit.until(timeout: .seconds(600), { sink.count >= options.events }), let last = sink.last else {
                throw ConfigurationError("not every event was delivered")
            }
            let deliverySeconds = (last - burstStart).seconds
            let perEvent = (rig.server.cpuSeconds() - burstCPU) / Double(options.events)

            // The same closed loop to a tenant without endpoints: what the inbound half of an event costs.
            let aloneCPU = rig.server.cpuSeconds()
            try await Toolkit.closedLoop(count: options.events, concurrency: options.concurrency) { _ in
                try await api.publish(path, key: key, body("tenant-without-endpoints", 0))
            }
            let perPublishAlone = (rig.server.cpuSeconds() - aloneCPU) / Double(options.events)

            // The same closed loop through the Svix API: `POST /api/v1/app/{tenant}/msg`, as the Svix SDK sends it.
            let svixPath = "/api/v1/app/tenant-1/msg?with_content=false"
            @Sendable func svixBody(_ sentNanos: Int64) -> String {
                #"{"eventType": "bench.event", "payload": {"t":\#(sentNanos),"pad":"\#(padding)"}}"#
            }
            // A first publish (its tenant's record read once): received before the loop starts, counted in no figure.
            // (Reset only after it, its delivery, sent at once, could reach the burst's figures: a receipt 10 s late.)
            _ = sink.reset()
            try await api.publish(svixPath, key: key, svixBody(0))
            _ = await Toolkit.until(timeout: .seconds(30), { sink.count >= 1 })
            _ = sink.reset()
            let svixStart = ContinuousClock.now
            try await Toolkit.closedLoop(count: options.events, concurrency: options.concurrency) { _ in
                try await api.publish(svixPath, key: key, svixBody((ContinuousClock.now - sink.base).nanoseconds))
            }
            let svixSeconds = (ContinuousClock.now - svixStart).seconds
            guard await Toolkit.until(timeout: .seconds(600), { sink.count >= options.events }) else {
                throw ConfigurationError("not every Svix API event was delivered")
            }

            let wrk =
                options.wrk
                ? try await Self.underWrk(rig, sink: sink, seconds: options.wrkSeconds, connections: options.concurrency, body: body("tenant-1", 0))
                : nil

            // Fan-out: a tenant with several endpoints.
            for _ in 0..<options.fanoutEndpoints { try await rig.endpoint(tenant: "tenant-fanout") }
            _ = sink.reset()
            let fanoutStart = ContinuousClock.now
            try await Toolkit.closedLoop(count: options.fanoutEvents, concurrency: options.concurrency) { _ in
                try await api.publish(path, key: key, body("tenant-fanout", (ContinuousClock.now - sink.base).nanoseconds))
            }
            let fanoutPublishSeconds = (ContinuousClock.now - fanoutStart).seconds
            let fanoutDeliveries = options.fanoutEvents * options.fanoutEndpoints
            guard await Toolkit.until(timeout: .seconds(600), { sink.count >= fanoutDeliveries }), let fanoutLast = sink.last else {
                throw ConfigurationError("not every fan-out delivery arrived")
            }
            let fanoutSeconds = (fanoutLast - fanoutStart).seconds

            // Open loop: one event every 1/rate s, each timed from when it was due.
            let openReceipts = sink.reset()
            let total = options.rate * options.seconds
            let openStart = ContinuousClock.now + .milliseconds(100)
            let answered = Toolkit.Recorder()
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
            _ = await Toolkit.until(timeout: .seconds(120)) { sink.count >= total }
            let openReceived = sink.count
            let memory = rig.server.residentMiB()

            // Last, so that its 1,000 endpoints do not change what the runs above measure.
            let wide = try await Self.wideFanout(rig, sink: sink, endpoints: options.wideFanoutEndpoints, publishes: options.wideFanoutPublishes) {
                body("tenant-wide", $0)
            }

            let publishRate = (Double(options.events) / publishSeconds).rounded()
            let svixRate = (Double(options.events) / svixSeconds).rounded()
            let deliveryRate = (Double(options.events) / deliverySeconds).rounded()
            return DatabaseReport(
                ceilings: Ceilings(
                    receiver_requests_per_second: receiverCeiling, http_trivial_route_requests_per_second: httpCeiling,
                    database_single_row_inserts_per_second: insertCeiling
                ),
                publish_per_second: publishRate,
                publish_latency_ms: publishLatency.latency,
                svix_publish_per_second: svixRate,
                svix_publish_ratio_to_native: Toolkit.ratio(svixRate, publishRate),
                publish_ratio_to_http_ceiling: Toolkit.ratio(publishRate, httpCeiling),
                publish_ratio_to_insert_ceiling: Toolkit.ratio(publishRate, insertCeiling),
                deliveries_per_second: deliveryRate,
                delivery_ratio_to_receiver_ceiling: Toolkit.ratio(deliveryRate, receiverCeiling),
                burst_publish_to_receipt_ms: burstReceipts.latency,
                fanout: Fanout(
                    endpoints_per_tenant: options.fanoutEndpoints, events: options.fanoutEvents, deliveries: fanoutDeliveries,
                    publish_per_second: (Double(options.fanoutEvents) / fanoutPublishSeconds).rounded(),
                    deliveries_per_second: (Double(fanoutDeliveries) / fanoutSeconds).rounded()
                ),
                wide_fanout: wide,
                open_loop: OpenLoop(
                    rate: options.rate, seconds: options.seconds, sent: answered.latency.count, received: openReceived,
                    publish_to_receipt_ms: openReceipts.latency, publish_answered_ms: answered.latency
                ),
                rss_idle_mib: idle, rss_peak_mib: memory.peak,
                cpu: CPU(perLivez: perLivez, perEvent: perEvent, perPublishAlone: perPublishAlone),
                wrk: wrk
            )
        }
    }

    /// wrk against `/livez`, then publishing `body` for `seconds`; waits for every accepted event's delivery.
    static func underWrk(_ rig: ServerRig, sink: Toolkit.Sink, seconds: Int, connections: Int, body: String) async throws -> WrkFigures {
        let livezCPU = rig.server.cpuSeconds()
        let livez = try await Wrk.run(url: rig.api.base + "/livez", seconds: seconds, connections: connections)
        let perLivez = (rig.server.cpuSeconds() - livezCPU) / Double(max(1, livez.requests))
        _ = sink.reset()
        let publishCPU = rig.server.cpuSeconds()
        let publish = try await Wrk.run(
            url: rig.api.base + rig.eventsPath, seconds: seconds, connections: connections, body: body, key: rig.key)
        let accepted = publish.requests - publish.non_2xx
        guard await Toolkit.until(timeout: .seconds(600), { sink.count >= accepted }) else {
            throw ConfigurationError("not every event published by wrk was delivered")
        }
        // wrk does not count the requests still open when its time ends; they were published and delivered too.
        let delivered = sink.count
        let perEvent = (rig.server.cpuSeconds() - publishCPU) / Double(max(1, delivered))
        return WrkFigures(
            livez: livez, publish: publish, delivered: delivered,
            publish_ratio_to_livez: Toolkit.ratio(publish.requests_per_second, livez.requests_per_second),
            cpu: CPU(perLivez: perLivez, perEvent: perEvent)
        )
    }

    /// Makes a tenant with `endpoints` endpoints (16 requests at a time), then publishes to it `publishes` times, one
    /// at a time, each waiting for all its deliveries.
    static func wideFanout(
        _ rig: ServerRig, sink: Toolkit.Sink, endpoints: Int, publishes: Int, body: @escaping @Sendable (Int64) -> String
    ) async throws -> WideFanout {
        try await Toolkit.closedLoop(count: endpoints, concurrency: 16) { _ in _ = try await rig.endpoint(tenant: "tenant-wide") }
        let answered = Toolkit.Recorder()
        let delivered = Toolkit.Recorder()
        for _ in 0..<publishes {
            _ = sink.reset()
            let start = ContinuousClock.now
            try await rig.api.publish(rig.eventsPath, key: rig.key, body((start - sink.base).nanoseconds))
            answered.record(ContinuousClock.now - start)
            guard await Toolkit.until(timeout: .seconds(120), { sink.count >= endpoints }), let last = sink.last else {
                throw ConfigurationError("not every delivery of the wide fan-out arrived")
            }
            delivered.record(last - start)
        }
        return WideFanout(endpoints: endpoints, publishes: publishes, answered_ms: answered.latency, all_delivered_ms: delivered.latency)
    }

    /// Single-row inserts per second into a scratch table, one transaction each, from `concurrency` writers for
    /// `seconds`, through the same `Database` layer Tern uses.
    static func insertRate(databaseURL: String, seconds: Int, concurrency: Int) async throws -> Double {
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let database = try await Database.open(try DatabaseLocation(url: databaseURL), logger: logger)
        return try await database.whileRunning {
            let table = try await ScratchTable.create(in: database)
            let row = String(repeating: "x", count: 1_024)
            let deadline = ContinuousClock.now + .seconds(seconds)
            let start = ContinuousClock.now
            let inserted = try await withThrowingTaskGroup(of: Int.self) { writers in
                for _ in 0..<concurrency {
                    writers.addTask {
                        var count = 0
                        while ContinuousClock.now < deadline {
                            try await table.insert(row)
                            count += 1
                        }
                        return count
                    }
                }
                return try await writers.reduce(0, +)
            }
            let elapsed = (ContinuousClock.now - start).seconds
            try await table.drop()
            return (Double(inserted) / elapsed).rounded()
        }
    }
}
