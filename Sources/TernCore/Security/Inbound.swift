import Crypto
import Foundation

/// The providers an inbound source verifies, each the way the provider documents it.
public enum InboundProvider: String, Sendable, Codable, CaseIterable {
    /// `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`, 5-minute tolerance.
    case stripe
    /// `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.
    case github
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>` (secret `whsec_…`), 5-minute tolerance.
    case standardWebhooks = "standard-webhooks"
    /// HMAC-SHA256 of the body in a configurable header, hex or base64.
    case hmac
    /// A shared token in a configurable header.
    case token

    /// Whether Tern can make the secret up (and show it once), or the provider sets it.
    public var providerChoosesSecret: Bool { self == .stripe || self == .github }
}

/// Settings of the generic providers.
public struct InboundSettings: Sendable, Equatable, Codable {
    /// The header carrying the signature (`hmac`, default `X-Signature`) or the token (`token`, default `X-Webhook-Token`).
    public var header: String?
    /// `hex` (default) or `base64`, for `hmac`.
    public var encoding: String?
    /// Addresses and CIDR ranges requests may come from; nil for any.
    public var allowedIPs: [String]?
    /// Request headers kept with the message (lower-case names), for filters and for the receiver.
    public var forwardHeaders: [String]?

    public init(header: String? = nil, encoding: String? = nil, allowedIPs: [String]? = nil, forwardHeaders: [String]? = nil) {
        self.header = header
        self.encoding = encoding
        self.allowedIPs = allowedIPs
        self.forwardHeaders = forwardHeaders
    }

    enum CodingKeys: String, CodingKey {
        case header, encoding
        case allowedIPs = "allowed_ips"
        case forwardHeaders = "forward_headers"
    }

    /// True when `address` may send to the source.
    public func allows(_ address: AddressClassifier.Address?) -> Bool {
        guard let allowed = self.allowedIPs else { return true }
        guard let address else { return false }
        return allowed.compactMap(IPRange.init).contains { $0.contains(address) }
    }
}

/// A request that passed verification: what to publish it as.
public struct VerifiedInbound: Sendable, Equatable {
    public var eventType: String
    /// The provider's id of the event, for deduplication; nil when the provider sends none.
    public var providerEventID: String?
}

/// Why an inbound request was refused.
public enum InboundRejection: Error, Equatable, Sendable {
    /// 401: the signature or token is missing, wrong, or outside the time tolerance.
    case unauthenticated(String)
    /// 400: the body is not a JSON object, or a required header is missing.
    case malformed(String)
}

/// Verifies inbound requests. `headers` are looked up case-insensitively by the caller (keys lowercased).
public enum InboundVerifier {
    public static let toleranceSeconds: Int64 = 300

    public static func verify(
        provider: InboundProvider, secret: String, settings: InboundSettings, headers: [String: String], body: [UInt8], now: Date = Date()
    ) throws(InboundRejection) -> VerifiedInbound {
        let nowSeconds = Int64(now.timeIntervalSince1970)
        switch provider {
        case .stripe:
            guard let header = headers["stripe-signature"] else { throw .unauthenticated("the Stripe-Signature header is missing") }
            var timestamp: Int64?
            var signatures: [String] = []
            for part in header.split(separator: ",") {
                let pair = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard pair.count == 2 else { continue }
                if pair[0] == "t" { timestamp = Int64(pair[1]) }
                if pair[0] == "v1" { signatures.append(pair[1].lowercased()) }
            }
            guard let timestamp, !signatures.isEmpty else { throw .unauthenticated("the Stripe-Signature header has no t= or v1=") }
            guard abs(nowSeconds - timestamp) <= Self.toleranceSeconds else {
                throw .unauthenticated("the Stripe timestamp is outside the 5-minute tolerance")
            }
            let expected = Self.hex(Self.mac(secret, Array("\(timestamp).".utf8) + body))
            guard signatures.contains(where: { constantTimeEqual(Array($0.utf8), Array(expected.utf8)) }) else {
                throw .unauthenticated("no v1 signature matches")
            }
            let object = try Self.object(body)
            return VerifiedInbound(eventType: Self.typeName(object["type"] as? String, provider), providerEventID: object["id"] as? String)
        case .github:
            guard let header = headers["x-hub-signature-256"], header.hasPrefix("sha256=") else {
                throw .unauthenticated("the X-Hub-Signature-256 header is missing")
            }
            let expected = "sha256=" + Self.hex(Self.mac(secret, body))
            guard constantTimeEqual(Array(header.lowercased().utf8), Array(expected.utf8)) else {
                throw .unauthenticated("the signature does not match")
            }
            _ = try Self.object(body)
            return VerifiedInbound(eventType: Self.typeName(headers["x-github-event"], provider), providerEventID: headers["x-github-delivery"])
        case .standardWebhooks:
            guard let id = headers["webhook-id"], let timestampText = headers["webhook-timestamp"], let signature = headers["webhook-signature"],
                let timestamp = Int64(timestampText)
            else { throw .unauthenticated("the webhook-id, webhook-timestamp or webhook-signature header is missing") }
            guard abs(nowSeconds - timestamp) <= Self.toleranceSeconds else {
                throw .unauthenticated("the timestamp is outside the 5-minute tolerance")
            }
            guard WebhookSignature.verify(header: signature, secret: secret, messageID: id, timestamp: timestamp, body: body) else {
                throw .unauthenticated("no v1 signature matches")
            }
            let object = try Self.object(body)
            return VerifiedInbound(eventType: Self.typeName(object["type"] as? String, provider), providerEventID: id)
        case .hmac:
            let name = (settings.header ?? "X-Signature").lowercased()
            guard let header = headers[name] else { throw .unauthenticated("the \(settings.header ?? "X-Signature") header is missing") }
            let code = Self.mac(secret, body)
            let expected = settings.encoding == "base64" ? Data(code).base64EncodedString() : Self.hex(code)
            let presented = header.hasPrefix("sha256=") ? String(header.dropFirst(7)) : header
            let matches =
                settings.encoding == "base64"
                ? constantTimeEqual(Array(presented.utf8), Array(expected.utf8))
                : constantTimeEqual(Array(presented.lowercased().utf8), Array(expected.utf8))
            guard matches else { throw .unauthenticated("the signature does not match") }
            _ = try Self.object(body)
            return VerifiedInbound(eventType: "inbound.hmac", providerEventID: headers["idempotency-key"])
        case .token:
            let name = (settings.header ?? "X-Webhook-Token").lowercased()
            guard let presented = headers[name] else { throw .unauthenticated("the \(settings.header ?? "X-Webhook-Token") header is missing") }
            // Compare digests so that the time does not depend on where the strings differ, nor on their lengths.
            guard constantTimeEqual(Array(SHA256.hash(data: Array(presented.utf8))), Array(SHA256.hash(data: Array(secret.utf8)))) else {
                throw .unauthenticated("the token does not match")
            }
            _ = try Self.object(body)
            return VerifiedInbound(eventType: "inbound.token", providerEventID: headers["idempotency-key"])
        }
    }

    static func mac(_ secret: String, _ message: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: Array(secret.utf8))))
    }

    public static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    static func object(_ body: [UInt8]) throws(InboundRejection) -> [String: Any] {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else {
            throw .malformed("the body is not a JSON object")
        }
        return object
    }

    /// The provider's event type when it is a usable name, otherwise `inbound.<provider>`.
    static func typeName(_ candidate: String?, _ provider: InboundProvider) -> String {
        if let candidate, Rules.isEventTypeName(candidate) { return candidate }
        return "inbound.\(provider.rawValue)"
    }
}

/// An inbound source: where a provider sends its webhooks (`ingress_url`) and how they are verified.
public struct Source: Sendable, Equatable, Encodable {
    public var id: String
    public var applicationID: String
    public var name: String
    public var provider: InboundProvider
    public var tenantID: String?
    public var settings: InboundSettings
    public var ingressURL: String
    public var createdAt: Timestamp
    public var updatedAt: Timestamp

    public init(
        id: String, applicationID: String, name: String, provider: InboundProvider, tenantID: String?, settings: InboundSettings,
        ingressURL: String, createdAt: Timestamp, updatedAt: Timestamp
    ) {
        self.id = id
        self.applicationID = applicationID
        self.name = name
        self.provider = provider
        self.tenantID = tenantID
        self.settings = settings
        self.ingressURL = ingressURL
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    enum CodingKeys: String, CodingKey {
        case id
        case applicationID = "application_id"
        case name, provider
        case tenantID = "tenant_id"
        case settings
        case allowedIPs = "allowed_ips"
        case forwardHeaders = "forward_headers"
        case ingressURL = "ingress_url"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.id, forKey: .id)
        try container.encode(self.applicationID, forKey: .applicationID)
        try container.encode(self.name, forKey: .name)
        try container.encode(self.provider, forKey: .provider)
        try container.encodeOrNull(self.tenantID, forKey: .tenantID)
        try container.encode(self.settings, forKey: .settings)
        try container.encodeOrNull(self.settings.allowedIPs, forKey: .allowedIPs)
        try container.encodeOrNull(self.settings.forwardHeaders, forKey: .forwardHeaders)
        try container.encode(self.ingressURL, forKey: .ingressURL)
        try container.encode(self.createdAt, forKey: .createdAt)
        try container.encode(self.updatedAt, forKey: .updatedAt)
    }
}
