#if canImport(Glibc)
import Glibc
#endif

/// Decides whether an IP address is one Tern may deliver to: public unicast only, unless the operator
/// allows private endpoints. Used on host literals when an endpoint is saved and on every resolved
/// address before a delivery connects.
public enum AddressClassifier {
    /// An IPv4 or IPv6 address in network byte order.
    public enum Address: Sendable, Equatable {
        case v4([UInt8])
        case v6([UInt8])

        /// The address in its usual text form (`10.0.0.1`, `::1`).
        public var text: String {
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            switch self {
            case .v4(let bytes):
                _ = bytes.withUnsafeBytes { inet_ntop(AF_INET, $0.baseAddress, &buffer, socklen_t(buffer.count)) }
            case .v6(let bytes):
                _ = bytes.withUnsafeBytes { inet_ntop(AF_INET6, $0.baseAddress, &buffer, socklen_t(buffer.count)) }
            }
            return String(cString: buffer)
        }
    }

    /// Resolves a host name with the system resolver (`getaddrinfo`, blocking: call it off the event loops).
    public static func resolve(_ host: String) throws -> [Address] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let code = getaddrinfo(host, nil, &hints, &result)
        guard code == 0 else { throw ResolutionError(host: host, reason: String(cString: gai_strerror(code))) }
        defer { freeaddrinfo(result) }
        var addresses: [Address] = []
        var cursor = result
        while let info = cursor {
            if info.pointee.ai_family == AF_INET, let address = info.pointee.ai_addr {
                var raw = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                addresses.append(.v4(withUnsafeBytes(of: &raw) { Array($0) }))
            } else if info.pointee.ai_family == AF_INET6, let address = info.pointee.ai_addr {
                var raw = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                addresses.append(.v6(withUnsafeBytes(of: &raw) { Array($0) }))
            }
            cursor = info.pointee.ai_next
        }
        return addresses
    }

    /// A host name that does not resolve.
    public struct ResolutionError: Error, CustomStringConvertible {
        public var host: String
        public var reason: String

        public init(host: String, reason: String) {
            self.host = host
            self.reason = reason
        }

        public var description: String { "cannot resolve \(self.host): \(self.reason)" }
    }

    /// Parses a host literal: dotted IPv4 in any form `inet_aton` takes (so `127.1` and `2130706433`
    /// count, as they would when connecting), or IPv6 with or without brackets.
    public static func parse(_ host: String) -> Address? {
        var text = host
        if text.hasPrefix("["), text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
        if let zone = text.firstIndex(of: "%") { text = String(text[..<zone]) }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return .v6(withUnsafeBytes(of: &v6) { Array($0) })
        }
        var v4 = in_addr()
        if !text.isEmpty,
            text.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || $0 == 46 || $0 == 120 || $0 == 88 || ($0 >= 97 && $0 <= 102) || ($0 >= 65 && $0 <= 70) }
            ),
            inet_aton(text, &v4) == 1
        {
            return .v4(withUnsafeBytes(of: &v4) { Array($0) })
        }
        return nil
    }

    /// True when the address is loopback, private, shared (CGNAT), link-local, multicast, unspecified,
    /// reserved or documentation space — anything but public unicast.
    public static func isForbidden(_ address: Address) -> Bool {
        switch address {
        case .v4(let bytes):
            return isForbiddenV4(bytes)
        case .v6(let bytes):
            // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d) addresses carry an IPv4 address.
            if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
                return isForbiddenV4(Array(bytes[12..<16]))
            }
            if bytes[0..<12].allSatisfy({ $0 == 0 }) {
                return true  // ::, ::1 and the deprecated IPv4-compatible range
            }
            // NAT64 (64:ff9b::/96) embeds an IPv4 address too.
            if bytes[0] == 0x00 && bytes[1] == 0x64 && bytes[2] == 0xFF && bytes[3] == 0x9B && bytes[4..<12].allSatisfy({ $0 == 0 }) {
                return isForbiddenV4(Array(bytes[12..<16]))
            }
            if bytes[0] & 0xFE == 0xFC { return true }  // fc00::/7 unique local
            if bytes[0] == 0xFE && bytes[1] & 0xC0 == 0x80 { return true }  // fe80::/10 link-local
            if bytes[0] == 0xFE && bytes[1] & 0xC0 == 0xC0 { return true }  // fec0::/10 site-local (deprecated)
            if bytes[0] == 0xFF { return true }  // ff00::/8 multicast
            if bytes[0] == 0x20 && bytes[1] == 0x01 && bytes[2] == 0x0D && bytes[3] == 0xB8 { return true }  // 2001:db8::/32 documentation
            return false
        }
    }

    static func isForbiddenV4(_ b: [UInt8]) -> Bool {
        switch b[0] {
        case 0, 10, 127: return true  // this network, private, loopback
        case 100 where b[1] & 0xC0 == 64: return true  // 100.64/10 shared address space
        case 169 where b[1] == 254: return true  // link-local
        case 172 where b[1] & 0xF0 == 16: return true  // 172.16/12
        case 192 where b[1] == 168: return true  // 192.168/16
        case 192 where b[1] == 0 && (b[2] == 0 || b[2] == 2): return true  // IETF protocol assignments, TEST-NET-1
        case 198 where b[1] & 0xFE == 18: return true  // 198.18/15 benchmarking
        case 198 where b[1] == 51 && b[2] == 100: return true  // TEST-NET-2
        case 203 where b[1] == 0 && b[2] == 113: return true  // TEST-NET-3
        case 224...255: return true  // multicast, reserved, broadcast
        default: return false
        }
    }

    /// True when a URL host is, by itself, an internal target: an internal IP literal or a `localhost` name.
    public static func isForbiddenHostLiteral(_ host: String) -> Bool {
        let lowered = host.lowercased().trimmingTrailingDot()
        if lowered == "localhost" || lowered.hasSuffix(".localhost") { return true }
        if let address = parse(lowered) { return isForbidden(address) }
        return false
    }
}

extension String {
    fileprivate func trimmingTrailingDot() -> String {
        self.hasSuffix(".") ? String(self.dropLast()) : self
    }
}
