import Foundation
import HTTPTypes
import Hummingbird
import TernCore
import TernDelivery
import TernStorage

/// Publishing events and reading them back.
struct EventController {
    let store: Store

    func addRoutes(to group: RouterGroup<ApplicationContext>) {
        group.post("events", use: self.publish)
        group.get("events", use: self.list)
        group.get("events/:message_id", use: self.get)
        group.delete("events/:message_id/payload", use: self.erasePayload)
    }

    /// The publish answer: the message without its payload, and how many deliveries it made; its JSON is written by
    /// hand (keys sorted, as `JSONResponse` writes them), since every publish sends one.
    static func reply(_ message: Message, deliveries: Int) -> String {
        var out = #"{"created_at":"# + "\"\(message.createdAt)\","
        out += #""deliveries":\#(deliveries),"event_id":"#
        if let eventID = message.eventID { JSONText.appendString(eventID, to: &out) } else { out += "null" }
        out += #","event_type":"#
        JSONText.appendString(message.eventType, to: &out)
        out += #","id":"#
        JSONText.appendString(message.id, to: &out)
        out += #","tenant_id":"#
        JSONText.appendString(message.tenantID, to: &out)
        return out + "}"
    }

    /// Some room in the body for the fields around the payload.
    static let envelopeBytes = 64 * 1024

    /// Erases the payload at once (and its old bytes, on SQLite); queued deliveries end in the dead-letter queue,
    /// and a replay answers 410 `payload-expunged`. The audit log records who did it.
    @Sendable func erasePayload(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.write, "events")
        let id = try context.parameters.require("message_id")
        try await self.store.expungeMessage(organizationID: context.organizationID, applicationID: context.applicationID, id: id)
        return JSONResponse.noContent()
    }

    @Sendable func publish(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.write, "events")
        let applicationID = context.applicationID
        let plan = try await self.store.plan(ofOrganization: context.organizationID)
        let payloadLimit = plan.maxPayloadBytes ?? (16 << 20)
        var request = request
        // One pass over the body, no JSONDecoder: the fields are read where they lie and the payload is kept as sent.
        let body = try await request.jsonEnvelope(limit: payloadLimit + Self.envelopeBytes)
        let eventType = try body.string("event_type")
        let tenantID = try body.string("tenant_id")
        let eventID = try body.string("event_id")
        let channels = try body.strings("channels")
        let tags = try body.strings("tags")
        let retentionDays = try body.int("payload_retention_days")
        var validator = Validator()
        validator.eventTypeName(eventType, "event_type")
        validator.tenantID(tenantID)
        switch body.members["payload"]?.kind {
        case .none, .null: validator.fail("payload", "is required: a JSON object")
        case .object: break
        default: validator.fail("payload", "must be a JSON object")
        }
        if let eventID, eventID.isEmpty || eventID.unicodeScalars.count > 255 {
            validator.fail("event_id", "must be 1 to 255 characters")
        }
        if let channels {
            if channels.isEmpty || channels.count > Endpoint.maxChannels { validator.fail("channels", "must have 1 to 10 channels") }
            for (index, channel) in channels.enumerated() where !SvixRules.isChannel(channel) {
                validator.fail("channels[\(index)]", "must be 1 to 128 of letters, digits, '.', '_', ':', '+' and '-'")
            }
        }
        if let tags {
            if tags.count > 5 { validator.fail("tags", "at most 5 tags") }
            for (index, tag) in tags.enumerated() where !SvixRules.isTag(tag) {
                validator.fail("tags[\(index)]", "must be 1 to 128 of letters, digits, '.', '_', '/', '#' and '-'")
            }
        }
        var deliverAt: Timestamp?
        if let text = try body.string("deliver_at") {
            if let time = Timestamp(rfc3339: text) {
                deliverAt = time
                if let problem = ScheduledDelivery.problem(time) { validator.fail("deliver_at", problem) }
            } else {
                validator.fail("deliver_at", "must be an RFC 3339 time such as 2026-01-31T12:00:00Z")
            }
        }
        if let days = retentionDays, let problem = PayloadRetention.problem(seconds: Int64(days) * 86_400, planDays: plan.payloadRetentionDays) {
            validator.fail("payload_retention_days", problem)
        }
        try validator.check()
        let range = body.members["payload"]!.range
        guard range.count <= payloadLimit else { throw TernError.payloadTooLarge(limit: payloadLimit) }
        let payload = String(decoding: body.bytes[range], as: UTF8.self)
        let published = try await self.store.publish(
            organizationID: context.organizationID, applicationID: applicationID,
            PublishInput(
                eventType: eventType!, tenantID: tenantID!, eventID: eventID, payload: payload, limits: PublishLimits(plan: plan),
                channels: channels.map(EndpointController.unique), tags: tags, deliverAt: deliverAt,
                payloadRetentionSeconds: retentionDays.map { Int64($0) * 86_400 }, traceContext: TraceCarrier.traceparent()
            )
        )
        let message = published.message
        var response = JSONResponse.raw(
            ByteBuffer(string: Self.reply(message, deliveries: published.deliveries)), status: published.created ? .accepted : .ok,
            contentType: "application/json")
        if let rate = published.rate { response.headers.setRateLimit(rate) }
        return response
    }

    @Sendable func list(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.read, "events")
        let applicationID = context.applicationID
        let query = request.uri.queryParameters
        let page = try request.pageRequest()
        var validator = Validator()
        if let channel = query.get("channel"), !SvixRules.isChannel(channel) {
            validator.fail("channel", "must be 1 to 128 of letters, digits, '.', '_', ':', '+' and '-'")
        }
        if let tag = query.get("tag"), !SvixRules.isTag(tag) {
            validator.fail("tag", "must be 1 to 128 of letters, digits, '.', '_', '/', '#' and '-'")
        }
        try validator.check()
        let filter = MessageFilter(
            tenantID: query.get("tenant_id"), eventType: query.get("event_type"),
            since: try TimeParameter.parse(query.get("since"), "since"), until: try TimeParameter.parse(query.get("until"), "until"),
            channel: query.get("channel"), tag: query.get("tag")
        )
        return try JSONResponse.make(
            try await self.store.listMessages(
                organizationID: context.organizationID, applicationID: applicationID, filter: filter, page
            ))
    }

    /// A message with its deliveries.
    struct MessageDetail: Encodable {
        var message: Message
        var deliveries: [Delivery]

        enum CodingKeys: String, CodingKey { case deliveries }

        func encode(to encoder: any Encoder) throws {
            try self.message.encode(to: encoder)
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(self.deliveries, forKey: .deliveries)
        }
    }

    @Sendable func get(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.read, "events")
        let applicationID = context.applicationID
        let id = try context.parameters.require("message_id")
        let (message, deliveries) = try await self.store.message(organizationID: context.organizationID, applicationID: applicationID, id: id)
        return try JSONResponse.make(MessageDetail(message: message, deliveries: deliveries))
    }
}

