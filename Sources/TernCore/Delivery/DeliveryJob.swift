import Foundation

/// A claimed delivery with everything a worker needs to send it. Holds opened secrets: never log it whole.
public struct DeliveryJob: Sendable {
    public var deliveryID: String
    public var messageID: String
    public var endpointID: String
    public var organizationID: String
    public var applicationID: String
    public var tenantID: String
    public var eventType: String
    public var payload: String
    public var url: String
    public var headers: [String: String]
    public var timeoutSeconds: Int
    /// The current secret, then a rotated-out one still within its 24 hours.
    public var secrets: [String]
    /// Attempts made before this one.
    public var attemptCount: Int
    public var trigger: AttemptTrigger
    public var retrySchedule: [Int]
    public var failureThreshold: Int
    /// Proves this worker still holds the delivery when it records the attempt.
    public var leaseToken: String
    /// How often an earlier holder's lease ran out before it recorded an attempt (so this is a resend).
    public var leaseExpiries: Int
    /// Which names carry the id, timestamp and signature.
    public var headerStyle: WebhookHeaderStyle
    /// An operational webhook (an event about Tern itself): its failures raise no operational events.
    public var operational: Bool
    /// The endpoint's rate limit, whose shared state a slow-down answer changes.
    public var rateLimit: EndpointRateLimit?
    /// How to authenticate to the receiver, opened from its sealed form.
    public var auth: EndpointAuth?
    /// The client certificate and key, and the CAs to trust, when the endpoint has them.
    public var tls: EndpointTLS?
    /// The publishing request's `traceparent`, parent of the attempt's span.
    public var traceContext: String?
    /// The application sends the attempt's `traceparent` to the receiver.
    public var sendTraceparent = false

    public init(
        deliveryID: String, messageID: String, endpointID: String, organizationID: String, applicationID: String, tenantID: String,
        eventType: String, payload: String, url: String, headers: [String: String], timeoutSeconds: Int, secrets: [String],
        attemptCount: Int, trigger: AttemptTrigger, retrySchedule: [Int], failureThreshold: Int, leaseToken: String, leaseExpiries: Int,
        headerStyle: WebhookHeaderStyle = .standard, operational: Bool = false, rateLimit: EndpointRateLimit? = nil
    ) {
        self.rateLimit = rateLimit
        self.operational = operational
        self.headerStyle = headerStyle
        self.deliveryID = deliveryID
        self.messageID = messageID
        self.endpointID = endpointID
        self.organizationID = organizationID
        self.applicationID = applicationID
        self.tenantID = tenantID
        self.eventType = eventType
        self.payload = payload
        self.url = url
        self.headers = headers
        self.timeoutSeconds = timeoutSeconds
        self.secrets = secrets
        self.attemptCount = attemptCount
        self.trigger = trigger
        self.retrySchedule = retrySchedule
        self.failureThreshold = failureThreshold
        self.leaseToken = leaseToken
        self.leaseExpiries = leaseExpiries
    }
}

/// What a worker saw when it sent a job.
public struct AttemptRecord: Sendable {
    /// The attempt's id, given before it is stored so that operational events can name it.
    public var id = Identifier.make("atmpt")
    public var job: DeliveryJob
    public var requestHeaders: [String: String]
    public var statusCode: Int?
    public var responseBody: String?
    public var durationMS: Int
    public var error: String?
    public var outcome: AttemptOutcome
    public var at: Timestamp

    public init(
        job: DeliveryJob, requestHeaders: [String: String], statusCode: Int?, responseBody: String?, durationMS: Int,
        error: String?, outcome: AttemptOutcome, at: Timestamp
    ) {
        self.job = job
        self.requestHeaders = requestHeaders
        self.statusCode = statusCode
        self.responseBody = responseBody
        self.durationMS = durationMS
        self.error = error
        self.outcome = outcome
        self.at = at
    }

    /// When the answer (or its absence) came: the attempt's start plus its duration.
    public var answeredAt: Timestamp { self.at.adding(microseconds: Int64(self.durationMS) * 1000) }

    /// The delivery's `last_error` after this attempt: the transport error, or the status of an unsuccessful answer.
    public var deliveryError: String? {
        self.error ?? (self.outcome == .success ? nil : self.statusCode.map { "HTTP \($0)" })
    }
}

/// How recording an attempt left the delivery and its endpoint. `status` is nil when the lease had run out and
/// another worker holds the delivery, so the attempt was kept but its transition was not applied.
public struct RecordedAttempt: Sendable, Equatable {
    public var status: DeliveryStatus?
    public var nextAttemptAt: Timestamp?
    /// Set when this attempt disabled the endpoint: `circuit_breaker` or `gone`, and why in words.
    public var disabledReason: String?
    public var disabledDetail: String?

    public init(status: DeliveryStatus? = nil, nextAttemptAt: Timestamp? = nil, disabledReason: String? = nil, disabledDetail: String? = nil) {
        self.status = status
        self.nextAttemptAt = nextAttemptAt
        self.disabledReason = disabledReason
        self.disabledDetail = disabledDetail
    }
}
