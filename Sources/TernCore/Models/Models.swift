import Foundation

/// A plan: the limits an organization works within. `nil` means unlimited.
public struct Plan: Sendable, Equatable, Encodable {
    public var id: String
    public var name: String
    public var maxApplications: Int?
    public var maxEndpoints: Int?
    public var maxMessagesPerMonth: Int?
    public var rateLimitPerMinute: Int?
    public var rateLimitBurst: Int?
    public var maxPayloadBytes: Int?
    /// Days a payload is kept (nil: until its message is pruned); a publish may ask for fewer.
    public var payloadRetentionDays: Int? = 30

    public init(
        id: String, name: String, maxApplications: Int?, maxEndpoints: Int?, maxMessagesPerMonth: Int?,
        rateLimitPerMinute: Int?, rateLimitBurst: Int?, maxPayloadBytes: Int?
    ) {
        self.id = id
        self.name = name
        self.maxApplications = maxApplications
        self.maxEndpoints = maxEndpoints
        self.maxMessagesPerMonth = maxMessagesPerMonth
        self.rateLimitPerMinute = rateLimitPerMinute
        self.rateLimitBurst = rateLimitBurst
        self.maxPayloadBytes = maxPayloadBytes
    }

    enum CodingKeys: String, CodingKey {
        case id, name
        case maxApplications = "max_applications"
        case maxEndpoints = "max_endpoints"
        case maxMessagesPerMonth = "max_messages_per_month"
        case rateLimitPerMinute = "rate_limit_per_minute"
        case rateLimitBurst = "rate_limit_burst"
        case maxPayloadBytes = "max_payload_bytes"
        case payloadRetentionDays = "payload_retention_days"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.id, forKey: .id)
        try container.encode(self.name, forKey: .name)
        try container.encodeOrNull(self.maxApplications, forKey: .maxApplications)
        try container.encodeOrNull(self.maxEndpoints, forKey: .maxEndpoints)
        try container.encodeOrNull(self.maxMessagesPerMonth, forKey: .maxMessagesPerMonth)
        try container.encodeOrNull(self.rateLimitPerMinute, forKey: .rateLimitPerMinute)
        try container.encodeOrNull(self.rateLimitBurst, forKey: .rateLimitBurst)
        try container.encodeOrNull(self.maxPayloadBytes, forKey: .maxPayloadBytes)
        try container.encodeOrNull(self.payloadRetentionDays, forKey: .payloadRetentionDays)
    }
}

/// Whether an organization may use the API.
public enum OrganizationStatus: String, Sendable, Codable, CaseIterable {
    case active, suspended
}

/// A customer of Tern: a SaaS platform with its own keys, applications and plan.
public struct Organization: Sendable, Equatable, Encodable {
    public var id: String
    public var name: String
    public var plan: String
    public var status: OrganizationStatus
    public var createdAt: Timestamp
    public var updatedAt: Timestamp

    public init(id: String, name: String, plan: String, status: OrganizationStatus, createdAt: Timestamp, updatedAt: Timestamp) {
        self.id = id
        self.name = name
        self.plan = plan
        self.status = status
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, name, plan, status
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }
}

/// An API key as listed: never its secret.
public struct APIKey: Sendable, Equatable, Encodable {
    public var id: String
    public var organizationID: String?
    public var name: String
    public var prefix: String
    public var scopes: [String]
    public var applicationID: String?
    public var createdAt: Timestamp
    public var lastUsedAt: Timestamp?
    public var revokedAt: Timestamp?

    public init(
        id: String, organizationID: String?, name: String, prefix: String, scopes: [String], applicationID: String?,
        createdAt: Timestamp, lastUsedAt: Timestamp?, revokedAt: Timestamp?
    ) {
        self.id = id
        self.organizationID = organizationID
        self.name = name
        self.prefix = prefix
        self.scopes = scopes
        self.applicationID = applicationID
        self.createdAt = createdAt
        self.lastUsedAt = lastUsedAt
        self.revokedAt = revokedAt
    }

