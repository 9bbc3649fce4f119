import SQLKit
import TernCore

/// Filters of the delivery list, and of a bulk replay.
public struct DeliveryFilter: Sendable {
    public var status: DeliveryStatus?
    public var endpointID: String?
    public var tenantID: String?
    public var messageID: String?
    public var since: Timestamp?
    public var until: Timestamp?

    public init(
        status: DeliveryStatus? = nil, endpointID: String? = nil, tenantID: String? = nil, messageID: String? = nil,
        since: Timestamp? = nil, until: Timestamp? = nil
    ) {
        self.status = status
        self.endpointID = endpointID
        self.tenantID = tenantID
        self.messageID = messageID
        self.since = since
        self.until = until
    }
}

extension Store {
    public func listDeliveries(
        organizationID: String, applicationID: String, filter: DeliveryFilter, _ page: PageRequest
    ) async throws -> Page<Delivery> {
        try await self.database.read { sql in
            _ = try await Self.application(organizationID, applicationID, sql)
            var query = sql.select().column("*").from("deliveries").where("application_id", .equal, applicationID)
            if let status = filter.status { query = query.where("status", .equal, status.rawValue) }
            if let endpointID = filter.endpointID { query = query.where("endpoint_id", .equal, endpointID) }
            if let tenantID = filter.tenantID { query = query.where("tenant_id", .equal, tenantID) }
            if let messageID = filter.messageID { query = query.where("message_id", .equal, messageID) }
            let rows = try await Self.newestFirst(query, page, since: filter.since, until: filter.until)
            return try page.page(rows, key: { (try? $0.string("id")) ?? "" }, map: Self.delivery)
        }
    }

    public func delivery(organizationID: String, applicationID: String, id: String) async throws -> Delivery {
        try await self.database.read { sql in try await Self.delivery(organizationID, applicationID, id, sql) }
    }

    static func delivery(_ organizationID: String, _ applicationID: String, _ id: String, _ sql: any SQLDatabase) async throws -> Delivery {
        guard
            let row = try await sql.raw(
                """
                SELECT * FROM deliveries WHERE id = \(bind: id) AND application_id = \(bind: applicationID)
                AND organization_id = \(bind: organizationID)
                """
            ).first()
        else { throw TernError.notFound("No delivery '\(id)'.") }
        return try Self.delivery(row)
    }

    /// A delivery's attempts, newest first.
    public func listAttempts(organizationID: String, applicationID: String, deliveryID: String, _ page: PageRequest) async throws -> Page<Attempt> {
        try await self.database.read { sql in
            _ = try await Self.delivery(organizationID, applicationID, deliveryID, sql)
            let query = sql.select().column("*").from("attempts").where("delivery_id", .equal, deliveryID)
            let rows = try await Self.newestFirst(query, page)
            return try page.page(rows, key: { (try? $0.string("id")) ?? "" }, map: Self.attempt)
        }
    }

    /// Queues one manual attempt of a delivery now, whatever its status, unless a worker holds it or its endpoint
    /// is disabled.
    public func replayDelivery(organizationID: String, applicationID: String, id: String) async throws -> Delivery {
        try await self.database.writeQueuing { sql -> (Delivery, queued: Bool) in
            let delivery = try await Self.delivery(organizationID, applicationID, id, sql)
            guard delivery.status != .delivering else {
                throw TernError.conflict("The delivery is being sent right now; replay it once this attempt has finished.")
            }
            let endpoint = try await Self.endpoint(organizationID, applicationID, delivery.endpointID, sql)
            guard endpoint.status != .disabled else {
                throw TernError.conflict("The endpoint is disabled; set its status to 'active' before replaying its deliveries.")
            }
            if try await sql.raw("SELECT payload_expunged FROM messages WHERE id = \(bind: delivery.messageID)").first()?.bool("payload_expunged")
                == true
            {
                throw TernError.payloadExpunged("The message's payload was erased; there is nothing to send.")
            }
            let now = Timestamp.now()
            let queued = try await sql.raw(
                """
                UPDATE deliveries SET status = 'replaying', next_attempt_at = \(Self.queuedAt(now.microseconds)), next_trigger = 'manual',
                updated_at = \(bind: now.microseconds) WHERE id = \(bind: id) RETURNING endpoint_id, ordering_line
                """
            ).all()
            try await self.database.releaseLines(of: queued, now: now.microseconds, sql)
            return (try await Self.delivery(organizationID, applicationID, id, sql), queued: true)
        }
    }

