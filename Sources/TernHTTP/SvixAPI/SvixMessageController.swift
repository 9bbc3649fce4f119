import Foundation
import Hummingbird
import TernCore
import TernDelivery
import TernStorage

/// `/api/v1/app/{app_id}/msg`: publishing to a tenant and reading its messages.
struct SvixMessageController {
    let store: Store

    func addRoutes(to group: RouterGroup<SvixContext>) {
        group.post("app/:app_id/msg", use: self.create)
        group.get("app/:app_id/msg", use: self.list)
        group.get("app/:app_id/msg/:msg_id", use: self.get)
        group.delete("app/:app_id/msg/:msg_id/content", use: self.expungeContent)
    }

    /// Erases the payload at once; its queued deliveries end in the dead-letter queue, and a resend is 400 `missing_payload`.
    @Sendable func expungeContent(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.write, "events")
        let tenant = try await SvixEndpointController.tenant(self.store, context)
        let message = try await self.store.svixMessage(
            organizationID: context.organizationID, applicationID: context.applicationID, tenantID: tenant.tenantID,
            id: try context.parameters.require("msg_id"))
        try await self.store.expungeMessage(organizationID: context.organizationID, applicationID: context.applicationID, id: message.id)
        return JSONResponse.noContent()
    }

    /// `MessageIn`, but its payload (or `data`, SDK 1.x's name), whose bytes are taken from the body as they arrived.
    struct Body: Decodable, Sendable {
        var eventType: String?
        var eventId: String?
        var channels: [String]?
        var tags: [String]?
        var deliverAt: String?
        /// Days (Svix's default is 90) or hours the payload is kept; the hours win when both are given.
        var payloadRetentionPeriod: Int?
        var payloadRetentionHours: Int?
        var application: SvixApplicationController.Body?
        var transformationsParams: TransformationsParams?

        struct TransformationsParams: Decodable, Sendable {
            var rawPayload: String?
        }
    }

    static func output(_ message: Message, withContent: Bool) -> JSONValue {
        let payload = withContent ? ((try? JSONDecoder().decode(JSONValue.self, from: Data(message.payload.utf8))) ?? .object([:])) : .object([:])
        return .object(Self.members(message, payload: payload))
    }

    static func members(_ message: Message, payload: JSONValue) -> [String: JSONValue] {
        [
            "id": .string(message.id), "eventType": .string(message.eventType), "eventId": SvixJSON.string(message.eventID),
            "payload": payload, "channels": SvixJSON.strings(message.channels), "tags": SvixJSON.strings(message.tags),
            "timestamp": SvixJSON.time(message.createdAt), "deliverAt": SvixJSON.time(message.deliverAt),
        ]
    }

    @Sendable func create(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.write, "events")
        let withContent = try SvixQuery(request).bool("with_content", default: true)
        let plan = try await self.store.plan(ofOrganization: context.organizationID)
        let payloadLimit = plan.maxPayloadBytes ?? (16 << 20)
        var request = request
        let body = try await request.decodeJSON(Body.self, limit: payloadLimit + EventController.envelopeBytes)
        let value = body.value
        var validator = Validator()
        validator.eventTypeName(value.eventType, "eventType")
        let member = body.has("payload") ? "payload" : "data"
        let raw = value.transformationsParams?.rawPayload
        if raw == nil {
            switch body.envelope.members[member]?.kind {
            case .none, .null: validator.fail("payload", "field required")
            case .object: break
            default: validator.fail("payload", "Payload must be an object.")
            }
        }
        if let eventID = value.eventId, !SvixRules.isUID(eventID) { validator.fail("eventId", "must be 1 to 256 of letters, digits, '-', '_', '.'") }
        if let channels = value.channels {
            if channels.isEmpty || channels.count > Endpoint.maxChannels { validator.fail("channels", "must have 1 to 10 items") }
            for channel in channels where !SvixRules.isChannel(channel) { validator.fail("channels", "'\(channel)' is not a valid channel") }
        }
        if let tags = value.tags {
            if tags.count > 5 { validator.fail("tags", "at most 5 tags") }
            for tag in tags where !SvixRules.isTag(tag) { validator.fail("tags", "'\(tag)' is not a valid tag") }
        }
        var deliverAt: Timestamp?
        if let text = value.deliverAt {
            if let time = SvixTime.parse(text) {
                deliverAt = time
                if let problem = ScheduledDelivery.problem(time) { validator.fail("deliverAt", problem) }
            } else {
                validator.fail("deliverAt", "must be an RFC 3339 date-time")
            }
        }
        // Svix keeps payloads up to 90 days by default: a longer ask than the plan's retention gets the plan's (a Svix
        // client is not refused for its SDK's defaults); less than an hour is refused.
        var retention = value.payloadRetentionHours.map { Int64($0) * 3_600 } ?? value.payloadRetentionPeriod.map { Int64($0) * 86_400 }
        if let asked = retention {
            if asked < 3_600 {
                validator.fail(value.payloadRetentionHours != nil ? "payloadRetentionHours" : "payloadRetentionPeriod", "must be at least one hour")
            } else if PayloadRetention.problem(seconds: asked, planDays: plan.payloadRetentionDays) != nil {
                retention = nil
            }
        }
        try validator.check()
        let payload: String
        if let raw {
            payload = raw
        } else {
            guard let text = body.envelope.text(member) else { throw TernError.invalid("payload", "field required") }
            payload = text
        }
        guard payload.utf8.count <= payloadLimit else { throw TernError.payloadTooLarge(limit: payloadLimit) }
        let tenant = try await self.tenant(context, implicit: value.application)
        let published = try await self.store.publish(
            organizationID: context.organizationID, applicationID: context.applicationID,
            PublishInput(
                eventType: value.eventType!, tenantID: tenant.tenantID, eventID: value.eventId, payload: payload,
                limits: PublishLimits(plan: plan), allowUnregisteredType: true, channels: value.channels.map(EndpointController.unique),
                tags: value.tags, deliverAt: deliverAt, payloadRetentionSeconds: retention, traceContext: TraceCarrier.traceparent()
            )
        )
        guard published.created else { throw TernError.conflict("A message with this eventId already exists") }
        return try SvixJSON.response(Self.output(published.message, withContent: withContent), status: .accepted)
    }

    /// The path's application; with `application` in the body, created when missing (its uid must be the path's).
    func tenant(_ context: SvixContext, implicit: SvixApplicationController.Body?) async throws -> Tenant {
        let path = try context.parameters.require("app_id")
        do {
            return try await self.store.svixApplication(organizationID: context.organizationID, applicationID: context.applicationID, idOrUID: path)
        } catch TernError.notFound where implicit != nil {
            let implicit = implicit!
            guard let uid = implicit.uid.newValue else {
                throw TernError.validation([FieldError("application.uid", "application_uid_missing: the application needs the path's uid")])
            }
            guard uid == path else {
                throw TernError.validation([FieldError("application.uid", "application_uid_mismatch: the uid must be the path's")])
            }
            try SvixApplicationController(store: self.store).validate(implicit, nameRequired: true)
            let (tenant, _) = try await self.store.createSvixApplication(
                organizationID: context.organizationID, applicationID: context.applicationID,
                SvixApplicationInput(
                    uid: uid, name: implicit.name.newValue, metadata: implicit.metadata.newValue ?? [:], throttleRate: implicit.throttle.newValue),
                getIfExists: true)
            return tenant
        }
    }

    @Sendable func list(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.read, "events")
        let query = SvixQuery(request)
        let page = try query.page(descending: true)
        let withContent = try query.bool("with_content", default: true)
        let tenant = try await SvixEndpointController.tenant(self.store, context)
        let messages = try await self.store.svixMessages(
            organizationID: context.organizationID, applicationID: context.applicationID, tenantID: tenant.tenantID,
            filter: MessageFilter(channel: query.string("channel"), tag: query.string("tag")), eventTypes: query.list("event_types"),
            window: try query.window(), page)
        return try SvixJSON.list(messages) { Self.output($0, withContent: withContent) }
    }

    @Sendable func get(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.read, "events")
        let withContent = try SvixQuery(request).bool("with_content", default: true)
        let tenant = try await SvixEndpointController.tenant(self.store, context)
        let message = try await self.store.svixMessage(
            organizationID: context.organizationID, applicationID: context.applicationID, tenantID: tenant.tenantID,
            id: try context.parameters.require("msg_id"))
        return try SvixJSON.response(Self.output(message, withContent: withContent))
    }
}
