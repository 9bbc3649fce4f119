import Crypto
import Foundation

/// Standard Webhooks signatures: `v1,` + base64 of HMAC-SHA256 over `"{id}.{timestamp}.{body}"`, keyed by the
/// bytes that follow `whsec_` in the endpoint secret.
public enum WebhookSignature {
    /// The signature of one secret.
    public static func sign(secret: String, messageID: String, timestamp: Int64, body: some Sequence<UInt8>) -> String? {
        guard let key = Self.keyBytes(secret) else { return nil }
        var mac = HMAC<SHA256>(key: SymmetricKey(data: key))
        mac.update(data: Array("\(messageID).\(timestamp).".utf8))
        mac.update(data: Array(body))
        return "v1," + Data(mac.finalize()).base64EncodedString()
    }

    /// The `webhook-signature` header value: one `v1,` signature per secret, space-separated (the current secret
    /// first, then a rotated-out one while it still signs).
    public static func header(secrets: [String], messageID: String, timestamp: Int64, body: [UInt8]) -> String {
        secrets.compactMap { Self.sign(secret: $0, messageID: messageID, timestamp: timestamp, body: body) }.joined(separator: " ")
    }

    /// True when `header` holds a valid signature by `secret` (constant-time compare); for tests and inbound sources.
    public static func verify(header: String, secret: String, messageID: String, timestamp: Int64, body: [UInt8]) -> Bool {
        guard let expected = Self.sign(secret: secret, messageID: messageID, timestamp: timestamp, body: body) else { return false }
        let expectedBytes = Array(expected.utf8)
        var found = false
        for candidate in header.split(separator: " ") where constantTimeEqual(Array(candidate.utf8), expectedBytes) {
            found = true
        }
        return found
    }

    static func keyBytes(_ secret: String) -> Data? {
        let encoded = secret.hasPrefix("whsec_") ? String(secret.dropFirst("whsec_".count)) : secret
        return Data(base64Encoded: encoded)
    }
}

/// Compares two byte strings in time that depends only on their length.
public func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
    guard lhs.count == rhs.count else { return false }
    var difference: UInt8 = 0
    for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
    return difference == 0
}
