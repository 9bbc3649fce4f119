import Foundation
import Logging
import Metrics
import SQLKit
import Synchronization
import TernCore

/// The repositories: every read and write of Tern's objects, scoped by organization (and application).
/// Handlers call these; no SQL lives outside this target.
public struct Store: Sendable {
    public let database: Database
    public let secretBox: SecretBox
    /// Concurrent publishes share transactions (group commit).
    let publisher: GroupCommitter<PublishRequest, Published>
    /// Organizations' plans, read once per 5 s instead of once per publish; cleared when a plan or an
    /// organization changes in this process (other processes see a change within 5 s).
    let plans = TimedCache<String, Plan>(lifetime: .seconds(5))
    /// Svix applications (tenants) by application and id or uid, read once per 5 s on the Svix API's hot path; cleared
    /// when a tenant record changes in this process (other processes see a change within 5 s).
    let svixTenants = TimedCache<String, Tenant>(lifetime: .seconds(5))

    public init(database: Database, secretBox: SecretBox) {
        self.database = database
        self.secretBox = secretBox
        self.publisher = GroupCommitter(maxBatch: 256, concurrency: database.publishConcurrency) { [database] requests in
            await Store.publishBatch(database, secretBox, requests)
        }
    }
}

/// One page of a list, newest first.
public struct Page<Item: Encodable & Sendable>: Encodable, Sendable {
    public var data: [Item]
    public var nextCursor: String?
    public var hasMore: Bool

    public init(data: [Item], nextCursor: String?, hasMore: Bool) {
        self.data = data
        self.nextCursor = nextCursor
        self.hasMore = hasMore
    }

    enum CodingKeys: String, CodingKey {
        case data
        case nextCursor = "next_cursor"
        case hasMore = "has_more"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.data, forKey: .data)
        try container.encodeOrNull(self.nextCursor, forKey: .nextCursor)
        try container.encode(self.hasMore, forKey: .hasMore)
    }
}

/// `?limit=&cursor=` of a list request. The cursor is opaque to clients: base64url of the last sort key.
public struct PageRequest: Sendable {
    public static let defaultLimit = 50
    public static let maxLimit = 250

    public var limit: Int
    public var after: String?

    public init(limit: Int = PageRequest.defaultLimit, after: String? = nil) {
        self.limit = limit
        self.after = after
    }

    /// Parses the query values; invalid ones are 422.
    public init(limit: String?, cursor: String?) throws {
        var validator = Validator()
        var parsedLimit = PageRequest.defaultLimit
        if let limit {
            if let value = Int(limit), (1...PageRequest.maxLimit).contains(value) {
                parsedLimit = value
            } else {
                validator.fail("limit", "must be a whole number from 1 to \(PageRequest.maxLimit)")
            }
        }
        var after: String?
        if let cursor, !cursor.isEmpty {
            // Any base64url text is a position; one this API did not return just starts the page somewhere else.
            if let bytes = Base64URL.decode(cursor) {
                after = String(decoding: bytes, as: UTF8.self)
            } else {
                validator.fail("cursor", "is not a cursor this API returned")
            }
        }
        try validator.check()
        self.init(limit: parsedLimit, after: after)
    }

    /// Cuts the `limit + 1` rows fetched into a page.
    func page<Row, Item>(_ rows: [Row], key: (Row) -> String, map: (Row) throws -> Item) rethrows -> Page<Item> {
        let hasMore = rows.count > self.limit
        let kept = Array(rows.prefix(self.limit))
        let cursor = hasMore ? kept.last.map { Base64URL.encode(Array(key($0).utf8)) } : nil
        return Page(data: try kept.map(map), nextCursor: cursor, hasMore: hasMore)
    }
}

