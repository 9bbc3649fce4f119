import HTTPTypes
import Hummingbird
import Metrics
import NIOCore
import Prometheus
import TernStorage

/// The process's Prometheus registry; swift-metrics is bootstrapped onto it once per process.
public enum TernMetrics {
    public static let registry = PrometheusCollectorRegistry()

    /// Bootstraps swift-metrics (the first call does; later ones are no-ops, as a process bootstraps once).
    public static func bootstrap() {
        _ = Self.bootstrapped
    }

    static let bootstrapped: Bool = {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10), .seconds(30),
        ]
        MetricsSystem.bootstrap(factory)
        return true
    }()
}

/// `GET /metrics`: Prometheus text. Queue depth and the oldest due delivery's age are read from the database at
/// each scrape, so every process reports the shared queue.
struct MetricsController {
    let store: Store

    static let queueDepth = Gauge(label: "tern_queue_depth")
    static let oldestDue = Gauge(label: "tern_oldest_due_delivery_age_seconds")

    func addRoutes(to router: Router<TernRequestContext>) {
        router.get("metrics", use: self.metrics)
    }

    @Sendable func metrics(_ request: Request, context: TernRequestContext) async throws -> Response {
        if let stats = try? await self.store.queueStats() {
            Self.queueDepth.record(stats.depth)
            Self.oldestDue.record(stats.oldestDueAgeSeconds)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16 * 1024)
        TernMetrics.registry.emit(into: &bytes)
        return JSONResponse.raw(ByteBuffer(bytes: bytes), status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8")
    }
}
