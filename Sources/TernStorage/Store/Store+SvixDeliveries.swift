import SQLKit
import TernCore

/// Filters of the Svix attempt lists.
public struct SvixAttemptFilter: Sendable {
    public var messageID: String?
    public var endpointID: String?
    /// 0: 2xx responses; 2: everything else.
    public var status: Int?
    /// 0 (no response), 100, 200, 300, 400 or 500: the hundred the response status falls in.
    public var statusCodeClass: Int?
    public var eventTypes: [String]?
    public var channel: String?
    public var window: SvixTimeWindow

    public init(
        messageID: String? = nil, endpointID: String? = nil, status: Int? = nil, statusCodeClass: Int? = nil, eventTypes: [String]? = nil,
        channel: String? = nil, window: SvixTimeWindow = SvixTimeWindow()
    ) {
        self.messageID = messageID
        self.endpointID = endpointID
        self.status = status
        self.statusCodeClass = statusCodeClass
        self.eventTypes = eventTypes
        self.channel = channel
        self.window = window
    }
}

/// The Svix API's reads of deliveries and attempts, and its writes that queue them, scoped to one tenant.
extension Store {
    /// The tenant's endpoints, by id (newest first unless ascending).
    public func svixEndpoints(
        organizationID: String, applicationID: String, tenantID: String, _ page: SvixPageRequest
    ) async throws -> SvixPage<Endpoint> {
        try await self.database.read { sql in
            _ = try await Self.application(organizationID, applicationID, sql)
            let query = sql.select().column("*").from("endpoints").where("application_id", .equal, applicationID)
                .where("tenant_id", .equal, tenantID)
            return try await page.run(query, key: "id", map: Self.endpoint)
        }
    }

    /// The tenant's endpoint whose id or uid is `id`.
    public func svixEndpoint(organizationID: String, applicationID: String, tenantID: String, id: String) async throws -> Endpoint {
        try await self.database.read { sql in try await Self.svixEndpoint(organizationID, applicationID, tenantID, id, sql) }
    }

    static func svixEndpoint(
        _ organizationID: String, _ applicationID: String, _ tenantID: String, _ id: String, _ sql: any SQLDatabase
    ) async throws -> Endpoint {
        let endpoint = try? await Self.endpoint(organizationID, applicationID, id, sql)
        guard let endpoint, endpoint.tenantID == tenantID else { throw TernError.notFound("Endpoint not found") }
        return endpoint
    }

    /// The endpoint's current signing secret.
    public func endpointSecret(organizationID: String, applicationID: String, endpointID: String) async throws -> String {
        try await self.database.read { sql in
            let endpoint = try await Self.endpoint(organizationID, applicationID, endpointID, sql)
            return try await self.openSecret(endpointID: endpoint.id, sql)
        }
    }

    func openSecret(endpointID: String, _ sql: any SQLDatabase) async throws -> String {
        guard let row = try await sql.raw("SELECT secret FROM endpoints WHERE id = \(bind: endpointID)").first() else {
            throw TernError.notFound("Endpoint not found")
        }
        return try self.secretBox.open(try row.string("secret"))
    }

    /// The tenant's message whose id or event id is `id`.
    public func svixMessage(organizationID: String, applicationID: String, tenantID: String, id: String) async throws -> Message {
        try await self.database.read { sql in try await Self.svixMessage(organizationID, applicationID, tenantID, id, sql) }
    }

    static func svixMessage(
        _ organizationID: String, _ applicationID: String, _ tenantID: String, _ id: String, _ sql: any SQLDatabase
    ) async throws -> Message {
        guard
            let row = try await sql.raw(
                """
                SELECT * FROM messages WHERE (id = \(bind: id) OR event_id = \(bind: id)) AND application_id = \(bind: applicationID)
                AND organization_id = \(bind: organizationID) AND tenant_id = \(bind: tenantID)
                """
            ).first()
        else { throw TernError.notFound("Message not found") }
        return try Self.message(row)
    }

    /// The tenant's messages, newest first, within the window.
    public func svixMessages(
        organizationID: String, applicationID: String, tenantID: String, filter: MessageFilter, eventTypes: [String]?,
        window: SvixTimeWindow, _ page: SvixPageRequest
    ) async throws -> SvixPage<Message> {
        try await self.database.read { sql in
            _ = try await Self.application(organizationID, applicationID, sql)
            var query = sql.select().column(SQLColumn("*", table: "m")).from(SQLAlias(SQLIdentifier("messages"), as: "m"))
                .where(SQLColumn("application_id", table: "m"), .equal, SQLBind(applicationID))
                .where(SQLColumn("tenant_id", table: "m"), .equal, SQLBind(tenantID))
            query = Self.messageFilters(query, channel: filter.channel, tag: filter.tag, eventTypes: eventTypes)
            query = window.apply(query, table: "m")
            return try await page.run(query, key: "id", table: "m", map: Self.message)
        }
    }

