import SQLKit
import TernCore

/// How long finished data is kept.
public struct RetentionPolicy: Sendable, Equatable {
    /// Messages (with their deliveries and attempts) older than this are deleted once none of their deliveries is queued.
    public var messageDays: Int
    /// Exhausted deliveries (the dead-letter queue) are deleted this long after they were last touched.
    public var deadLetterDays: Int

    public static let standard = RetentionPolicy(messageDays: 30, deadLetterDays: 7)

    public init(messageDays: Int, deadLetterDays: Int) {
        self.messageDays = messageDays
        self.deadLetterDays = deadLetterDays
    }
}

/// What one pruning pass removed.
public struct PruneCounts: Sendable, Equatable {
    public var messages = 0
    public var deadLetters = 0
    public var idempotencyKeys = 0
    /// Payloads erased past their retention.
    public var payloads = 0

    public init() {}
}

extension Store {
    /// Deletes data past retention in small transactions (1,000 rows each), so that publishing and delivery never
    /// wait long behind it. Messages with a delivery still queued or in flight are kept whatever their age.
    public func prune(_ policy: RetentionPolicy, now: Timestamp = .now()) async throws -> PruneCounts {
        var counts = PruneCounts()
        let deadLetterCutoff = now.adding(seconds: -Int64(policy.deadLetterDays) * 86_400).microseconds
        let messageCutoff = now.adding(seconds: -Int64(policy.messageDays) * 86_400).microseconds
        let idempotencyCutoff = now.adding(seconds: -86_400).microseconds
        counts.payloads = try await self.erasePayloadsPastRetention(now)
        counts.deadLetters = try await self.deleteInBatches(
            """
            DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries WHERE status = 'exhausted'
            AND updated_at < \(bind: deadLetterCutoff) LIMIT 1000) RETURNING id
            """)
        counts.messages = try await self.deleteInBatches(
            """
            DELETE FROM messages WHERE id IN (SELECT m.id FROM messages m WHERE m.created_at < \(bind: messageCutoff)
            AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.next_attempt_at IS NOT NULL) LIMIT 1000) RETURNING id
            """)
        counts.idempotencyKeys = try await self.deleteInBatches(
            """
            DELETE FROM idempotency_keys WHERE created_at < \(bind: idempotencyCutoff) RETURNING scope
            """)
        return counts
    }

    /// Erases, 1,000 at a time, the payloads whose retention has passed (as the payload DELETE does, SQLite
    /// overwriting the bytes), once none of the message's deliveries is still queued: nothing accepted is erased
    /// before it was delivered or given up.
    func erasePayloadsPastRetention(_ now: Timestamp) async throws -> Int {
        var total = 0
        while true {
            let erased = try await self.database.write { sql in
                try await self.database.erasing(sql) {
                    try await sql.raw(
                        """
                        UPDATE messages SET payload = '{}', payload_expunged = \(bind: true), payload_expires_at = NULL WHERE id IN (SELECT m.id
                        FROM messages m WHERE m.payload_expires_at <= \(bind: now.microseconds) AND NOT EXISTS (SELECT 1 FROM deliveries d
                        WHERE d.message_id = m.id AND d.next_attempt_at IS NOT NULL) LIMIT 1000) RETURNING id
                        """
                    ).all().count
                }
            }
            total += erased
            if erased < 1000 { break }
        }
        if total > 0 { await self.database.truncateWAL() }
        return total
    }

    func deleteInBatches(_ query: SQLQueryString) async throws -> Int {
        var total = 0
        while true {
            let deleted = try await self.database.write { sql in try await sql.raw(query).all().count }
            total += deleted
            if deleted < 1000 { return total }
        }
    }
}
