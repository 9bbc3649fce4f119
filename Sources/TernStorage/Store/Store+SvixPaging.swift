import SQLKit
import TernCore

/// `?limit=&iterator=&order=` of a Svix list: `iterator` continues after a key in the list's order, and `-key` (the
/// `prevIterator` a page gives) goes back to the page before it.
public struct SvixPageRequest: Sendable {
    public var limit: Int
    public var iterator: String?
    public var descending: Bool

    public init(limit: Int = 50, iterator: String? = nil, descending: Bool) {
        self.limit = limit
        self.iterator = iterator
        self.descending = descending
    }

    /// Runs `query` for one page ordered by `key` (a column the rows carry under the name `keyName`): `limit + 1`
    /// rows, so that the page knows whether it is the last.
    func run<Item>(
        _ query: SQLSelectBuilder, key: String, table: String? = nil, keyName: String? = nil, map: (any SQLRow) throws -> Item
    ) async throws -> SvixPage<Item> {
        var query = query
        let column = SQLColumn(SQLIdentifier(key), table: table.map { SQLIdentifier($0) })
        var backwards = false
        var descending = self.descending
        if var iterator = self.iterator, !iterator.isEmpty {
            if iterator.hasPrefix("-") {
                backwards = true
                iterator.removeFirst()
                descending.toggle()
            }
            query = query.where(column, descending ? .lessThan : .greaterThan, SQLBind(iterator))
        }
        var rows = try await query.orderBy(column, descending ? SQLDirection.descending : SQLDirection.ascending).limit(self.limit + 1).all()
        let done = rows.count <= self.limit
        rows = Array(rows.prefix(self.limit))
        if backwards { rows.reverse() }
        let name = keyName ?? key
        let keys = try rows.map { try $0.decode(column: name, as: String.self) }
        return SvixPage(
            data: try rows.map(map), iterator: keys.last, prevIterator: keys.first.map { "-" + $0 }, done: done
        )
    }
}

/// One page of a Svix list.
public struct SvixPage<Item: Sendable>: Sendable {
    public var data: [Item]
    public var iterator: String?
    public var prevIterator: String?
    public var done: Bool

    public func map<Other>(_ transform: (Item) throws -> Other) rethrows -> SvixPage<Other> {
        SvixPage<Other>(data: try self.data.map(transform), iterator: self.iterator, prevIterator: self.prevIterator, done: self.done)
    }
}

/// `before` / `after` of a Svix list of messages or attempts: exclusive bounds on the creation time, within 90 days
/// back from `before` (or now) when no `after` is given.
public struct SvixTimeWindow: Sendable {
    public var before: Timestamp?
    public var after: Timestamp?

    public static let defaultDays: Int64 = 90

    public init(before: Timestamp? = nil, after: Timestamp? = nil) {
        self.before = before
        self.after = after
    }

    func apply(_ query: SQLSelectBuilder, table: String) -> SQLSelectBuilder {
        let column = SQLColumn(SQLIdentifier("created_at"), table: SQLIdentifier(table))
        var query = query
        if let after = self.after {
            query = query.where(column, .greaterThan, SQLBind(after.microseconds))
        } else {
            let from = (self.before ?? .now()).adding(seconds: -Self.defaultDays * 86_400)
            query = query.where(column, .greaterThanOrEqual, SQLBind(from.microseconds))
        }
        if let before = self.before { query = query.where(column, .lessThan, SQLBind(before.microseconds)) }
        return query
    }
}
