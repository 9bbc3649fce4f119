import Foundation

/// An endpoint's `rate_limit` (Svix `throttleRate`): at most `perSecond` deliveries a second across every worker,
/// with up to `burst` at once after a quiet spell.
public struct EndpointRateLimit: Sendable, Equatable {
    public var perSecond: Int
    public var burst: Int

    public static let maxPerSecond = 10_000

    public init(perSecond: Int, burst: Int? = nil) {
        self.perSecond = perSecond
        self.burst = burst ?? perSecond
    }
}

/// The shared state of one endpoint's limit (the generic cell rate algorithm): `nextSlot`, the time the next delivery
/// is due by the rate; how far an overloaded receiver has slowed the endpoint; and how long it asked to be left alone.
public struct ThrottleState: Sendable, Equatable {
    public var nextSlot: Timestamp?
    /// The share of the configured rate in force after the last slow-down (1: full rate).
    public var factor: Double
    public var adaptedAt: Timestamp?
    /// Nothing is sent before this time (the receiver's `Retry-After`).
    public var holdUntil: Timestamp?

    public init(nextSlot: Timestamp? = nil, factor: Double = 1, adaptedAt: Timestamp? = nil, holdUntil: Timestamp? = nil) {
        self.nextSlot = nextSlot
        self.factor = factor
        self.adaptedAt = adaptedAt
        self.holdUntil = holdUntil
    }
}

/// Decisions of the per-endpoint throttle, as values; storage applies them to the shared row in the claiming (or
/// recording) transaction, so that every worker of every process draws on one schedule.
///
/// Each delivery gets a time: now, while the endpoint is within its rate and burst, else a slot reserved for it at the
/// rate (it waits, keeping its attempt count, and is sent when the slot comes). Adaptive: a 429, 502, 503 or 504 halves
/// the rate in force (down to 1/16 of the configured one) and honours `Retry-After` (nothing is sent before it); the
/// rate then doubles back every 10 seconds without another such answer, up to the configured one.
public enum Throttle {
    public static let minimumFactor = 1.0 / 16
    public static let recoverySeconds = 10.0
    /// The answers that mean "too much, slow down".
    public static let slowDownStatuses: Set<Int> = [429, 502, 503, 504]

    /// The share of the configured rate in force at `now`.
    public static func factor(_ state: ThrottleState, now: Timestamp) -> Double {
        guard let adaptedAt = state.adaptedAt, state.factor < 1 else { return 1 }
        let elapsed = max(0, Double(now.microseconds - adaptedAt.microseconds) / 1_000_000)
        return min(1, state.factor * pow(2, elapsed / Self.recoverySeconds))
    }

    /// Schedules `count` deliveries: nil for one that may be sent now, else the time reserved for it.
    public static func schedule(
        _ count: Int, limit: EndpointRateLimit, state: ThrottleState, now: Timestamp
    ) -> (sendAt: [Timestamp?], state: ThrottleState) {
        var next = state
        let rate = max(0.001, Double(limit.perSecond) * Self.factor(state, now: now))
        let gap = Int64(1_000_000 / rate)
        let tolerance = gap * Int64(max(0, limit.burst - 1))
        let holding = (state.holdUntil ?? now) > now
        var due = max(state.nextSlot ?? now, now, state.holdUntil ?? now)
        var times: [Timestamp?] = []
        for _ in 0..<count {
            let earliest = due.adding(microseconds: -tolerance)
            times.append(!holding && earliest <= now ? nil : max(earliest, state.holdUntil ?? now))
            due = due.adding(microseconds: gap)
        }
        next.nextSlot = due
        return (times, next)
    }

    /// After an answer: a slow-down status halves the rate in force and holds sends until `Retry-After`; nil when the
    /// answer changes nothing.
    public static func after(statusCode: Int?, retryAfterSeconds: Double?, state: ThrottleState, now: Timestamp) -> ThrottleState? {
        guard let statusCode, Self.slowDownStatuses.contains(statusCode) else { return nil }
        var next = state
        next.factor = max(Self.minimumFactor, Self.factor(state, now: now) / 2)
        next.adaptedAt = now
        if let retryAfterSeconds, retryAfterSeconds > 0 {
            let until = now.adding(microseconds: Int64(retryAfterSeconds * 1_000_000))
            next.holdUntil = max(until, state.holdUntil ?? until)
        }
        return next
    }
}
