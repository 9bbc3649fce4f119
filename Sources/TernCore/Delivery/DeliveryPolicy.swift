import Foundation

/// What one HTTP answer (or its absence) means for a delivery.
public enum AttemptOutcome: Sendable, Equatable {
    /// Any 2xx.
    case success
    /// 410 Gone: the receiver asks never to be called again; the endpoint is disabled at once.
    case gone
    /// Anything else: 3xx (redirects are not followed), 4xx, 5xx, a timeout or a refused connection.
    /// `retryAfterSeconds` is the receiver's `Retry-After` on 429 and 503.
    case failure(retryAfterSeconds: Int?)

    /// Classifies a status code and its `Retry-After` header.
    public static func of(statusCode: Int?, retryAfter: String? = nil, now: Date = Date()) -> AttemptOutcome {
        guard let statusCode else { return .failure(retryAfterSeconds: nil) }
        switch statusCode {
        case 200..<300: return .success
        case 410: return .gone
        case 429, 503: return .failure(retryAfterSeconds: retryAfter.flatMap { RetryPolicy.parseRetryAfter($0, now: now) })
        default: return .failure(retryAfterSeconds: nil)
        }
    }
}

/// When a failed delivery is tried again.
public enum RetryPolicy {
    /// The longest `Retry-After` honoured; longer asks are cut to this.
    public static let maxRetryAfterSeconds = 24 * 3600

    /// The delay before the next attempt after `attempts` scheduled attempts have been made (the first is
    /// immediate, so after attempt n the delay is `schedule[n - 1]`), or nil when the schedule is used up.
    /// Jitter spreads retries by up to ±10% so that an endpoint's backlog does not return all at once; a
    /// `Retry-After` longer than the scheduled delay wins.
    public static func delay(
        afterAttempt attempts: Int, schedule: [Int], retryAfterSeconds: Int? = nil,
        random: (ClosedRange<Double>) -> Double = { Double.random(in: $0) }
    ) -> Double? {
        guard attempts >= 1, attempts <= schedule.count else { return nil }
        let scheduled = Double(schedule[attempts - 1])
        let jittered = scheduled * random(0.9...1.1)
        if let retryAfterSeconds {
            return max(jittered, Double(min(retryAfterSeconds, Self.maxRetryAfterSeconds)))
        }
        return jittered
    }

    /// Parses `Retry-After`: whole seconds, or an HTTP date (RFC 9110), as seconds from `now`.
    public static func parseRetryAfter(_ value: String, now: Date = Date()) -> Int? {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Int(trimmed) { return seconds >= 0 ? seconds : nil }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: trimmed) else { return nil }
        return max(0, Int(date.timeIntervalSince(now).rounded(.up)))
    }
}

/// The circuit breaker: an endpoint whose last `failureThreshold` attempts all failed is disabled.
public enum CircuitBreaker {
    /// The `disabled_reason` values the engine and the API write.
    public enum Reason {
        public static let circuitBreaker = "circuit_breaker"
        public static let gone = "gone"
        public static let manual = "manual"
    }

    /// True when `consecutiveFailures` (counting the attempt just made) trips a breaker with `threshold`.
    public static func trips(consecutiveFailures: Int, threshold: Int) -> Bool {
        consecutiveFailures >= threshold
    }
}
