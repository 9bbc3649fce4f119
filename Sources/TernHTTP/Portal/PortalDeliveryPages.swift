import Foundation
import HTTPTypes
import Hummingbird
import TernCore
import TernStorage

/// The portal's event catalog and delivery pages: the log, one delivery with its attempts, replay.
extension PortalController {
    @Sendable func events(_ request: Request, context: PortalContext) async throws -> Response {
        struct Row {
            var name: String
            var description: String?
            var schema: String?
            var example: String?
        }
        struct View {
            var events: [Row]
            var empty: Bool
        }
        let types = try await self.store.listEventTypes(
            organizationID: context.organizationID, applicationID: context.applicationID, includeArchived: false,
            PageRequest(limit: PageRequest.maxLimit)
        )
        let rows = types.data.sorted { $0.name < $1.name }.map {
            Row(name: $0.name, description: $0.description, schema: $0.schema.map(Self.pretty), example: $0.example.map(Self.pretty))
        }
        return try await self.render(
            "portal_events", context, title: "Event catalog", section: "events", page: View(events: rows, empty: rows.isEmpty))
    }

    @Sendable func deliveries(_ request: Request, context: PortalContext) async throws -> Response {
        struct StatusChoice {
            var value: String
            var label: String
            var selected: Bool
        }
        struct View {
            var deliveries: [DeliveryRow]
            var empty: Bool
            var statuses: [StatusChoice]
            var nextURL: String?
            var status: String
        }
        let query = request.uri.queryParameters
        let statusText = query.get("status").flatMap { $0.isEmpty ? nil : $0 }
        let status = try DeliveryStatus.query(statusText, "status")
        let page = try PageRequest(limit: "25", cursor: query.get("cursor"))
        let deliveries = try await self.store.listDeliveries(
            organizationID: context.organizationID, applicationID: context.applicationID,
            filter: DeliveryFilter(status: status, tenantID: context.tenantID), page
        )
        var next: String?
        if let cursor = deliveries.nextCursor {
            var components = URLComponents()
            components.path = "/portal/deliveries"
            components.queryItems =
                [URLQueryItem(name: "cursor", value: cursor)] + (statusText.map { [URLQueryItem(name: "status", value: $0)] } ?? [])
            next = components.string
        }
        let statuses =
            [StatusChoice(value: "", label: "All", selected: status == nil)]
            + DeliveryStatus.allCases.map {
                StatusChoice(value: $0.rawValue, label: $0.rawValue.capitalized, selected: $0 == status)
            }
        let view = View(
            deliveries: deliveries.data.map(Self.row), empty: deliveries.data.isEmpty, statuses: statuses, nextURL: next, status: statusText ?? ""
        )
        return try await self.render("portal_deliveries", context, title: "Deliveries", section: "deliveries", page: view)
    }

    @Sendable func delivery(_ request: Request, context: PortalContext) async throws -> Response {
        struct Header {
            var name: String
            var value: String
        }
        struct AttemptRow {
            var id: String
            var createdAt: String
            var trigger: String
            var statusCode: String
            var durationMS: Int
            var error: String?
            var responseBody: String
            var requestHeaders: [Header]
            var succeeded: Bool
        }
        struct View {
            var delivery: DeliveryRow
            var endpointID: String
            var payload: String
            var messageID: String
            var attempts: [AttemptRow]
            var none: Bool
        }
        let id = try context.parameters.require("delivery_id")
        let (delivery, message, attempts) = try await self.store.tenantDelivery(
            organizationID: context.organizationID, applicationID: context.applicationID, tenantID: context.tenantID, id: id
        )
        let rows = attempts.map { attempt in
            AttemptRow(
                id: attempt.id, createdAt: attempt.createdAt.description, trigger: attempt.trigger.rawValue,
                statusCode: attempt.statusCode.map(String.init) ?? "no answer", durationMS: attempt.durationMS, error: attempt.error,
                responseBody: attempt.responseBody ?? "",
                requestHeaders: attempt.requestHeaders.sorted { $0.key < $1.key }.map { Header(name: $0.key, value: $0.value) },
                succeeded: (200..<300).contains(attempt.statusCode ?? 0)
            )
        }
        let view = View(
            delivery: Self.row(delivery), endpointID: delivery.endpointID, payload: Self.pretty(message.payload), messageID: message.id,
            attempts: rows, none: rows.isEmpty
        )
        return try await self.render(
            "portal_delivery", context, title: "Delivery", section: "deliveries", flash: request.uri.queryParameters.get("flash").flatMap(Self.flash),
            page: view
        )
    }

    @Sendable func replay(_ request: Request, context: PortalContext) async throws -> Response {
        let id = try context.parameters.require("delivery_id")
        _ = try await self.store.tenantDelivery(
            organizationID: context.organizationID, applicationID: context.applicationID, tenantID: context.tenantID, id: id)
        _ = try await self.store.replayDelivery(organizationID: context.organizationID, applicationID: context.applicationID, id: id)
        return WebPages.redirect("/portal/deliveries/\(id)?flash=replayed")
    }
}
