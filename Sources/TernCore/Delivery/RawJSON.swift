import Foundation

/// A JSON object read in one pass: the whole text is checked (RFC 8259 grammar, UTF-8, at most 512 levels deep)
/// and each top-level member's value is located by its bytes, without building any value. A payload is stored and
/// delivered exactly as it was sent, and the fields around it are read without `JSONDecoder`.
public struct JSONEnvelope: Sendable {
    /// What a member's value is.
    public enum Kind: Sendable, Equatable {
        case object, array, string, number, bool, null
    }

    public struct Member: Sendable, Equatable {
        /// The value's bytes in `bytes`.
        public var range: Range<Int>
        public var kind: Kind
    }

    public let bytes: [UInt8]
    /// The top-level members by name; of a repeated name, the last (as `JSONDecoder` reads it).
    public let members: [String: Member]

    /// Reads `bytes`; 400 `malformed` when it is not JSON, 422 on `body` when it is JSON but not an object.
    public init(_ bytes: [UInt8]) throws {
        self.bytes = bytes
        var scanner = JSONScanner(bytes: bytes)
        guard let members = scanner.topLevelMembers() else { throw TernError.malformed("The request body is not valid JSON.") }
        guard let members else { throw TernError.invalid("body", "must be a JSON object") }
        self.members = members
    }

    public func has(_ name: String) -> Bool { self.members[name] != nil }

    public func isNull(_ name: String) -> Bool { self.members[name]?.kind == .null }

    /// The member's exact text.
    public func text(_ name: String) -> String? {
        self.members[name].map { String(decoding: self.bytes[$0.range], as: UTF8.self) }
    }

    /// A string member; nil when absent or null, 422 when it is another kind.
    public func string(_ name: String) throws -> String? {
        guard let member = self.members[name], member.kind != .null else { return nil }
        guard member.kind == .string else { throw TernError.invalid(name, "must be a string") }
        return try self.decodeString(member.range, name)
    }

    /// An array of strings; nil when absent or null, 422 naming the element that is not a string.
    public func strings(_ name: String) throws -> [String]? {
        guard let member = self.members[name], member.kind != .null else { return nil }
        guard member.kind == .array else { throw TernError.invalid(name, "must be an array") }
        var scanner = JSONScanner(bytes: self.bytes)
        var strings: [String] = []
        for (index, element) in scanner.elements(of: member.range).enumerated() {
            guard element.kind == .string else { throw TernError.invalid("\(name)[\(index)]", "must be a string") }
            strings.append(try self.decodeString(element.range, "\(name)[\(index)]"))
        }
        return strings
    }

    /// A whole number; nil when absent or null, 422 when it is not one.
    public func int(_ name: String) throws -> Int? {
        guard let member = self.members[name], member.kind != .null else { return nil }
        let text = String(decoding: self.bytes[member.range], as: UTF8.self)
        if member.kind == .number {
            if let value = Int(text) { return value }
            if let value = Double(text), value.rounded() == value, let exact = Int(exactly: value) { return exact }
        }
        throw TernError.invalid(name, "must be a whole number")
    }

    /// A string's value (`JSONScanner.string`), or 422 on `name` when its escapes do not decode.
    func decodeString(_ range: Range<Int>, _ name: String) throws -> String {
        guard let value = JSONScanner.string(self.bytes[range]) else { throw TernError.invalid(name, "must be a valid string") }
        return value
    }
}

/// The grammar behind `JSONEnvelope`: skips values, checking them, and reports where they lie.
struct JSONScanner {
    let bytes: [UInt8]
    var index = 0
    static let maxDepth = 512

