import Hummingbird
import TernCore
import TernStorage

/// Tenants of an application: the list (tenants with endpoints), one tenant, naming it, and deleting its endpoints.
struct TenantController {
    let store: Store

    func addRoutes(to group: RouterGroup<ApplicationContext>) {
        group.get("tenants", use: self.list)
        group.get("tenants/:tenant_id", use: self.get)
        group.patch("tenants/:tenant_id", use: self.update)
        group.delete("tenants/:tenant_id", use: self.delete)
    }

    struct TenantBody: Decodable, Sendable {
        var name: String?
        var metadata: [String: String]?
    }

    @Sendable func list(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.read, "endpoints")
        let page = try request.pageRequest()
        return try JSONResponse.make(
            try await self.store.listTenants(organizationID: context.organizationID, applicationID: context.applicationID, page))
    }

    @Sendable func get(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.read, "endpoints")
        let tenantID = try context.parameters.require("tenant_id")
        return try JSONResponse.make(
            try await self.store.tenant(organizationID: context.organizationID, applicationID: context.applicationID, tenantID: tenantID))
    }

    /// `name` (null clears it) and `metadata` (an object of strings, at most 16 KB); a tenant named for the first time
    /// gets its record.
    @Sendable func update(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.write, "endpoints")
        let tenantID = try context.parameters.require("tenant_id")
        var request = request
        let body = try await request.decodeJSON(TenantBody.self)
        var validator = Validator()
        validator.tenantID(tenantID)
        if body.value.name != nil { validator.name(body.value.name, required: false) }
        if let metadata = body.value.metadata, JSONColumnSize.of(metadata) > 16_384 { validator.fail("metadata", "must be at most 16 KB") }
        try validator.check()
        let change = TenantChange(name: body.has("name") ? .some(body.value.name) : nil, metadata: body.value.metadata)
        return try JSONResponse.make(
            try await self.store.updateTenant(
                organizationID: context.organizationID, applicationID: context.applicationID, tenantID: tenantID, change))
    }

    @Sendable func delete(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.write, "endpoints")
        let tenantID = try context.parameters.require("tenant_id")
        try await self.store.deleteTenant(organizationID: context.organizationID, applicationID: context.applicationID, tenantID: tenantID)
        return JSONResponse.noContent()
    }
}
