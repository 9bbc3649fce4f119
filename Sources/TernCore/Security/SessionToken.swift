import Crypto
import Foundation

/// What a portal or admin session token says: whose session it is and until when.
public struct SessionClaims: Sendable, Equatable, Codable {
    /// `portal` or `admin`.
    public var kind: String
    public var organizationID: String?
    public var applicationID: String?
    public var tenantID: String?
    /// Unix seconds.
    public var expires: Int64
    /// Makes every token distinct.
    public var nonce: String

    public init(kind: String, organizationID: String? = nil, applicationID: String? = nil, tenantID: String? = nil, expires: Int64) {
        self.kind = kind
        self.organizationID = organizationID
        self.applicationID = applicationID
        self.tenantID = tenantID
        self.expires = expires
        self.nonce = Base64URL.encode(randomBytes(9))
    }

    enum CodingKeys: String, CodingKey {
        case kind = "k"
        case organizationID = "o"
        case applicationID = "a"
        case tenantID = "t"
        case expires = "e"
        case nonce = "n"
    }
}

/// Signed, stateless session tokens: `base64url(JSON claims).base64url(HMAC-SHA256)`, under a key derived from
/// `TERN_ENCRYPTION_KEY`, so every node verifies what any node signed. Also derives CSRF tokens bound to a session.
public struct SessionSigner: Sendable {
    let keyBytes: [UInt8]

    public init(secretBox: SecretBox) {
        let derived = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: secretBox.key, info: Array("tern session tokens v1".utf8), outputByteCount: 32
        )
        self.keyBytes = derived.withUnsafeBytes { Array($0) }
    }

    /// Why a token was not accepted.
    public enum Rejection: Error, Equatable {
        case malformed, badSignature, expired
    }

    public func sign(_ claims: SessionClaims) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let body = Base64URL.encode(Array((try? encoder.encode(claims)) ?? Data()))
        return body + "." + self.mac(body)
    }

    /// The claims of a token signed here that has not expired.
    public func verify(_ token: String, now: Date = Date()) throws(Rejection) -> SessionClaims {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, token.utf8.count < 4096 else { throw .malformed }
        guard constantTimeEqual(Array(self.mac(String(parts[0])).utf8), Array(parts[1].utf8)) else { throw .badSignature }
        guard let json = Base64URL.decode(String(parts[0])),
            let claims = try? JSONDecoder().decode(SessionClaims.self, from: Data(json))
        else { throw .malformed }
        guard claims.expires > Int64(now.timeIntervalSince1970) else { throw .expired }
        return claims
    }

    /// The CSRF token of a session: every form of the session carries it, and every POST must.
    public func csrfToken(for session: String) -> String {
        self.mac("csrf:" + session)
    }

    public func checkCSRF(_ presented: String?, session: String) -> Bool {
        guard let presented else { return false }
        return constantTimeEqual(Array(presented.utf8), Array(self.csrfToken(for: session).utf8))
    }

    func mac(_ text: String) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: SymmetricKey(data: self.keyBytes))
        return Base64URL.encode(Array(code))
    }
}
