import HTTPTypes
import Hummingbird
import TernCore
import TernStorage

/// Deliveries and their attempts; replay of one delivery or of the dead-letter queue.
struct DeliveryController {
    let store: Store

    func addRoutes(to group: RouterGroup<ApplicationContext>) {
        group.get("deliveries", use: self.list)
        group.post("deliveries/replay", use: self.replayMany)
        group.get("deliveries/:delivery_id", use: self.get)
        group.get("deliveries/:delivery_id/attempts", use: self.attempts)
        group.post("deliveries/:delivery_id/replay", use: self.replay)
    }

    @Sendable func list(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.read, "deliveries")
        let applicationID = context.applicationID
        let query = request.uri.queryParameters
        let page = try request.pageRequest()
        let filter = DeliveryFilter(
            status: try DeliveryStatus.query(query.get("status"), "status"), endpointID: query.get("endpoint_id"), tenantID: query.get("tenant_id"),
            messageID: query.get("message_id"), since: try TimeParameter.parse(query.get("since"), "since"),
            until: try TimeParameter.parse(query.get("until"), "until")
        )
        return try JSONResponse.make(
            try await self.store.listDeliveries(
                organizationID: context.organizationID, applicationID: applicationID, filter: filter, page
            ))
    }

    @Sendable func get(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.read, "deliveries")
        let applicationID = context.applicationID
        let id = try context.parameters.require("delivery_id")
        return try JSONResponse.make(try await self.store.delivery(organizationID: context.organizationID, applicationID: applicationID, id: id))
    }

    @Sendable func attempts(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.read, "deliveries")
        let applicationID = context.applicationID
        let id = try context.parameters.require("delivery_id")
        let page = try request.pageRequest()
        return try JSONResponse.make(
            try await self.store.listAttempts(
                organizationID: context.organizationID, applicationID: applicationID, deliveryID: id, page
            ))
    }

    @Sendable func replay(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.write, "deliveries")
        let applicationID = context.applicationID
        let id = try context.parameters.require("delivery_id")
        let delivery = try await self.store.replayDelivery(organizationID: context.organizationID, applicationID: applicationID, id: id)
        return try JSONResponse.make(delivery, status: .accepted)
    }

    struct ReplayBody: Decodable, Sendable {
        var status: String?
        var endpoint_id: String?
        var tenant_id: String?
        var since: String?
        var until: String?
    }

    struct Count: Encodable { var count: Int }

    /// Bulk replay: the dead-letter queue (`exhausted`, the default) or the `failed` deliveries, narrowed by filters.
    @Sendable func replayMany(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.write, "deliveries")
        let applicationID = context.applicationID
        var request = request
        let body = try await request.decodeOptionalJSON(ReplayBody.self).value
        let status = try DeliveryStatus.query(body.status, "status") ?? .exhausted
        guard status == .exhausted || status == .failed else {
            throw TernError.invalid("status", "must be 'exhausted' (the dead-letter queue) or 'failed'")
        }
        let filter = DeliveryFilter(
            status: status, endpointID: body.endpoint_id, tenantID: body.tenant_id,
            since: try TimeParameter.parse(body.since, "since"), until: try TimeParameter.parse(body.until, "until")
        )
        let count = try await self.store.replayDeliveries(organizationID: context.organizationID, applicationID: applicationID, filter: filter)
        return try JSONResponse.make(Count(count: count), status: .accepted)
    }
}
