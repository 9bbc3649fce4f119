import Logging
import OTel
import ServiceLifecycle
import Synchronization
import TernCore
import Tracing

/// Where spans go (`TERN_OTEL_EXPORTER_OTLP_ENDPOINT`, OTLP/HTTP), and whether as JSON
/// (`TERN_OTEL_EXPORTER_OTLP_PROTOCOL=http/json`) instead of protobuf.
public struct TracingSettings: Sendable, Equatable {
    public var endpoint: String
    public var json: Bool

    public init(endpoint: String, json: Bool = false) {
        self.endpoint = endpoint
        self.json = json
    }
}

/// Tracing through swift-otel: only its tracer is bootstrapped (logs and metrics stay Tern's own), once per process.
/// Off (the default), every span below is a no-op of the default tracer.
enum TernTracing {
    static let bootstrapped = Mutex(false)

    /// Bootstraps the tracer and returns the exporter's service, or nil when this process has one already.
    static func start(_ settings: TracingSettings, logger: Logger) throws -> (any Service)? {
        guard
            Self.bootstrapped.withLock({ done in
                defer { done = true }
                return !done
            })
        else { return nil }
        var configuration = OTel.Configuration.default
        configuration.serviceName = "tern"
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.diagnosticLogger = .custom(logger)
        configuration.traces.otlpExporter.endpoint = settings.endpoint
        configuration.traces.otlpExporter.protocol = settings.json ? .httpJSON : .httpProtobuf
        return try OTel.bootstrap(configuration: configuration)
    }
}
