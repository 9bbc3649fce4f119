import Foundation

/// What one attempt does to its delivery and its endpoint: the table in `docs/architecture.md` as a value.
/// Storage reads the endpoint's failure count (this attempt included) in the recording transaction, asks for the
/// transition, and applies it in that same transaction; nothing here touches a database.
public struct DeliveryTransition: Sendable, Equatable {
    /// The delivery's new status: `delivered`, `failed` (queued again at `nextAttemptAt`) or `exhausted`.
    public var status: DeliveryStatus
    public var nextAttemptAt: Timestamp?
    /// Set when this attempt disables the endpoint (`gone` or `circuit_breaker`), with the reason in words.
    public var disableReason: String?
    public var disableDetail: String?
    /// Whether the endpoint's consecutive failures go back to 0.
    public var resetsFailures: Bool

    public init(
        status: DeliveryStatus, nextAttemptAt: Timestamp? = nil, disableReason: String? = nil, disableDetail: String? = nil,
        resetsFailures: Bool = false
    ) {
        self.status = status
        self.nextAttemptAt = nextAttemptAt
        self.disableReason = disableReason
        self.disableDetail = disableDetail
        self.resetsFailures = resetsFailures
    }

    /// The transition after an attempt.
    /// - Parameters:
    ///   - attemptsMade: attempts of the delivery, this one included.
    ///   - trigger: `manual` attempts (replay, recover, test) are single: a failure goes back to the dead-letter queue.
    ///   - consecutiveFailures: the endpoint's failures in a row, counting this attempt when it failed.
    ///   - endpointDisabled: the endpoint was already disabled when the attempt was recorded.
    ///   - answeredAt: when the answer came; a retry's delay counts from then, as `Retry-After` means it.
    public static func after(
        outcome: AttemptOutcome, attemptsMade: Int, trigger: AttemptTrigger, schedule: [Int], consecutiveFailures: Int, threshold: Int,
        endpointDisabled: Bool, answeredAt: Timestamp, random: (ClosedRange<Double>) -> Double = { Double.random(in: $0) }
    ) -> DeliveryTransition {
        switch outcome {
        case .success:
            return DeliveryTransition(status: .delivered, resetsFailures: true)
        case .gone:
            return DeliveryTransition(
                status: .exhausted, disableReason: endpointDisabled ? nil : CircuitBreaker.Reason.gone,
                disableDetail: endpointDisabled ? nil : "the endpoint answered 410 Gone"
            )
        case .failure(let retryAfter):
            var transition = DeliveryTransition(status: .exhausted)
            let trips = !endpointDisabled && CircuitBreaker.trips(consecutiveFailures: consecutiveFailures, threshold: threshold)
            if trips {
                transition.disableReason = CircuitBreaker.Reason.circuitBreaker
                transition.disableDetail = "\(consecutiveFailures) consecutive attempts failed (threshold \(threshold))"
            }
            guard trigger == .scheduled, !endpointDisabled, !trips,
                let delay = RetryPolicy.delay(afterAttempt: attemptsMade, schedule: schedule, retryAfterSeconds: retryAfter, random: random)
            else { return transition }
            transition.status = .failed
            transition.nextAttemptAt = answeredAt.adding(microseconds: Int64(delay * 1_000_000))
            return transition
        }
    }
}
