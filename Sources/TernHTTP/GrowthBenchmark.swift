import Foundation
import Logging
import NIOCore
import SQLKit
import TernCore
import TernStorage

/// `tern bench growth`: whether publish and delivery cost stay flat as the store grows. Against one `tern serve`
/// child process, it fills the database step by step with delivered messages (each with its delivery and attempt,
/// written directly in SQL, dated 40 days back) and at each size runs the same closed-loop burst. Then it adds many
/// endpoints in other tenants of the application and runs the burst again (fan-out cost must follow the endpoints
/// matched, not all of them), and finally times the pruning of the old messages by the retention policy.
public enum GrowthBenchmark {
    public struct Options: Sendable {
        public var resources: URL
        public var executable: URL
        public var databaseURL: String?
        public var sizes = [0, 100_000, 1_000_000]
        public var events = 5_000
        public var concurrency = 64
        public var otherEndpoints = 1_000
        public var prune = true

        public init(resources: URL, executable: URL) {
            self.resources = resources
            self.executable = executable
        }
    }

    public struct Report: Encodable, Sendable {
        var database: String
        var events_per_step: Int
        var steps: [Step]
        var prune: Prune?
        var rss_peak_mib: Double
    }

    struct Step: Encodable, Sendable {
        var stored_messages: Int
        var other_tenant_endpoints: Int
        var publish_per_second: Double
        var publish_latency_ms: Benchmark.Latency
        var deliveries_per_second: Double
    }

    struct Prune: Encodable, Sendable {
        var messages_deleted: Int
        var seconds: Double
        var messages_per_second: Double
    }

