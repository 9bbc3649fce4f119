import Synchronization

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
        let millis = UInt64(max(0, date.timeIntervalSince1970 * 1000)) & 0xFFFF_FFFF_FFFF
        let (high, low) = RandomBytes.shared.next80Bits()
        let value = UInt128(millis) << 80 | UInt128(high) << 16 | UInt128(low)
        // 128 bits in 26 characters of 5 bits: the first carries the top 3 (two leading zero bits of padding).
        let characters = String(unsafeUninitializedCapacity: 26) { buffer in
            for index in 0..<26 {
                buffer[index] = alphabet[Int(truncatingIfNeeded: value >> (125 - 5 * index)) & 31]
            }
            return 26
        }
        return prefix + "_" + characters
    }

    /// True when `value` is `prefix_` followed by 26 characters of the identifier alphabet.
    public static func isValid(_ value: String, prefix: String) -> Bool {
        let utf8 = Array(value.utf8)
        let head = Array((prefix + "_").utf8)
        guard utf8.count == head.count + 26, utf8.starts(with: head) else { return false }
        return utf8[head.count...].allSatisfy { alphabet.contains($0) }
    }
}

/// Random bits for identifiers, drawn from the CSPRNG 4 KiB at a time (`randomBytes`: 16 system calls) instead of a
/// system call per identifier.
final class RandomBytes: Sendable {
    static let shared = RandomBytes()
    static let refill = 4_096

    private let pool = Mutex<(bytes: [UInt8], offset: Int)>(([], 0))

    /// 80 random bits: 64 and 16.
    func next80Bits() -> (UInt64, UInt16) {
        self.pool.withLock { pool in
            if pool.offset + 10 > pool.bytes.count {
                pool.bytes = randomBytes(Self.refill)
                pool.offset = 0
            }
            var high: UInt64 = 0
            for index in pool.offset..<(pool.offset + 8) { high = high << 8 | UInt64(pool.bytes[index]) }
            let low = UInt16(pool.bytes[pool.offset + 8]) << 8 | UInt16(pool.bytes[pool.offset + 9])
            pool.offset += 10
            return (high, low)
        }
    }
}
