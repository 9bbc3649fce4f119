import Hummingbird
import TernCore
import TernStorage

/// `GET /v1/audit-entries`: the organization's audit log, newest first.
struct AuditController {
    let store: Store

    func addRoutes(to group: RouterGroup<OrganizationContext>) {
        group.get("audit-entries", use: self.list)
    }

    @Sendable func list(_ request: Request, context: OrganizationContext) async throws -> Response {
        try context.require(.read, "audit")
        let query = request.uri.queryParameters
        let page = try request.pageRequest()
        let entries = try await self.store.listAuditEntries(
            organizationID: context.organizationID, entityType: query.get("entity_type"), entityID: query.get("entity_id"),
            action: query.get("action"), page
        )
        return try JSONResponse.make(entries)
    }
}
