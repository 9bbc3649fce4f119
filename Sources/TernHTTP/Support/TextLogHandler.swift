import Foundation
import Logging
import Synchronization

/// `TERN_LOG_FORMAT=text`, the default: the lines swift-log's `StreamLogHandler` writes on standard error
/// (`2026-12-06T22:28:49+0000 warning tern: attempt=1 delivery_id=… [TernDelivery] delivery exhausted`), with the
/// logger's metadata written out only when a line is. `StreamLogHandler` writes out a logger's whole metadata, sorted,
/// each time one key is set, and Hummingbird (`hb.request.id`) and the API middleware (`request_id`) set one on every
/// request, logged or not: 1.4% of the server's CPU under `tern bench` (`docs/benchmarks.md`, item 29).
public struct TextLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String

    public init(label: String) {
        self.label = label
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var metadata = self.metadata
        if let explicit = event.metadata { metadata.merge(explicit) { $1 } }
        if let error = event.error {
            metadata["error.message"] = "\(error)"
            metadata["error.type"] = "\(String(reflecting: type(of: error)))"
        }
        let line = Self.line(
            time: Self.localTime(), level: event.level, label: self.label, metadata: metadata, source: event.source, message: "\(event.message)")
        JSONLogHandler.output.withLock { $0.write(Data(line.utf8)) }
    }

    /// One line, as `StreamLogHandler` writes it: time, level, label, the metadata sorted by key, source, message.
    static func line(time: String, level: Logger.Level, label: String, metadata: Logger.Metadata, source: String, message: String) -> String {
        var line = "\(time) \(level)\(label.isEmpty ? "" : " ")\(label):"
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) { line += " \(key)=\(value)" }
        return line + " [\(source)] \(message)\n"
    }

    /// The local time to the second with its offset from UTC, as `StreamLogHandler` writes it.
    static func localTime() -> String {
        var now = time(nil)
        var parts = tm()
        guard localtime_r(&now, &parts) != nil else { return "<unknown>" }
        var buffer = [CChar](repeating: 0, count: 64)
        let count = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S%z", &parts)
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