    static func messageFilters(_ query: SQLSelectBuilder, channel: String?, tag: String?, eventTypes: [String]?) -> SQLSelectBuilder {
        var query = query
        if let channel { query = query.where(SQLColumn("channels", table: "m"), .like, SQLBind("%" + JSONColumn.encode(channel) + "%")) }
        if let tag { query = query.where(SQLColumn("tags", table: "m"), .like, SQLBind("%" + JSONColumn.encode(tag) + "%")) }
        if let eventTypes, !eventTypes.isEmpty { query = query.where(SQLColumn("event_type", table: "m"), .in, SQLBind.group(eventTypes)) }
        return query
    }

    /// Attempts of the tenant's deliveries, newest first, with their messages.
    public func svixAttempts(
        organizationID: String, applicationID: String, tenantID: String, filter: SvixAttemptFilter, _ page: SvixPageRequest
    ) async throws -> SvixPage<(Attempt, Message)> {
        try await self.database.read { sql in
            _ = try await Self.application(organizationID, applicationID, sql)
            var query = sql.select()
                .column(SQLColumn("*", table: "a"))
                .column(SQLAlias(SQLColumn("event_type", table: "m"), as: SQLIdentifier("m_event_type")))
                .column(SQLAlias(SQLColumn("event_id", table: "m"), as: SQLIdentifier("m_event_id")))
                .column(SQLAlias(SQLColumn("channels", table: "m"), as: SQLIdentifier("m_channels")))
                .column(SQLAlias(SQLColumn("tags", table: "m"), as: SQLIdentifier("m_tags")))
                .column(SQLAlias(SQLColumn("created_at", table: "m"), as: SQLIdentifier("m_created_at")))
                .from(SQLAlias(SQLIdentifier("attempts"), as: "a"))
                .join(SQLAlias(SQLIdentifier("deliveries"), as: "d"), on: SQLColumn("id", table: "d"), .equal, SQLColumn("delivery_id", table: "a"))
                .join(SQLAlias(SQLIdentifier("messages"), as: "m"), on: SQLColumn("id", table: "m"), .equal, SQLColumn("message_id", table: "a"))
                .where(SQLColumn("application_id", table: "d"), .equal, SQLBind(applicationID))
                .where(SQLColumn("tenant_id", table: "d"), .equal, SQLBind(tenantID))
            if let messageID = filter.messageID { query = query.where(SQLColumn("message_id", table: "a"), .equal, SQLBind(messageID)) }
            if let endpointID = filter.endpointID { query = query.where(SQLColumn("endpoint_id", table: "a"), .equal, SQLBind(endpointID)) }
            let code = SQLColumn("status_code", table: "a")
            switch filter.status {
            case 0?: query = query.where(code, .greaterThanOrEqual, SQLBind(200)).where(code, .lessThan, SQLBind(300))
            case 2?:
                query = query.where {
                    $0.where(code, .is, SQLLiteral.null).orWhere(code, .lessThan, SQLBind(200)).orWhere(code, .greaterThanOrEqual, SQLBind(300))
                }
            case let other?: query = query.where(code, .equal, SQLBind(-1 - other))
            case nil: break
            }
            if let codeClass = filter.statusCodeClass {
                if codeClass == 0 {
                    query = query.where { $0.where(code, .is, SQLLiteral.null).orWhere(code, .lessThan, SQLBind(100)) }
                } else {
                    query = query.where(code, .greaterThanOrEqual, SQLBind(codeClass)).where(code, .lessThan, SQLBind(codeClass + 100))
                }
            }
            query = Self.messageFilters(query, channel: filter.channel, tag: nil, eventTypes: filter.eventTypes)
            query = filter.window.apply(query, table: "a")
            return try await page.run(query, key: "id", table: "a") { row in
                let attempt = try Self.attempt(row)
                let message = Message(
                    id: attempt.messageID, applicationID: applicationID, tenantID: tenantID, eventType: try row.string("m_event_type"),
                    eventID: try row.optionalString("m_event_id"), payload: "{}", createdAt: try row.timestamp("m_created_at"),
                    channels: try JSONColumn.decode([String].self, try row.optionalString("m_channels")),
                    tags: try JSONColumn.decode([String].self, try row.optionalString("m_tags"))
                )
                return (attempt, message)
            }
        }
    }

