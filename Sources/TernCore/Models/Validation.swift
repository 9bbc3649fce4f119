import Foundation

/// Collects field errors so a request reports all of its mistakes at once.
public struct Validator: Sendable {
    public private(set) var errors: [FieldError] = []

    public init() {}

    public mutating func fail(_ field: String, _ message: String) {
        self.errors.append(FieldError(field, message))
    }

    /// Throws `.validation` when any field failed.
    public func check() throws {
        if !self.errors.isEmpty { throw TernError.validation(self.errors) }
    }

    public mutating func name(_ value: String?, _ field: String = "name", required: Bool) {
        guard let value else {
            if required { self.fail(field, "is required") }
            return
        }
        // Lengths count Unicode scalars and blank means only spaces, tabs and line breaks, as docs/openapi.yaml says.
        if !value.unicodeScalars.contains(where: { !Rules.blanks.contains($0) }) {
            self.fail(field, "must not be empty")
        } else if value.unicodeScalars.count > 256 {
            self.fail(field, "must be at most 256 characters")
        }
    }

    public mutating func text(_ value: String?, _ field: String, max: Int) {
        if let value, value.unicodeScalars.count > max { self.fail(field, "must be at most \(max) characters") }
    }

    public mutating func eventTypeName(_ value: String?, _ field: String = "name") {
        guard let value else { return self.fail(field, "is required") }
        if !Rules.isEventTypeName(value) {
            self.fail(field, "must be 1-256 characters of letters, digits, '_', '.' and '-'")
        }
    }

    public mutating func tenantID(_ value: String?, _ field: String = "tenant_id") {
        guard let value else { return self.fail(field, "is required") }
        if let problem = Rules.tenantIDProblem(value) { self.fail(field, problem) }
    }

    public mutating func url(_ value: String?, _ field: String = "url", allowPrivate: Bool) {
        guard let value else { return self.fail(field, "is required") }
        if let problem = Rules.endpointURLProblem(value, allowPrivate: allowPrivate) { self.fail(field, problem) }
    }

    public mutating func timeout(_ value: Int?, _ field: String = "timeout_seconds") {
        if let value, !(1...30).contains(value) { self.fail(field, "must be between 1 and 30 seconds") }
    }

    public mutating func headers(_ value: [String: String]?, _ field: String = "headers") {
        guard let value else { return }
        if value.count > 50 { self.fail(field, "at most 50 headers") }
        for (name, headerValue) in value.sorted(by: { $0.key < $1.key }) {
            if let problem = Rules.headerProblem(name: name, value: headerValue) {
                self.fail("\(field).\(name)", problem)
            }
        }
    }
}

/// The input rules, usable one by one.
public enum Rules {
    static let eventTypeCharacters = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-".utf8)
    /// What a blank name consists of.
    static let blanks: Set<Unicode.Scalar> = [" ", "\t", "\n", "\r"]
    static let tokenCharacters = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~".utf8)
    /// Headers an endpoint may not set: hop-by-hop, framing, and the ones Tern signs.
    public static let reservedHeaders: Set<String> = [
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer",
        "trailers", "transfer-encoding", "upgrade", "host", "content-length", "content-type",
        "webhook-id", "webhook-timestamp", "webhook-signature", "svix-id", "svix-timestamp", "svix-signature",
    ]

    public static func isEventTypeName(_ value: String) -> Bool {
        let utf8 = value.utf8
        return !utf8.isEmpty && utf8.count <= 256 && utf8.allSatisfy { eventTypeCharacters.contains($0) }
    }

    public static func tenantIDProblem(_ value: String) -> String? {
        if value.isEmpty { return "must not be empty" }
        // Printable ASCII (most tenant IDs, one on every publish) needs no look-up of each character's category.
        if value.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { return value.utf8.count > 255 ? "must be at most 255 characters" : nil }
        if value.unicodeScalars.count > 255 { return "must be at most 255 characters" }
        if value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            return "must not contain control characters"
        }
        return nil
    }

    public static func headerProblem(name: String, value: String) -> String? {
        if name.isEmpty || name.utf8.count > 256 || !name.utf8.allSatisfy({ tokenCharacters.contains($0) }) {
            return "is not a valid header name"
        }
        if reservedHeaders.contains(name.lowercased()) {
            return "is a hop-by-hop or reserved header and cannot be set"
        }
        if value.unicodeScalars.count > 4096 { return "value must be at most 4096 characters" }
        if value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) {
            return "value must not contain line breaks"
        }
        return nil
    }

    /// The shape of an endpoint URL, the `EndpointURL` pattern of docs/openapi.yaml: http(s), a host name,
    /// an optional user, an optional port, then a path, query or fragment of printable ASCII (percent escapes whole).
    public static let endpointURLPattern =
        #"^[Hh][Tt][Tt][Pp][Ss]?://(([A-Za-z0-9._~!$'()*+,;=:-]|&|%[0-9A-Fa-f]{2})*@)?[A-Za-z0-9._~-]+(:[0-9]{1,5})?([/?#]([!-$'-~]|&|%[0-9A-Fa-f]{2})*)?$"#
    static let endpointURLExpression = try! NSRegularExpression(pattern: endpointURLPattern)

    /// Why `value` cannot be an endpoint URL, or nil when it can.
    public static func endpointURLProblem(_ value: String, allowPrivate: Bool) -> String? {
        if value.utf8.count > 2048 { return "must be at most 2048 characters" }
        let whole = NSRange(value.startIndex..., in: value)
        guard !value.hasSuffix("\n"), Self.endpointURLExpression.firstMatch(in: value, range: whole) != nil,
            let components = URLComponents(string: value), let scheme = components.scheme?.lowercased()
        else {
            return "must be an absolute http or https URL"
        }
        guard scheme == "http" || scheme == "https" else { return "must use http or https" }
        guard let host = components.host, !host.isEmpty else { return "must have a host" }
        if !allowPrivate, AddressClassifier.isForbiddenHostLiteral(host) {
            return "must not point at a loopback, private, link-local or otherwise internal address"
        }
        return nil
    }

    public static func isOrigin(_ value: String) -> Bool {
        if value == "*" { return true }
        guard let components = URLComponents(string: value), let scheme = components.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty
        else { return false }
        return components.path.isEmpty || components.path == "/"
    }

    public static func isColor(_ value: String) -> Bool {
        let utf8 = Array(value.utf8)
        guard utf8.first == UInt8(ascii: "#"), utf8.count == 4 || utf8.count == 7 else { return false }
        return utf8.dropFirst().allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) || ($0 >= 65 && $0 <= 70) }
    }
}
