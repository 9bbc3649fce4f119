import TernCore
import Testing

@testable import TernDelivery
@testable import TernTesting

/// The SSRF guard on its own. No test sends traffic off the machine: names resolve through a stub resolver here,
/// and end to end the guard is shown refusing a loopback receiver (DeliveryTests).
@Suite struct EgressGuardTests {
    static let stubbed = EgressGuard { name in
        switch name {
        case "internal.example.com": return [.v4([93, 184, 216, 34]), .v4([10, 0, 0, 7])]
        case "metadata.example.com": return [.v4([169, 254, 169, 254])]
        case "v6.example.com": return [.v6([0xFD] + Array(repeating: 0, count: 14) + [1])]
        case "public.example.com": return [.v4([93, 184, 216, 34]), .v6([0x26, 0x06, 0x28, 0x00] + Array(repeating: 0, count: 11) + [1])]
        default: throw AddressClassifier.ResolutionError(host: name, reason: "unknown")
        }
    }

    @Test(arguments: [
        "127.0.0.1", "127.1", "2130706433", "[::1]", "10.0.0.5", "192.168.1.1", "169.254.169.254", "[fe80::1]", "[::ffff:127.0.0.1]",
        "0.0.0.0", "[::]", "224.0.0.1", "localhost", "api.localhost",
    ])
    func internalLiteralsAndNamesAreRefused(_ host: String) async {
        await #expect(throws: EgressGuard.Refused.self) { try await Self.stubbed.check(host: host) }
    }

    @Test(arguments: ["internal.example.com", "metadata.example.com", "v6.example.com"])
    func aNameResolvingToAnyInternalAddressIsRefused(_ host: String) async {
        do {
            try await Self.stubbed.check(host: host)
            Issue.record("\(host) was let through")
        } catch let refused as EgressGuard.Refused {
            #expect(refused.description.contains("\(host) resolves to"), "\(refused)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func aNameResolvingOnlyToPublicAddressesPasses() async throws {
        try await Self.stubbed.check(host: "public.example.com")
        try await Self.stubbed.check(host: "93.184.216.34")
    }
}
