import SQLKit
import Synchronization
import TernCore

/// A delivery worker of this process that takes deliveries straight from the publishes that queue them: the publish
/// writes them already leased to it (`delivering`, due again when the lease ends, as a claim leaves them), and hands
/// them over once its transaction commits, so that they cost no claim (a statement that rewrites each row and its
/// indexes) and wait for no wake-up. If the process dies before it records them, their lease runs out and any worker
/// claims them, as it would claimed ones.
public protocol DirectDeliveryTaker: AnyObject, Sendable {
    /// How long a delivery it takes is leased for.
    var leaseSeconds: Int { get }
    /// Room for up to `count` more deliveries in flight: how many it grants (none while stopping). The caller hands
    /// them over with `take` or gives the room back with `giveBack`.
    func reserve(upTo count: Int) -> Int
    func giveBack(_ count: Int)
    /// Sends the deliveries, whose room was reserved and whose rows are committed.
    func take(_ jobs: [DeliveryJob])
}

/// Where this process's delivery worker offers to take what its publishes queue (`DirectDeliveryTaker`).
public final class DirectDelivery: Sendable {
    let taker = Mutex<(any DirectDeliveryTaker)?>(nil)

    init() {}

    /// Publishes hand their deliveries to `taker` from now on (to none: they queue them for a claim).
    public func register(_ taker: (any DirectDeliveryTaker)?) {
        self.taker.withLock { $0 = taker }
    }

    /// The hand-over of one publish batch's write, when a worker takes deliveries.
    func batch(_ secretBox: SecretBox) -> DirectBatch? {
        self.taker.withLock { $0 }.map { DirectBatch(taker: $0, secretBox: secretBox) }
    }
}

/// The deliveries one publish batch hands over: room reserved while the batch is decided, the jobs made, and, after the
/// write, the jobs taken if it committed or the room given back if it did not.
final class DirectBatch: Sendable {
    let taker: any DirectDeliveryTaker
    let secretBox: SecretBox
    let token = Identifier.make("lease")
    let state = Mutex<(reserved: Int, jobs: [DeliveryJob])>((0, []))

    init(taker: any DirectDeliveryTaker, secretBox: SecretBox) {
        self.taker = taker
        self.secretBox = secretBox
    }

    /// Room for up to `count` deliveries of this attempt at the write; what an earlier attempt reserved is given back.
    func reserve(upTo count: Int) -> Int {
        self.reset()
        guard count > 0 else { return 0 }
        let granted = self.taker.reserve(upTo: count)
        self.state.withLock { $0.reserved = granted }
        return granted
    }

    func hand(_ jobs: [DeliveryJob]) {
        self.state.withLock { $0.jobs = jobs }
    }

    /// The write committed: the jobs go to the worker, and room reserved for none is given back.
    func committed() {
        let (reserved, jobs) = self.state.withLock { state in
            defer { state = (0, []) }
            return state
        }
        if reserved > jobs.count { self.taker.giveBack(reserved - jobs.count) }
        if !jobs.isEmpty { self.taker.take(jobs) }
    }

    /// The write failed (or is tried again): nothing is handed over.
    func reset() {
        let reserved = self.state.withLock { state in
            defer { state = (0, []) }
            return state.reserved
        }
        if reserved > 0 { self.taker.giveBack(reserved) }
    }

    /// Runs a write that may hand deliveries over to `batch`, and hands them over if it commits.
    static func run<T: Sendable>(_ batch: DirectBatch?, _ write: () async throws -> T) async throws -> T {
        do {
            let result = try await write()
            batch?.committed()
            return result
        } catch {
            batch?.reset()
            throw error
        }
    }
}

/// What a delivery takes from its endpoint, secrets opened: from a row with the endpoint's columns (a claim's, or a
/// publish's fan-out read).
struct OpenedEndpoint: Sendable {
    var url: String
    var headers: [String: String]
    var timeoutSeconds: Int
    /// The current secret, then a rotated-out one still within its time.
    var secrets: [String]
    var rateLimit: EndpointRateLimit?
    var auth: EndpointAuth?
    var tls: EndpointTLS?

