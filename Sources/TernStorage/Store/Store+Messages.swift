import Foundation
import Metrics
import SQLKit
import TernCore
import Tracing

/// A message to publish, already validated; `payload` is the exact JSON text the publisher sent.
public struct PublishInput: Sendable {
    public var eventType: String
    public var tenantID: String
    public var eventID: String?
    public var payload: String
    /// The plan's rate limit and monthly quota.
    public var limits: PublishLimits
    /// Inbound sources publish whatever type the provider sends, registered or not.
    public var allowUnregisteredType: Bool
    /// Endpoints with channels receive the message only when it shares one of them.
    public var channels: [String]?
    public var tags: [String]?
    /// No attempt before this time.
    public var deliverAt: Timestamp?
    /// The inbound source it came through, and the request headers kept with it (names lower-cased), for filters.
    public var sourceID: String?
    public var headers: [String: String]?
    /// How long this payload is kept, when the publish asks for less than the plan's retention.
    public var payloadRetentionSeconds: Int64?
    /// The publishing request's `traceparent` (tracing on).
    public var traceContext: String?

    /// When the payload is erased: the publish's own retention, else the plan's; nil to keep it.
    func payloadExpiry(from created: Timestamp) -> Timestamp? {
        guard let seconds = self.payloadRetentionSeconds ?? self.limits.payloadRetentionDays.map({ Int64($0) * 86_400 }) else { return nil }
        return created.adding(seconds: seconds)
    }

    public init(
        eventType: String, tenantID: String, eventID: String?, payload: String,
        limits: PublishLimits = PublishLimits(bucket: nil, messagesPerMonth: nil), allowUnregisteredType: Bool = false,
        channels: [String]? = nil, tags: [String]? = nil, deliverAt: Timestamp? = nil, sourceID: String? = nil, headers: [String: String]? = nil,
        payloadRetentionSeconds: Int64? = nil, traceContext: String? = nil
    ) {
        self.payloadRetentionSeconds = payloadRetentionSeconds
        self.traceContext = traceContext
        self.deliverAt = deliverAt
        self.sourceID = sourceID
        self.headers = headers
        self.channels = channels
        self.tags = tags
        self.eventType = eventType
        self.tenantID = tenantID
        self.eventID = eventID
        self.payload = payload
        self.limits = limits
        self.allowUnregisteredType = allowUnregisteredType
    }
}

extension PublishInput {
    /// What an endpoint's filter reads (`RoutingFilter.document`); the payload was checked to be a JSON object.
    func filterDocument() -> JSONValue {
        let payload = (try? JSONDecoder().decode(JSONValue.self, from: Data(self.payload.utf8))) ?? .object([:])
        return RoutingFilter.document(
            eventType: self.eventType, tenantID: self.tenantID, channels: self.channels, payload: payload, sourceID: self.sourceID,
            headers: self.headers)
    }
}

/// What publishing did: the message, how many deliveries it has, and whether it is new (false when an
/// `event_id` repeated an earlier message, which is returned instead).
public struct Published: Sendable {
    public var message: Message
    public var deliveries: Int
    public var created: Bool
    /// The tenant's bucket after this publish, when the plan limits the rate.
    public var rate: RateLimitState?
}

/// Filters of the message list.
public struct MessageFilter: Sendable {
    public var tenantID: String?
    public var eventType: String?
    public var since: Timestamp?
    public var until: Timestamp?
    public var channel: String?
    public var tag: String?

    public init(
        tenantID: String? = nil, eventType: String? = nil, since: Timestamp? = nil, until: Timestamp? = nil, channel: String? = nil,
        tag: String? = nil
    ) {
        self.channel = channel
        self.tag = tag
        self.tenantID = tenantID
        self.eventType = eventType
        self.since = since
        self.until = until
    }
}

extension Store {
    /// Stores the message and one pending delivery per matching endpoint (same tenant, subscribed to the type or
    /// to everything, not disabled) in one transaction, counts it against the month's usage, and wakes the
    /// workers. A repeated `event_id` returns the first message instead.
    /// Publishes an event (from the API or an inbound source alike); `tern_events_published_total` counts the new ones.
    public func publish(organizationID: String, applicationID: String, _ input: PublishInput) async throws -> Published {
        do {
            // The publish transaction as this publish sees it (it shares a group commit with others).
            let published = try await withSpan("tern.publish.transaction", ofKind: .internal) { span in
                let published = try await self.publisher.submit(
                    PublishRequest(organizationID: organizationID, applicationID: applicationID, input: input))
                span.attributes["tern.message_id"] = published.message.id
                span.attributes["tern.deliveries"] = published.deliveries
                return published
            }
            if published.created { StorageMetrics.published.increment() }
            return published
        } catch TernError.conflict where input.eventID != nil {
            // Two publishes of one event_id raced on two processes; the other committed first.
            return try await self.database.read { sql in
                guard let existing = try await Self.message(applicationID: applicationID, eventID: input.eventID!, sql) else {
                    throw TernError.conflict("the event is being published by another request; try again")
                }
                return existing
            }
        }
    }

