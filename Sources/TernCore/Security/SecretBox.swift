import Crypto
import Foundation

/// Encrypts secrets at rest with AES-256-GCM. Stored form: `v1:` + base64(nonce ‖ ciphertext ‖ tag).
public struct SecretBox: Sendable {
    let keyBytes: [UInt8]

    var key: SymmetricKey { SymmetricKey(data: self.keyBytes) }

    /// `keyBase64` must be base64 of exactly 32 bytes.
    public init?(keyBase64: String) {
        guard let bytes = Data(base64Encoded: keyBase64.trimmingCharacters(in: .whitespacesAndNewlines)), bytes.count == 32 else {
            return nil
        }
        self.keyBytes = Array(bytes)
    }

    /// A new random key in its base64 form.
    public static func generateKeyBase64() -> String {
        Data(randomBytes(32)).base64EncodedString()
    }

    public func seal(_ plaintext: String) throws -> String {
        let sealed = try AES.GCM.seal(Array(plaintext.utf8), using: self.key)
        guard let combined = sealed.combined else { throw TernError.unavailable("encryption failed") }
        return "v1:" + combined.base64EncodedString()
    }

    public func open(_ stored: String) throws -> String {
        guard stored.hasPrefix("v1:"), let combined = Data(base64Encoded: String(stored.dropFirst(3))) else {
            throw TernError.unavailable("a stored secret is not in the expected format")
        }
        let box = try AES.GCM.SealedBox(combined: combined)
        return String(decoding: try AES.GCM.open(box, using: self.key), as: UTF8.self)
    }
}

/// Endpoint signing secrets: `whsec_` + base64 of 32 random bytes.
public enum EndpointSecret {
    /// How long a rotated-out secret keeps signing beside the new one.
    public static let rotationOverlapSeconds: Int64 = 24 * 3600

    public static func generate() -> String {
        "whsec_" + Data(randomBytes(32)).base64EncodedString()
    }

    /// True when `value` is `whsec_` + base64 of 24 to 64 bytes, or a `whsk_` Ed25519 signing key.
    public static func isValid(_ value: String) -> Bool {
        if value.hasPrefix(Self.signingKeyPrefix) { return Self.signingKey(value) != nil }
        guard value.hasPrefix("whsec_"), let bytes = Data(base64Encoded: String(value.dropFirst(6))) else { return false }
        return (24...64).contains(bytes.count)
    }

    /// Ed25519 keys as the Standard Webhooks spec writes them: `whsk_` + base64 of the 32-byte private key (a 64-byte
    /// key, seed then public key, is read too), `whpk_` + base64 of the 32-byte public key.
    public static let signingKeyPrefix = "whsk_"
    public static let publicKeyPrefix = "whpk_"

    /// A new `whsk_` signing key.
    public static func generateSigningKey() -> String {
        Self.signingKeyPrefix + Curve25519.Signing.PrivateKey().rawRepresentation.base64EncodedString()
    }

    /// A secret of the kind `signing` asks for.
    public static func generate(_ signing: EndpointSigning) -> String {
        signing == .ed25519 ? Self.generateSigningKey() : Self.generate()
    }

    /// The private key of a `whsk_` secret, or nil.
    public static func signingKey(_ secret: String) -> Curve25519.Signing.PrivateKey? {
        guard secret.hasPrefix(Self.signingKeyPrefix), let bytes = Data(base64Encoded: String(secret.dropFirst(Self.signingKeyPrefix.count))),
            bytes.count == 32 || bytes.count == 64
        else { return nil }
        return try? Curve25519.Signing.PrivateKey(rawRepresentation: bytes.prefix(32))
    }

    /// The `whpk_` public key of a `whsk_` secret; nil for an HMAC secret.
    public static func publicKey(_ secret: String) -> String? {
        Self.signingKey(secret).map { Self.publicKeyPrefix + $0.publicKey.rawRepresentation.base64EncodedString() }
    }
}
