import Foundation

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
                    if byte == 0x22 {
                        _ = skipString()
                        continue
                    }
                    if byte == 0x7B || byte == 0x5B { depth += 1 }
                    if byte == 0x7D || byte == 0x5D {
                        depth -= 1
                        if depth == 0 {
                            index += 1
                            return
                        }
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
