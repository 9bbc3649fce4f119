import Testing

@testable import TernCore

/// Source allowlists: CIDR ranges, and the client behind trusted proxies.
@Suite struct IPRangeTests {
    static func address(_ text: String) -> AddressClassifier.Address { AddressClassifier.parse(text)! }

    @Test(arguments: [
        ("192.0.2.0/24", "192.0.2.200", true), ("192.0.2.0/24", "192.0.3.1", false), ("192.0.2.9", "192.0.2.9", true),
        ("0.0.0.0/0", "203.0.113.5", true), ("10.1.2.3/8", "10.200.0.1", true), ("2001:db8::/32", "2001:db8:ffff::1", true),
        ("2001:db8::/32", "2001:db9::1", false), ("127.0.0.1", "::ffff:127.0.0.1", true), ("::1", "127.0.0.1", false),
        ("192.0.2.128/25", "192.0.2.127", false),
    ])
    func rangesContainTheirAddresses(_ range: String, _ address: String, _ inside: Bool) throws {
        let parsed = try #require(IPRange(range))
        #expect(parsed.contains(Self.address(address)) == inside)
    }

    @Test(arguments: ["", "10.0.0.0/33", "2001:db8::/129", "example.com", "127.1", "10.0.0.0/", "10.0.0.0/8/8", "1.2.3.4/-1", "256.1.1.1"])
    func anythingElseIsNoRange(_ text: String) {
        #expect(IPRange(text) == nil)
    }

    @Test func behindTrustedProxiesTheRightmostUntrustedHopIsTheClient() {
        let proxies = [IPRange("127.0.0.1")!, IPRange("10.0.0.0/8")!]
        let peer = Self.address("127.0.0.1")
        #expect(ClientAddress.resolve(peer: peer, forwardedFor: ["198.51.100.7, 10.0.0.5"], trustedProxies: proxies) == Self.address("198.51.100.7"))
        #expect(
            ClientAddress.resolve(peer: peer, forwardedFor: ["203.0.113.1", "198.51.100.7"], trustedProxies: proxies) == Self.address("198.51.100.7"))
        #expect(ClientAddress.resolve(peer: peer, forwardedFor: ["garbage"], trustedProxies: proxies) == peer)
        #expect(
            ClientAddress.resolve(peer: Self.address("192.0.2.1"), forwardedFor: ["198.51.100.7"], trustedProxies: proxies)
                == Self.address("192.0.2.1"))
        #expect(ClientAddress.resolve(peer: nil, forwardedFor: ["198.51.100.7"], trustedProxies: proxies) == nil)
    }
}
