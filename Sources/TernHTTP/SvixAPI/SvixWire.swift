import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import NIOCore
import TernCore
import TernStorage

/// The Svix API's query parameters, read as the Svix SDKs send them.
struct SvixQuery {
    let parameters: FlatDictionary<Substring, Substring>

    init(_ request: Request) {
        self.parameters = request.uri.queryParameters
    }

    func string(_ name: String) -> String? {
        self.parameters.get(name).flatMap { $0.isEmpty ? nil : $0 }
    }

    /// `limit` (1 to 250, default 50), `iterator` and `order` of a list whose natural order is `descending` or not.
    func page(descending: Bool) throws -> SvixPageRequest {
        var limit = 50
        if let text = self.string("limit") {
            guard let value = Int(text) else { throw TernError.malformed("Query parameter 'limit' must be a whole number.") }
            guard value <= 250 else { throw TernError.invalid("query.limit", "Given limit must not exceed 250") }
            guard value >= 1 else { throw TernError.invalid("query.limit", "Given limit must be at least 1") }
            limit = value
        }
        var isDescending = descending
        switch self.string("order") {
        case nil: break
        case "ascending": isDescending = false
        case "descending": isDescending = true
        default: throw TernError.invalid("query.order", "must be 'ascending' or 'descending'")
        }
        return SvixPageRequest(limit: limit, iterator: self.string("iterator"), descending: isDescending)
    }

    /// A boolean: `true`/`false` (any case), `default` when absent; anything else is 400, as a query that does not parse.
    func bool(_ name: String, default value: Bool) throws -> Bool {
        guard let text = self.string(name) else { return value }
        switch text.lowercased() {
        case "true", "1": return true
        case "false", "0": return false
        default: throw TernError.malformed("Query parameter '\(name)' must be 'true' or 'false'.")
        }
    }

    func int(_ name: String) throws -> Int? {
        guard let text = self.string(name) else { return nil }
        guard let value = Int(text) else { throw TernError.malformed("Query parameter '\(name)' must be a whole number.") }
        return value
    }

    /// A date-time: RFC 3339, an offset-less one read as UTC.
    func time(_ name: String) throws -> Timestamp? {
        guard let text = self.string(name) else { return nil }
        guard let time = SvixTime.parse(text) else { throw TernError.malformed("Query parameter '\(name)' must be an RFC 3339 date-time.") }
        return time
    }

    /// A list: comma-joined, repeated, `name[]=` or `name[0]=`, each value split on commas.
    func list(_ name: String) -> [String]? {
        var values: [String] = []
        for (key, value) in self.parameters {
            let key = String(key)
            guard key == name || key == name + "[]" || (key.hasPrefix(name + "[") && key.hasSuffix("]")) else { continue }
            values += value.split(separator: ",").map { $0.trimmingHTTPWhitespace() }.filter { !$0.isEmpty }
        }
        return values.isEmpty ? nil : values
    }

    /// The Svix time window of a list: `before` and `after`.
    func window() throws -> SvixTimeWindow {
        SvixTimeWindow(before: try self.time("before"), after: try self.time("after"))
    }
}

enum SvixTime {
    /// RFC 3339; without an offset, UTC (the Svix SDKs send naive date-times that way). A `+` decoded as a space is put back.
    static func parse(_ text: String) -> Timestamp? {
        var text = text
        if text.count > 19, let space = text.lastIndex(of: " "), text.distance(from: text.startIndex, to: space) > 10 {
            text.replaceSubrange(space...space, with: "+")
        }
        if let time = Timestamp(rfc3339: text) { return time }
        return Timestamp(rfc3339: text + "Z")
    }
}

/// Responses of the Svix API: camelCase JSON built as values, so that every member the SDKs require is there
/// (nulls included).
enum SvixJSON {
    /// `created`: the id of what the request created, for the audit log (which removes the header).
    static func response(_ value: JSONValue, status: HTTPResponse.Status = .ok, created: String? = nil) throws -> Response {
        var response = JSONResponse.raw(ByteBuffer(bytes: try JSONResponse.encoder.encode(value)), status: status, contentType: "application/json")
        if let created { response.headers[.entityID] = created }
        return response
    }

