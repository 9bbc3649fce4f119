import SQLKit
import TernCore

/// One FIFO line: an endpoint's deliveries with one `ordering_line`.
struct OrderingLine: Hashable, Sendable {
    var endpointID: String
    var line: String

    init(endpointID: String, line: String) {
        self.endpointID = endpointID
        self.line = line
    }

    /// The line of a row that returned `endpoint_id` and `ordering_line`, if it has one.
    init?(_ row: any SQLRow) throws {
        guard let line = try row.optionalString("ordering_line") else { return nil }
        self.endpointID = try row.string("endpoint_id")
        self.line = line
    }
}

/// Ordered delivery without polling. Only the head of a line (its earliest open delivery) is ever due: the others
/// wait with `next_attempt_at = waitingInLine`, which no claim reaches, and the head's end (delivered, exhausted,
/// expunged) releases the next one in the same transaction. Workers therefore never scan or spin over deliveries held
/// behind a failing head, and a line costs one indexed statement per delivery. The claim still checks that no earlier
/// delivery of the line is open, so that a replayed or recovered delivery cannot overtake.
extension Store {
    /// `next_attempt_at` of a delivery waiting behind an earlier one of its line: far beyond any real time.
    public static let waitingInLine: Int64 = 4_000_000_000_000_000_000

    /// The time to show for `next_attempt_at`: none while the delivery waits in its line.
    static func shownAttemptTime(_ stored: Timestamp?) -> Timestamp? {
        guard let stored, stored.microseconds < Self.waitingInLine else { return nil }
        return stored
    }

    /// `next_attempt_at` for deliveries queued (again) now: due at once, or waiting in line when they have one.
    static func queuedAt(_ now: Int64) -> SQLQueryString {
        "CASE WHEN ordering_line IS NULL THEN \(bind: now) ELSE \(bind: Self.waitingInLine) END"
    }
}

extension Database {
    /// Makes the head of each line due if it is waiting (at its message's `deliver_at` if that is later). `lock`
    /// locks the lines' endpoints first (PostgreSQL), in one order: a publish holds them shared while it queues, so a
    /// release waits for it and then sees its deliveries, and a publish that comes after sees the ended head.
    /// Returns whether it made any delivery due (the caller's transaction then queued work).
    @discardableResult
    func releaseLines(_ lines: Set<OrderingLine>, now: Int64, lock: Bool = true, _ sql: any SQLDatabase) async throws -> Bool {
        guard !lines.isEmpty else { return false }
        if lock, !self.lockRowsClause.isEmpty {
            let endpoints = Set(lines.map(\.endpointID)).sorted()
            _ = try await sql.raw(
                "SELECT id FROM endpoints WHERE id IN (\(binds: endpoints)) ORDER BY id\(unsafeRaw: self.lockRowsClause)"
            ).all()
        }
        var released = false
        for line in lines.sorted(by: { ($0.endpointID, $0.line) < ($1.endpointID, $1.line) }) {
            released =
                try await !sql.raw(
                    """
                    UPDATE deliveries SET next_attempt_at = COALESCE((SELECT m.deliver_at FROM messages m WHERE m.id = deliveries.message_id
                    AND m.deliver_at > \(bind: now)), \(bind: now)) WHERE id = (SELECT id FROM deliveries WHERE endpoint_id = \(bind: line.endpointID)
                    AND ordering_line = \(bind: line.line) AND next_attempt_at IS NOT NULL ORDER BY ordering_seq LIMIT 1)
                    AND next_attempt_at = \(bind: Store.waitingInLine) RETURNING id
                    """
                ).all().isEmpty || released
        }
        return released
    }

    /// Releases the lines of the returned rows (`endpoint_id`, `ordering_line`) that have one.
    @discardableResult
    func releaseLines(of rows: [any SQLRow], now: Int64, _ sql: any SQLDatabase) async throws -> Bool {
        try await self.releaseLines(Set(try rows.compactMap(OrderingLine.init)), now: now, lock: true, sql)
    }
}
