import HTTPTypes
import Hummingbird
import TernCore
import TernStorage

/// Operator routes: plans, organizations, their keys and usage.
struct AdminController {
    let store: Store

    func addRoutes(to group: RouterGroup<AdminContext>) {
        group.get("plans", use: self.listPlans)
        group.put("plans/:plan_id", use: self.putPlan)
        group.post("organizations", use: self.createOrganization)
        group.get("organizations", use: self.listOrganizations)
        group.get("organizations/:org_id", use: self.getOrganization)
        group.patch("organizations/:org_id", use: self.updateOrganization)
        group.delete("organizations/:org_id", use: self.deleteOrganization)
        group.post("organizations/:org_id/api-keys", use: self.createKey)
        group.get("organizations/:org_id/api-keys", use: self.listKeys)
        group.get("organizations/:org_id/usage", use: self.usage)
    }

    struct PlanBody: Decodable, Sendable {
        var name: String?
        var max_applications: Int?
        var max_endpoints: Int?
        var max_messages_per_month: Int?
        var rate_limit_per_minute: Int?
        var rate_limit_burst: Int?
        var max_payload_bytes: Int?
        var payload_retention_days: Int?
    }

    @Sendable func listPlans(_ request: Request, context: AdminContext) async throws -> Response {
        let plans = try await self.store.listPlans()
        return try JSONResponse.make(Page(data: plans, nextCursor: nil, hasMore: false))
    }

    @Sendable func putPlan(_ request: Request, context: AdminContext) async throws -> Response {
        let id = try context.parameters.require("plan_id")
        var request = request
        let body = try await request.decodeJSON(PlanBody.self)
        var validator = Validator()
        if id.utf8.count > 64 || !Rules.isEventTypeName(id) { validator.fail("plan_id", "must be 1-64 letters, digits, '_', '.' or '-'") }
        validator.name(body.value.name, required: false)
        func limit(_ key: String, _ value: Int?, minimum: Int) -> Int?? {
            guard body.has(key) else { return nil }
            if body.isNull(key) { return .some(nil) }
            if let value, value < minimum { validator.fail(key, "must be at least \(minimum), or null for unlimited") }
            return .some(value)
        }
        let change = PlanChange(
            name: body.value.name,
            maxApplications: limit("max_applications", body.value.max_applications, minimum: 0),
            maxEndpoints: limit("max_endpoints", body.value.max_endpoints, minimum: 0),
            maxMessagesPerMonth: limit("max_messages_per_month", body.value.max_messages_per_month, minimum: 0),
            rateLimitPerMinute: limit("rate_limit_per_minute", body.value.rate_limit_per_minute, minimum: 1),
            rateLimitBurst: limit("rate_limit_burst", body.value.rate_limit_burst, minimum: 1),
            maxPayloadBytes: limit("max_payload_bytes", body.value.max_payload_bytes, minimum: 1),
            payloadRetentionDays: limit("payload_retention_days", body.value.payload_retention_days, minimum: 1)
        )
        if let days = body.value.payload_retention_days, days > 3650 { validator.fail("payload_retention_days", "must be at most 3650") }
        if let bytes = body.value.max_payload_bytes, bytes > 10 << 20 { validator.fail("max_payload_bytes", "must be at most 10485760") }
        try validator.check()
        let (plan, created) = try await self.store.putPlan(id, change)
        return try JSONResponse.make(plan, status: created ? .created : .ok)
    }

    struct OrganizationBody: Decodable, Sendable {
        var name: String?
        var plan: String?
        var status: OrganizationStatus?
    }

    @Sendable func createOrganization(_ request: Request, context: AdminContext) async throws -> Response {
        var request = request
        let body = try await request.decodeJSON(OrganizationBody.self).value
        var validator = Validator()
        validator.name(body.name, required: true)
        try validator.check()
        let organization = try await self.store.createOrganization(name: body.name!, plan: body.plan ?? "free")
        return try JSONResponse.created(organization, id: organization.id)
    }

    @Sendable func listOrganizations(_ request: Request, context: AdminContext) async throws -> Response {
        let page = try request.pageRequest()
        return try JSONResponse.make(try await self.store.listOrganizations(page))
    }

    @Sendable func getOrganization(_ request: Request, context: AdminContext) async throws -> Response {
        try JSONResponse.make(try await self.store.organization(try context.parameters.require("org_id")))
    }

    @Sendable func updateOrganization(_ request: Request, context: AdminContext) async throws -> Response {
        let id = try context.parameters.require("org_id")
        var request = request
        let body = try await request.decodeJSON(OrganizationBody.self).value
        var validator = Validator()
        validator.name(body.name, required: false)
        try validator.check()
        let organization = try await self.store.updateOrganization(id, OrganizationChange(name: body.name, plan: body.plan, status: body.status))
        return try JSONResponse.make(organization)
    }

    @Sendable func deleteOrganization(_ request: Request, context: AdminContext) async throws -> Response {
        try await self.store.deleteOrganization(try context.parameters.require("org_id"))
        return JSONResponse.noContent()
    }

    @Sendable func createKey(_ request: Request, context: AdminContext) async throws -> Response {
        let organizationID = try context.parameters.require("org_id")
        var request = request
        let body = try await request.decodeJSON(APIKeyController.KeyBody.self).value
        let input = try APIKeyController.validate(body)
        let created = try await APIKeyController.create(self.store, organizationID: organizationID, input)
        return try JSONResponse.created(created, id: created.item.id)
    }

    @Sendable func listKeys(_ request: Request, context: AdminContext) async throws -> Response {
        let organizationID = try context.parameters.require("org_id")
        let page = try request.pageRequest()
        _ = try await self.store.organization(organizationID)
        return try JSONResponse.make(try await self.store.listAPIKeys(organizationID: organizationID, page))
    }

    @Sendable func usage(_ request: Request, context: AdminContext) async throws -> Response {
        try JSONResponse.make(try await self.store.usage(try context.parameters.require("org_id")))
    }
}

extension OrganizationStatus {
    public init(from decoder: any Decoder) throws { self = try Self.decodeStrictly(from: decoder) }
}

extension EndpointStatus {
    public init(from decoder: any Decoder) throws { self = try Self.decodeStrictly(from: decoder) }
}

extension WebhookHeaderStyle {
    public init(from decoder: any Decoder) throws { self = try Self.decodeStrictly(from: decoder) }
}