    /// One attempt of the tenant's message.
    public func svixAttempt(organizationID: String, applicationID: String, tenantID: String, messageID: String, id: String) async throws -> Attempt {
        try await self.database.read { sql in
            guard
                let row = try await sql.raw(
                    """
                    SELECT a.* FROM attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE a.id = \(bind: id)
                    AND a.message_id = \(bind: messageID) AND d.application_id = \(bind: applicationID) AND d.tenant_id = \(bind: tenantID)
                    AND d.organization_id = \(bind: organizationID)
                    """
                ).first()
            else { throw TernError.notFound("Message attempt not found") }
            return try Self.attempt(row)
        }
    }

    /// The messages sent to an endpoint, newest first, each with its delivery there.
    public func svixAttemptedMessages(
        organizationID: String, applicationID: String, endpointID: String, statuses: [DeliveryStatus]?, channel: String?, tag: String?,
        eventTypes: [String]?, window: SvixTimeWindow, _ page: SvixPageRequest
    ) async throws -> SvixPage<(Message, Delivery)> {
        try await self.database.read { sql in
            _ = try await Self.application(organizationID, applicationID, sql)
            var query = sql.select().column(SQLColumn("*", table: "d"))
                .column(SQLAlias(SQLColumn("payload", table: "m"), as: SQLIdentifier("m_payload")))
                .column(SQLAlias(SQLColumn("event_id", table: "m"), as: SQLIdentifier("m_event_id")))
                .column(SQLAlias(SQLColumn("channels", table: "m"), as: SQLIdentifier("m_channels")))
                .column(SQLAlias(SQLColumn("tags", table: "m"), as: SQLIdentifier("m_tags")))
                .column(SQLAlias(SQLColumn("created_at", table: "m"), as: SQLIdentifier("m_created_at")))
                .from(SQLAlias(SQLIdentifier("deliveries"), as: "d"))
                .join(SQLAlias(SQLIdentifier("messages"), as: "m"), on: SQLColumn("id", table: "m"), .equal, SQLColumn("message_id", table: "d"))
                .where(SQLColumn("endpoint_id", table: "d"), .equal, SQLBind(endpointID))
                .where(SQLColumn("application_id", table: "d"), .equal, SQLBind(applicationID))
            if let statuses { query = query.where(SQLColumn("status", table: "d"), .in, SQLBind.group(statuses.map(\.rawValue))) }
            query = Self.messageFilters(query, channel: channel, tag: tag, eventTypes: eventTypes)
            query = window.apply(query, table: "m")
            return try await page.run(query, key: "message_id", table: "d") { row in
                let delivery = try Self.delivery(row)
                let message = Message(
                    id: delivery.messageID, applicationID: applicationID, tenantID: delivery.tenantID, eventType: delivery.eventType,
                    eventID: try row.optionalString("m_event_id"), payload: try row.string("m_payload"), createdAt: try row.timestamp("m_created_at"),
                    channels: try JSONColumn.decode([String].self, try row.optionalString("m_channels")),
                    tags: try JSONColumn.decode([String].self, try row.optionalString("m_tags"))
                )
                return (message, delivery)
            }
        }
    }

    /// The endpoints a message went to, by endpoint id, each with its delivery.
    public func svixAttemptedDestinations(
        organizationID: String, applicationID: String, messageID: String, _ page: SvixPageRequest
    ) async throws -> SvixPage<(Endpoint, Delivery)> {
        try await self.database.read { sql in
            _ = try await Self.application(organizationID, applicationID, sql)
            let query = sql.select().column(SQLColumn("*", table: "e"))
                .column(SQLAlias(SQLColumn("status", table: "d"), as: SQLIdentifier("d_status")))
                .column(SQLAlias(SQLColumn("id", table: "d"), as: SQLIdentifier("d_id")))
                .column(SQLAlias(SQLColumn("next_attempt_at", table: "d"), as: SQLIdentifier("d_next_attempt_at")))
                .from(SQLAlias(SQLIdentifier("deliveries"), as: "d"))
                .join(SQLAlias(SQLIdentifier("endpoints"), as: "e"), on: SQLColumn("id", table: "e"), .equal, SQLColumn("endpoint_id", table: "d"))
                .where(SQLColumn("message_id", table: "d"), .equal, SQLBind(messageID))
                .where(SQLColumn("application_id", table: "d"), .equal, SQLBind(applicationID))
            return try await page.run(query, key: "id", table: "e") { row in
                let endpoint = try Self.endpoint(row)
                let delivery = Delivery(
                    id: try row.string("d_id"), applicationID: applicationID, messageID: messageID, endpointID: endpoint.id,
                    tenantID: endpoint.tenantID, eventType: "", status: DeliveryStatus(rawValue: try row.string("d_status")) ?? .pending,
                    attemptCount: 0, nextAttemptAt: Self.shownAttemptTime(try row.optionalTimestamp("d_next_attempt_at")), lastStatusCode: nil,
                    lastError: nil,
                    lastAttemptAt: nil, deliveredAt: nil, createdAt: endpoint.createdAt, updatedAt: endpoint.updatedAt
                )
                return (endpoint, delivery)
            }
        }
    }

