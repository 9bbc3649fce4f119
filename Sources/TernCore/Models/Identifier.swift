#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Prefixed, URL-safe, time-sortable identifiers: `app_` + 26 Crockford base32 characters
/// (48 bits of milliseconds, then 80 random bits), like a lower-case ULID.
public enum Identifier {
    static let alphabet = Array("0123456789abcdefghjkmnpqrstvwxyz".utf8)

    /// A new identifier with the given prefix (without the underscore), e.g. `make("app")`.
    public static func make(_ prefix: String, at date: Date = Date()) -> String {
        let millis = UInt64(max(0, date.timeIntervalSince1970 * 1000))
        var bytes = [UInt8](repeating: 0, count: 16)
        for index in 0..<6 {
            bytes[index] = UInt8(truncatingIfNeeded: millis >> (8 * (5 - index)))
        }
        // 80 random bits in two draws (each draw of the system generator is a system call).
        var generator = SystemRandomNumberGenerator()
        let high: UInt64 = generator.next()
        let low: UInt16 = generator.next()
        for index in 6..<14 {
            bytes[index] = UInt8(truncatingIfNeeded: high >> (8 * (13 - index)))
        }
        bytes[14] = UInt8(truncatingIfNeeded: low >> 8)
        bytes[15] = UInt8(truncatingIfNeeded: low)
        return prefix + "_" + encode(bytes)
    }

    /// True when `value` is `prefix_` followed by 26 characters of the identifier alphabet.
    public static func isValid(_ value: String, prefix: String) -> Bool {
        let utf8 = Array(value.utf8)
        let head = Array((prefix + "_").utf8)
        guard utf8.count == head.count + 26, utf8.starts(with: head) else { return false }
        return utf8[head.count...].allSatisfy { alphabet.contains($0) }
    }

    /// Base32 (Crockford, lower case) of 128 bits: 26 characters.
    static func encode(_ bytes: [UInt8]) -> String {
        var output = [UInt8]()
        output.reserveCapacity(26)
        var buffer: UInt32 = 0
        var bits = 0
        // 128 bits do not divide by 5: pad with two leading zero bits so the first character carries 3 bits.
        buffer = 0
        bits = 2
        for byte in bytes {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                bits -= 5
                output.append(alphabet[Int((buffer >> UInt32(bits)) & 31)])
            }
            buffer &= (1 << UInt32(bits)) - 1
        }
        return String(decoding: output, as: UTF8.self)
    }
}
