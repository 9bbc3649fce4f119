import CArgon2
import Crypto
import Foundation

/// The bearer token of an API key: `tern_<key id>_<secret>`, with a secret of 32 random bytes.
public struct APIKeyToken: Sendable, Equatable {
    public var keyID: String
    public var secret: String

    /// A new key id and secret.
    public static func generate() -> APIKeyToken {
        APIKeyToken(keyID: Identifier.make("key"), secret: Base64URL.encode(randomBytes(32)))
    }

    public init(keyID: String, secret: String) {
        self.keyID = keyID
        self.secret = secret
    }

    /// Parses a bearer token; nil when it does not have the key shape.
    public init?(parsing token: String) {
        guard token.hasPrefix("tern_key_") else { return nil }
        let rest = token.dropFirst("tern_".count)
        guard let separator = rest.dropFirst("key_".count).firstIndex(of: "_") else { return nil }
        let keyID = String(rest[..<separator])
        let secret = String(rest[rest.index(after: separator)...])
        guard Identifier.isValid(keyID, prefix: "key"), secret.utf8.count >= 43, secret.utf8.count <= 128 else { return nil }
        self.init(keyID: keyID, secret: secret)
    }

    /// The whole token, shown once.
    public var token: String { "tern_\(self.keyID)_\(self.secret)" }

    /// What a listing shows: enough to recognise the key, never enough to use it.
    public var displayPrefix: String { "tern_\(self.keyID)_\(self.secret.prefix(4))" }
}

/// Argon2id password hashing through the system libargon2.
public enum Argon2id {
    /// Makes the memory of each verification go back to the system when it ends (see `tern_fix_mmap_threshold`);
    /// called once when a server starts.
    public static func returnMemoryAfterUse() {
        tern_fix_mmap_threshold()
    }

    /// OWASP's recommended minimum: 19 MiB of memory, 2 iterations, 1 lane.
    public static let memoryKiB: UInt32 = 19 * 1024
    public static let iterations: UInt32 = 2
    public static let parallelism: UInt32 = 1

    /// The encoded hash (`$argon2id$v=19$m=…`) of `secret` with a fresh 16-byte salt.
    public static func hash(_ secret: String) -> String {
        let salt = randomBytes(16)
        let hashLength = 32
        let encodedLength = argon2_encodedlen(iterations, memoryKiB, parallelism, UInt32(salt.count), UInt32(hashLength), Argon2_id)
        var encoded = [CChar](repeating: 0, count: encodedLength)
        let password = Array(secret.utf8)
        let result = password.withUnsafeBytes { passwordBytes in
            salt.withUnsafeBytes { saltBytes in
                argon2id_hash_encoded(
                    iterations, memoryKiB, parallelism, passwordBytes.baseAddress, password.count,
                    saltBytes.baseAddress, salt.count, hashLength, &encoded, encodedLength
                )
            }
        }
        precondition(result == ARGON2_OK.rawValue, "argon2id_hash_encoded failed: \(result)")
        return String(cString: encoded)
    }

    /// True when `secret` matches `encoded`.
    public static func verify(_ secret: String, encoded: String) -> Bool {
        let password = Array(secret.utf8)
        return password.withUnsafeBytes { passwordBytes in
            argon2id_verify(encoded, passwordBytes.baseAddress, password.count) == ARGON2_OK.rawValue
        }
    }
}

/// `count` bytes from the system's secure random generator: `getentropy`, one system call per 256 bytes. The standard
/// library's generator makes one per value it returns (8 bytes, or a single byte when asked for `UInt8`s), and
/// swift-crypto's `SymmetricKey(size:)` draws through it 8 bytes at a time.
public func randomBytes(_ count: Int) -> [UInt8] {
    [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
        var offset = 0
        while offset < count {
            let chunk = min(256, count - offset)
            if getentropy(buffer.baseAddress! + offset, chunk) != 0 {
                var generator = SystemRandomNumberGenerator()
                for index in offset..<(offset + chunk) { buffer[index] = UInt8(truncatingIfNeeded: generator.next() as UInt64) }
            }
            offset += chunk
        }
        initialized = count
    }
}

/// Base64url without padding.
public enum Base64URL {
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    public static func decode(_ text: String) -> [UInt8]? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64).map { Array($0) }
    }
}

/// A fast, non-reversible fingerprint of a token, used as the key of the verified-token cache.
public func tokenFingerprint(_ token: String) -> SHA256.Digest {
    SHA256.hash(data: Array(token.utf8))
}

/// The same fingerprint as hex, for keys of caches that must not hold the secret itself.
public func fingerprintHex(_ text: String) -> String {
    InboundVerifier.hex(Array(tokenFingerprint(text)))
}
