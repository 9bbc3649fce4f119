import Foundation

/// The events Tern sends about itself to an organization's operational endpoints.
public enum OperationalEventType: String, Sendable, CaseIterable, Codable {
    case endpointCreated = "endpoint.created"
    case endpointUpdated = "endpoint.updated"
    case endpointDeleted = "endpoint.deleted"
    case endpointDisabled = "endpoint.disabled"
    case endpointEnabled = "endpoint.enabled"
    /// Consecutive failures reached 50% or 90% of the breaker threshold.
    case endpointFailing = "endpoint.failing"
    case attemptExhausted = "message.attempt.exhausted"
    /// A delivery whose earlier attempt failed succeeded.
    case attemptRecovered = "message.attempt.recovered"

    /// The name on the Svix API: Svix calls the failing streak `message.attempt.failing`.
    public var svixName: String { self == .endpointFailing ? "message.attempt.failing" : self.rawValue }

    public init?(svixName: String) {
        if svixName == "message.attempt.failing" {
            self = .endpointFailing
        } else if let type = OperationalEventType(rawValue: svixName), type != .endpointFailing {
            self = type
        } else {
            return nil
        }
    }
}

/// Which payload shape an operational endpoint receives: Tern's (`docs/openapi.yaml`) or Svix's operational-webhook
/// shapes (camelCase `data` with `appId`, `endpointId`, …), so code written for Svix runs unchanged.
public enum OperationalPayloadFormat: String, Sendable, Codable, CaseIterable {
    case native
    case svix
}

/// One thing that happened to a customer endpoint or to one of its deliveries, as operational endpoints hear it.
public struct OperationalEvent: Sendable, Equatable {
    /// The attempt a message event is about.
    public struct Attempt: Sendable, Equatable {
        public var id: String
        public var statusCode: Int?
        public var error: String?
        public var at: Timestamp

        public init(id: String, statusCode: Int?, error: String?, at: Timestamp) {
            self.id = id
            self.statusCode = statusCode
            self.error = error
            self.at = at
        }
    }

    public var type: OperationalEventType
    public var organizationID: String
    public var applicationID: String
    public var tenantID: String
    public var endpointID: String
    public var endpointUID: String?
    public var at: Timestamp
    /// `endpoint.disabled`: `circuit_breaker`, `gone` or `manual`, and since when the endpoint had been failing.
    public var reason: String?
    public var failSince: Timestamp?
    /// `endpoint.failing`: the failures in a row and the breaker threshold.
    public var consecutiveFailures: Int?
    public var threshold: Int?
    /// Message events: the message, its delivery to the endpoint, and the attempt that caused the event.
    public var messageID: String?
    public var eventID: String?
    public var deliveryID: String?
    public var lastAttempt: Attempt?

    public init(
        type: OperationalEventType, organizationID: String, applicationID: String, tenantID: String, endpointID: String, endpointUID: String?,
        at: Timestamp = .now()
    ) {
        self.type = type
        self.organizationID = organizationID
        self.applicationID = applicationID
        self.tenantID = tenantID
        self.endpointID = endpointID
        self.endpointUID = endpointUID
        self.at = at
    }

    /// The payload in Tern's shape: `{type, timestamp, data}` with snake_case members.
    public func nativePayload() -> JSONValue {
        var data: [String: JSONValue] = [
            "application_id": .string(self.applicationID), "tenant_id": .string(self.tenantID), "endpoint_id": .string(self.endpointID),
            "endpoint_uid": Self.string(self.endpointUID),
        ]
        switch self.type {
        case .endpointDisabled:
            data["reason"] = Self.string(self.reason)
            data["fail_since"] = Self.string(self.failSince?.description)
        case .endpointFailing:
            data["consecutive_failures"] = Self.number(self.consecutiveFailures)
            data["threshold"] = Self.number(self.threshold)
            self.addMessage(to: &data)
        case .attemptExhausted, .attemptRecovered:
            self.addMessage(to: &data)
        case .endpointCreated, .endpointUpdated, .endpointDeleted, .endpointEnabled:
            break
        }
        return .object(["type": .string(self.type.rawValue), "timestamp": .string(self.at.description), "data": .object(data)])
    }

    func addMessage(to data: inout [String: JSONValue]) {
        data["message_id"] = Self.string(self.messageID)
        data["event_id"] = Self.string(self.eventID)
        data["delivery_id"] = Self.string(self.deliveryID)
        data["last_attempt"] =
            self.lastAttempt.map { attempt in
                .object([
                    "id": .string(attempt.id), "status_code": Self.number(attempt.statusCode), "error": Self.string(attempt.error),
                    "at": .string(attempt.at.description),
                ])
            } ?? .null
    }

