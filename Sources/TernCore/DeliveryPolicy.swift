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

/// Finds the bytes of a top-level member's value in a JSON object, so that a payload can be stored and
/// delivered exactly as it was sent. The document must already be known to be valid JSON.
public enum RawJSON {
    /// The byte range of the value of the last top-level member named `name`, or nil.
    public static func memberRange(_ name: String, in bytes: [UInt8]) -> Range<Int>? {
        var index = 0
        func skipWhitespace() {
            while index < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[index]) { index += 1 }
        }
        /// Skips a string starting at `index` (on its opening quote); returns its raw bytes without quotes.
        func skipString() -> ArraySlice<UInt8> {
            let start = index + 1
            index += 1
            while index < bytes.count, bytes[index] != 0x22 {
                index += bytes[index] == 0x5C ? 2 : 1
            }
            let end = min(index, bytes.count)
            index += 1
            return bytes[start..<end]
        }
        /// Skips any value starting at `index`.
        func skipValue() {
            skipWhitespace()
            guard index < bytes.count else { return }
            switch bytes[index] {
            case 0x22:
                _ = skipString()
            case 0x7B, 0x5B:
                var depth = 0
                while index < bytes.count {
                    let byte = bytes[index]
                    if byte == 0x22 { _ = skipString(); continue }
                    if byte == 0x7B || byte == 0x5B { depth += 1 }
                    if byte == 0x7D || byte == 0x5D {
                        depth -= 1
                        if depth == 0 { index += 1; return }
                    }
                    index += 1
                }
            default:
                while index < bytes.count, ![0x2C, 0x7D, 0x5D, 0x20, 0x0A, 0x0D, 0x09].contains(bytes[index]) { index += 1 }
            }
        }

        skipWhitespace()
        guard index < bytes.count, bytes[index] == 0x7B else { return nil }
        index += 1
        var found: Range<Int>?
        while index < bytes.count {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == 0x22 else { break }
            let key = skipString()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == 0x3A else { break }
            index += 1
            skipWhitespace()
            let start = index
            skipValue()
            if Self.keyEquals(key, name) { found = start..<index }
            skipWhitespace()
            guard index < bytes.count, bytes[index] == 0x2C else { break }
            index += 1
        }
        return found
    }

    static func keyEquals(_ raw: ArraySlice<UInt8>, _ name: String) -> Bool {
        if !raw.contains(0x5C) { return raw.elementsEqual(name.utf8) }
        // An escaped key: decode it as a JSON string.
        let quoted = [0x22] + Array(raw) + [0x22]
        return (try? JSONDecoder().decode(String.self, from: Data(quoted))) == name
    }
}
