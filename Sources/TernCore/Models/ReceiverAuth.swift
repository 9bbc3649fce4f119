import Foundation

/// How Tern proves itself to an endpoint's receiver besides the signature: HTTP basic, a static bearer token, or an
/// OAuth2 client-credentials token that Tern fetches from the receiver's token server. Its secrets are sealed at rest
/// and never shown (`shown` is the output).
public enum EndpointAuth: Sendable, Equatable, Codable {
    case basic(username: String, password: String)
    case bearer(token: String)
    case oauth2(OAuth2ClientCredentials)

    public struct OAuth2ClientCredentials: Sendable, Equatable, Codable {
        public var tokenURL: String
        public var clientID: String
        public var clientSecret: String
        public var scope: String?
        public var audience: String?

        public init(tokenURL: String, clientID: String, clientSecret: String, scope: String? = nil, audience: String? = nil) {
            self.tokenURL = tokenURL
            self.clientID = clientID
            self.clientSecret = clientSecret
            self.scope = scope
            self.audience = audience
        }
    }

    public var type: String {
        switch self {
        case .basic: "basic"
        case .bearer: "bearer"
        case .oauth2: "oauth2_client_credentials"
        }
    }

    /// What the APIs show: the type and what is not secret.
    public var shown: JSONValue {
        switch self {
        case .basic(let username, _): .object(["type": .string(self.type), "username": .string(username)])
        case .bearer: .object(["type": .string(self.type)])
        case .oauth2(let grant):
            .object([
                "type": .string(self.type), "token_url": .string(grant.tokenURL), "client_id": .string(grant.clientID),
                "scope": grant.scope.map(JSONValue.string) ?? .null, "audience": grant.audience.map(JSONValue.string) ?? .null,
            ])
        }
    }

    /// Reads the API's `auth` object; each problem is a field error under `field`. `checkURL` says what is wrong with
    /// a token URL, if anything (the SSRF rules of endpoint URLs).
    public static func parse(_ value: JSONValue, field: String = "auth", checkURL: (String) -> String?) throws(TernError) -> EndpointAuth {
        guard case .object(let members) = value else { throw TernError.invalid(field, "must be an object with a type") }
        var errors: [FieldError] = []
        func text(_ name: String, limit: Int = 4_096, required: Bool = true) -> String? {
            switch members[name] {
            case .string(let value) where !value.isEmpty && value.count <= limit: return value
            case nil where !required, .null? where !required: return nil
            default:
                errors.append(FieldError("\(field).\(name)", "must be a string of 1 to \(limit) characters"))
                return nil
            }
        }
        let known: Set<String>
        var auth: EndpointAuth?
        switch members["type"] {
        case .string("basic"):
            known = ["type", "username", "password"]
            let username = text("username", limit: 256)
            let password = text("password")
            if let username, username.contains(":") { errors.append(FieldError("\(field).username", "must not contain ':'")) }
            if let username, let password { auth = .basic(username: username, password: password) }
        case .string("bearer"):
            known = ["type", "token"]
            if let token = text("token") { auth = .bearer(token: token) }
        case .string("oauth2_client_credentials"):
            known = ["type", "token_url", "client_id", "client_secret", "scope", "audience"]
            let url = text("token_url", limit: 2_048)
            if let url, let problem = checkURL(url) { errors.append(FieldError("\(field).token_url", problem)) }
            let clientID = text("client_id", limit: 512)
            let secret = text("client_secret")
            let scope = text("scope", limit: 1_024, required: false)
            let audience = text("audience", limit: 1_024, required: false)
            if let url, let clientID, let secret {
                auth = .oauth2(OAuth2ClientCredentials(tokenURL: url, clientID: clientID, clientSecret: secret, scope: scope, audience: audience))
            }
        default:
            throw TernError.invalid("\(field).type", "must be 'basic', 'bearer' or 'oauth2_client_credentials'")
        }
        for name in members.keys.sorted() where !known.contains(name) {
            errors.append(
                FieldError(
                    "\(field).\(name)",
                    "is not a setting of \(members["type"].flatMap { if case .string(let t) = $0 { t } else { nil } } ?? "this type")"))
        }
        guard errors.isEmpty, let auth else { throw TernError.validation(errors) }
        return auth
    }
}

/// The TLS material of an endpoint: a client certificate and its key for mutual TLS, and the CAs that sign the
/// receiver's certificate when they are private. PEM text; the key is sealed at rest and never shown.
public struct EndpointTLS: Sendable, Equatable, Codable {
    public var clientCertificatePEM: String?
    public var clientKeyPEM: String?
    public var caBundlePEM: String?

    public init(clientCertificatePEM: String? = nil, clientKeyPEM: String? = nil, caBundlePEM: String? = nil) {
        self.clientCertificatePEM = clientCertificatePEM
        self.clientKeyPEM = clientKeyPEM
        self.caBundlePEM = caBundlePEM
    }

    public var isEmpty: Bool { self.clientCertificatePEM == nil && self.clientKeyPEM == nil && self.caBundlePEM == nil }

    /// What the APIs show: the certificates (public), and only whether a key is set.
    public var shown: JSONValue {
        .object([
            "client_certificate_pem": self.clientCertificatePEM.map(JSONValue.string) ?? .null,
            "client_key_set": .bool(self.clientKeyPEM != nil),
            "ca_bundle_pem": self.caBundlePEM.map(JSONValue.string) ?? .null,
        ])
    }

    /// The largest PEM text of each kind.
    public static let maxPEMBytes = 65_536
}

/// How deliveries are signed: HMAC-SHA256 with the shared `whsec_` secret (`v1,`), or Ed25519 with a `whsk_` key that
/// Tern keeps and a `whpk_` public key the receiver verifies with (`v1a,`).
public enum EndpointSigning: String, Sendable, Codable, CaseIterable {
    case hmac
    case ed25519

    /// The kind of a stored secret, told by its prefix.
    public init(secret: String) {
        self = secret.hasPrefix(EndpointSecret.signingKeyPrefix) ? .ed25519 : .hmac
    }
}
