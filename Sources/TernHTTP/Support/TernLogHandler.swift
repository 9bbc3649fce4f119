import Foundation
import Logging
import Synchronization

/// Tern's log lines on standard error, one per event, in the format `TERN_LOG_FORMAT` chooses:
/// - `text`, the default: the lines swift-log's `StreamLogHandler` writes
///   (`2026-12-06T22:28:49+0000 warning tern: attempt=1 delivery_id=… [TernDelivery] delivery exhausted`);
/// - `json`: one JSON object per line with the same fields: `time` (RFC 3339, UTC, milliseconds), `level`, `label`,
///   `message`, `source`, and every metadata key at the top level (`message_id`, `delivery_id`, `endpoint_id`,
///   `error`, …), for log shippers that parse JSON.
///
/// The metadata is written out only when a line is. `StreamLogHandler` writes out a logger's whole metadata, sorted,
/// each time one key is set, and Hummingbird (`hb.request.id`) and the API middleware (`request_id`) set one on every
/// request, logged or not: 1.4% of the server's CPU under `tern bench` (`docs/benchmarks.md`, item 29).
public struct TernLogHandler: LogHandler {
    public enum Format: Sendable {
        case text
        case json
    }

    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String
    let format: Format
    /// One writer for the process, so that concurrent lines never interleave.
    static let output = Mutex(FileHandle.standardError)

    public init(label: String, format: Format) {
        self.label = label
        self.format = format
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
        let message = "\(event.message)"
        let line =
            switch self.format {
            case .text:
                Self.textLine(
                    time: Self.localTime(), level: event.level, label: self.label, metadata: metadata, source: event.source, message: message)
            case .json:
                Self.jsonLine(time: Date(), level: event.level, label: self.label, message: message, source: event.source, metadata: metadata)
                    + "\n"
            }
        Self.output.withLock { $0.write(Data(line.utf8)) }
    }

    /// One text line, as `StreamLogHandler` writes it: time, level, label, the metadata sorted by key, source, message.
    static func textLine(time: String, level: Logger.Level, label: String, metadata: Logger.Metadata, source: String, message: String) -> String {
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

    /// The JSON text of one line; keys sorted, so that lines compare and diff well.
    static func jsonLine(time: Date, level: Logger.Level, label: String, message: String, source: String, metadata: Logger.Metadata) -> String {
        var object: [String: Any] = [:]
        for (key, value) in metadata { object[key] = Self.plain(value) }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        object["time"] = formatter.string(from: time)
        object["level"] = level.rawValue
        object["label"] = label
        object["message"] = message
        object["source"] = source
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else {
            return #"{"level":"error","message":"a log line could not be written as JSON"}"#
        }
        return String(decoding: data, as: UTF8.self)
    }

    static func plain(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let text): text
        case .stringConvertible(let convertible): convertible.description
        case .array(let values): values.map(Self.plain)
        case .dictionary(let members): members.mapValues(Self.plain)
        }
    }
}