    static func list<Item>(_ page: SvixPage<Item>, _ transform: (Item) throws -> JSONValue) throws -> Response {
        var object: [String: JSONValue] = [
            "data": .array(try page.data.map(transform)), "iterator": page.iterator.map(JSONValue.string) ?? .null, "done": .bool(page.done),
        ]
        if let previous = page.prevIterator { object["prevIterator"] = .string(previous) }
        return try Self.response(.object(object))
    }

    static func string(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
    static func int(_ value: Int?) -> JSONValue { value.map { JSONValue.number(Double($0)) } ?? .null }
    static func time(_ value: Timestamp?) -> JSONValue { value.map { JSONValue.string($0.description) } ?? .null }
    static func strings(_ value: [String]?) -> JSONValue { value.map { JSONValue.array($0.map(JSONValue.string)) } ?? .null }

    /// Svix metadata is string to string: other JSON values are sent as their JSON text.
    static func metadata(_ value: [String: JSONValue]) -> JSONValue {
        .object(
            value.mapValues { member in
                if case .string(let text) = member { return .string(text) }
                return .string(String(decoding: (try? JSONResponse.encoder.encode(member)) ?? Data(), as: UTF8.self))
            })
    }
}

/// Svix's message-per-endpoint and attempt statuses.
enum SvixStatus {
    /// 0 success, 1 pending, 2 fail, 3 sending.
    static func of(_ status: DeliveryStatus) -> Int {
        switch status {
        case .delivered: 0
        case .pending, .replaying: 1
        case .exhausted: 2
        case .failed, .delivering: 3
        }
    }

    static func text(_ status: Int) -> String {
        ["success", "pending", "fail", "sending", "canceled"][max(0, min(4, status))]
    }

    /// The deliveries whose Svix status is `status`.
    static func deliveryStatuses(_ status: Int) -> [DeliveryStatus] {
        DeliveryStatus.allCases.filter { Self.of($0) == status }
    }
}

/// Svix's rules for uids and names.
enum SvixRules {
    static func isUID(_ value: String) -> Bool {
        (1...256).contains(value.utf8.count)
            && value.utf8.allSatisfy { $0.isASCIIAlphanumeric || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") }
    }

    /// A uid problem, or nil: the pattern, and not the id's prefix.
    static func uidProblem(_ value: String, prefix: String) -> String? {
        if value.hasPrefix(prefix) { return "Uids are not allowed to have the same prefix as the ID. Prefix with _?" }
        return Self.isUID(value) ? nil : "must be 1 to 256 characters of letters, digits, '-', '_' and '.'"
    }

    static func isChannel(_ value: String) -> Bool {
        (1...128).contains(value.utf8.count)
            && value.utf8.allSatisfy { $0.isASCIIAlphanumeric || "-_.:+".utf8.contains($0) }
    }

    static func isTag(_ value: String) -> Bool {
        (1...128).contains(value.utf8.count)
            && value.utf8.allSatisfy { $0.isASCIIAlphanumeric || "-_./#".utf8.contains($0) }
    }
}

extension UInt8 {
    var isASCIIAlphanumeric: Bool {
        (0x30...0x39).contains(self) || (0x41...0x5A).contains(self) || (0x61...0x7A).contains(self)
    }
}

/// A field of a PATCH body: absent (keep), `null` (clear), or a value.
enum SvixPatch<Value: Decodable & Sendable>: Decodable, Sendable {
    case absent, null
    case value(Value)

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        self = container.decodeNil() ? .null : .value(try container.decode(Value.self))
    }

    func apply(to current: Value?) -> Value? {
        switch self {
        case .absent: current
        case .null: nil
        case .value(let value): value
        }
    }

    var newValue: Value? {
        if case .value(let value) = self { return value }
        return nil
    }
}

extension KeyedDecodingContainer {
    func decode<Value>(_ type: SvixPatch<Value>.Type, forKey key: Key) throws -> SvixPatch<Value> {
        guard self.contains(key) else { return .absent }
        return try SvixPatch<Value>(from: try self.superDecoder(forKey: key))
    }
}