/// `since` / `until` query and body values: RFC 3339 times.
/// `deliver_at` (Svix `deliverAt`): when a message's deliveries may first be attempted.
enum ScheduledDelivery {
    /// How far ahead a delivery may be scheduled.
    static let maxDays: Int64 = 30

    /// Why `time` is refused, if it is: more than 30 days ahead. A time in the past means now.
    static func problem(_ time: Timestamp) -> String? {
        time > Timestamp.now().adding(seconds: Self.maxDays * 86_400) ? "must be at most \(Self.maxDays) days ahead" : nil
    }
}

enum TimeParameter {
    static func parse(_ value: String?, _ field: String) throws -> Timestamp? {
        guard let value else { return nil }
        guard let time = Timestamp(rfc3339: value) else {
            throw TernError.invalid(field, "must be an RFC 3339 time such as 2026-01-31T12:00:00Z")
        }
        return time
    }
}

extension HTTPFields {
    /// `RateLimit-Limit` (the bucket size), `RateLimit-Remaining` (tokens left) and `RateLimit-Reset` (seconds until
    /// the bucket is full), plus `Retry-After` when the request was refused.
    mutating func setRateLimit(_ state: RateLimitState) {
        self[HTTPField.Name("RateLimit-Limit")!] = String(state.limit)
        self[HTTPField.Name("RateLimit-Remaining")!] = String(state.remaining)
        self[HTTPField.Name("RateLimit-Reset")!] = String(state.resetSeconds)
        if let retryAfter = state.retryAfterSeconds { self[.retryAfter] = String(retryAfter) }
    }
}
