import SQLKit
import TernCore

/// An endpoint's health over a window: its attempts by outcome, its backlog and dead letters, response times, and
/// successes and failures per hour (windows up to 2 days) or per day.
public struct EndpointHealth: Sendable, Encodable {
    public struct Bucket: Sendable, Encodable {
        public var start: Timestamp
        public var success: Int
        public var failed: Int
    }

    public var endpointID: String
    public var since: Timestamp
    public var until: Timestamp
    /// Attempts answered 2xx, and the others (no answer included), made in the window.
    public var success: Int
    public var failed: Int
    /// Deliveries waiting to be sent now (pending, failing with a retry due, replaying or being sent).
    public var pending: Int
    /// Deliveries created in the window that ended in the dead-letter queue.
    public var exhausted: Int
    /// success ÷ (success + failed), or nil without attempts.
    public var successRate: Double?
    public var responseP50: Int?
    public var responseP95: Int?
    public var bucketSeconds: Int
    public var buckets: [Bucket]

    /// Hourly buckets up to 2 days, daily beyond.
    public static func bucketSeconds(since: Timestamp, until: Timestamp) -> Int {
        until.microseconds - since.microseconds <= 2 * 86_400 * 1_000_000 ? 3_600 : 86_400
    }

    enum CodingKeys: String, CodingKey {
        case endpointID = "endpoint_id"
        case since, until, success, failed, pending, exhausted
        case successRate = "success_rate"
        case responseMS = "response_ms"
        case bucketSeconds = "bucket_seconds"
        case buckets
    }

    enum ResponseKeys: String, CodingKey { case p50, p95 }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.endpointID, forKey: .endpointID)
        try container.encode(self.since, forKey: .since)
        try container.encode(self.until, forKey: .until)
        try container.encode(self.success, forKey: .success)
        try container.encode(self.failed, forKey: .failed)
        try container.encode(self.pending, forKey: .pending)
        try container.encode(self.exhausted, forKey: .exhausted)
        try container.encodeOrNull(self.successRate, forKey: .successRate)
        var response = container.nestedContainer(keyedBy: ResponseKeys.self, forKey: .responseMS)
        try response.encodeOrNull(self.responseP50, forKey: .p50)
        try response.encodeOrNull(self.responseP95, forKey: .p95)
        try container.encode(self.bucketSeconds, forKey: .bucketSeconds)
        try container.encode(self.buckets, forKey: .buckets)
    }
}

extension Store {
    /// The endpoint's health in [since, until). Every query reads one endpoint's rows in the window by index
    /// (`attempts_by_endpoint_time`, `deliveries_by_endpoint_status`), whatever the size of the tables.
    public func endpointHealth(
        organizationID: String, applicationID: String, endpointID: String, since: Timestamp, until: Timestamp
    ) async throws -> EndpointHealth {
        try await self.database.read { sql in
            let endpoint = try await Self.endpoint(organizationID, applicationID, endpointID, sql)
            let (from, to) = (since.microseconds, until.microseconds)
            let window: SQLQueryString = "endpoint_id = \(bind: endpoint.id) AND created_at >= \(bind: from) AND created_at < \(bind: to)"
            let totals = try await sql.raw(
                """
                SELECT COUNT(*) AS n, SUM(CASE WHEN status_code >= 200 AND status_code < 300 THEN 1 ELSE 0 END) AS ok
                FROM attempts WHERE \(window)
                """
            ).first()
            let attempts = try totals?.int("n") ?? 0
            let success = try totals?.optionalInt("ok") ?? 0
            func percentile(_ fraction: Double) async throws -> Int? {
                guard attempts > 0 else { return nil }
                let offset = Int((Double(attempts - 1) * fraction).rounded(.down))
                return try await sql.raw(
                    "SELECT duration_ms FROM attempts WHERE \(window) ORDER BY duration_ms LIMIT 1 OFFSET \(bind: offset)"
                ).first()?.int("duration_ms")
            }
            let p50 = try await percentile(0.5)
            let p95 = try await percentile(0.95)
            let pending = try await Self.count(
                sql,
                """
                SELECT COUNT(*) AS n FROM deliveries WHERE endpoint_id = \(bind: endpoint.id)
                AND status IN ('pending', 'failed', 'replaying', 'delivering')
                """)
            let exhausted = try await Self.count(
                sql,
                """
                SELECT COUNT(*) AS n FROM deliveries WHERE endpoint_id = \(bind: endpoint.id) AND status = 'exhausted'
                AND created_at >= \(bind: from) AND created_at < \(bind: to)
                """)
            let width = EndpointHealth.bucketSeconds(since: since, until: until)
            let widthMicros = Int64(width) * 1_000_000
            let rows = try await sql.raw(
                """
                SELECT (created_at - \(bind: from)) / \(bind: widthMicros) AS b, COUNT(*) AS n,
                SUM(CASE WHEN status_code >= 200 AND status_code < 300 THEN 1 ELSE 0 END) AS ok
                FROM attempts WHERE \(window) GROUP BY b
                """
            ).all()
            var counts: [Int: (Int, Int)] = [:]
            for row in rows {
                let ok = try row.optionalInt("ok") ?? 0
                counts[try row.int("b")] = (ok, try row.int("n") - ok)
            }
            let bucketCount = Int((to - from + widthMicros - 1) / widthMicros)
            let buckets = (0..<max(0, bucketCount)).map { index in
                EndpointHealth.Bucket(
                    start: since.adding(microseconds: Int64(index) * widthMicros), success: counts[index]?.0 ?? 0, failed: counts[index]?.1 ?? 0)
            }
            return EndpointHealth(
                endpointID: endpoint.id, since: since, until: until, success: success, failed: attempts - success, pending: pending,
                exhausted: exhausted, successRate: attempts == 0 ? nil : (Double(success) / Double(attempts) * 10_000).rounded() / 10_000,
                responseP50: p50, responseP95: p95, bucketSeconds: width, buckets: buckets
            )
        }
    }
}

/// An endpoint that is disabled or failing, for the operator's view of an organization.
public struct TroubledEndpoint: Sendable {
    public var endpoint: Endpoint
    public var consecutiveFailures: Int
}

extension Store {
    /// The organization's disabled endpoints and those whose last attempts failed, most recently changed first.
    public func troubledEndpoints(organizationID: String, limit: Int = 50) async throws -> [TroubledEndpoint] {
        try await self.database.read { sql in
            try await sql.raw(
                """
                SELECT * FROM endpoints WHERE organization_id = \(bind: organizationID) AND \(unsafeRaw: Self.customerEndpoints)
                AND (status = 'disabled' OR consecutive_failures > 0) ORDER BY updated_at DESC LIMIT \(bind: limit)
                """
            ).all().map { row in TroubledEndpoint(endpoint: try Self.endpoint(row), consecutiveFailures: try row.int("consecutive_failures")) }
        }
    }
}
