import AsyncHTTPClient
import Foundation
import NIOCore
import NIOSSL
import Synchronization
import TernCore

/// A failure to authenticate before the delivery was sent (the token server's answer, or its absence); its
/// description is the attempt's error and never holds a secret.
struct ReceiverAccessError: Error, CustomStringConvertible {
    var description: String
}

/// OAuth2 client-credentials tokens, one per endpoint and set of credentials: fetched once, shared by every send
/// of the endpoint (concurrent sends wait for the same request), kept until shortly before they expire, and fetched
/// again once when the receiver answers 401 to the token in use.
actor OAuth2Tokens {
    struct Token: Sendable {
        var value: String
        var until: ContinuousClock.Instant
    }

    private var tokens: [String: Token] = [:]
    private var fetching: [String: Task<Token, any Error>] = [:]
    /// Token requests made, for tests and metrics.
    private(set) var requests = 0

    /// How long before its expiry a token is no longer used; without `expires_in` a token is kept 5 minutes.
    static let margin: Duration = .seconds(30)
    static let defaultLifetime: Duration = .seconds(300)

    /// A token for the endpoint; `replacing` is a token the receiver refused, which is not handed out again.
    func token(
        endpointID: String, _ grant: EndpointAuth.OAuth2ClientCredentials, replacing refused: String? = nil,
        fetch: @escaping @Sendable () async throws -> Token
    ) async throws -> String {
        let key = Self.key(endpointID, grant)
        if let token = self.tokens[key], token.until > .now, token.value != refused { return token.value }
        if let running = self.fetching[key] { return try await running.value.value }
        self.tokens[key] = nil
        let task = Task { try await fetch() }
        self.fetching[key] = task
        self.requests += 1
        defer { self.fetching[key] = nil }
        let token = try await task.value
        self.tokens[key] = token
        return token.value
    }

    /// The cache key: the endpoint and a digest of its credentials, so that new credentials fetch a new token.
    static func key(_ endpointID: String, _ grant: EndpointAuth.OAuth2ClientCredentials) -> String {
        let material = [grant.tokenURL, grant.clientID, grant.clientSecret, grant.scope ?? "", grant.audience ?? ""].joined(separator: "\u{1F}")
        return endpointID + ":" + fingerprintHex(material)
    }

    /// Asks the token server for a client-credentials token (client authentication by HTTP Basic, RFC 6749 2.3.1).
    static func request(
        _ grant: EndpointAuth.OAuth2ClientCredentials, client: HTTPClient, deadline: NIODeadline, timeoutSeconds: Int
    ) async throws -> Token {
        func form(_ text: String) -> String {
            var allowed = CharacterSet.alphanumerics
            allowed.insert(charactersIn: "-._~")
            return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
        }
        var request = HTTPClientRequest(url: grant.tokenURL)
        request.method = .POST
        let credentials = Data("\(form(grant.clientID)):\(form(grant.clientSecret))".utf8).base64EncodedString()
        request.headers.add(name: "authorization", value: "Basic \(credentials)")
        request.headers.add(name: "content-type", value: "application/x-www-form-urlencoded")
        request.headers.add(name: "accept", value: "application/json")
        var body = "grant_type=client_credentials"
        if let scope = grant.scope { body += "&scope=\(form(scope))" }
        if let audience = grant.audience { body += "&audience=\(form(audience))" }
        request.body = .bytes(ByteBuffer(string: body))
        let response: HTTPClientResponse
        let text: String
        do {
            response = try await client.execute(request, deadline: deadline)
            text = String(buffer: try await response.body.collect(upTo: 64 * 1024))
        } catch {
            throw ReceiverAccessError(
                description: "the OAuth2 token request to \(grant.tokenURL) failed: \(WebhookSender.describe(error, timeout: timeoutSeconds))")
        }
        let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
        guard (200..<300).contains(response.status.code) else {
            let reason = [object?["error"] as? String, object?["error_description"] as? String].compactMap { $0 }.joined(separator: ": ")
            throw ReceiverAccessError(
                description: "the OAuth2 token request to \(grant.tokenURL) answered HTTP \(response.status.code)"
                    + (reason.isEmpty ? "" : " (\(String(reason.prefix(200))))"))
        }
        guard let token = object?["access_token"] as? String, !token.isEmpty else {
            throw ReceiverAccessError(description: "the OAuth2 token server at \(grant.tokenURL) answered without an access_token")
        }
        let lifetime = (object?["expires_in"] as? Double).map { Duration.seconds($0) } ?? Self.defaultLifetime
        return Token(value: token, until: .now + max(.zero, lifetime - min(Self.margin, lifetime / 10)))
    }
}

