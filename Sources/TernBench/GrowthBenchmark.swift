import Foundation
import Logging
import NIOCore
import TernCore
import TernStorage

/// `tern bench growth`: whether publish and delivery cost stay flat as the store grows. Against one `tern serve`
/// child process, it fills the database step by step with delivered messages (each with its delivery and attempt,
/// written in bulk by `Store.fillDeliveredMessages`, dated 40 days back) and at each size runs the same closed-loop burst. Then it adds many
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
        var publish_latency_ms: Toolkit.Latency
        var deliveries_per_second: Double
        /// `GET …/endpoints/{id}/stats` of the endpoint that holds every stored attempt (the filled ones are 40 days old,
        /// outside the windows): its last 24 hours and 7 days, before this step's publishes (the window the step before
        /// left, over a bigger table) and after them.
        var stats_day_before_ms: Toolkit.Latency
        var stats_day_ms: Toolkit.Latency
        var stats_week_ms: Toolkit.Latency
        var attempts_in_window: Int
    }

    struct Prune: Encodable, Sendable {
        var messages_deleted: Int
        var seconds: Double
        var messages_per_second: Double
    }

    public static func run(_ options: Options) async throws -> Report {
        let sink = Toolkit.Sink()
        return try await ServerRig.run(
            executable: options.executable, resources: options.resources, databaseURL: options.databaseURL, concurrency: options.concurrency,
            receive: sink.receive
        ) { rig in
            let (api, key, app) = (rig.api, rig.key, rig.app)
            _ = try await api.post("/v1/applications/\(app)/event-types", key: key, #"{"name": "bench.event"}"#)
            let endpointID = try await rig.endpoint(tenant: "tenant-1")
            var logger = Logger(label: "bench")
            logger.logLevel = .error
            let database = try await Database.open(try DatabaseLocation(url: rig.databaseURL), logger: logger)
            let store = Store(database: database, secretBox: SecretBox(keyBase64: SecretBox.generateKeyBase64())!)
            return try await database.whileRunning {
                let path = rig.eventsPath
                let padding = String(repeating: "x", count: 1_000)
                @Sendable func body(_ sentNanos: Int64) -> String {
                    #"{"event_type": "bench.event", "tenant_id": "tenant-1", "payload": {"t":\#(sentNanos),"pad":"\#(padding)"}}"#
                }
                @Sendable func burst(stored: Int, others: Int, statsBefore: Toolkit.Latency) async throws -> Step {
                    let before = sink.count
                    let latency = Toolkit.Recorder()
                    let start = ContinuousClock.now
                    try await Toolkit.closedLoop(count: options.events, concurrency: options.concurrency) { _ in
                        let sent = ContinuousClock.now
                        try await api.publish(path, key: key, body((sent - sink.base).nanoseconds))
                        latency.record(ContinuousClock.now - sent)
                    }
                    let publishSeconds = (ContinuousClock.now - start).seconds
                    guard await Toolkit.until(timeout: .seconds(600), { sink.count >= before + options.events }), let last = sink.last else {
                        throw ConfigurationError("not every event was delivered")
                    }
                    let deliveriesPerSecond = (Double(options.events) / (last - start).seconds).rounded()
                    return Step(
                        stored_messages: stored, other_tenant_endpoints: others,
                        publish_per_second: (Double(options.events) / publishSeconds).rounded(), publish_latency_ms: latency.latency,
                        deliveries_per_second: deliveriesPerSecond, stats_day_before_ms: statsBefore, stats_day_ms: try await stats(""),
                        stats_week_ms: try await stats("?since=\(Timestamp.now().adding(seconds: -7 * 86_400))"), attempts_in_window: sink.count
                    )
                }
                /// 50 stats reads one after another, after 5 to warm up.
                @Sendable func stats(_ query: String) async throws -> Toolkit.Latency {
                    let times = Toolkit.Recorder()
                    for round in 0..<55 {
                        let start = ContinuousClock.now
                        let (status, answer) = try await api.send(
                            "/v1/applications/\(app)/endpoints/\(endpointID)/stats\(query)", key: key, nil)
                        guard status == 200 else { throw ConfigurationError("stats answered \(status): \(answer)") }
                        if round >= 5 { times.record(ContinuousClock.now - start) }
                    }
                    return times.latency
                }

                var steps: [Step] = []
                var stored = 0
                for size in options.sizes.sorted() {
                    if size > stored {
                        try await store.fillDeliveredMessages(from: stored, to: size, applicationID: app, endpointID: endpointID)
                        stored = size
                    }
                    let statsBefore = try await stats("")
                    // Warm-up, so that each step measures the same steady state.
                    let before = sink.count
                    try await Toolkit.closedLoop(count: 500, concurrency: options.concurrency) { _ in try await api.publish(path, key: key, body(0)) }
                    _ = await Toolkit.until(timeout: .seconds(60)) { sink.count >= before + 500 }
                    steps.append(try await burst(stored: stored, others: 0, statsBefore: statsBefore))
                }
                if options.otherEndpoints > 0 {
                    try await Toolkit.closedLoop(count: options.otherEndpoints, concurrency: 16) { index in
                        _ = try await api.post(
                            "/v1/applications/\(app)/endpoints", key: key,
                            #"{"tenant_id": "other-\#(index)", "url": "http://127.0.0.1:\#(rig.receiverPort)/hook"}"#)
                    }
                    steps.append(try await burst(stored: stored, others: options.otherEndpoints, statsBefore: try await stats("")))
                }
                var prune: Prune?
                if options.prune && stored > 0 {
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
}
