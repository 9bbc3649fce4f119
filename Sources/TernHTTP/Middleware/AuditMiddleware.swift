import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import TernCore
import TernStorage

extension HTTPField.Name {
    /// Set by a handler on what it created, read and removed by `AuditMiddleware`.
    static let entityID = Self("Tern-Entity-Id")!
}

/// Who acted, as the audit log records it.
struct AuditActor: Sendable {
    /// `api_key`, `admin`, `portal` or `system`.
    var type: String
    /// The key id, or `<application>/<tenant>` for a portal session.
    var id: String?
    /// The organization acted in; nil on admin routes, where the path (or the created object) names it.
    var organizationID: String?
}

/// A context whose writes are audited.
protocol AuditedContext: RequestContext {
    var auditActor: AuditActor { get }
}

extension OrganizationContext: AuditedContext {
    var auditActor: AuditActor { AuditActor(type: "api_key", id: self.principal.keyID, organizationID: self.principal.organizationID) }
}

extension AdminContext: AuditedContext {
    var auditActor: AuditActor { AuditActor(type: "admin", id: nil, organizationID: nil) }
}

extension PortalContext: AuditedContext {
    var auditActor: AuditActor { AuditActor(type: "portal", id: "\(self.applicationID)/\(self.tenantID)", organizationID: self.organizationID) }
}

extension SvixContext: AuditedContext {
    var auditActor: AuditActor { AuditActor(type: "api_key", id: self.principal.keyID, organizationID: self.principal.organizationID) }
}

extension AdminWebContext: AuditedContext {
    var auditActor: AuditActor { AuditActor(type: "admin", id: nil, organizationID: nil) }
}

/// Writes an audit entry for every successful write through the API, the portal and the admin pages: the actor,
/// an action such as `endpoint.updated`, the entity, and a summary of the fields sent (values only for fields
/// that are never secret). Publishing events is not audited: messages are their own record.
struct AuditMiddleware<Context: AuditedContext>: RouterMiddleware {
    let store: Store

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method != .get, request.method != .head, let rule = AuditRules.match(request.method, request.uri.path) else {
            return try await next(request, context)
        }
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: maxManagementBodyBytes)
        } catch let error where error is NIOTooManyBytesError || (error as? HTTPError)?.status == .contentTooLarge {
            throw TernError.payloadTooLarge(limit: maxManagementBodyBytes)
        }
        var response = try await next(request, context)
        let created = response.headers[.entityID]
        response.headers[.entityID] = nil
        guard (200..<400).contains(Int(response.status.code)) else { return response }
        let actor = context.auditActor
        let entityID = rule.entityID(created: created, body: body)
        guard let entityID,
            let organizationID = actor.organizationID ?? rule.parameters["org_id"] ?? (rule.entityType == "organization" ? entityID : nil)
        else { return response }
        let summary = AuditRules.summary(body, contentType: request.headers[.contentType])
        do {
            try await self.store.audit(
                AuditEntry(
                    organizationID: organizationID, actorType: actor.type, actorID: actor.id, action: rule.action,
                    entityType: rule.entityType, entityID: entityID, summary: summary
                ))
        } catch {
            context.logger.error(
                "cannot write the audit entry", metadata: ["action": "\(rule.action)", "entity_id": "\(entityID)", "error": "\(error)"])
        }
        return response
    }
}

/// Which writes are audited, and as what.
enum AuditRules {
    /// Where an audited entity's id comes from.
    enum IDSource {
        case path(String)
        case created
        case bodyField(String)
    }

    struct Rule {
        var method: HTTPRequest.Method
        var pattern: [Segment]
        var action: String
        var entityType: String
        var id: IDSource
    }

    /// One segment of a rule's path: a literal, compared byte for byte, or a named parameter (`{app_id}`).
    enum Segment {
        case literal(String)
        case parameter(String)

        init(_ text: Substring) {
            self = text.hasPrefix("{") ? .parameter(String(text.dropFirst().dropLast())) : .literal(String(text))
        }

        func admits(_ segment: Substring.UTF8View) -> Bool {
            guard case .literal(let text) = self else { return true }
            return segment.elementsEqual(text.utf8)
        }
    }

    struct Match {
        var action: String
        var entityType: String
        var id: IDSource
        var parameters: [String: String]

