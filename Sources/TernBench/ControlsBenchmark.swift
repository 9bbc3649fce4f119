import Foundation
import TernCore
import TernStorage

/// `tern bench controls`: what the delivery controls cost. Publish and delivery throughput to tenants whose endpoints
/// filter (ten matching of ten, ten of 1,000 through a routed filter, ten of 1,000 through filters read one by one)
/// next to ten endpoints without filters; then FIFO delivery to one endpoint, one line and 100 keys, next to the
/// same endpoint unordered. Everything on 127.0.0.1; prints one JSON object.
public enum ControlsBenchmark {
    public struct Options: Sendable {
        public var resources: URL
        public var executable: URL
        public var databaseURL: String?
        public var events = 2_000
        public var fifoEvents = 1_000
        public var concurrency = 64

        public init(resources: URL, executable: URL) {
            self.resources = resources
            self.executable = executable
        }
    }

    struct Fanout: Encodable, Sendable {
        var endpoints: Int
        var matching: Int
        var publish_per_second: Double
        var publish_latency_ms: Toolkit.Latency
        var deliveries_per_second: Double
    }

    struct Ordered: Encodable, Sendable {
        var events: Int
        var deliveries_per_second: Double
    }

    public struct Result: Encodable, Sendable {
        var database: String
        var events: Int
        var concurrency: Int
        var fanout: [String: Fanout]
        var fifo: [String: Ordered]
    }

    public static func run(_ options: Options) async throws -> Result {
        let sink = Toolkit.Sink()
        return try await ServerRig.run(
            executable: options.executable, resources: options.resources, databaseURL: options.databaseURL, concurrency: options.concurrency,
            receive: sink.receive
        ) { rig in
            _ = try await rig.api.post("/v1/applications/\(rig.app)/event-types", key: rig.key, #"{"name": "bench.event"}"#)
            let padding = String(repeating: "x", count: 900)
            // The customer is c000 … c099; every scenario publishes for c007.
            func filter(_ index: Int, _ kind: String) -> String {
                let customer = String(format: "c%03d", index % 100)
                switch kind {
                case "routed": return #", "filter": {"payload.customer": "\#(customer)", "payload.total": {"$gt": 100}}"#
                case "unrouted": return #", "filter": {"payload.customer": {"$startsWith": "\#(customer)"}, "payload.total": {"$gt": 100}}"#
                case "all": return #", "filter": {"payload.total": {"$gt": 100}, "payload.currency": "EUR"}"#
                default: return ""
                }
            }
            let scenarios: [(name: String, endpoints: Int, kind: String)] = [
                ("ten_without_filters", 10, "none"), ("ten_filtered_all_matching", 10, "all"),
                ("thousand_routed_ten_matching", 1_000, "routed"), ("thousand_unrouted_ten_matching", 1_000, "unrouted"),
            ]
            var fanout: [String: Fanout] = [:]
            for scenario in scenarios {
                let tenant = "tenant-\(scenario.name)"
                for index in 0..<scenario.endpoints { try await rig.endpoint(tenant: tenant, extra: filter(index, scenario.kind)) }
                let matching = 10
                let (publish, latency, delivery) = try await Self.burst(
                    rig, sink, options, count: options.events, deliveries: options.events * matching
                ) {
                    #"{"event_type": "bench.event", "tenant_id": "\#(tenant)", "payload": {"t":\#($0),"customer":"c007","total":150,"currency":"EUR","pad":"\#(padding)"}}"#
                }
                fanout[scenario.name] = Fanout(
                    endpoints: scenario.endpoints, matching: matching, publish_per_second: publish, publish_latency_ms: latency,
                    deliveries_per_second: delivery)
            }

            var fifo: [String: Ordered] = [:]
            for (name, extra) in [
                ("one_endpoint_unordered", ""), ("one_endpoint_fifo", #", "ordering": "fifo""#),
                ("one_endpoint_fifo_100_keys", #", "ordering": "fifo", "ordering_key": "/customer""#),
            ] {
                let tenant = "tenant-\(name)"
                try await rig.endpoint(tenant: tenant, extra: extra)
                let (_, _, delivery) = try await Self.burst(rig, sink, options, count: options.fifoEvents, deliveries: options.fifoEvents) {
                    #"{"event_type": "bench.event", "tenant_id": "\#(tenant)", "payload": {"t":\#($0),"customer":"c\#(Int.random(in: 0..<100))","pad":"\#(padding)"}}"#
                }
                fifo[name] = Ordered(events: options.fifoEvents, deliveries_per_second: delivery)
            }
            return Result(database: rig.databaseKind, events: options.events, concurrency: options.concurrency, fanout: fanout, fifo: fifo)
        }
    }

    /// Publishes `count` events in a closed loop and waits for `deliveries` receipts; returns the publish rate, the
    /// publish latency and the delivery rate (from the first publish to the last receipt).
    static func burst(
        _ rig: ServerRig, _ sink: Toolkit.Sink, _ options: Options, count: Int, deliveries: Int, body: @escaping @Sendable (Int64) -> String
    ) async throws -> (Double, Toolkit.Latency, Double) {
        _ = sink.reset()
        let latency = Toolkit.Recorder()
        let start = ContinuousClock.now
        try await Toolkit.closedLoop(count: count, concurrency: options.concurrency) { _ in
            let sent = ContinuousClock.now
            try await rig.api.publish(rig.eventsPath, key: rig.key, body((sent - sink.base).nanoseconds))
            latency.record(ContinuousClock.now - sent)
        }
        let publishSeconds = (ContinuousClock.now - start).seconds
        guard await Toolkit.until(timeout: .seconds(900), { sink.count >= deliveries }), let last = sink.last else {
            throw ConfigurationError("\(sink.count) of \(deliveries) deliveries arrived")
        }
        return ((Double(count) / publishSeconds).rounded(), latency.latency, (Double(deliveries) / (last - start).seconds).rounded())
    }
}