    init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// The members of the top-level object: nil when the text is not JSON, `.some(nil)` when it is not an object.
    mutating func topLevelMembers() -> [String: JSONEnvelope.Member]?? {
        self.skipWhitespace()
        guard self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: "{") else {
            guard self.skipValue() != nil else { return nil }
            self.skipWhitespace()
            return self.index == self.bytes.count ? .some(nil) : nil
        }
        self.index += 1
        var members: [String: JSONEnvelope.Member] = [:]
        self.skipWhitespace()
        if self.peek == UInt8(ascii: "}") {
            self.index += 1
        } else {
            while true {
                self.skipWhitespace()
                let keyStart = self.index
                guard self.peek == UInt8(ascii: "\""), self.skipString() else { return nil }
                let key = Self.string(self.bytes[keyStart..<self.index])
                self.skipWhitespace()
                guard self.peek == UInt8(ascii: ":") else { return nil }
                self.index += 1
                self.skipWhitespace()
                let start = self.index
                guard let kind = self.skipValue(), let key else { return nil }
                members[key] = JSONEnvelope.Member(range: start..<self.index, kind: kind)
                self.skipWhitespace()
                if self.peek == UInt8(ascii: ",") {
                    self.index += 1
                    continue
                }
                guard self.peek == UInt8(ascii: "}") else { return nil }
                self.index += 1
                break
            }
        }
        self.skipWhitespace()
        return self.index == self.bytes.count ? .some(members) : nil
    }

    /// The elements of the (already checked) array at `range`.
    mutating func elements(of range: Range<Int>) -> [JSONEnvelope.Member] {
        self.index = range.lowerBound + 1
        var elements: [JSONEnvelope.Member] = []
        self.skipWhitespace()
        while self.index < range.upperBound - 1 {
            self.skipWhitespace()
            let start = self.index
            guard let kind = self.skipValue() else { break }
            elements.append(JSONEnvelope.Member(range: start..<self.index, kind: kind))
            self.skipWhitespace()
            if self.peek == UInt8(ascii: ",") { self.index += 1 }
        }
        return elements
    }

    var peek: UInt8? { self.index < self.bytes.count ? self.bytes[self.index] : nil }

    mutating func skipWhitespace() {
        while self.index < self.bytes.count {
            switch self.bytes[self.index] {
            case 0x20, 0x0A, 0x0D, 0x09: self.index += 1
            default: return
            }
        }
    }

    /// Skips one value (containers by a stack of their kinds, not by recursion); nil when it is not valid JSON.
    mutating func skipValue() -> JSONEnvelope.Kind? {
        var open: [Bool] = []  // true: an object, false: an array
        var first: JSONEnvelope.Kind?
        while true {
            self.skipWhitespace()
            guard let byte = self.peek else { return nil }
            switch byte {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                guard open.count < Self.maxDepth else { return nil }
                let isObject = byte == UInt8(ascii: "{")
                first = first ?? (isObject ? .object : .array)
                open.append(isObject)
                self.index += 1
                self.skipWhitespace()
                if self.peek == (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    self.index += 1
                    open.removeLast()
                } else if isObject {
                    guard self.memberKey() else { return nil }
                    continue
                } else {
                    continue
                }
            case UInt8(ascii: "\""):
                guard self.skipString() else { return nil }
                first = first ?? .string
            case UInt8(ascii: "t"):
                guard self.skipLiteral("true") else { return nil }
                first = first ?? .bool
            case UInt8(ascii: "f"):
                guard self.skipLiteral("false") else { return nil }
                first = first ?? .bool
            case UInt8(ascii: "n"):
                guard self.skipLiteral("null") else { return nil }
                first = first ?? .null
            default:
                guard self.skipNumber() else { return nil }
                first = first ?? .number
            }
            // After a value: close containers until one continues with a comma.
            while let isObject = open.last {
                self.skipWhitespace()
                guard let next = self.peek else { return nil }
                if next == UInt8(ascii: ",") {
                    self.index += 1
                    if isObject {
                        self.skipWhitespace()
                        guard self.memberKey() else { return nil }
                    }
                    break
                }
                guard next == (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) else { return nil }
                self.index += 1
                open.removeLast()
            }
            if open.isEmpty { return first }
        }
    }

    /// Skips `"key" :` inside an object.
    mutating func memberKey() -> Bool {
        guard self.peek == UInt8(ascii: "\""), self.skipString() else { return false }
        self.skipWhitespace()
        guard self.peek == UInt8(ascii: ":") else { return false }
        self.index += 1
        return true
    }

    mutating func skipLiteral(_ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard self.index + count <= self.bytes.count else { return false }
        let matches = literal.withUTF8Buffer { $0.elementsEqual(self.bytes[self.index..<(self.index + count)]) }
        self.index += count
        return matches
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    mutating func skipNumber() -> Bool {
        func digits() -> Int {
            let start = self.index
            while let byte = self.peek, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") { self.index += 1 }
            return self.index - start
        }
        if self.peek == UInt8(ascii: "-") { self.index += 1 }
        if self.peek == UInt8(ascii: "0") {
            self.index += 1
        } else if digits() == 0 {
            return false
        }
        if self.peek == UInt8(ascii: ".") {
            self.index += 1
            guard digits() > 0 else { return false }
        }
        if self.peek == UInt8(ascii: "e") || self.peek == UInt8(ascii: "E") {
            self.index += 1
            if self.peek == UInt8(ascii: "+") || self.peek == UInt8(ascii: "-") { self.index += 1 }
            guard digits() > 0 else { return false }
        }
        return true
    }

    /// Skips a string (on its opening quote): escapes as the grammar allows, no control characters, valid UTF-8.
    mutating func skipString() -> Bool {
        self.index += 1
        while self.index < self.bytes.count {
            let byte = self.bytes[self.index]
            switch byte {
            case UInt8(ascii: "\""):
                self.index += 1
                return true
            case UInt8(ascii: "\\"):
                guard self.index + 1 < self.bytes.count else { return false }
                switch self.bytes[self.index + 1] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"),
                    UInt8(ascii: "r"), UInt8(ascii: "t"):
                    self.index += 2
                case UInt8(ascii: "u"):
                    guard self.index + 6 <= self.bytes.count,
                        self.bytes[(self.index + 2)..<(self.index + 6)].allSatisfy({
                            ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x66)
                        })
                    else { return false }
                    self.index += 6
                default:
                    return false
                }
            case 0x00..<0x20:
                return false
            case 0x20..<0x80:
                self.index += 1
            default:
                guard self.skipUTF8Sequence() else { return false }
            }
        }
        return false
    }

    /// One multi-byte UTF-8 sequence (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
    mutating func skipUTF8Sequence() -> Bool {
        let lead = self.bytes[self.index]
        let length: Int
        var low: UInt8 = 0x80
        var high: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: (length, low) = (3, 0xA0)
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: (length, high) = (3, 0x9F)
        case 0xF0: (length, low) = (4, 0x90)
        case 0xF1...0xF3: length = 4
        case 0xF4: (length, high) = (4, 0x8F)
        default: return false
        }
        guard self.index + length <= self.bytes.count else { return false }
        let second = self.bytes[self.index + 1]
        guard second >= low, second <= high else { return false }
        for offset in 2..<max(2, length) where self.bytes[self.index + offset] & 0xC0 != 0x80 { return false }
        self.index += length
        return true
    }

    /// A string's value from its quoted bytes: the bytes between the quotes, unescaped (by `JSONDecoder`) only when
    /// they hold a backslash; nil when its escapes do not decode.
    static func string(_ quoted: ArraySlice<UInt8>) -> String? {
        let inner = quoted.dropFirst().dropLast()
        if !inner.contains(0x5C) { return String(decoding: inner, as: UTF8.self) }
        return try? JSONDecoder().decode(String.self, from: Data(quoted))
    }
}