    /// Queues a manual attempt of every delivery that matches (by default the dead-letter queue) and whose endpoint
    /// is not disabled; returns how many.
    public func replayDeliveries(organizationID: String, applicationID: String, filter: DeliveryFilter) async throws -> Int {
        try await self.database.writeQueuing { sql -> (Int, queued: Bool) in
            _ = try await Self.application(organizationID, applicationID, sql)
            let status = filter.status ?? .exhausted
            let now = Timestamp.now().microseconds
            var query: SQLQueryString = """
                UPDATE deliveries SET status = 'replaying', next_attempt_at = \(Self.queuedAt(now)), next_trigger = 'manual', updated_at = \(bind: now)
                WHERE application_id = \(bind: applicationID) AND status = \(bind: status.rawValue)
                AND endpoint_id IN (SELECT id FROM endpoints WHERE application_id = \(bind: applicationID) AND status <> 'disabled')
                AND message_id NOT IN (SELECT id FROM messages WHERE application_id = \(bind: applicationID) AND payload_expunged = \(bind: true))
                """
            if let endpointID = filter.endpointID { query += " AND endpoint_id = \(bind: endpointID)" }
            if let tenantID = filter.tenantID { query += " AND tenant_id = \(bind: tenantID)" }
            if let since = filter.since { query += " AND created_at >= \(bind: since.microseconds)" }
            if let until = filter.until { query += " AND created_at < \(bind: until.microseconds)" }
            let queued = try await sql.raw(query + " RETURNING endpoint_id, ordering_line").all()
            try await self.database.releaseLines(of: queued, now: now, sql)
            return (queued.count, queued: !queued.isEmpty)
        }
    }

    /// Re-queues an endpoint's failed and exhausted deliveries created since `since` (and before `until`).
    public func recoverEndpoint(
        organizationID: String, applicationID: String, endpointID: String, since: Timestamp, until: Timestamp?
    ) async throws -> Int {
        try await self.database.writeQueuing { sql -> (Int, queued: Bool) in
            let endpoint = try await Self.endpoint(organizationID, applicationID, endpointID, sql)
            guard endpoint.status != .disabled else {
                throw TernError.conflict("The endpoint is disabled; set its status to 'active' before recovering its deliveries.")
            }
            let now = Timestamp.now().microseconds
            var query: SQLQueryString = """
                UPDATE deliveries SET status = 'replaying', next_attempt_at = \(Self.queuedAt(now)), next_trigger = 'manual', updated_at = \(bind: now)
                WHERE endpoint_id = \(bind: endpoint.id) AND status IN ('failed', 'exhausted') AND created_at >= \(bind: since.microseconds)
                AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = deliveries.message_id AND m.payload_expunged = \(bind: true))
                """
            if let until { query += " AND created_at < \(bind: until.microseconds)" }
            let queued = try await sql.raw(query + " RETURNING endpoint_id, ordering_line").all()
            try await self.database.releaseLines(of: queued, now: now, sql)
            return (queued.count, queued: !queued.isEmpty)
        }
    }

    /// Replaces the endpoint's secret; the old one keeps signing beside it until the returned time (24 hours).
    public func rotateSecret(organizationID: String, applicationID: String, endpointID: String, newSecret: String) async throws -> Timestamp {
        let sealed = try self.secretBox.seal(newSecret)
        return try await self.database.write { sql in
            let endpoint = try await Self.endpoint(organizationID, applicationID, endpointID, sql)
            return try await Self.replaceSecret(endpointID: endpoint.id, sealed: sealed, publicKey: EndpointSecret.publicKey(newSecret), sql)
        }
    }

