import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A point in time stored as microseconds since 1970 and written as RFC 3339 UTC.
public struct Timestamp: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// Microseconds since the Unix epoch.
    public var microseconds: Int64

    public init(microseconds: Int64) {
        self.microseconds = microseconds
    }

    public init(_ date: Date) {
        self.microseconds = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
    }

    /// The current time.
    public static func now() -> Timestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Timestamp(microseconds: Int64(spec.tv_sec) * 1_000_000 + Int64(spec.tv_nsec) / 1000)
    }

    public func adding(seconds: Int64) -> Timestamp {
        Timestamp(microseconds: self.microseconds + seconds * 1_000_000)
    }

    public func adding(microseconds: Int64) -> Timestamp {
        Timestamp(microseconds: self.microseconds + microseconds)
    }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool { lhs.microseconds < rhs.microseconds }

    /// RFC 3339 in UTC with millisecond precision, e.g. `2026-11-24T10:15:30.123Z`: written digit by digit into
    /// the string's 24 bytes (years 0000 to 9999; the API's timestamps and every reply's carry one).
    public var description: String {
        var seconds = time_t(self.microseconds.floorDivided(by: 1_000_000))
        let millis = Int32(Int(self.microseconds - Int64(seconds) * 1_000_000) / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let year = min(max(parts.tm_year + 1900, 0), 9999)
        return String(unsafeUninitializedCapacity: 24) { text in
            var index = 0
            func put(_ value: Int32, _ width: Int, then separator: UInt8?) {
                var rest = value
                for offset in stride(from: width - 1, through: 0, by: -1) {
                    text[index + offset] = UInt8(ascii: "0") + UInt8(rest % 10)
                    rest /= 10
                }
                index += width
                if let separator {
                    text[index] = separator
                    index += 1
                }
            }
            put(year, 4, then: UInt8(ascii: "-"))
            put(parts.tm_mon + 1, 2, then: UInt8(ascii: "-"))
            put(parts.tm_mday, 2, then: UInt8(ascii: "T"))
            put(parts.tm_hour, 2, then: UInt8(ascii: ":"))
            put(parts.tm_min, 2, then: UInt8(ascii: ":"))
            put(parts.tm_sec, 2, then: UInt8(ascii: "."))
            put(millis, 3, then: UInt8(ascii: "Z"))
            return index
        }
    }

    /// Parses RFC 3339 (with or without fractional seconds, any offset).
    /// Parses an RFC 3339 date-time (`2026-01-31T12:00:00Z`, `…T12:00:00.123456+02:00`; `t`, `z` and a space are
    /// accepted as RFC 3339 allows; fractions beyond microseconds are cut). Years 0001 to 9999, checked field by field.
    public init?(rfc3339 text: String) {
        let bytes = Array(text.utf8)
        var index = 0
        func number(_ digits: Int) -> Int? {
            guard index + digits <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[index..<index + digits] {
                guard byte >= 48 && byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            index += digits
            return value
        }
        func expect(_ characters: String) -> Bool {
            guard index < bytes.count, characters.utf8.contains(bytes[index]) else { return false }
            index += 1
            return true
        }
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2), expect("Tt "),
            let hour = number(2), expect(":"), let minute = number(2), expect(":"), let second = number(2),
            year >= 1, (1...12).contains(month), hour < 24, minute < 60, second <= 60
        else { return nil }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let monthDays = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        guard (1...monthDays).contains(day) else { return nil }
        var micros: Int64 = 0
        if expect(".") {
            var digits = 0
            while index < bytes.count, bytes[index] >= 48 && bytes[index] <= 57 {
                if digits < 6 { micros = micros * 10 + Int64(bytes[index] - 48) }
                digits += 1
                index += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<max(digits, 6) { micros *= 10 }
        }
        var offsetMinutes = 0
        if expect("Zz") {
        } else if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
            let sign = bytes[index] == UInt8(ascii: "-") ? -1 : 1
            index += 1
            guard let hours = number(2), expect(":"), let minutes = number(2), hours < 24, minutes < 60 else { return nil }
            offsetMinutes = sign * (hours * 60 + minutes)
        } else {
            return nil
        }
        guard index == bytes.count else { return nil }
        // Days from 1970-01-01 of the civil date (Howard Hinnant's algorithm).
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = y.floorDivided(by: 400)
        let yearOfEra = y - era * 400
        let shiftedMonth = Int64(month > 2 ? month - 3 : month + 9)
        let dayOfYear = (153 * shiftedMonth + 2) / 5 + Int64(day) - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        let seconds = days * 86_400 + Int64(hour * 3600 + minute * 60 + min(second, 59)) - Int64(offsetMinutes * 60)
        self.init(microseconds: seconds * 1_000_000 + micros)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let value = Timestamp(rfc3339: text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected an RFC 3339 timestamp")
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(self.description)
    }
}

extension Int64 {
    fileprivate func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor < 0) ? quotient - 1 : quotient
    }
}