        func entityID(created: String?, body: ByteBuffer) -> String? {
            switch self.id {
            case .path(let name): return self.parameters[name]
            case .created: return created
            case .bodyField(let field):
                let object = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any]
                return object?[field] as? String
            }
        }
    }

    static let rules: [Rule] = {
        let app = "/v1/applications/{app_id}"
        let table: [(HTTPRequest.Method, String, String, String, IDSource)] =
            [
                (.post, "/v1/api-keys", "api_key.created", "api_key", .created),
                (.delete, "/v1/api-keys/{key_id}", "api_key.revoked", "api_key", .path("key_id")),
                (.post, "/v1/applications", "application.created", "application", .created),
                (.patch, app, "application.updated", "application", .path("app_id")),
                (.delete, app, "application.deleted", "application", .path("app_id")),
                (.post, "\(app)/event-types", "event_type.created", "event_type", .bodyField("name")),
                (.patch, "\(app)/event-types/{name}", "event_type.updated", "event_type", .path("name")),
                (.delete, "\(app)/event-types/{name}", "event_type.archived", "event_type", .path("name")),
                (.post, "\(app)/endpoints", "endpoint.created", "endpoint", .created),
                (.patch, "\(app)/endpoints/{endpoint_id}", "endpoint.updated", "endpoint", .path("endpoint_id")),
                (.delete, "\(app)/endpoints/{endpoint_id}", "endpoint.deleted", "endpoint", .path("endpoint_id")),
                (.post, "\(app)/endpoints/{endpoint_id}/rotate-secret", "endpoint.secret_rotated", "endpoint", .path("endpoint_id")),
                (.post, "\(app)/endpoints/{endpoint_id}/test", "endpoint.test_sent", "endpoint", .path("endpoint_id")),
                (.post, "\(app)/endpoints/{endpoint_id}/recover", "endpoint.recovered", "endpoint", .path("endpoint_id")),
                (.patch, "\(app)/tenants/{tenant_id}", "tenant.updated", "tenant", .path("tenant_id")),
                (.delete, "\(app)/tenants/{tenant_id}", "tenant.deleted", "tenant", .path("tenant_id")),
                (.post, "\(app)/deliveries/replay", "deliveries.replayed", "application", .path("app_id")),
                (.delete, "\(app)/events/{message_id}/payload", "message.expunged", "message", .path("message_id")),
                (.post, "\(app)/deliveries/{delivery_id}/replay", "delivery.replayed", "delivery", .path("delivery_id")),
                (.post, "\(app)/portal-sessions", "portal_session.created", "application", .path("app_id")),
                (.post, "\(app)/sources", "source.created", "source", .created),
                (.patch, "\(app)/sources/{source_id}", "source.updated", "source", .path("source_id")),
                (.delete, "\(app)/sources/{source_id}", "source.deleted", "source", .path("source_id")),
                (.post, "/v1/admin/organizations", "organization.created", "organization", .created),
                (.patch, "/v1/admin/organizations/{org_id}", "organization.updated", "organization", .path("org_id")),
                (.post, "/v1/admin/organizations/{org_id}/api-keys", "api_key.created", "api_key", .created),
                (.post, "/portal/endpoints", "endpoint.created", "endpoint", .created),
                (.post, "/portal/endpoints/{endpoint_id}", "endpoint.updated", "endpoint", .path("endpoint_id")),
                (.post, "/portal/endpoints/{endpoint_id}/status", "endpoint.updated", "endpoint", .path("endpoint_id")),
                (.post, "/portal/endpoints/{endpoint_id}/reenable", "endpoint.recovered", "endpoint", .path("endpoint_id")),
                (.post, "/portal/endpoints/{endpoint_id}/rotate", "endpoint.secret_rotated", "endpoint", .path("endpoint_id")),
                (.post, "/portal/endpoints/{endpoint_id}/test", "endpoint.test_sent", "endpoint", .path("endpoint_id")),
                (.post, "/portal/endpoints/{endpoint_id}/delete", "endpoint.deleted", "endpoint", .path("endpoint_id")),
                (.post, "/portal/deliveries/{delivery_id}/replay", "delivery.replayed", "delivery", .path("delivery_id")),
                (.post, "/admin/organizations/{org_id}/plan", "organization.updated", "organization", .path("org_id")),
                (.post, "/admin/organizations/{org_id}/api-keys", "api_key.created", "api_key", .created),
            ] + Self.svixRules
        return table.map { Rule(method: $0.0, pattern: $0.1.split(separator: "/").map(Segment.init), action: $0.2, entityType: $0.3, id: $0.4) }
    }()

    /// The Svix API's writes, under the same actions as the native API's (a Svix application is a tenant).
    static let svixRules: [(HTTPRequest.Method, String, String, String, IDSource)] = {
        let app = "/api/v1/app/{app_id}"
        let endpoint = "\(app)/endpoint/{endpoint_id}"
        return [
            (.post, "/api/v1/app", "tenant.created", "tenant", .created),
            (.put, app, "tenant.updated", "tenant", .path("app_id")),
            (.patch, app, "tenant.updated", "tenant", .path("app_id")),
            (.delete, app, "tenant.deleted", "tenant", .path("app_id")),
            (.post, "/api/v1/event-type", "event_type.created", "event_type", .bodyField("name")),
            (.put, "/api/v1/event-type/{name}", "event_type.updated", "event_type", .path("name")),
            (.patch, "/api/v1/event-type/{name}", "event_type.updated", "event_type", .path("name")),
            (.delete, "/api/v1/event-type/{name}", "event_type.archived", "event_type", .path("name")),
            (.post, "\(app)/endpoint", "endpoint.created", "endpoint", .created),
            (.put, endpoint, "endpoint.updated", "endpoint", .path("endpoint_id")),
            (.patch, endpoint, "endpoint.updated", "endpoint", .path("endpoint_id")),
            (.delete, endpoint, "endpoint.deleted", "endpoint", .path("endpoint_id")),
            (.post, "\(endpoint)/secret/rotate", "endpoint.secret_rotated", "endpoint", .path("endpoint_id")),
            (.put, "\(endpoint)/headers", "endpoint.updated", "endpoint", .path("endpoint_id")),
            (.patch, "\(endpoint)/headers", "endpoint.updated", "endpoint", .path("endpoint_id")),
            (.post, "\(endpoint)/recover", "endpoint.recovered", "endpoint", .path("endpoint_id")),
            (.post, "\(endpoint)/send-example", "endpoint.test_sent", "endpoint", .path("endpoint_id")),
            (.post, "\(app)/msg/{msg_id}/endpoint/{endpoint_id}/resend", "message.resent", "message", .path("msg_id")),
            (.delete, "\(app)/msg/{msg_id}/content", "message.expunged", "message", .path("msg_id")),
            (.delete, "\(app)/msg/{msg_id}/attempt/{attempt_id}/content", "attempt.expunged", "attempt", .path("attempt_id")),
            (.post, "/api/v1/auth/app-portal-access/{app_id}", "portal_session.created", "tenant", .path("app_id")),
        ]
    }()

    /// The rules by method and number of segments, so that a request (a publish, say) is compared only with the
    /// few of its shape.
    static let rulesByShape: [HTTPRequest.Method: [Int: [Rule]]] = Dictionary(grouping: rules, by: \.method).mapValues {
        Dictionary(grouping: $0, by: \.pattern.count)
    }

    /// Runs for every write, publishes included, so the path is split and compared as bytes: the `Character`-wise
    /// split and comparison it replaced were 1.4% of the server's CPU under `tern bench` (`docs/benchmarks.md`, item 30).
    static func match(_ method: HTTPRequest.Method, _ path: String) -> Match? {
        guard let shapes = self.rulesByShape[method] else { return nil }
        let segments = path.utf8.split(separator: UInt8(ascii: "/"))
        guard let candidates = shapes[segments.count] else { return nil }
        // The literal segments first; parameters are decoded only for the rule that matches.
        for rule in candidates where zip(rule.pattern, segments).allSatisfy({ $0.admits($1) }) {
            var parameters: [String: String] = [:]
            for (pattern, segment) in zip(rule.pattern, segments) {
                guard case .parameter(let name) = pattern else { continue }
                let text = String(Substring(segment))
                parameters[name] = text.removingPercentEncoding ?? text
            }
            return Match(action: rule.action, entityType: rule.entityType, id: rule.id, parameters: parameters)
        }
        return nil
    }

    /// Fields whose values are recorded; every other field sent is recorded by name only, and secrets not at all.
    static let shownFields: Set<String> = [
        "name", "status", "plan", "url", "events", "tenant_id", "event_type", "retry_schedule", "circuit_breaker", "description",
        "timeout_seconds", "scopes", "application_id", "provider", "archived", "allow_unregistered_event_types", "since", "until",
        "endpoint_id", "expires_in_seconds", "uid", "eventTypes", "channels", "disabled", "eventType",
    ]
    static let hiddenFields: Set<String> = ["secret", "key", "_csrf", "token", "password"]

    static func summary(_ body: ByteBuffer, contentType: String?) -> [String: JSONValue] {
        var fields: [String: JSONValue] = [:]
        if contentType?.hasPrefix("application/x-www-form-urlencoded") == true {
            for pair in String(buffer: body).split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1).map {
                    String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
                }
                guard let name = parts.first?.replacingOccurrences(of: "[]", with: "") else { continue }
                let value = parts.count > 1 ? parts[1] : ""
                if case .array(let existing)? = fields[name] {
                    fields[name] = .array(existing + [.string(value)])
                } else if name == "events" {
                    fields[name] = .array([.string(value)])
                } else {
                    fields[name] = .string(value)
                }
            }
        } else if let object = try? JSONDecoder().decode([String: JSONValue].self, from: Data(body.readableBytesView)) {
            fields = object
        }
        var summary: [String: JSONValue] = [:]
        var others: [JSONValue] = []
        for (name, value) in fields where !self.hiddenFields.contains(name) {
            if self.shownFields.contains(name) { summary[name] = value } else { others.append(.string(name)) }
        }
        if !others.isEmpty { summary["fields"] = .array(others.sorted { "\($0)" < "\($1)" }) }
        if fields.keys.contains("secret") { summary["secret"] = .string("(changed)") }
        return summary
    }
}
