import Hummingbird
import TernCore
import TernStorage

/// `/api/v1/app`: Svix applications, which are the tenants of the key's application.
struct SvixApplicationController {
    let store: Store

    func addRoutes(to group: RouterGroup<SvixContext>) {
        group.get("app", use: self.list)
        group.post("app", use: self.create)
        group.get("app/:app_id", use: self.get)
        group.put("app/:app_id", use: self.upsert)
        group.patch("app/:app_id", use: self.patch)
        group.delete("app/:app_id", use: self.delete)
    }

    /// `ApplicationIn` (and the PATCH body, whose fields tell absent from null). `rateLimit` is SDK 1.x's `throttleRate`.
    struct Body: Decodable, Sendable {
        var name: SvixPatch<String>
        var uid: SvixPatch<String>
        var throttleRate: SvixPatch<Int>
        var rateLimit: SvixPatch<Int>
        var metadata: SvixPatch<[String: String]>

        var throttle: SvixPatch<Int> {
            if case .absent = self.throttleRate { return self.rateLimit }
            return self.throttleRate
        }
    }

    func validate(_ body: Body, nameRequired: Bool) throws {
        var validator = Validator()
        switch body.name {
        case .value(let name):
            if name.isEmpty || name.unicodeScalars.contains(where: { $0.value < 0x20 }) {
                validator.fail("name", "must be at least 1 character, without control characters")
            }
        case .null: validator.fail("name", "must not be null")
        case .absent: if nameRequired { validator.fail("name", "field required") }
        }
        if let uid = body.uid.newValue, let problem = SvixRules.uidProblem(uid, prefix: "app_") { validator.fail("uid", problem) }
        if let rate = body.throttle.newValue, rate < 1 { validator.fail("throttleRate", "must be at least 1") }
        try validator.check()
    }

    static func output(_ tenant: Tenant) -> JSONValue {
        var object: [String: JSONValue] = [
            "id": .string(tenant.svixID ?? tenant.tenantID), "uid": SvixJSON.string(Store.uid(of: tenant)),
            "name": .string(tenant.name ?? tenant.tenantID), "metadata": .object(tenant.metadata.mapValues(JSONValue.string)),
            "throttleRate": SvixJSON.int(tenant.throttleRate), "createdAt": SvixJSON.time(tenant.createdAt),
            "updatedAt": SvixJSON.time(tenant.updatedAt),
        ]
        if let rate = tenant.throttleRate { object["rateLimit"] = SvixJSON.int(rate) }
        return .object(object)
    }

    @Sendable func list(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.read, "endpoints")
        let page = try SvixQuery(request).page(descending: false)
        let tenants = try await self.store.svixApplications(organizationID: context.organizationID, applicationID: context.applicationID, page)
        return try SvixJSON.list(tenants, Self.output)
    }

    @Sendable func create(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.write, "endpoints")
        let getIfExists = try SvixQuery(request).bool("get_if_exists", default: false)
        var request = request
        let body = try await request.decodeJSON(Body.self).value
        try self.validate(body, nameRequired: true)
        let (tenant, created) = try await self.store.createSvixApplication(
            organizationID: context.organizationID, applicationID: context.applicationID,
            SvixApplicationInput(
                uid: body.uid.newValue, name: body.name.newValue, metadata: body.metadata.newValue ?? [:], throttleRate: body.throttle.newValue),
            getIfExists: getIfExists
        )
        return try SvixJSON.response(Self.output(tenant), status: created ? .created : .ok, created: created ? tenant.tenantID : nil)
    }

    @Sendable func get(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.read, "endpoints")
        let tenant = try await self.store.svixApplication(
            organizationID: context.organizationID, applicationID: context.applicationID, idOrUID: try context.parameters.require("app_id"))
        return try SvixJSON.response(Self.output(tenant))
    }

    /// PUT: the whole application, created when the path names none.
    @Sendable func upsert(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.write, "endpoints")
        var request = request
        let body = try await request.decodeJSON(Body.self).value
        try self.validate(body, nameRequired: true)
        let (tenant, created) = try await self.store.upsertSvixApplication(
            organizationID: context.organizationID, applicationID: context.applicationID, idOrUID: try context.parameters.require("app_id"),
            SvixApplicationInput(
                uid: body.uid.newValue, name: body.name.newValue, metadata: body.metadata.newValue ?? [:], throttleRate: body.throttle.newValue),
            keepUID: { if case .absent = body.uid { true } else { false } }()
        )
        return try SvixJSON.response(Self.output(tenant), status: created ? .created : .ok)
    }

    @Sendable func patch(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.write, "endpoints")
        var request = request
        let body = try await request.decodeJSON(Body.self).value
        try self.validate(body, nameRequired: false)
        let tenant = try await self.store.updateSvixApplication(
            organizationID: context.organizationID, applicationID: context.applicationID, idOrUID: try context.parameters.require("app_id")
        ) { current in
            SvixApplicationInput(
                uid: body.uid.apply(to: current.uid), name: body.name.apply(to: current.name),
                metadata: body.metadata.apply(to: current.metadata) ?? [:], throttleRate: body.throttle.apply(to: current.throttleRate))
        }
        return try SvixJSON.response(Self.output(tenant))
    }

    @Sendable func delete(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.write, "endpoints")
        try await self.store.deleteSvixApplication(
            organizationID: context.organizationID, applicationID: context.applicationID, idOrUID: try context.parameters.require("app_id"))
        return JSONResponse.noContent()
    }
}