    /// The columns a publish's fan-out reads for this, as `e`.
    static let columns = """
        e.url, e.headers, e.timeout_seconds, e.secret, e.previous_secret, e.previous_secret_expires_at, e.throttle_rate, e.rate_limit_burst,
        e.auth, e.tls_client_certificate, e.tls_client_key, e.tls_ca_bundle
        """

    init(_ row: any SQLRow, _ secretBox: SecretBox, now: Timestamp) throws {
        self.url = try row.string("url")
        self.headers = try JSONColumn.decode([String: String].self, try row.string("headers")) ?? [:]
        self.timeoutSeconds = try row.int("timeout_seconds")
        self.secrets = [try secretBox.open(try row.string("secret"))]
        if let previous = try row.optionalString("previous_secret"),
            let expires = try row.optionalTimestamp("previous_secret_expires_at"), expires > now
        {
            self.secrets.append(try secretBox.open(previous))
        }
        self.rateLimit = try row.optionalInt("throttle_rate").map { EndpointRateLimit(perSecond: $0, burst: try row.optionalInt("rate_limit_burst")) }
        self.auth = try row.optionalString("auth").map { try JSONColumn.decode(EndpointAuth.self, try secretBox.open($0)) } ?? nil
        let tls = EndpointTLS(
            clientCertificatePEM: try row.optionalString("tls_client_certificate"),
            clientKeyPEM: try row.optionalString("tls_client_key").map { try secretBox.open($0) },
            caBundlePEM: try row.optionalString("tls_ca_bundle"))
        self.tls = tls.isEmpty ? nil : tls
    }
}

/// What a delivery takes from its application.
struct DeliverySettings: Sendable {
    var retrySchedule: [Int]
    var failureThreshold: Int
    var headerStyle: WebhookHeaderStyle
    var operational: Bool
    var sendTraceparent: Bool

    /// From a claim's row, with the application's columns.
    init(applicationRow row: any SQLRow) throws {
        self.retrySchedule = try JSONColumn.decode([Int].self, try row.string("retry_schedule")) ?? RetrySchedule.standard
        self.failureThreshold = try row.int("failure_threshold")
        self.headerStyle = WebhookHeaderStyle(rawValue: try row.string("webhook_headers")) ?? .standard
        self.operational = try row.string("kind") == "operational"
        self.sendTraceparent = (try? row.bool("send_traceparent")) ?? false
    }

    /// For a publish to a (standard) application.
    init(_ application: Application) {
        self.retrySchedule = application.retrySchedule
        self.failureThreshold = application.circuitBreaker.failureThreshold
        self.headerStyle = application.webhookHeaders
        self.operational = false
        self.sendTraceparent = application.sendTraceparent
    }
}

extension DeliveryJob {
    init(
        deliveryID: String, messageID: String, endpointID: String, organizationID: String, applicationID: String, tenantID: String,
        eventType: String, payload: String, attemptCount: Int, trigger: AttemptTrigger, leaseToken: String, leaseExpiries: Int,
        endpoint: OpenedEndpoint, settings: DeliverySettings
    ) {
        self.init(
            deliveryID: deliveryID, messageID: messageID, endpointID: endpointID, organizationID: organizationID, applicationID: applicationID,
            tenantID: tenantID, eventType: eventType, payload: payload, url: endpoint.url, headers: endpoint.headers,
            timeoutSeconds: endpoint.timeoutSeconds, secrets: endpoint.secrets, attemptCount: attemptCount, trigger: trigger,
            retrySchedule: settings.retrySchedule, failureThreshold: settings.failureThreshold, leaseToken: leaseToken,
            leaseExpiries: leaseExpiries, headerStyle: settings.headerStyle, operational: settings.operational, rateLimit: endpoint.rateLimit)
        self.auth = endpoint.auth
        self.tls = endpoint.tls
        self.sendTraceparent = settings.sendTraceparent
    }
}