extension Store {
    /// Runs a list query newest first (by id), within `since`/`until` on `created_at`, after the page's cursor;
    /// fetches one row more than the page holds so that the page knows whether there are more.
    static func newestFirst(
        _ query: SQLSelectBuilder, _ page: PageRequest, since: Timestamp? = nil, until: Timestamp? = nil
    ) async throws -> [any SQLRow] {
        var query = query
        if let since { query = query.where("created_at", .greaterThanOrEqual, since.microseconds) }
        if let until { query = query.where("created_at", .lessThan, until.microseconds) }
        if let after = page.after { query = query.where("id", .lessThan, after) }
        return try await query.orderBy("id", .descending).limit(page.limit + 1).all()
    }
}

/// JSON columns: written with sorted keys so the same value is always the same text.
enum JSONColumn {
    static func encode<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(value)) ?? Data("null".utf8), as: UTF8.self)
    }

    /// A string map (an attempt's request headers, an endpoint's headers), written without `JSONEncoder`: the same
    /// JSON, keys sorted, at a fraction of the cost on the delivery path.
    static func encode(_ value: [String: String]) -> String {
        var out = "{"
        out.reserveCapacity(value.count * 48)
        for (index, key) in value.keys.sorted().enumerated() {
            if index > 0 { out += "," }
            JSONText.appendString(key, to: &out)
            out += ":"
            JSONText.appendString(value[key]!, to: &out)
        }
        return out + "}"
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String?) throws -> T? {
        guard let text else { return nil }
        return try JSONDecoder().decode(T.self, from: Data(text.utf8))
    }

    /// A string map; the empty one (most endpoints' headers, read for every delivery) without `JSONDecoder`.
    static func decode(_ type: [String: String].Type, _ text: String?) throws -> [String: String]? {
        if text == "{}" { return [:] }
        guard let text else { return nil }
        return try JSONDecoder().decode(type, from: Data(text.utf8))
    }

    /// A list of whole numbers (a retry schedule, read for every delivery) without `JSONDecoder` when it is plain.
    static func decode(_ type: [Int].Type, _ text: String?) throws -> [Int]? {
        guard let text else { return nil }
        let inner = text.utf8.dropFirst().dropLast()
        if text.utf8.first == UInt8(ascii: "["), text.utf8.last == UInt8(ascii: "]") {
            if inner.isEmpty { return [] }
            let numbers = inner.split(separator: UInt8(ascii: ",")).map { Int(String(decoding: $0, as: UTF8.self)) }
            if !numbers.contains(nil) { return numbers.map { $0! } }
        }
        return try JSONDecoder().decode(type, from: Data(text.utf8))
    }
}

extension SQLRow {
    func string(_ column: String) throws -> String { try self.decode(column: column, as: String.self) }
    func optionalString(_ column: String) throws -> String? { try self.decode(column: column, as: String?.self) }
    func int(_ column: String) throws -> Int { try self.decode(column: column, as: Int.self) }
    func optionalInt(_ column: String) throws -> Int? { try self.decode(column: column, as: Int?.self) }
    func bool(_ column: String) throws -> Bool { try self.decode(column: column, as: Bool.self) }
    func timestamp(_ column: String) throws -> Timestamp { Timestamp(microseconds: Int64(try self.int(column))) }
    func optionalTimestamp(_ column: String) throws -> Timestamp? { try self.optionalInt(column).map { Timestamp(microseconds: Int64($0)) } }
}

/// A small map whose entries expire after `lifetime`.
final class TimedCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    let lifetime: Duration
    let entries = Mutex<[Key: (value: Value, at: ContinuousClock.Instant)]>([:])

    init(lifetime: Duration) {
        self.lifetime = lifetime
    }

    func value(_ key: Key, orRead read: () async throws -> Value) async throws -> Value {
        let now = ContinuousClock.now
        if let entry = self.entries.withLock({ $0[key] }), now - entry.at < self.lifetime { return entry.value }
        let value = try await read()
        self.entries.withLock { entries in
            if entries.count > 10_000 { entries.removeAll() }
            entries[key] = (value, now)
        }
        return value
    }

    func clear() {
        self.entries.withLock { $0.removeAll() }
    }
}

/// What storage counts: events published, wherever they come from.
enum StorageMetrics {
    static let published = Counter(label: "tern_events_published_total")
}