    /// The plan an organization publishes under (for its payload limit).
    public func plan(ofOrganization organizationID: String) async throws -> Plan {
        try await self.plans.value(organizationID) {
            try await self.database.read { sql in
                guard
                    let row = try await sql.raw(
                        """
                        SELECT p.* FROM plans p JOIN organizations o ON o.plan_id = p.id WHERE o.id = \(bind: organizationID)
                        """
                    ).first()
                else { throw TernError.notFound("No organization '\(organizationID)'.") }
                return try Self.plan(row)
            }
        }
    }

    /// Sends a test event to one endpoint: a message of `eventType` (registered or not) with one delivery.
    /// `payload`: the JSON text to send instead of the test payload (the Svix API's `send-example`).
    public func sendTestMessage(
        organizationID: String, applicationID: String, endpointID: String, eventType: String, payload example: String? = nil
    ) async throws -> Message {
        try await self.database.writeQueuing { sql -> (Message, queued: Bool) in
            let endpoint = try await Self.endpoint(organizationID, applicationID, endpointID, sql)
            guard endpoint.status != .disabled else {
                throw TernError.conflict("The endpoint is disabled; set its status to 'active' before sending a test event.")
            }
            let now = Timestamp.now()
            let payload =
                example
                ?? JSONColumn.encode([
                    "type": JSONValue.string(eventType),
                    "timestamp": .string(now.description),
                    "data": .object(["test": .bool(true), "endpoint_id": .string(endpoint.id)]),
                ])
            let message = Message(
                id: Identifier.make("msg"), applicationID: applicationID, tenantID: endpoint.tenantID, eventType: eventType,
                eventID: nil, payload: payload, createdAt: now
            )
            try await Self.insertMessages([(message, organizationID)], sql)
            try await Self.insertDeliveries([(message, endpoint.id, organizationID)], trigger: .manual, now: now, sql)
            return (message, queued: true)
        }
    }

    /// Whether the application's event type is archived; nil when it is not registered.
    static func eventTypeArchived(_ applicationID: String, _ eventType: String, _ sql: any SQLDatabase) async throws -> Bool? {
        let row = try await sql.raw(
            """
            SELECT archived FROM event_types WHERE application_id = \(bind: applicationID) AND name = \(bind: eventType)
            """
        ).first()
        return try row.map { try $0.bool("archived") }
    }

    /// Publishing needs the type registered and not archived: refuses one that is not registered (`archived` nil) or
    /// is archived.
    static func requirePublishable(_ eventType: String, archived: Bool?) throws {
        guard let archived else {
            throw TernError.invalid("event_type", "'\(eventType)' is not a registered event type of this application")
        }
        if archived {
            throw TernError.invalid("event_type", "'\(eventType)' is archived; unarchive it or publish another type")
        }
    }

    static func message(applicationID: String, eventID: String, _ sql: any SQLDatabase) async throws -> Published? {
        guard
            let row = try await sql.raw(
                """
                SELECT * FROM messages WHERE application_id = \(bind: applicationID) AND event_id = \(bind: eventID)
                """
            ).first()
        else { return nil }
        let message = try Self.message(row)
        let count = try await Self.count(sql, "SELECT COUNT(*) AS n FROM deliveries WHERE message_id = \(bind: message.id)")
        return Published(message: message, deliveries: count, created: false, rate: nil)
    }

    public func listMessages(organizationID: String, applicationID: String, filter: MessageFilter, _ page: PageRequest) async throws -> Page<Message>
    {
        try await self.database.read { sql in
            _ = try await Self.application(organizationID, applicationID, sql)
            var query = sql.select().column("*").from("messages").where("application_id", .equal, applicationID)
            if let tenantID = filter.tenantID { query = query.where("tenant_id", .equal, tenantID) }
            if let eventType = filter.eventType { query = query.where("event_type", .equal, eventType) }
            if let channel = filter.channel { query = query.where("channels", .like, "%" + JSONColumn.encode(channel) + "%") }
            if let tag = filter.tag { query = query.where("tags", .like, "%" + JSONColumn.encode(tag) + "%") }
            let rows = try await Self.newestFirst(query, page, since: filter.since, until: filter.until)
            return try page.page(rows, key: { (try? $0.string("id")) ?? "" }, map: Self.message)
        }
    }