/// TLS configurations made from endpoints' PEM material, kept by the material's digest (parsing PEM per delivery
/// would cost more than the send). async-http-client pools connections by their TLS configuration, so endpoints with
/// different client identities or trust never share a connection.
public final class ReceiverTLS: Sendable {
    private let cache = Mutex<[String: TLSConfiguration]>([:])

    func configuration(_ tls: EndpointTLS) throws -> TLSConfiguration {
        let key = fingerprintHex([tls.clientCertificatePEM ?? "", tls.clientKeyPEM ?? "", tls.caBundlePEM ?? ""].joined(separator: "\u{1F}"))
        if let cached = self.cache.withLock({ $0[key] }) { return cached }
        let configuration = try Self.make(tls)
        self.cache.withLock { cache in
            if cache.count > 1_000 { cache.removeAll() }
            cache[key] = configuration
        }
        return configuration
    }

    static func make(_ tls: EndpointTLS) throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let certificate = tls.clientCertificatePEM, let key = tls.clientKeyPEM {
            configuration.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(certificate.utf8)).map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(key.utf8), format: .pem))
        }
        if let bundle = tls.caBundlePEM {
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(bundle.utf8)))
        }
        return configuration
    }

    /// What is wrong with an endpoint's TLS material, as field errors under `field` (empty when it is usable): PEM
    /// that does not parse, a certificate without its key or the other way round, a key that is not the
    /// certificate's.
    public static func problems(_ tls: EndpointTLS, field: String = "tls") -> [FieldError] {
        var errors: [FieldError] = []
        for (name, text) in [
            ("client_certificate_pem", tls.clientCertificatePEM), ("client_key_pem", tls.clientKeyPEM), ("ca_bundle_pem", tls.caBundlePEM),
        ] {
            if let text, text.utf8.count > EndpointTLS.maxPEMBytes { errors.append(FieldError("\(field).\(name)", "must be at most 64 KB")) }
        }
        var chain: [NIOSSLCertificate] = []
        if let certificate = tls.clientCertificatePEM {
            chain = (try? NIOSSLCertificate.fromPEMBytes(Array(certificate.utf8))) ?? []
            if chain.isEmpty { errors.append(FieldError("\(field).client_certificate_pem", "is not a PEM certificate")) }
        }
        var key: NIOSSLPrivateKey?
        if let text = tls.clientKeyPEM {
            key = try? NIOSSLPrivateKey(bytes: Array(text.utf8), format: .pem)
            if key == nil { errors.append(FieldError("\(field).client_key_pem", "is not a PEM private key (unencrypted PKCS#8, RSA or EC)")) }
        }
        if (tls.clientCertificatePEM == nil) != (tls.clientKeyPEM == nil) {
            errors.append(
                FieldError("\(field).\(tls.clientKeyPEM == nil ? "client_key_pem" : "client_certificate_pem")", "is required with the other"))
        }
        if let bundle = tls.caBundlePEM, ((try? NIOSSLCertificate.fromPEMBytes(Array(bundle.utf8))) ?? []).isEmpty {
            errors.append(FieldError("\(field).ca_bundle_pem", "holds no PEM certificate"))
        }
        if errors.isEmpty, let key, let leaf = chain.first {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateChain = [.certificate(leaf)]
            configuration.privateKey = .privateKey(key)
            if (try? NIOSSLContext(configuration: configuration)) == nil {
                errors.append(FieldError("\(field).client_key_pem", "does not match client_certificate_pem"))
            }
        }
        return errors
    }
}
