import Foundation

/// An IPv4 or IPv6 address range in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`), or one address (`203.0.113.9`).
public struct IPRange: Sendable, Equatable, CustomStringConvertible {
    let bytes: [UInt8]
    let prefix: Int
    public let description: String

    /// Parses `address` or `address/prefix`; nil for anything else. IPv4 is dotted quads only, as written in a config.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard (1...2).contains(parts.count), Self.isDottedQuad(parts[0]) || parts[0].contains(":"),
            let address = AddressClassifier.parse(parts[0])
        else { return nil }
        let bytes: [UInt8]
        switch address {
        case .v4(let v4): bytes = v4
        case .v6(let v6): bytes = v6
        }
        var prefix = bytes.count * 8
        if parts.count == 2 {
            guard let bits = Int(parts[1]), parts[1].allSatisfy(\.isNumber), (0...bytes.count * 8).contains(bits) else { return nil }
            prefix = bits
        }
        self.bytes = Self.masked(bytes, prefix)
        self.prefix = prefix
        self.description = text
    }

    static func isDottedQuad(_ text: String) -> Bool {
        let octets = text.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets.allSatisfy { !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isNumber) && Int($0)! <= 255 }
    }

    static func masked(_ bytes: [UInt8], _ prefix: Int) -> [UInt8] {
        bytes.enumerated().map { index, byte in
            let bits = max(0, min(8, prefix - index * 8))
            return bits == 0 ? 0 : byte & UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
        }
    }

    /// True when `address` is in the range; an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) counts as its IPv4 address.
    public func contains(_ address: AddressClassifier.Address) -> Bool {
        var bytes: [UInt8]
        switch address {
        case .v4(let v4): bytes = v4
        case .v6(let v6):
            bytes = v6
            if self.bytes.count == 4, v6[0..<10].allSatisfy({ $0 == 0 }), v6[10] == 0xFF, v6[11] == 0xFF { bytes = Array(v6[12..<16]) }
        }
        return bytes.count == self.bytes.count && Self.masked(bytes, self.prefix) == self.bytes
    }
}

/// Who sent a request: the peer, unless the peer is a trusted proxy, whose `X-Forwarded-For` then names the client.
public enum ClientAddress {
    /// The client of a request from `peer`. Behind trusted proxies, the right-most `X-Forwarded-For` entry that is not
    /// itself a trusted proxy (entries further left could be written by anyone); the peer when it is not trusted.
    public static func resolve(
        peer: AddressClassifier.Address?, forwardedFor: [String], trustedProxies: [IPRange]
    ) -> AddressClassifier.Address? {
        guard var client = peer else { return nil }
        func trusted(_ address: AddressClassifier.Address) -> Bool { trustedProxies.contains { $0.contains(address) } }
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        for hop in hops.reversed() {
            guard trusted(client), let address = AddressClassifier.parse(hop) else { break }
            client = address
        }
        return client
    }
}