    enum CodingKeys: String, CodingKey {
        case id
        case organizationID = "organization_id"
        case name, prefix, scopes
        case applicationID = "application_id"
        case createdAt = "created_at"
        case lastUsedAt = "last_used_at"
        case revokedAt = "revoked_at"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.id, forKey: .id)
        try container.encodeOrNull(self.organizationID, forKey: .organizationID)
        try container.encode(self.name, forKey: .name)
        try container.encode(self.prefix, forKey: .prefix)
        try container.encode(self.scopes, forKey: .scopes)
        try container.encodeOrNull(self.applicationID, forKey: .applicationID)
        try container.encode(self.createdAt, forKey: .createdAt)
        try container.encodeOrNull(self.lastUsedAt, forKey: .lastUsedAt)
        try container.encodeOrNull(self.revokedAt, forKey: .revokedAt)
    }
}

/// Circuit-breaker policy of an application.
public struct CircuitBreakerPolicy: Sendable, Equatable, Codable {
    /// Consecutive failed attempts after which an endpoint is disabled.
    public var failureThreshold: Int

    public static let defaultFailureThreshold = 20

    public init(failureThreshold: Int = CircuitBreakerPolicy.defaultFailureThreshold) {
        self.failureThreshold = failureThreshold
    }

    enum CodingKeys: String, CodingKey {
        case failureThreshold = "failure_threshold"
    }
}

/// Portal settings of an application: who may embed it and how it looks.
public struct PortalSettings: Sendable, Equatable, Codable {
    public var allowedOrigins: [String]
    public var brandColor: String?
    public var logoURL: String?

    public init(allowedOrigins: [String] = [], brandColor: String? = nil, logoURL: String? = nil) {
        self.allowedOrigins = allowedOrigins
        self.brandColor = brandColor
        self.logoURL = logoURL
    }

    enum CodingKeys: String, CodingKey {
        case allowedOrigins = "allowed_origins"
        case brandColor = "brand_color"
        case logoURL = "logo_url"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.allowedOrigins, forKey: .allowedOrigins)
        try container.encodeOrNull(self.brandColor, forKey: .brandColor)
        try container.encodeOrNull(self.logoURL, forKey: .logoURL)
    }
}

/// The delays, in whole seconds, between attempts after the first, immediate one.
public enum RetrySchedule {
    /// 5 s, 5 min, 30 min, 2 h, 5 h, 10 h: seven attempts in all.
    public static let standard: [Int] = [5, 300, 1800, 7200, 18000, 36000]
    /// At most this many retries.
    public static let maxRetries = 50
    /// At most this long between two attempts (7 days).
    public static let maxDelaySeconds = 7 * 24 * 3600
}

