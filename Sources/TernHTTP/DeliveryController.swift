import HTTPTypes
import Hummingbird
import TernCore
import TernStorage

/// Deliveries and their attempts; replay of one delivery or of the dead-letter queue.
struct DeliveryController {
    let store: Store

    func addRoutes(to group: RouterGroup<OrganizationContext>) {
        group.get("applications/:app_id/deliveries", use: self.list)
        group.post("applications/:app_id/deliveries/replay", use: self.replayMany)
        group.get("applications/:app_id/deliveries/:delivery_id", use: self.get)
        group.get("applications/:app_id/deliveries/:delivery_id/attempts", use: self.attempts)
        group.post("applications/:app_id/deliveries/:delivery_id/replay", use: self.replay)
    }

    static func status(_ value: String?, _ field: String = "status") throws -> DeliveryStatus? {
        guard let value else { return nil }
        guard let status = DeliveryStatus(rawValue: value) else {
            let allowed = DeliveryStatus.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ")
            throw TernError.invalid(field, "must be one of \(allowed)")
        }
        return status
    }

    @Sendable func list(_ request: Request, context: OrganizationContext) async throws -> Response {
        try context.require(.read, "deliveries")
        let applicationID = try context.applicationID()
        let query = request.uri.queryParameters
        let page = try PageRequest(limit: query.get("limit"), cursor: query.get("cursor"))
        let filter = DeliveryFilter(
            status: try Self.status(query.get("status")), endpointID: query.get("endpoint_id"), tenantID: query.get("tenant_id"),
            messageID: query.get("message_id"), since: try TimeParameter.parse(query.get("since"), "since"),
            until: try TimeParameter.parse(query.get("until"), "until")
        )
        return try JSONResponse.make(try await self.store.listDeliveries(
            organizationID: context.organizationID, applicationID: applicationID, filter: filter, page
        ))
    }

    @Sendable func get(_ request: Request, context: OrganizationContext) async throws -> Response {
        try context.require(.read, "deliveries")
        let applicationID = try context.applicationID()
        let id = try context.parameters.require("delivery_id")
        return try JSONResponse.make(try await self.store.delivery(organizationID: context.organizationID, applicationID: applicationID, id: id))
    }

    @Sendable func attempts(_ request: Request, context: OrganizationContext) async throws -> Response {
        try context.require(.read, "deliveries")
        let applicationID = try context.applicationID()
        let id = try context.parameters.require("delivery_id")
        let page = try PageRequest(limit: request.uri.queryParameters.get("limit"), cursor: request.uri.queryParameters.get("cursor"))
        return try JSONResponse.make(try await self.store.listAttempts(
            organizationID: context.organizationID, applicationID: applicationID, deliveryID: id, page
        ))
    }

    @Sendable func replay(_ request: Request, context: OrganizationContext) async throws -> Response {
        try context.require(.write, "deliveries")
        let applicationID = try context.applicationID()
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
    @Sendable func replayMany(_ request: Request, context: OrganizationContext) async throws -> Response {
        try context.require(.write, "deliveries")
        let applicationID = try context.applicationID()
        var request = request
        let body = try await request.decodeOptionalJSON(ReplayBody.self).value
        let status = try Self.status(body.status) ?? .exhausted
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
