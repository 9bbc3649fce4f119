import Hummingbird
import TernCore
import TernStorage

/// Attempts and deliveries seen from the Svix API: attempts by message and by endpoint, the messages an endpoint was
/// sent, the endpoints a message went to, and resending.
struct SvixAttemptController {
    let store: Store

    func addRoutes(to group: RouterGroup<SvixContext>) {
        group.get("app/:app_id/attempt/msg/:msg_id", use: self.listByMessage)
        group.get("app/:app_id/attempt/endpoint/:endpoint_id", use: self.listByEndpoint)
        group.get("app/:app_id/endpoint/:endpoint_id/msg", use: self.attemptedMessages)
        group.get("app/:app_id/msg/:msg_id/endpoint", use: self.attemptedDestinations)
        group.get("app/:app_id/msg/:msg_id/attempt/:attempt_id", use: self.get)
        group.post("app/:app_id/msg/:msg_id/endpoint/:endpoint_id/resend", use: self.resend)
        group.delete("app/:app_id/msg/:msg_id/attempt/:attempt_id/content", use: self.expungeContent)
    }

    /// The path's tenant and its message (`msg_id`: an id or an `eventId`).
    func message(_ context: SvixContext) async throws -> (Tenant, Message) {
        let tenant = try await SvixEndpointController.tenant(self.store, context)
        let message = try await self.store.svixMessage(
            organizationID: context.organizationID, applicationID: context.applicationID, tenantID: tenant.tenantID,
            id: try context.parameters.require("msg_id"))
        return (tenant, message)
    }

    /// The path's endpoint (`endpoint_id`: an id or a uid) among the tenant's.
    func endpoint(_ context: SvixContext, _ tenant: Tenant) async throws -> Endpoint {
        try await self.store.svixEndpoint(
            organizationID: context.organizationID, applicationID: context.applicationID, tenantID: tenant.tenantID,
            id: try context.parameters.require("endpoint_id"))
    }