/// The names of the headers that carry a delivery's id, timestamp and signature.
public enum WebhookHeaderStyle: String, Sendable, Codable, CaseIterable {
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature` (Standard Webhooks).
    case standard
    /// `svix-id`, `svix-timestamp`, `svix-signature`, for receivers written for Svix.
    case svix
    /// Both sets, with the same values.
    case both

    /// The header name prefixes a delivery carries.
    public var prefixes: [String] {
        switch self {
        case .standard: ["webhook"]
        case .svix: ["svix"]
        case .both: ["webhook", "svix"]
        }
    }
}

/// An application: one product of an organization that publishes events to its tenants' endpoints.
public struct Application: Sendable, Equatable, Encodable {
    public var id: String
    public var organizationID: String
    public var name: String
    public var retrySchedule: [Int]
    public var circuitBreaker: CircuitBreakerPolicy
    public var portal: PortalSettings
    public var allowUnregisteredEventTypes: Bool
    public var webhookHeaders: WebhookHeaderStyle
    public var createdAt: Timestamp
    public var updatedAt: Timestamp
    /// With tracing on, each attempt carries its W3C `traceparent` to the receiver.
    public var sendTraceparent = false

    public init(
        id: String, organizationID: String, name: String, retrySchedule: [Int], circuitBreaker: CircuitBreakerPolicy,
        portal: PortalSettings, allowUnregisteredEventTypes: Bool, webhookHeaders: WebhookHeaderStyle = .standard,
        createdAt: Timestamp, updatedAt: Timestamp
    ) {
        self.webhookHeaders = webhookHeaders
        self.id = id
        self.organizationID = organizationID
        self.name = name
        self.retrySchedule = retrySchedule
        self.circuitBreaker = circuitBreaker
        self.portal = portal
        self.allowUnregisteredEventTypes = allowUnregisteredEventTypes
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    enum CodingKeys: String, CodingKey {
        case id
        case organizationID = "organization_id"
        case name
        case retrySchedule = "retry_schedule"
        case circuitBreaker = "circuit_breaker"
        case portal
        case allowUnregisteredEventTypes = "allow_unregistered_event_types"
        case webhookHeaders = "webhook_headers"
        case sendTraceparent = "send_traceparent"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }
}

/// A kind of event an application publishes, e.g. `order.created`.
public struct EventType: Sendable, Equatable, Encodable {
    public var applicationID: String
    public var name: String
    public var description: String?
    public var schema: JSONValue?
    public var example: JSONValue?
    public var archived: Bool
    public var createdAt: Timestamp
    public var updatedAt: Timestamp
    /// JSON Schemas by version (`{"1": {…}}`); `schema` is the one of the highest version.
    public var schemas: [String: JSONValue]?
    public var deprecated: Bool
    public var groupName: String?
    public var featureFlags: [String]?

    public init(
        applicationID: String, name: String, description: String?, schema: JSONValue?, example: JSONValue?, archived: Bool,
        createdAt: Timestamp, updatedAt: Timestamp, schemas: [String: JSONValue]? = nil, deprecated: Bool = false,
        groupName: String? = nil, featureFlags: [String]? = nil
    ) {
        self.schemas = schemas
        self.deprecated = deprecated
        self.groupName = groupName
        self.featureFlags = featureFlags
        self.applicationID = applicationID
        self.name = name
        self.description = description
        self.schema = schema
        self.example = example
        self.archived = archived
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    enum CodingKeys: String, CodingKey {
        case applicationID = "application_id"
        case name, description, schema, schemas, example, archived, deprecated
        case groupName = "group_name"
        case featureFlags = "feature_flags"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.name, forKey: .name)
        try container.encode(self.applicationID, forKey: .applicationID)
        try container.encodeOrNull(self.description, forKey: .description)
        try container.encodeOrNull(self.schema, forKey: .schema)
        try container.encodeOrNull(self.schemas, forKey: .schemas)
        try container.encodeOrNull(self.example, forKey: .example)
        try container.encode(self.archived, forKey: .archived)
        try container.encode(self.deprecated, forKey: .deprecated)
        try container.encodeOrNull(self.groupName, forKey: .groupName)
        try container.encodeOrNull(self.featureFlags, forKey: .featureFlags)
        try container.encode(self.createdAt, forKey: .createdAt)
        try container.encode(self.updatedAt, forKey: .updatedAt)
    }
}

/// Whether an endpoint receives deliveries.
/// How an endpoint's deliveries are ordered.
public enum EndpointOrdering: String, Sendable, Codable, CaseIterable {
    /// As fast as they come, in parallel.
    case none
    /// In publish order, the next only once the previous is delivered or exhausted.
    case fifo

    /// The line of a FIFO endpoint's delivery: the ordering key's value in the payload (`""` for none or a missing one).
    public static func line(key: String?, payload: JSONValue) -> String {
        guard let key, key.hasPrefix("/") else { return "" }
        var current = payload
        for token in key.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            let name = token.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            switch current {
            case .object(let members):
                guard let next = members[name] else { return "" }
                current = next
            case .array(let items):
                guard let index = Int(name), items.indices.contains(index) else { return "" }
                current = items[index]
            default: return ""
            }
        }
        switch current {
        case .string(let text): return text
        case .null: return ""
        default: return (try? JSONEncoder.sorted.encode(current)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        }
    }
}

public enum EndpointStatus: String, Sendable, Codable, CaseIterable {
    /// Receives deliveries.
    case active
    /// Deliveries queue up and flow on resume.
    case paused
    /// Nothing is sent.
    case disabled
}

/// A tenant's URL that receives the events it subscribes to.
public struct Endpoint: Sendable, Equatable, Encodable {
    public var id: String
    public var applicationID: String
    public var tenantID: String
    public var name: String?
    public var description: String?
    public var url: String
    public var events: [String]
    public var headers: [String: String]
    public var timeoutSeconds: Int
    public var metadata: [String: JSONValue]
    public var status: EndpointStatus
    public var disabledReason: String?
    public var pausedAt: Timestamp?
    public var disabledAt: Timestamp?
    public var createdAt: Timestamp
    public var updatedAt: Timestamp
    /// The caller's key of the endpoint within its application: every `{endpoint_id}` accepts it.
    public var uid: String?
    /// When set, the endpoint receives only messages that share one of these channels.
    public var channels: [String]?
    /// The most deliveries per second the endpoint asks for (Svix `throttleRate`).
    public var throttleRate: Int?
    /// Only messages that match it reach the endpoint (`RoutingFilter`); nil for all.
    public var filter: JSONValue?
    /// With `throttleRate`, the `rate_limit`'s burst (nil: the rate).
    public var rateLimitBurst: Int?
    /// `fifo`: one delivery at a time, in publish order, per line (the `orderingKey`'s value in the payload).
    public var ordering: EndpointOrdering = .none
    /// A JSON pointer into the payload (`/customer_id`) whose value names the line; nil: one line for the endpoint.
    public var orderingKey: String?
    /// What may be shown of the receiver authentication (`EndpointAuth.shown`), when the endpoint has one.
    public var auth: JSONValue?
    /// What may be shown of the TLS material (`EndpointTLS.shown`), when the endpoint has some.
    public var tls: JSONValue?
    /// The `whpk_` key receivers verify with, when deliveries are signed with Ed25519.
    public var publicKey: String?

    public var signing: EndpointSigning { self.publicKey == nil ? .hmac : .ed25519 }

    /// The limit on deliveries a second, when the endpoint has one.
    public var rateLimit: EndpointRateLimit? {
        self.throttleRate.map { EndpointRateLimit(perSecond: $0, burst: self.rateLimitBurst) }
    }

    public static let defaultTimeoutSeconds = 10
    /// At most this many channels on an endpoint or a message.
    public static let maxChannels = 10

    public init(
        id: String, applicationID: String, tenantID: String, name: String?, description: String?, url: String, events: [String],
        headers: [String: String], timeoutSeconds: Int, metadata: [String: JSONValue], status: EndpointStatus,
        disabledReason: String?, pausedAt: Timestamp?, disabledAt: Timestamp?, createdAt: Timestamp, updatedAt: Timestamp,
        uid: String? = nil, channels: [String]? = nil, throttleRate: Int? = nil, filter: JSONValue? = nil, rateLimitBurst: Int? = nil
    ) {
        self.rateLimitBurst = rateLimitBurst
        self.filter = filter
        self.uid = uid
        self.channels = channels
        self.throttleRate = throttleRate
        self.id = id
        self.applicationID = applicationID
        self.tenantID = tenantID
        self.name = name
        self.description = description
        self.url = url
        self.events = events
        self.headers = headers
        self.timeoutSeconds = timeoutSeconds
        self.metadata = metadata
        self.status = status
        self.disabledReason = disabledReason
        self.pausedAt = pausedAt
        self.disabledAt = disabledAt
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, uid, channels, filter
        case rateLimit = "rate_limit"
        case ordering
        case orderingKey = "ordering_key"
        case auth, tls, signing
        case publicKey = "public_key"
        case applicationID = "application_id"
        case tenantID = "tenant_id"
        case name, description, url, events, headers
        case timeoutSeconds = "timeout_seconds"
        case metadata, status
        case disabledReason = "disabled_reason"
        case pausedAt = "paused_at"
        case disabledAt = "disabled_at"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.id, forKey: .id)
        try container.encodeOrNull(self.uid, forKey: .uid)
        try container.encode(self.applicationID, forKey: .applicationID)
        try container.encode(self.tenantID, forKey: .tenantID)
        try container.encodeOrNull(self.name, forKey: .name)
        try container.encodeOrNull(self.description, forKey: .description)
        try container.encode(self.url, forKey: .url)
        try container.encode(self.events, forKey: .events)
        try container.encodeOrNull(self.channels, forKey: .channels)
        try container.encodeOrNull(self.filter, forKey: .filter)
        try container.encodeOrNull(
            self.rateLimit.map { JSONValue.object(["per_second": .number(Double($0.perSecond)), "burst": .number(Double($0.burst))]) },
            forKey: .rateLimit)
        try container.encode(self.ordering, forKey: .ordering)
        try container.encodeOrNull(self.orderingKey, forKey: .orderingKey)
        try container.encodeOrNull(self.auth, forKey: .auth)
        try container.encodeOrNull(self.tls, forKey: .tls)
        try container.encode(self.signing, forKey: .signing)
        try container.encodeOrNull(self.publicKey, forKey: .publicKey)
        try container.encode(self.headers, forKey: .headers)
        try container.encode(self.timeoutSeconds, forKey: .timeoutSeconds)
        try container.encode(self.metadata, forKey: .metadata)
        try container.encode(self.status, forKey: .status)
        try container.encodeOrNull(self.disabledReason, forKey: .disabledReason)
        try container.encodeOrNull(self.pausedAt, forKey: .pausedAt)
        try container.encodeOrNull(self.disabledAt, forKey: .disabledAt)
        try container.encode(self.createdAt, forKey: .createdAt)
        try container.encode(self.updatedAt, forKey: .updatedAt)
    }
}

/// A tenant of an application, as the tenants list shows it.
public struct TenantSummary: Sendable, Equatable, Encodable {
    public var tenantID: String
    public var endpointCount: Int
    public var name: String?
    public var metadata: [String: String]

    public init(tenantID: String, endpointCount: Int, name: String? = nil, metadata: [String: String] = [:]) {
        self.tenantID = tenantID
        self.endpointCount = endpointCount
        self.name = name
        self.metadata = metadata
    }

    enum CodingKeys: String, CodingKey {
        case tenantID = "tenant_id"
        case endpointCount = "endpoint_count"
        case name, metadata
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.tenantID, forKey: .tenantID)
        try container.encode(self.endpointCount, forKey: .endpointCount)
        try container.encodeOrNull(self.name, forKey: .name)
        try container.encode(self.metadata, forKey: .metadata)
    }
}

/// A tenant of an application: the id its endpoints and messages carry, with the name and metadata of its record.
/// A tenant known only from its endpoints or messages has no name, empty metadata and the first one's time.
public struct Tenant: Sendable, Equatable, Encodable {
    public var tenantID: String
    public var name: String?
    public var metadata: [String: String]
    public var endpointCount: Int
    public var createdAt: Timestamp
    public var updatedAt: Timestamp
    /// The tenant's id on the Svix API (`app_…`), once it has a record.
    public var svixID: String?
    /// Svix `throttleRate`, stored and echoed.
    public var throttleRate: Int?

    public init(
        tenantID: String, name: String?, metadata: [String: String], endpointCount: Int, createdAt: Timestamp, updatedAt: Timestamp,
        svixID: String? = nil, throttleRate: Int? = nil
    ) {
        self.svixID = svixID
        self.throttleRate = throttleRate
        self.tenantID = tenantID
        self.name = name
        self.metadata = metadata
        self.endpointCount = endpointCount
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    enum CodingKeys: String, CodingKey {
        case tenantID = "tenant_id"
        case name, metadata
        case endpointCount = "endpoint_count"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.tenantID, forKey: .tenantID)
        try container.encodeOrNull(self.name, forKey: .name)
        try container.encode(self.metadata, forKey: .metadata)
        try container.encode(self.endpointCount, forKey: .endpointCount)
        try container.encode(self.createdAt, forKey: .createdAt)
        try container.encode(self.updatedAt, forKey: .updatedAt)
    }
}

/// One limit and how much of it is used.
public struct UsageFigure: Sendable, Equatable, Encodable {
    public var used: Int
    public var limit: Int?

    public init(used: Int, limit: Int?) {
        self.used = used
        self.limit = limit
    }

    enum CodingKeys: String, CodingKey { case used, limit }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.used, forKey: .used)
        try container.encodeOrNull(self.limit, forKey: .limit)
    }
}

/// An organization's use of its plan.
public struct Usage: Sendable, Equatable, Encodable {
    public var organizationID: String
    public var plan: String
    public var applications: UsageFigure
    public var endpoints: UsageFigure
    public var messagesThisMonth: UsageFigure
    /// The plan's limits that are not counted against a total: the publish rate per tenant and the payload size.
    public var rateLimitPerMinute: Int?
    public var rateLimitBurst: Int?
    public var maxPayloadBytes: Int?

    public init(
        organizationID: String, plan: String, applications: UsageFigure, endpoints: UsageFigure, messagesThisMonth: UsageFigure,
        rateLimitPerMinute: Int? = nil, rateLimitBurst: Int? = nil, maxPayloadBytes: Int? = nil
    ) {
        self.organizationID = organizationID
        self.plan = plan
        self.applications = applications
        self.endpoints = endpoints
        self.messagesThisMonth = messagesThisMonth
        self.rateLimitPerMinute = rateLimitPerMinute
        self.rateLimitBurst = rateLimitBurst
        self.maxPayloadBytes = maxPayloadBytes
    }

    enum CodingKeys: String, CodingKey {
        case organizationID = "organization_id"
        case plan, usage, limits
    }
    enum LimitKeys: String, CodingKey {
        case rateLimitPerMinute = "rate_limit_per_minute"
        case rateLimitBurst = "rate_limit_burst"
        case maxPayloadBytes = "max_payload_bytes"
    }
    enum UsageKeys: String, CodingKey {
        case applications, endpoints
        case messagesThisMonth = "messages_this_month"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.organizationID, forKey: .organizationID)
        try container.encode(self.plan, forKey: .plan)
        var usage = container.nestedContainer(keyedBy: UsageKeys.self, forKey: .usage)
        try usage.encode(self.applications, forKey: .applications)
        try usage.encode(self.endpoints, forKey: .endpoints)
        try usage.encode(self.messagesThisMonth, forKey: .messagesThisMonth)
        var limits = container.nestedContainer(keyedBy: LimitKeys.self, forKey: .limits)
        try limits.encodeOrNull(self.rateLimitPerMinute, forKey: .rateLimitPerMinute)
        try limits.encodeOrNull(self.rateLimitBurst, forKey: .rateLimitBurst)
        try limits.encodeOrNull(self.maxPayloadBytes, forKey: .maxPayloadBytes)
    }
}

/// Checks a plan limit: throws `planLimitExceeded` when one more object of `kind` would pass `limit`.
public func checkPlanLimit(_ kind: String, used: Int, limit: Int?, plan: String) throws {
    if let limit, used >= limit {
        throw TernError.planLimitExceeded("The \(plan) plan allows \(limit) \(kind); this organization has \(used).")
    }
}