    /// Replaces the secret (sealed); `publicKey` is the new one's `whpk_` key when it is an Ed25519 key.
    static func replaceSecret(endpointID: String, sealed: String, publicKey: String? = nil, _ sql: any SQLDatabase) async throws -> Timestamp {
        let now = Timestamp.now()
        let expires = now.adding(seconds: EndpointSecret.rotationOverlapSeconds)
        try await sql.raw(
            """
            UPDATE endpoints SET previous_secret = secret, previous_secret_expires_at = \(bind: expires.microseconds),
            secret = \(bind: sealed), public_key = \(bind: publicKey), updated_at = \(bind: now.microseconds) WHERE id = \(bind: endpointID)
            """
        ).run()
        return expires
    }

    /// Writes an audit entry on its own.
    public func audit(_ entry: AuditEntry) async throws {
        try await self.database.write { sql in try await Self.audit(entry, sql) }
    }

    /// Writes an audit entry inside the caller's transaction.
    static func audit(_ entry: AuditEntry, _ sql: any SQLDatabase) async throws {
        try await sql.raw(
            """
            INSERT INTO audit_entries (id, organization_id, actor_type, actor_id, action, entity_type, entity_id, summary, created_at)
            VALUES (\(bind: entry.id), \(bind: entry.organizationID), \(bind: entry.actorType), \(bind: entry.actorID),
            \(bind: entry.action), \(bind: entry.entityType), \(bind: entry.entityID), \(bind: JSONColumn.encode(entry.summary)),
            \(bind: entry.createdAt.microseconds))
            """
        ).run()
    }

    /// An organization's audit entries, newest first, optionally of one entity type, entity or action.
    public func listAuditEntries(
        organizationID: String, entityType: String? = nil, entityID: String? = nil, action: String? = nil, _ page: PageRequest
    ) async throws -> Page<AuditEntry> {
        try await self.database.read { sql in
            var query = sql.select().column("*").from("audit_entries").where("organization_id", .equal, organizationID)
            if let entityType { query = query.where("entity_type", .equal, entityType) }
            if let entityID { query = query.where("entity_id", .equal, entityID) }
            if let action { query = query.where("action", .equal, action) }
            let rows = try await Self.newestFirst(query, page)
            return try page.page(rows, key: { (try? $0.string("id")) ?? "" }) { row in
                AuditEntry(
                    id: try row.string("id"), organizationID: try row.string("organization_id"), actorType: try row.string("actor_type"),
                    actorID: try row.optionalString("actor_id"), action: try row.string("action"), entityType: try row.string("entity_type"),
                    entityID: try row.string("entity_id"),
                    summary: try JSONColumn.decode([String: JSONValue].self, try row.string("summary")) ?? [:],
                    createdAt: try row.timestamp("created_at")
                )
            }
        }
    }

    static func delivery(_ row: any SQLRow) throws -> Delivery {
        Delivery(
            id: try row.string("id"), applicationID: try row.string("application_id"), messageID: try row.string("message_id"),
            endpointID: try row.string("endpoint_id"), tenantID: try row.string("tenant_id"), eventType: try row.string("event_type"),
            status: DeliveryStatus(rawValue: try row.string("status")) ?? .pending, attemptCount: try row.int("attempt_count"),
            nextAttemptAt: Self.shownAttemptTime(try row.optionalTimestamp("next_attempt_at")),
            lastStatusCode: try row.optionalInt("last_status_code"),
            lastError: try row.optionalString("last_error"), lastAttemptAt: try row.optionalTimestamp("last_attempt_at"),
            deliveredAt: try row.optionalTimestamp("delivered_at"), createdAt: try row.timestamp("created_at"),
            updatedAt: try row.timestamp("updated_at")
        )
    }

    static func attempt(_ row: any SQLRow) throws -> Attempt {
        Attempt(
            id: try row.string("id"), deliveryID: try row.string("delivery_id"), messageID: try row.string("message_id"),
            endpointID: try row.string("endpoint_id"), url: try row.string("url"),
            requestHeaders: try JSONColumn.decode([String: String].self, try row.string("request_headers")) ?? [:],
            statusCode: try row.optionalInt("status_code"), responseBody: try row.optionalString("response_body"),
            durationMS: try row.int("duration_ms"), error: try row.optionalString("error"),
            trigger: AttemptTrigger(rawValue: try row.string("trigger")) ?? .scheduled, createdAt: try row.timestamp("created_at")
        )
    }
}
