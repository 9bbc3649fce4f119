import Foundation

/// A token bucket: `burst` tokens at most, refilled at `perMinute` per minute; each publish takes one.
public struct TokenBucket: Sendable, Equatable {
    public var perMinute: Int
    public var burst: Int

    public init(perMinute: Int, burst: Int) {
        self.perMinute = perMinute
        self.burst = burst
    }

    /// Takes a token from a bucket that held `tokens` at `last`; returns the tokens left and the state to report.
    public func take(tokens: Double, last: Timestamp, now: Timestamp) -> (tokens: Double, state: RateLimitState) {
        let perSecond = Double(self.perMinute) / 60
        let elapsed = max(0, Double(now.microseconds - last.microseconds) / 1_000_000)
        let available = min(Double(self.burst), tokens + elapsed * perSecond)
        if available >= 1 {
            let left = available - 1
            return (left, self.state(left, allowed: true, perSecond: perSecond))
        }
        return (available, self.state(available, allowed: false, perSecond: perSecond))
    }

    func state(_ tokens: Double, allowed: Bool, perSecond: Double) -> RateLimitState {
        let refill = perSecond > 0 ? (Double(self.burst) - tokens) / perSecond : 0
        let wait = perSecond > 0 ? (1 - tokens) / perSecond : 60
        return RateLimitState(
            allowed: allowed, limit: self.burst, remaining: max(0, Int(tokens.rounded(.down))),
            resetSeconds: max(0, Int(refill.rounded(.up))), retryAfterSeconds: allowed ? nil : max(1, Int(wait.rounded(.up)))
        )
    }
}

/// What the `RateLimit-*` headers say after a publish: the bucket size, the tokens left, the seconds until the
/// bucket is full again, and on a refusal the seconds until the next token.
public struct RateLimitState: Sendable, Equatable {
    public var allowed: Bool
    public var limit: Int
    public var remaining: Int
    public var resetSeconds: Int
    public var retryAfterSeconds: Int?

    public init(allowed: Bool, limit: Int, remaining: Int, resetSeconds: Int, retryAfterSeconds: Int?) {
        self.allowed = allowed
        self.limit = limit
        self.remaining = remaining
        self.resetSeconds = resetSeconds
        self.retryAfterSeconds = retryAfterSeconds
    }
}

/// The limits a publish is held to, from the organization's plan; nil means unlimited.
public struct PublishLimits: Sendable, Equatable {
    public var bucket: TokenBucket?
    public var messagesPerMonth: Int?
    /// The plan's payload retention in days (nil: kept until the message is pruned).
    public var payloadRetentionDays: Int?

    public init(plan: Plan) {
        self.payloadRetentionDays = plan.payloadRetentionDays
        if let perMinute = plan.rateLimitPerMinute {
            self.bucket = TokenBucket(perMinute: perMinute, burst: plan.rateLimitBurst ?? perMinute)
        }
        self.messagesPerMonth = plan.maxMessagesPerMonth
    }

    public init(bucket: TokenBucket?, messagesPerMonth: Int?) {
        self.bucket = bucket
        self.messagesPerMonth = messagesPerMonth
    }
}

/// How long a publish may ask its payload to be kept.
public enum PayloadRetention {
    /// The most days when the plan keeps payloads until the message is pruned.
    public static let maxDays = 3_650

    /// What is wrong with asking for `seconds` under a plan that keeps payloads `planDays` (nil: until pruned).
    public static func problem(seconds: Int64, planDays: Int?) -> String? {
        let limit = Int64(planDays ?? Self.maxDays) * 86_400
        guard seconds >= 3_600, seconds <= limit else {
            return "must be at least one hour and at most \(planDays ?? Self.maxDays) days (the plan's payload retention)"
        }
        return nil
    }
}
