import Foundation
import Logging
import Synchronization

/// `TERN_LOG_FORMAT=json`: one JSON object per line on standard error, with the same fields as the text format:
/// `time` (RFC 3339, UTC, milliseconds), `level`, `label`, `message`, `source`, and every metadata key at the top
/// level (`message_id`, `delivery_id`, `endpoint_id`, `error`, …), for log shippers that parse JSON.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String
    /// One writer for the process, so that concurrent lines never interleave.
    static let output = Mutex(FileHandle.standardError)

    public init(label: String) {
        self.label = label
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let line = Self.line(
            time: Date(), level: event.level, label: self.label, message: "\(event.message)", source: event.source,
            metadata: self.metadata.merging(event.metadata ?? [:]) { $1 })
        Self.output.withLock { $0.write(Data((line + "\n").utf8)) }
    }

    /// The JSON text of one line; keys sorted, so that lines compare and diff well.
    static func line(time: Date, level: Logger.Level, label: String, message: String, source: String, metadata: Logger.Metadata) -> String {
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
