import Foundation

/// Where a delivery stands. `pending`, `failed` and `replaying` are queued; `delivering` is leased by a worker;
/// `delivered` and `exhausted` (the dead-letter queue) are final until a replay.
public enum DeliveryStatus: String, Sendable, Codable, CaseIterable {
    case pending, delivering, delivered, failed, exhausted, replaying
}

/// Why an attempt was made: the retry schedule, or a person (replay, recover, test).
public enum AttemptTrigger: String, Sendable, Codable, CaseIterable {
    case scheduled, manual
}

/// An event published for a tenant. The payload is kept as the exact bytes the publisher sent.
public struct Message: Sendable, Equatable, Encodable {
    public var id: String
    public var applicationID: String
    public var tenantID: String
    public var eventType: String
    public var eventID: String?
    public var payload: String
    public var createdAt: Timestamp
    public var channels: [String]?
    public var tags: [String]?
    /// No attempt before this time.
    public var deliverAt: Timestamp?
    /// The inbound source it came through, and the request headers that source forwards (lower-case names).
    public var sourceID: String?
    public var headers: [String: String]?
    /// The payload was erased (on request, or past its retention): it shows as null.
    public var payloadExpunged = false
    /// The publishing request's W3C `traceparent`, when tracing is on: its attempts join that trace. Not shown.
    public var traceContext: String?

    public init(
        id: String, applicationID: String, tenantID: String, eventType: String, eventID: String?, payload: String, createdAt: Timestamp,
        channels: [String]? = nil, tags: [String]? = nil, deliverAt: Timestamp? = nil, sourceID: String? = nil, headers: [String: String]? = nil
    ) {
        self.deliverAt = deliverAt
        self.sourceID = sourceID
        self.headers = headers
        self.channels = channels
        self.tags = tags
        self.id = id
        self.applicationID = applicationID
        self.tenantID = tenantID
        self.eventType = eventType
        self.eventID = eventID
        self.payload = payload
        self.createdAt = createdAt
    }

    enum CodingKeys: String, CodingKey {
        case id
        case applicationID = "application_id"
        case tenantID = "tenant_id"
        case eventType = "event_type"
        case eventID = "event_id"
        case payload, channels, tags
        case createdAt = "created_at"
        case deliverAt = "deliver_at"
        case sourceID = "source_id"
        case headers
        case payloadExpunged = "payload_expunged"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.id, forKey: .id)
        try container.encode(self.applicationID, forKey: .applicationID)
        try container.encode(self.tenantID, forKey: .tenantID)
        try container.encode(self.eventType, forKey: .eventType)
        try container.encodeOrNull(self.eventID, forKey: .eventID)
        if self.payloadExpunged {
            try container.encodeNil(forKey: .payload)
        } else {
            try container.encode(try JSONDecoder().decode(JSONValue.self, from: Data(self.payload.utf8)), forKey: .payload)
        }
        try container.encode(self.payloadExpunged, forKey: .payloadExpunged)
        try container.encodeOrNull(self.channels, forKey: .channels)
        try container.encodeOrNull(self.tags, forKey: .tags)
        try container.encodeOrNull(self.deliverAt, forKey: .deliverAt)
        try container.encodeOrNull(self.sourceID, forKey: .sourceID)
        try container.encodeOrNull(self.headers, forKey: .headers)
        try container.encode(self.createdAt, forKey: .createdAt)
    }
}

/// One message on its way to one endpoint.
public struct Delivery: Sendable, Equatable, Encodable {
    public var id: String
    public var applicationID: String
    public var messageID: String
    public var endpointID: String
    public var tenantID: String
    public var eventType: String
    public var status: DeliveryStatus
    public var attemptCount: Int
    public var nextAttemptAt: Timestamp?
    public var lastStatusCode: Int?
    public var lastError: String?
    public var lastAttemptAt: Timestamp?
    public var deliveredAt: Timestamp?
    public var createdAt: Timestamp
    public var updatedAt: Timestamp

    public init(
        id: String, applicationID: String, messageID: String, endpointID: String, tenantID: String, eventType: String,
        status: DeliveryStatus, attemptCount: Int, nextAttemptAt: Timestamp?, lastStatusCode: Int?, lastError: String?,
        lastAttemptAt: Timestamp?, deliveredAt: Timestamp?, createdAt: Timestamp, updatedAt: Timestamp
    ) {
        self.id = id
        self.applicationID = applicationID
        self.messageID = messageID
        self.endpointID = endpointID
        self.tenantID = tenantID
        self.eventType = eventType
        self.status = status
        self.attemptCount = attemptCount
        self.nextAttemptAt = nextAttemptAt
        self.lastStatusCode = lastStatusCode
        self.lastError = lastError
        self.lastAttemptAt = lastAttemptAt
        self.deliveredAt = deliveredAt
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    enum CodingKeys: String, CodingKey {
        case id
        case applicationID = "application_id"
        case messageID = "message_id"
        case endpointID = "endpoint_id"
        case tenantID = "tenant_id"
        case eventType = "event_type"
        case status
        case attemptCount = "attempt_count"
        case nextAttemptAt = "next_attempt_at"
        case lastStatusCode = "last_status_code"
        case lastError = "last_error"
        case lastAttemptAt = "last_attempt_at"
        case deliveredAt = "delivered_at"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.id, forKey: .id)
        try container.encode(self.applicationID, forKey: .applicationID)
        try container.encode(self.messageID, forKey: .messageID)
        try container.encode(self.endpointID, forKey: .endpointID)
        try container.encode(self.tenantID, forKey: .tenantID)
        try container.encode(self.eventType, forKey: .eventType)
        try container.encode(self.status, forKey: .status)
        try container.encode(self.attemptCount, forKey: .attemptCount)
        // While a worker holds the delivery, next_attempt_at is its lease; clients see no time then.
        try container.encodeOrNull(self.status == .delivering ? nil : self.nextAttemptAt, forKey: .nextAttemptAt)
        try container.encodeOrNull(self.lastStatusCode, forKey: .lastStatusCode)
        try container.encodeOrNull(self.lastError, forKey: .lastError)
        try container.encodeOrNull(self.lastAttemptAt, forKey: .lastAttemptAt)
        try container.encodeOrNull(self.deliveredAt, forKey: .deliveredAt)
        try container.encode(self.createdAt, forKey: .createdAt)
        try container.encode(self.updatedAt, forKey: .updatedAt)
    }
}

