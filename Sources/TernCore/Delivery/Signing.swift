import Crypto
import Foundation

/// Standard Webhooks signatures over `"{id}.{timestamp}.{body}"`: `v1,` + base64 of HMAC-SHA256 keyed by the bytes
/// that follow `whsec_` in the endpoint secret, or, for a `whsk_` signing key, `v1a,` + base64 of its Ed25519 signature
/// (verified with the `whpk_` public key).
public enum WebhookSignature {
    /// The signature of one secret.
    public static func sign(secret: String, messageID: String, timestamp: Int64, body: some Sequence<UInt8>) -> String? {
        if secret.hasPrefix(EndpointSecret.signingKeyPrefix) {
            guard let key = EndpointSecret.signingKey(secret),
                let signature = try? key.signature(for: Array("\(messageID).\(timestamp).".utf8) + Array(body))
            else { return nil }
            return "v1a," + Data(signature).base64EncodedString()
        }
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

    /// True when `header` holds a valid signature by `secret` (constant-time compare; for a `whsk_` key, a `v1a,`
    /// signature its public key verifies); for tests and inbound sources.
    public static func verify(header: String, secret: String, messageID: String, timestamp: Int64, body: [UInt8]) -> Bool {
        if let key = EndpointSecret.signingKey(secret) {
            let signed = Array("\(messageID).\(timestamp).".utf8) + body
            return header.split(separator: " ").contains { candidate in
                guard candidate.hasPrefix("v1a,"), let signature = Data(base64Encoded: String(candidate.dropFirst(4))) else { return false }
                return key.publicKey.isValidSignature(signature, for: signed)
            }
        }
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
