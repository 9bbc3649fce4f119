import Foundation
import HTTPTypes
import Hummingbird
import TernCore
import TernStorage

/// What the portal templates are given: prepared values, no logic left for the template.
extension PortalController {
    struct EndpointRow {
        var id: String
        var name: String
        var url: String
        var status: String
        var active: Bool
        var events: String
        var successRate: String
        var disabledReason: String?
    }

    static func row(_ endpoint: Endpoint, _ stats: EndpointStats?) -> EndpointRow {
        EndpointRow(
            id: endpoint.id, name: endpoint.name ?? endpoint.url, url: endpoint.url, status: endpoint.status.rawValue,
            active: endpoint.status == .active, events: endpoint.events.isEmpty ? "All events" : endpoint.events.joined(separator: ", "),
            successRate: stats?.successRate.map { "\($0)%" } ?? "–", disabledReason: endpoint.disabledReason.map(Self.reasonText)
        )
    }

    /// Why an endpoint was disabled, in words.
    static func reasonText(_ reason: String) -> String {
        switch reason {
        case CircuitBreaker.Reason.circuitBreaker: "too many failed attempts in a row"
        case CircuitBreaker.Reason.gone: "the receiver answered 410 Gone"
        case CircuitBreaker.Reason.manual: "disabled by hand"
        default: reason
        }
    }

    struct EventChoice {
        var name: String
        var description: String?
        var checked: Bool
    }

    struct EndpointForm {
        var action: String
        var submit: String
        var url: String
        var name: String
        var description: String
        var allEvents: Bool
        var events: [EventChoice]
        var errors: [FieldError]
        var urlError: String?
        var eventsError: String?
        var nameError: String?
        var filter: String = ""
        var filterError: String?
        var rateLimit: String = ""
        var rateLimitError: String?
        var orderingNone = true
        var orderingFifo = false
        var orderingKeyed = false
        var orderingKey: String = ""
        var orderingError: String?
        var signingEd25519 = false
        var publicKey: String?
        /// The receiver authentication now, in words ("HTTP basic as ops"), when there is one (editing).
        var authNow: String?
        var authKeep = false
        var authNone = true
        var authBasic = false
        var authBearer = false
        var authOAuth2 = false
        var authUsername = ""
        var authTokenURL = ""
        var authClientID = ""
        var authScope = ""
        var authError: String?
        /// The TLS settings now, in words, when there are some (editing).
        var tlsNow: String?
        var tlsError: String?
    }

    struct EndpointFields: Decodable {
        var url: String?
        var name: String?
        var description: String?
        var events: [String]?
        /// The filter as JSON text; empty for none.
        var filter: String?
        /// At most this many deliveries a second; empty for no limit.
        var rate_limit: String?
        /// `none`, `fifo`, or `keyed` (in order per value of `ordering_key`, a payload field written with dots).
        var ordering: String?
        var ordering_key: String?
        /// `hmac` or `ed25519`.
        var signing: String?
        /// `keep` (editing), `none`, `basic`, `bearer` or `oauth2_client_credentials`, and their members.
        var auth_type: String?
        var auth_username: String?
        var auth_password: String?
        var auth_token: String?
        var auth_token_url: String?
        var auth_client_id: String?
        var auth_client_secret: String?
        var auth_scope: String?
        /// PEM text replacing the TLS settings when any is given; `tls_remove` removes them.
        var tls_certificate: String?
        var tls_key: String?
        var tls_ca: String?
        var tls_remove: String?
    }

    /// `filter` and `payload` of the filter test form, and the event type whose example fills an empty payload.
    struct FilterTestFields: Decodable {
        var filter: String?
        var payload: String?
        var event_type: String?
    }

    /// The filter test card: what was tried, and what came of it.
    struct FilterTestView {
        var filter: String
        var payload: String
        var eventTypes: [EventChoice]
        var result: String?
        var matches: Bool
        var error: String?
    }

    struct SecretView {
        var endpointID: String
        var url: String
        var secret: String
        var created: Bool
        /// The secret is a `whpk_` public key (Ed25519 signing): not secret, shown whenever asked.
        var publicKey = false
    }

    struct DeliveryRow {
        var id: String
        var eventType: String
        var status: String
        var attempts: Int
        var lastStatusCode: String
        var createdAt: String
        var canReplay: Bool
    }

    static func row(_ delivery: Delivery) -> DeliveryRow {
        DeliveryRow(
            id: delivery.id, eventType: delivery.eventType, status: delivery.status.rawValue, attempts: delivery.attemptCount,
            lastStatusCode: delivery.lastStatusCode.map(String.init) ?? (delivery.lastError == nil ? "–" : "no answer"),
            createdAt: delivery.createdAt.description, canReplay: delivery.status != .delivering
        )
    }

    struct StatusField: Decodable { var status: String? }

    struct TestField: Decodable { var event_type: String? }

    static func pretty(_ value: JSONValue) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    static func pretty(_ raw: String) -> String {
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(raw.utf8)) else { return raw }
        return Self.pretty(value)
    }
}