/// Writing JSON text by hand where `JSONEncoder`'s cost shows on the hot path.
public enum JSONText {
    /// Appends `text` as a JSON string literal: quotes, backslashes and control characters escaped. A text with
    /// something to escape (an attempt's request headers, themselves JSON, in a PostgreSQL batch's rows) is written
    /// into a string of its escaped length in one pass over its UTF-8 bytes, rather than a scalar at a time
    /// (`docs/benchmarks.md`, item 45).
    public static func appendString(_ text: String, to out: inout String) {
        var text = text
        let extra = text.withUTF8 { bytes in
            var extra = 0
            for byte in bytes where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                extra += byte == 0x0A || byte == 0x0D || byte == 0x09 || byte >= 0x20 ? 1 : 5
            }
            return extra
        }
        out += "\""
        if extra == 0 {
            out += text
        } else {
            out += text.withUTF8 { bytes in
                String(unsafeUninitializedCapacity: bytes.count + extra) { escaped in
                    var at = 0
                    func put(_ byte: UInt8) {
                        escaped[at] = byte
                        at += 1
                    }
                    for byte in bytes {
                        switch byte {
                        case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                            put(UInt8(ascii: "\\"))
                            put(byte)
                        case 0x0A:
                            put(UInt8(ascii: "\\"))
                            put(UInt8(ascii: "n"))
                        case 0x0D:
                            put(UInt8(ascii: "\\"))
                            put(UInt8(ascii: "r"))
                        case 0x09:
                            put(UInt8(ascii: "\\"))
                            put(UInt8(ascii: "t"))
                        case ..<0x20:
                            put(UInt8(ascii: "\\"))
                            put(UInt8(ascii: "u"))
                            put(UInt8(ascii: "0"))
                            put(UInt8(ascii: "0"))
                            put(byte < 0x10 ? UInt8(ascii: "0") : UInt8(ascii: "1"))
                            let low = byte & 0x0F
                            put(low < 10 ? UInt8(ascii: "0") + low : UInt8(ascii: "a") + low - 10)
                        default: put(byte)
                        }
                    }
                    return at
                }
            }
        }
        out += "\""
    }
}
