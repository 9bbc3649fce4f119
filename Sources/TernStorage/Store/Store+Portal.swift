import SQLKit
import TernCore

/// An endpoint's recent deliveries, for the portal's success rate.
public struct EndpointStats: Sendable {
    public var delivered: Int
    public var failed: Int

    /// Delivered out of finished-or-failing deliveries, in percent; nil when there were none.
    public var successRate: Int? {
        let total = self.delivered + self.failed
        return total == 0 ? nil : Int((Double(self.delivered) * 100 / Double(total)).rounded())
    }
}

extension Store {
    /// Per endpoint of the tenant: deliveries created since `since` that were delivered, and those failing or
    /// exhausted.
    public func endpointStats(applicationID: String, tenantID: String, since: Timestamp) async throws -> [String: EndpointStats] {
        try await self.database.read { sql in
            let rows = try await sql.raw(
                """
                SELECT endpoint_id, SUM(CASE WHEN status = 'delivered' THEN 1 ELSE 0 END) AS ok,
                SUM(CASE WHEN status IN ('failed', 'exhausted') THEN 1 ELSE 0 END) AS bad
                FROM deliveries WHERE application_id = \(bind: applicationID) AND tenant_id = \(bind: tenantID)
                AND created_at >= \(bind: since.microseconds) GROUP BY endpoint_id
                """
            ).all()
            var stats: [String: EndpointStats] = [:]
            for row in rows {
                stats[try row.string("endpoint_id")] = EndpointStats(delivered: try row.int("ok"), failed: try row.int("bad"))
            }
            return stats
        }
    }

    /// A delivery of one tenant with its message and attempts; another tenant's delivery is not found.
    public func tenantDelivery(
        organizationID: String, applicationID: String, tenantID: String, id: String
    ) async throws -> (Delivery, Message, [Attempt]) {
        try await self.database.read { sql in
            let delivery = try await Self.delivery(organizationID, applicationID, id, sql)
            guard delivery.tenantID == tenantID else { throw TernError.notFound("No delivery '\(id)'.") }
            guard let row = try await sql.raw("SELECT * FROM messages WHERE id = \(bind: delivery.messageID)").first() else {
                throw TernError.notFound("No delivery '\(id)'.")
            }
            let attempts = try await sql.raw("SELECT * FROM attempts WHERE delivery_id = \(bind: id) ORDER BY id DESC LIMIT 50")
                .all().map(Self.attempt)
            return (delivery, try Self.message(row), attempts)
        }
    }
}