    /// Replaces the attempt's response body with `EXPUNGED`.
    @Sendable func expungeContent(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.write, "deliveries")
        let (_, message) = try await self.message(context)
        try await self.store.expungeAttempt(
            organizationID: context.organizationID, applicationID: context.applicationID, messageID: message.id,
            id: try context.parameters.require("attempt_id"))
        return JSONResponse.noContent()
    }

    /// `MessageAttemptOut`: status 0 for a 2xx answer, else 2; `responseStatusCode` 0 when nothing answered.
    static func output(_ attempt: Attempt, withContent: Bool, message: JSONValue? = nil) -> JSONValue {
        let code = attempt.statusCode ?? 0
        let status = (200..<300).contains(code) ? 0 : 2
        var object: [String: JSONValue] = [
            "id": .string(attempt.id), "msgId": .string(attempt.messageID), "endpointId": .string(attempt.endpointID),
            "url": .string(attempt.url), "response": .string(withContent ? (attempt.responseBody ?? attempt.error ?? "") : "{}"),
            "responseStatusCode": .number(Double(code)), "responseDurationMs": .number(Double(attempt.durationMS)),
            "status": .number(Double(status)), "statusText": .string(SvixStatus.text(status)),
            "triggerType": .number(attempt.trigger == .manual ? 1 : 0), "timestamp": SvixJSON.time(attempt.createdAt),
        ]
        if let message { object["msg"] = message }
        return .object(object)
    }

    func filter(_ query: SvixQuery) throws -> SvixAttemptFilter {
        SvixAttemptFilter(
            status: try query.int("status"), statusCodeClass: try query.int("status_code_class"), eventTypes: query.list("event_types"),
            channel: query.string("channel"), window: try query.window())
    }

    @Sendable func listByMessage(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.read, "deliveries")
        let query = SvixQuery(request)
        let (tenant, message) = try await self.message(context)
        var filter = try self.filter(query)
        filter.messageID = message.id
        if let endpoint = query.string("endpoint_id") {
            filter.endpointID =
                (try? await self.store.svixEndpoint(
                    organizationID: context.organizationID, applicationID: context.applicationID, tenantID: tenant.tenantID, id: endpoint))?.id
                ?? endpoint
        }
        return try await self.list(query, context, tenant, filter)
    }

    @Sendable func listByEndpoint(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.read, "deliveries")
        let query = SvixQuery(request)
        let tenant = try await SvixEndpointController.tenant(self.store, context)
        let endpoint = try await self.endpoint(context, tenant)
        var filter = try self.filter(query)
        filter.endpointID = endpoint.id
        return try await self.list(query, context, tenant, filter, withMessage: try query.bool("with_msg", default: false))
    }

    func list(
        _ query: SvixQuery, _ context: SvixContext, _ tenant: Tenant, _ filter: SvixAttemptFilter, withMessage: Bool = false
    ) async throws
        -> Response
    {
        let withContent = try query.bool("with_content", default: true)
        let attempts = try await self.store.svixAttempts(
            organizationID: context.organizationID, applicationID: context.applicationID, tenantID: tenant.tenantID, filter: filter,
            try query.page(descending: true))
        return try SvixJSON.list(attempts) { attempt, message in
            Self.output(attempt, withContent: withContent, message: withMessage ? SvixMessageController.output(message, withContent: false) : nil)
        }
    }

    /// `EndpointMessageOut`: each message sent to the endpoint, with the status of its delivery there.
    @Sendable func attemptedMessages(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.read, "deliveries")
        let query = SvixQuery(request)
        let withContent = try query.bool("with_content", default: true)
        let tenant = try await SvixEndpointController.tenant(self.store, context)
        let endpoint = try await self.endpoint(context, tenant)
        let statuses = try query.int("status").map(SvixStatus.deliveryStatuses)
        let page = try await self.store.svixAttemptedMessages(
            organizationID: context.organizationID, applicationID: context.applicationID, endpointID: endpoint.id, statuses: statuses,
            channel: query.string("channel"), tag: query.string("tag"), eventTypes: query.list("event_types"), window: try query.window(),
            try query.page(descending: true))
        return try SvixJSON.list(page) { message, delivery in
            guard case .object(var members) = SvixMessageController.output(message, withContent: withContent) else { return .null }
            let status = SvixStatus.of(delivery.status)
            members["status"] = .number(Double(status))
            members["statusText"] = .string(SvixStatus.text(status))
            members["nextAttempt"] = SvixJSON.time(delivery.status == .delivering ? nil : delivery.nextAttemptAt)
            return .object(members)
        }
    }

    /// `MessageEndpointOut`: each endpoint the message went to, by endpoint id, with its delivery's status.
    @Sendable func attemptedDestinations(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.read, "deliveries")
        let query = SvixQuery(request)
        let (_, message) = try await self.message(context)
        let page = try await self.store.svixAttemptedDestinations(
            organizationID: context.organizationID, applicationID: context.applicationID, messageID: message.id, try query.page(descending: false))
        return try SvixJSON.list(page) { endpoint, delivery in
            guard case .object(var members) = SvixEndpointController.output(endpoint) else { return .null }
            members["metadata"] = nil
            let status = SvixStatus.of(delivery.status)
            members["status"] = .number(Double(status))
            members["statusText"] = .string(SvixStatus.text(status))
            members["nextAttempt"] = SvixJSON.time(delivery.status == .delivering ? nil : delivery.nextAttemptAt)
            return .object(members)
        }
    }

    @Sendable func get(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.read, "deliveries")
        let (tenant, message) = try await self.message(context)
        let attempt = try await self.store.svixAttempt(
            organizationID: context.organizationID, applicationID: context.applicationID, tenantID: tenant.tenantID, messageID: message.id,
            id: try context.parameters.require("attempt_id"))
        return try SvixJSON.response(Self.output(attempt, withContent: true))
    }

    /// One manual attempt of the message to the endpoint, now; answers `{}` (the SDK parses a body).
    @Sendable func resend(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.write, "deliveries")
        let (tenant, message) = try await self.message(context)
        let endpoint = try await self.endpoint(context, tenant)
        if try await self.store.isExpunged(messageID: message.id) {
            throw SvixCodedError(status: .badRequest, code: "missing_payload", detail: "The message's payload was expunged.")
        }
        try await self.store.resend(
            organizationID: context.organizationID, applicationID: context.applicationID, messageID: message.id, endpointID: endpoint.id)
        return try SvixJSON.response(.object([:]), status: .accepted)
    }
}

/// `GET /api/v1/background-task/{task_id}`: what a recover did.
struct SvixBackgroundTaskController {
    let store: Store

    func addRoutes(to group: RouterGroup<SvixContext>) {
        group.get("background-task/:task_id", use: self.get)
    }

    static func output(_ task: BackgroundTask, withData: Bool) -> JSONValue {
        var object: [String: JSONValue] = [
            "id": .string(task.id), "status": .string(task.status), "task": .string(task.task), "updatedAt": SvixJSON.time(task.updatedAt),
        ]
        if withData { object["data"] = .object(task.data) }
        return .object(object)
    }

    @Sendable func get(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.read, "endpoints")
        let task = try await self.store.backgroundTask(applicationID: context.applicationID, id: try context.parameters.require("task_id"))
        return try SvixJSON.response(Self.output(task, withData: true))
    }
}