    public static func run(_ options: Options) async throws -> Report {
        let sink = Benchmark.Sink()
        var benchOptions = Benchmark.Options(resources: options.resources, executable: options.executable)
        benchOptions.concurrency = options.concurrency
        return try await ServerRig.run(options: benchOptions, databaseURL: options.databaseURL, receive: sink.receive) { rig in
            let (api, key, app) = (rig.api, rig.key, rig.app)
            _ = try await api.post("/v1/applications/\(app)/event-types", key: key, #"{"name": "bench.event"}"#)
            let endpointID = try await rig.endpoint(tenant: "tenant-1")
            var logger = Logger(label: "bench")
            logger.logLevel = .error
            let database = try await Database.open(try DatabaseLocation(url: rig.databaseURL), logger: logger)
            return try await database.whileRunning {
                let organizationID = try await database.read { sql in
                    try await sql.raw("SELECT organization_id FROM applications WHERE id = \(bind: app)").first()?.decode(column: "organization_id", as: String.self)
                } ?? ""
                let path = "/v1/applications/\(app)/events"
                let padding = String(repeating: "x", count: 1_000)
                @Sendable func body(_ sentNanos: Int64) -> String {
                    #"{"event_type": "bench.event", "tenant_id": "tenant-1", "payload": {"t":\#(sentNanos),"pad":"\#(padding)"}}"#
                }
                @Sendable func burst(stored: Int, others: Int) async throws -> Step {
                    let before = sink.count
                    let latency = Benchmark.Recorder()
                    let start = ContinuousClock.now
                    try await Benchmark.closedLoop(count: options.events, concurrency: options.concurrency) { _ in
                        let sent = ContinuousClock.now
                        try await api.publish(path, key: key, body((sent - sink.base).nanoseconds))
                        latency.record(ContinuousClock.now - sent)
                    }
                    let publishSeconds = (ContinuousClock.now - start).seconds
                    guard await DeliveryBenchmark.until(timeout: .seconds(600), { sink.count >= before + options.events }), let last = sink.last else {
                        throw ConfigurationError("not every event was delivered")
                    }
                    return Step(
                        stored_messages: stored, other_tenant_endpoints: others,
                        publish_per_second: (Double(options.events) / publishSeconds).rounded(), publish_latency_ms: latency.latency,
                        deliveries_per_second: (Double(options.events) / (last - start).seconds).rounded()
                    )
                }

                var steps: [Step] = []
                var stored = 0
                for size in options.sizes.sorted() {
                    if size > stored {
                        try await Self.fill(database, from: stored, to: size, organizationID: organizationID, applicationID: app, endpointID: endpointID)
                        stored = size
                    }
                    // Warm-up, so that each step measures the same steady state.
                    let before = sink.count
                    try await Benchmark.closedLoop(count: 500, concurrency: options.concurrency) { _ in try await api.publish(path, key: key, body(0)) }
                    _ = await DeliveryBenchmark.until(timeout: .seconds(60)) { sink.count >= before + 500 }
                    steps.append(try await burst(stored: stored, others: 0))
                }
                if options.otherEndpoints > 0 {
                    try await Benchmark.closedLoop(count: options.otherEndpoints, concurrency: 16) { index in
                        _ = try await api.post("/v1/applications/\(app)/endpoints", key: key,
                                               #"{"tenant_id": "other-\#(index)", "url": "http://127.0.0.1:\#(rig.receiverPort)/hook"}"#)
                    }
                    steps.append(try await burst(stored: stored, others: options.otherEndpoints))
                }
                var prune: Prune?
                if options.prune && stored > 0 {
                    let store = Store(database: database, secretBox: SecretBox(keyBase64: SecretBox.generateKeyBase64())!)
                    let start = ContinuousClock.now
                    let counts = try await store.prune(.standard)
                    let seconds = (ContinuousClock.now - start).seconds
                    prune = Prune(
                        messages_deleted: counts.messages, seconds: (seconds * 100).rounded() / 100,
                        messages_per_second: (Double(counts.messages) / seconds).rounded()
                    )
                }
                return Report(
                    database: database.kind == .postgres ? "postgres" : "sqlite", events_per_step: options.events, steps: steps, prune: prune,
                    rss_peak_mib: rig.server.residentMiB().peak
                )
            }
        }
    }

    /// Adds delivered messages `from + 1 … to`, each with one delivery and one attempt, 40 days old, in transactions
    /// of 50,000 rows per table, generated by the database itself (a recursive CTE: one SQL text for both).
    static func fill(_ database: Database, from: Int, to: Int, organizationID: String, applicationID: String, endpointID: String) async throws {
        let created = Timestamp.now().adding(seconds: -40 * 86_400).microseconds
        let payload = #"{"t":0,"pad":""# + String(repeating: "x", count: 1_000) + #""}"#
        var offset = from
        while offset < to {
            let count = min(50_000, to - offset)
            let start = offset
            try await database.write { sql in
                let series = "WITH RECURSIVE n(i) AS (SELECT \(start + 1) UNION ALL SELECT i + 1 FROM n WHERE i < \(start + count))"
                try await sql.raw("""
                    \(unsafeRaw: series) INSERT INTO messages (id, organization_id, application_id, tenant_id, event_type, event_id, payload, created_at)
                    SELECT 'msg_grow' || i, \(bind: organizationID), \(bind: applicationID), 'tenant-1', 'bench.event', NULL, \(bind: payload), \(bind: created) FROM n
                    """).run()
                try await sql.raw("""
                    \(unsafeRaw: series) INSERT INTO deliveries (id, organization_id, application_id, message_id, endpoint_id, tenant_id, event_type, status,
                    attempt_count, next_attempt_at, last_status_code, last_attempt_at, delivered_at, created_at, updated_at)
                    SELECT 'dlv_grow' || i, \(bind: organizationID), \(bind: applicationID), 'msg_grow' || i, \(bind: endpointID), 'tenant-1', 'bench.event',
                    'delivered', 1, NULL, 204, \(bind: created), \(bind: created), \(bind: created), \(bind: created) FROM n
                    """).run()
                try await sql.raw("""
                    \(unsafeRaw: series) INSERT INTO attempts (id, delivery_id, message_id, endpoint_id, url, request_headers, status_code, response_body,
                    duration_ms, error, trigger, created_at)
                    SELECT 'atmpt_grow' || i, 'dlv_grow' || i, 'msg_grow' || i, \(bind: endpointID), 'http://127.0.0.1/hook', '{}', 204, '', 1, NULL,
                    'scheduled', \(bind: created) FROM n
                    """).run()
            }
            offset += count
        }
        if database.kind == .postgres {
            try await database.read { sql in try await sql.raw("ANALYZE").run() }
        }
    }
}