/// One HTTP request made for a delivery, and what came back.
public struct Attempt: Sendable, Equatable, Encodable {
    public var id: String
    public var deliveryID: String
    public var messageID: String
    public var endpointID: String
    public var url: String
    public var requestHeaders: [String: String]
    public var statusCode: Int?
    public var responseBody: String?
    public var durationMS: Int
    public var error: String?
    public var trigger: AttemptTrigger
    public var createdAt: Timestamp

    /// Response bodies are kept up to this many bytes.
    public static let maxResponseBodyBytes = 4096

    public init(
        id: String, deliveryID: String, messageID: String, endpointID: String, url: String, requestHeaders: [String: String],
        statusCode: Int?, responseBody: String?, durationMS: Int, error: String?, trigger: AttemptTrigger, createdAt: Timestamp
    ) {
        self.id = id
        self.deliveryID = deliveryID
        self.messageID = messageID
        self.endpointID = endpointID
        self.url = url
        self.requestHeaders = requestHeaders
        self.statusCode = statusCode
        self.responseBody = responseBody
        self.durationMS = durationMS
        self.error = error
        self.trigger = trigger
        self.createdAt = createdAt
    }

    enum CodingKeys: String, CodingKey {
        case id
        case deliveryID = "delivery_id"
        case messageID = "message_id"
        case endpointID = "endpoint_id"
        case url
        case requestHeaders = "request_headers"
        case statusCode = "status_code"
        case responseBody = "response_body"
        case durationMS = "duration_ms"
        case error, trigger
        case createdAt = "created_at"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.id, forKey: .id)
        try container.encode(self.deliveryID, forKey: .deliveryID)
        try container.encode(self.messageID, forKey: .messageID)
        try container.encode(self.endpointID, forKey: .endpointID)
        try container.encode(self.url, forKey: .url)
        try container.encode(self.requestHeaders, forKey: .requestHeaders)
        try container.encodeOrNull(self.statusCode, forKey: .statusCode)
        try container.encodeOrNull(self.responseBody, forKey: .responseBody)
        try container.encode(self.durationMS, forKey: .durationMS)
        try container.encodeOrNull(self.error, forKey: .error)
        try container.encode(self.trigger, forKey: .trigger)
        try container.encode(self.createdAt, forKey: .createdAt)
    }

    /// The first 4 KB of a response body, cut at a character boundary, a NUL (which PostgreSQL cannot store in text)
    /// kept as U+FFFD, as bytes that are not UTF-8 are.
    public static func truncatedBody(_ bytes: some Collection<UInt8>) -> String {
        let kept = Array(bytes.prefix(Self.maxResponseBodyBytes))
        var text = String(decoding: kept, as: UTF8.self)
        // A multi-byte character cut in half decodes to U+FFFD at the end; drop it.
        if bytes.count > Self.maxResponseBodyBytes, text.hasSuffix("\u{FFFD}") { text.removeLast() }
        if kept.contains(0) { text = text.replacingOccurrences(of: "\u{0}", with: "\u{FFFD}") }
        return text
    }
}

/// An entry of the audit log: who did what to which object.
public struct AuditEntry: Sendable, Equatable, Encodable {
    public var id: String
    public var organizationID: String
    public var actorType: String
    public var actorID: String?
    public var action: String
    public var entityType: String
    public var entityID: String
    public var summary: [String: JSONValue]
    public var createdAt: Timestamp

    public init(
        id: String = Identifier.make("aud"), organizationID: String, actorType: String, actorID: String?, action: String,
        entityType: String, entityID: String, summary: [String: JSONValue], createdAt: Timestamp = .now()
    ) {
        self.id = id
        self.organizationID = organizationID
        self.actorType = actorType
        self.actorID = actorID
        self.action = action
        self.entityType = entityType
        self.entityID = entityID
        self.summary = summary
        self.createdAt = createdAt
    }

    enum CodingKeys: String, CodingKey {
        case id
        case organizationID = "organization_id"
        case actor, action
        case entityType = "entity_type"
        case entityID = "entity_id"
        case summary
        case createdAt = "created_at"
    }

    enum ActorKeys: String, CodingKey { case type, id }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.id, forKey: .id)
        try container.encode(self.organizationID, forKey: .organizationID)
        var actor = container.nestedContainer(keyedBy: ActorKeys.self, forKey: .actor)
        try actor.encode(self.actorType, forKey: .type)
        try actor.encodeOrNull(self.actorID, forKey: .id)
        try container.encode(self.action, forKey: .action)
        try container.encode(self.entityType, forKey: .entityType)
        try container.encode(self.entityID, forKey: .entityID)
        try container.encode(self.summary, forKey: .summary)
        try container.encode(self.createdAt, forKey: .createdAt)
    }
}
