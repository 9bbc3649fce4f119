import Metrics
import TernCore

/// The delivery engine's metrics (exported by `/metrics` when Prometheus is bootstrapped).
public enum DeliveryMetrics {
    static let attemptDuration = Metrics.Timer(label: "tern_attempt_duration_seconds", preferredDisplayUnit: .seconds)
    static let delivered = Counter(label: "tern_deliveries_total", dimensions: [("outcome", "delivered")])
    static let failed = Counter(label: "tern_deliveries_total", dimensions: [("outcome", "failed")])
    static let exhausted = Counter(label: "tern_deliveries_total", dimensions: [("outcome", "exhausted")])
    /// Deliveries the worker took straight from its process's publishes (`DirectDelivery`), not claimed.
    static let direct = Counter(label: "tern_direct_deliveries_total")

    static func outcome(_ status: DeliveryStatus) {
        switch status {
        case .delivered: Self.delivered.increment()
        case .failed: Self.failed.increment()
        case .exhausted: Self.exhausted.increment()
        default: break
        }
    }

    /// Operational webhooks sent, by event type and how the attempt went.
    static func operational(type: String, _ status: DeliveryStatus?) {
        let outcome = status?.rawValue ?? "unknown"
        Counter(label: "tern_operational_webhooks_total", dimensions: [("type", type), ("outcome", outcome)]).increment()
    }

    static func breakerTrip(reason: String) {
        Counter(label: "tern_circuit_breaker_trips_total", dimensions: [("reason", reason)]).increment()
    }
}