    /// A message with its deliveries.
    public func message(organizationID: String, applicationID: String, id: String) async throws -> (Message, [Delivery]) {
        try await self.database.read { sql in
            guard
                let row = try await sql.raw(
                    """
                    SELECT * FROM messages WHERE id = \(bind: id) AND application_id = \(bind: applicationID)
                    AND organization_id = \(bind: organizationID)
                    """
                ).first()
            else { throw TernError.notFound("No message '\(id)'.") }
            let deliveries = try await sql.raw("SELECT * FROM deliveries WHERE message_id = \(bind: id) ORDER BY id")
                .all().map(Self.delivery)
            return (try Self.message(row), deliveries)
        }
    }

    /// Erases the message's payload (it reads `{}` from then on) and moves its queued deliveries to the dead-letter
    /// queue: there is nothing left to send.
    public func expungeMessage(organizationID: String, applicationID: String, id: String) async throws {
        try await self.database.writeQueuing { sql -> ((), queued: Bool) in
            let queued = try await self.database.erasing(sql) {
                try await self.erasePayload(organizationID: organizationID, applicationID: applicationID, id: id, sql)
            }
            return ((), queued: queued)
        }
        await self.database.truncateWAL()
    }

    /// Erases the payload and ends the message's queued deliveries (the request is audited by the API).
    func erasePayload(organizationID: String, applicationID: String, id: String, _ sql: any SQLDatabase) async throws -> Bool {
        let now = Timestamp.now().microseconds
        let updated = try await sql.raw(
            """
            UPDATE messages SET payload = '{}', payload_expunged = \(bind: true), payload_expires_at = NULL WHERE id = \(bind: id)
            AND application_id = \(bind: applicationID) AND organization_id = \(bind: organizationID) RETURNING id
            """
        ).all()
        guard !updated.isEmpty else { throw TernError.notFound("Message not found") }
        let ended = try await sql.raw(
            """
            UPDATE deliveries SET status = 'exhausted', next_attempt_at = NULL, last_error = 'the payload was expunged',
            updated_at = \(bind: now) WHERE message_id = \(bind: id) AND next_attempt_at IS NOT NULL AND status <> 'delivering'
            RETURNING endpoint_id, ordering_line
            """
        ).all()
        return try await self.database.releaseLines(of: ended, now: now, sql)
    }

    /// Whether the message's payload was expunged.
    public func isExpunged(messageID: String) async throws -> Bool {
        try await self.database.read { sql in
            try await sql.raw("SELECT payload_expunged FROM messages WHERE id = \(bind: messageID)").first()?.bool("payload_expunged") ?? false
        }
    }

    /// Replaces an attempt's response body with `EXPUNGED`.
    public func expungeAttempt(organizationID: String, applicationID: String, messageID: String, id: String) async throws {
        try await self.database.write { sql in
            let updated = try await sql.raw(
                """
                UPDATE attempts SET response_body = 'EXPUNGED' WHERE id = \(bind: id) AND message_id = \(bind: messageID)
                AND delivery_id IN (SELECT id FROM deliveries WHERE application_id = \(bind: applicationID)
                AND organization_id = \(bind: organizationID)) RETURNING id
                """
            ).all()
            guard !updated.isEmpty else { throw TernError.notFound("Message attempt not found") }
        }
    }

    static func message(_ row: any SQLRow) throws -> Message {
        var message = Message(
            id: try row.string("id"), applicationID: try row.string("application_id"), tenantID: try row.string("tenant_id"),
            eventType: try row.string("event_type"), eventID: try row.optionalString("event_id"), payload: try row.string("payload"),
            createdAt: try row.timestamp("created_at"), channels: try JSONColumn.decode([String].self, try row.optionalString("channels")),
            tags: try JSONColumn.decode([String].self, try row.optionalString("tags")),
            deliverAt: (try? row.optionalTimestamp("deliver_at")) ?? nil, sourceID: (try? row.optionalString("source_id")) ?? nil,
            headers: try JSONColumn.decode([String: String].self, (try? row.optionalString("headers")) ?? nil)
        )
        message.payloadExpunged = (try? row.bool("payload_expunged")) ?? false
        return message
    }
}