    /// The payload in Svix's operational-webhook shape. `appID` is the tenant's Svix application id and `appUID` its
    /// uid (nil when the tenant was created without one).
    public func svixPayload(appID: String, appUID: String?) -> JSONValue {
        var data: [String: JSONValue] = [
            "appId": .string(appID), "appUid": Self.string(appUID), "endpointId": .string(self.endpointID),
        ]
        switch self.type {
        case .endpointCreated, .endpointUpdated, .endpointDeleted, .endpointEnabled:
            data["endpointUid"] = Self.string(self.endpointUID)
        case .endpointDisabled:
            data["endpointUid"] = Self.string(self.endpointUID)
            data["failSince"] = Self.string(self.failSince?.description)
            data["trigger"] = .string(self.reason == CircuitBreaker.Reason.manual ? "manual" : "automatic")
        case .endpointFailing, .attemptExhausted, .attemptRecovered:
            data["msgId"] = Self.string(self.messageID)
            data["msgEventId"] = Self.string(self.eventID)
            if let attempt = self.lastAttempt {
                data["lastAttempt"] = .object([
                    "id": .string(attempt.id), "responseStatusCode": .number(Double(attempt.statusCode ?? 0)),
                    "timestamp": .string(attempt.at.description),
                ])
            }
        }
        return .object(["type": .string(self.type.svixName), "timestamp": .string(self.at.description), "data": .object(data)])
    }

    static func string(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
    static func number(_ value: Int?) -> JSONValue { value.map { JSONValue.number(Double($0)) } ?? .null }
}

/// When a failing streak is worth a word: `endpoint.failing` is sent once when the endpoint's consecutive failures
/// reach half of the breaker threshold and once at 90%, each below the threshold itself (which disables).
public enum FailingStreak {
    /// The failure counts that send `endpoint.failing` for `threshold`.
    public static func marks(threshold: Int) -> [Int] {
        let half = max(1, (threshold + 1) / 2)
        let ninety = max(1, (threshold * 9 + 9) / 10)
        return Array(Set([half, ninety])).filter { $0 < threshold }.sorted()
    }

    /// True when the failure just counted (`consecutiveFailures`, this one included) reaches a mark.
    public static func reachesMark(consecutiveFailures: Int, threshold: Int) -> Bool {
        Self.marks(threshold: threshold).contains(consecutiveFailures)
    }
}

/// An organization's endpoint for operational events: it hears the events of one application (or all of them),
/// optionally only some event types, in the native or the Svix shape.
public struct OperationalEndpoint: Sendable, Equatable, Encodable {
    public var endpoint: Endpoint
    /// The application it hears; nil for all the organization's applications.
    public var watchedApplicationID: String?
    public var format: OperationalPayloadFormat

    public init(endpoint: Endpoint, watchedApplicationID: String?, format: OperationalPayloadFormat) {
        self.endpoint = endpoint
        self.watchedApplicationID = watchedApplicationID
        self.format = format
    }

    /// The event types it hears: `endpoint.events`, where empty means all.
    public func hears(_ event: OperationalEvent) -> Bool {
        if let watched = self.watchedApplicationID, watched != event.applicationID { return false }
        return self.endpoint.events.isEmpty || self.endpoint.events.contains(event.type.rawValue)
    }

    enum CodingKeys: String, CodingKey {
        case id, uid, url, description, events, headers, metadata, status, disabled, format
        case applicationID = "application_id"
        case disabledReason = "disabled_reason"
        case disabledAt = "disabled_at"
        case throttleRate = "throttle_rate"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    /// `/v1/operational-endpoints` shows `application_id` as the watched application (null: all of them).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        let endpoint = self.endpoint
        try container.encode(endpoint.id, forKey: .id)
        try container.encodeOrNull(endpoint.uid, forKey: .uid)
        try container.encode(endpoint.url, forKey: .url)
        try container.encodeOrNull(endpoint.description, forKey: .description)
        try container.encodeOrNull(self.watchedApplicationID, forKey: .applicationID)
        try container.encode(endpoint.events, forKey: .events)
        try container.encode(endpoint.headers, forKey: .headers)
        try container.encode(endpoint.metadata, forKey: .metadata)
        try container.encode(endpoint.status, forKey: .status)
        try container.encode(endpoint.status == .disabled, forKey: .disabled)
        try container.encodeOrNull(endpoint.disabledReason, forKey: .disabledReason)
        try container.encodeOrNull(endpoint.disabledAt, forKey: .disabledAt)
        try container.encodeOrNull(endpoint.throttleRate, forKey: .throttleRate)
        try container.encode(self.format, forKey: .format)
        try container.encode(endpoint.createdAt, forKey: .createdAt)
        try container.encode(endpoint.updatedAt, forKey: .updatedAt)
    }
}
