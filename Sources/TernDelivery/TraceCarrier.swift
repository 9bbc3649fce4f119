import Tracing

/// W3C trace context as headers: what a publish stores with its message (`traceparent`), and what an attempt's span
/// continues from and, when the application opts in, sends to the receiver. Empty while tracing is off.
public enum TraceCarrier {
    struct Injector: Tracing.Injector {
        func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) { carrier[key] = value }
    }

    struct Extractor: Tracing.Extractor {
        func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
    }

    /// The current span's trace headers (`traceparent`, `tracestate`).
    public static func headers() -> [String: String] {
        guard let context = ServiceContext.current else { return [:] }
        var carrier: [String: String] = [:]
        InstrumentationSystem.instrument.inject(context, into: &carrier, using: Injector())
        return carrier
    }

    /// The current span's `traceparent`, to store with a message.
    public static func traceparent() -> String? { Self.headers()["traceparent"] }

    /// The context a stored `traceparent` names (the top level without one).
    static func context(_ traceparent: String?) -> ServiceContext {
        var context = ServiceContext.topLevel
        if let traceparent {
            InstrumentationSystem.instrument.extract(["traceparent": traceparent], into: &context, using: Extractor())
        }
        return context
    }
}
