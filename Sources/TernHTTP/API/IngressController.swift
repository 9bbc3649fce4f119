import Foundation
import HTTPTypes
import Hummingbird
import Metrics
import NIOCore
import TernCore
import TernStorage

/// `POST /in/{source_id}`: verifies a provider's webhook and publishes it into the same fan-out as the API:
/// 202 new, 200 duplicate, 401 bad or missing signature, 400 malformed, 413 too large. Nothing unverified is
/// stored.
struct IngressController {
    let store: Store
    let baseURL: String
    /// Proxies whose `X-Forwarded-For` names the client (`TERN_TRUSTED_PROXIES`).
    var trustedProxies: [IPRange] = []

    func addRoutes(to router: Router<TernRequestContext>) {
        router.post("in/:source_id", use: self.receive)
    }

    static func count(_ provider: String, _ outcome: String) {
        Counter(label: "tern_inbound_requests_total", dimensions: [("provider", provider), ("outcome", outcome)]).increment()
    }

    struct Accepted: Encodable {
        var message_id: String
        var event_type: String
        var tenant_id: String
        var duplicate: Bool
        var deliveries: Int
    }

    /// The request headers the source keeps with the message (names lower-cased); nil when it keeps none.
    static func forwarded(_ names: [String]?, from headers: [String: String]) -> [String: String]? {
        guard let names, !names.isEmpty else { return nil }
        var kept: [String: String] = [:]
        for name in names { if let value = headers[name.lowercased()] { kept[name.lowercased()] = value } }
        return kept
    }

    @Sendable func receive(_ request: Request, context: TernRequestContext) async throws -> Response {
        let id = try context.parameters.require("source_id")
        guard let ingress = try await self.store.ingressSource(id: id, baseURL: self.baseURL) else {
            Self.count("unknown", "not_found")
            throw TernError.notFound("No source '\(id)'.")
        }
        let source = ingress.source
        let provider = source.provider.rawValue
        // The address allowlist comes first: a request from elsewhere is refused before its body is read.
        if source.settings.allowedIPs != nil {
            let peer = context.remoteAddress?.ipAddress.flatMap(AddressClassifier.parse)
            let client = ClientAddress.resolve(
                peer: peer, forwardedFor: request.headers[values: .init("X-Forwarded-For")!], trustedProxies: self.trustedProxies)
            guard source.settings.allows(client) else {
                Self.count(provider, "forbidden_address")
                throw TernError.forbidden(
                    "Requests to this source must come from its allowed addresses; \(client?.text ?? "an unknown address") is not one.")
            }
        }
        let plan = try await self.store.plan(ofOrganization: ingress.organizationID)
        let limit = plan.maxPayloadBytes ?? (16 << 20)
        var request = request
        let buffer: ByteBuffer
        do {
            if let length = request.headers[.contentLength].flatMap(Int.init), length > limit { throw TernError.payloadTooLarge(limit: limit) }
            buffer = try await request.collectBody(upTo: limit)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            Self.count(provider, "too_large")
            throw TernError.payloadTooLarge(limit: limit)
        } catch let error as TernError {
            Self.count(provider, "too_large")
            throw error
        }
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName.lowercased()] = field.value }
        let body = Array(buffer.readableBytesView)
        let verified: VerifiedInbound
        do {
            verified = try InboundVerifier.verify(
                provider: source.provider, secret: ingress.secret, settings: source.settings, headers: headers, body: body)
        } catch .unauthenticated(let reason) {
            Self.count(provider, "rejected")
            throw TernError.unauthorized("The request is not verified: \(reason).")
        } catch .malformed(let reason) {
            Self.count(provider, "malformed")
            throw TernError.malformed("The request cannot be forwarded: \(reason).")
        }
        guard let tenantID = source.tenantID ?? request.uri.queryParameters.get("tenant_id"), Rules.tenantIDProblem(tenantID) == nil else {
            Self.count(provider, "malformed")
            throw TernError.malformed("This source has no tenant: set its tenant_id, or add ?tenant_id= to the ingress URL.")
        }
        let published = try await self.store.publish(
            organizationID: ingress.organizationID, applicationID: source.applicationID,
            PublishInput(
                eventType: verified.eventType, tenantID: tenantID, eventID: verified.providerEventID.map { "\(source.id):\($0)" },
                payload: String(decoding: body, as: UTF8.self), limits: PublishLimits(plan: plan), allowUnregisteredType: true,
                sourceID: source.id, headers: Self.forwarded(source.settings.forwardHeaders, from: headers)
            )
        )
        Self.count(provider, published.created ? "accepted" : "duplicate")
        var response = try JSONResponse.make(
            Accepted(
                message_id: published.message.id, event_type: published.message.eventType, tenant_id: tenantID,
                duplicate: !published.created, deliveries: published.deliveries
            ),
            status: published.created ? .accepted : .ok
        )
        if let rate = published.rate { response.headers.setRateLimit(rate) }
        return response
    }
}