    /// How many of the endpoint's deliveries created in [since, until) stand in each status.
    public func deliveryCounts(endpointID: String, since: Timestamp, until: Timestamp) async throws -> [DeliveryStatus: Int] {
        try await self.database.read { sql in
            let rows = try await sql.raw(
                """
                SELECT status, COUNT(*) AS n FROM deliveries WHERE endpoint_id = \(bind: endpointID)
                AND created_at >= \(bind: since.microseconds) AND created_at < \(bind: until.microseconds) GROUP BY status
                """
            ).all()
            var counts: [DeliveryStatus: Int] = [:]
            for row in rows {
                if let status = DeliveryStatus(rawValue: try row.string("status")) { counts[status] = try row.int("n") }
            }
            return counts
        }
    }

    /// Sends the message to the endpoint once more now (a manual attempt), whether or not its filters chose it.
    public func resend(organizationID: String, applicationID: String, messageID: String, endpointID: String) async throws {
        let existing: String? = try await self.database.read { sql in
            try await sql.raw(
                "SELECT id FROM deliveries WHERE message_id = \(bind: messageID) AND endpoint_id = \(bind: endpointID)"
            ).first()?.string("id")
        }
        if let existing {
            _ = try await self.replayDelivery(organizationID: organizationID, applicationID: applicationID, id: existing)
            return
        }
        try await self.database.writeQueuing { sql -> (Void, queued: Bool) in
            let endpoint = try await Self.endpoint(organizationID, applicationID, endpointID, sql)
            guard endpoint.status != .disabled else {
                throw TernError.conflict("The endpoint is disabled; enable it before resending messages to it.")
            }
            guard let row = try await sql.raw("SELECT * FROM messages WHERE id = \(bind: messageID)").first() else {
                throw TernError.notFound("Message not found")
            }
            try await Self.insertDeliveries([(try Self.message(row), endpoint.id, organizationID)], trigger: .manual, now: .now(), sql)
            return ((), queued: true)
        }
    }

    /// Records a background task of the Svix API (it ran to its end within the request).
    public func recordBackgroundTask(applicationID: String, task: String, data: [String: JSONValue]) async throws -> BackgroundTask {
        let now = Timestamp.now()
        let record = BackgroundTask(id: Identifier.make("qtask"), task: task, status: "finished", data: data, updatedAt: now)
        try await self.database.write { sql in
            try await sql.raw(
                """
                INSERT INTO background_tasks (id, application_id, task, status, data, created_at, updated_at) VALUES (\(bind: record.id),
                \(bind: applicationID), \(bind: task), \(bind: record.status), \(bind: JSONColumn.encode(data)), \(bind: now.microseconds),
                \(bind: now.microseconds))
                """
            ).run()
        }
        return record
    }

    public func backgroundTask(applicationID: String, id: String) async throws -> BackgroundTask {
        try await self.database.read { sql in
            guard
                let row = try await sql.raw(
                    "SELECT * FROM background_tasks WHERE id = \(bind: id) AND application_id = \(bind: applicationID)"
                ).first()
            else { throw TernError.notFound("Background task not found") }
            return BackgroundTask(
                id: try row.string("id"), task: try row.string("task"), status: try row.string("status"),
                data: try JSONColumn.decode([String: JSONValue].self, try row.string("data")) ?? [:], updatedAt: try row.timestamp("updated_at")
            )
        }
    }
}

/// A background task of the Svix API.
public struct BackgroundTask: Sendable {
    public var id: String
    public var task: String
    public var status: String
    public var data: [String: JSONValue]
    public var updatedAt: Timestamp
}
