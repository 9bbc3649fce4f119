import Hummingbird
import TernCore
import TernStorage

/// `/api/v1/event-type`: the event types of the key's application.
struct SvixEventTypeController {
    let store: Store

    func addRoutes(to group: RouterGroup<SvixContext>) {
        group.get("event-type", use: self.list)
        group.post("event-type", use: self.create)
        group.get("event-type/:name", use: self.get)
        group.put("event-type/:name", use: self.upsert)
        group.patch("event-type/:name", use: self.patch)
        group.delete("event-type/:name", use: self.delete)
    }

    /// `EventTypeIn`, `EventTypeUpsertIn` and `EventTypePatch`.
    struct Body: Decodable, Sendable {
        var name: SvixPatch<String>
        var description: SvixPatch<String>
        var archived: SvixPatch<Bool>
        var deprecated: SvixPatch<Bool>
        var schemas: SvixPatch<[String: JSONValue]>
        var featureFlags: SvixPatch<[String]>
        var featureFlag: SvixPatch<String>
        var groupName: SvixPatch<String>

        var flags: SvixPatch<[String]> {
            switch (self.featureFlags, self.featureFlag) {
            case (.absent, .value(let flag)): .value([flag])
            case (.absent, .null): .null
            default: self.featureFlags
            }
        }
    }

    func validate(_ body: Body, descriptionRequired: Bool) throws {
        var validator = Validator()
        if case .absent = body.description, descriptionRequired { validator.fail("description", "field required") }
        if case .null = body.description { validator.fail("description", "must not be null") }
        if let schemas = body.schemas.newValue {
            for (version, schema) in schemas where Int(version) == nil || !schema.isObject {
                validator.fail("schemas", "must map versions (\"1\", \"2\", …) to JSON Schema objects")
            }
        }
        for flag in body.flags.newValue ?? [] where !SvixRules.isUID(flag) { validator.fail("featureFlags", "'\(flag)' is not a valid flag") }
        if let group = body.groupName.newValue, !SvixRules.isUID(group) { validator.fail("groupName", "must be letters, digits, '-', '_' and '.'") }
        try validator.check()
    }

    static func output(_ eventType: EventType, withSchemas: Bool = true) -> JSONValue {
        var object: [String: JSONValue] = [
            "name": .string(eventType.name), "description": .string(eventType.description ?? ""), "archived": .bool(eventType.archived),
            "deprecated": .bool(eventType.deprecated), "schemas": withSchemas ? Self.schemas(eventType).map(JSONValue.object) ?? .null : .null,
            "featureFlags": SvixJSON.strings(eventType.featureFlags), "groupName": SvixJSON.string(eventType.groupName),
            "createdAt": SvixJSON.time(eventType.createdAt), "updatedAt": SvixJSON.time(eventType.updatedAt),
        ]
        if let flag = eventType.featureFlags?.first { object["featureFlag"] = .string(flag) }
        return .object(object)
    }

    /// The versioned schemas, or the native single schema as version 1.
    static func schemas(_ eventType: EventType) -> [String: JSONValue]? {
        eventType.schemas ?? eventType.schema.map { ["1": $0] }
    }

    /// The event type as the body describes it; `schema` is the highest version's, and its `examples` feed `example`.
    static func eventType(_ name: String, _ body: Body, over current: EventType?) -> EventType {
        let now = Timestamp.now()
        var eventType =
            current
            ?? EventType(applicationID: "", name: name, description: nil, schema: nil, example: nil, archived: false, createdAt: now, updatedAt: now)
        eventType.description = body.description.apply(to: current?.description) ?? ""
        eventType.archived = body.archived.apply(to: current?.archived) ?? false
        eventType.deprecated = body.deprecated.apply(to: current?.deprecated) ?? false
        eventType.schemas = body.schemas.apply(to: current.flatMap(Self.schemas))
        eventType.featureFlags = body.flags.apply(to: current?.featureFlags)
        eventType.groupName = body.groupName.apply(to: current?.groupName)
        let latest = eventType.schemas?.max { (Int($0.key) ?? 0) < (Int($1.key) ?? 0) }?.value
        eventType.schema = latest
        if case .object(let members)? = latest, case .array(let examples)? = members["examples"], let first = examples.first {
            eventType.example = first
        } else if case .object(let members)? = latest, let example = members["example"] {
            eventType.example = example
        }
        return eventType
    }

    @Sendable func list(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.read, "event_types")
        let query = SvixQuery(request)
        let page = try query.page(descending: false)
        let withContent = try query.bool("with_content", default: false)
        let types = try await self.store.svixEventTypes(
            organizationID: context.organizationID, applicationID: context.applicationID,
            includeArchived: try query.bool("include_archived", default: false), page)
        return try SvixJSON.list(types) { Self.output($0, withSchemas: withContent) }
    }

    @Sendable func create(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.write, "event_types")
        var request = request
        let body = try await request.decodeJSON(Body.self).value
        guard let name = body.name.newValue else { throw TernError.invalid("name", "field required") }
        var validator = Validator()
        validator.eventTypeName(name)
        try validator.check()
        try self.validate(body, descriptionRequired: true)
        do {
            let (saved, _) = try await self.store.saveEventType(
                organizationID: context.organizationID, applicationID: context.applicationID, Self.eventType(name, body, over: nil),
                replace: false)
            return try SvixJSON.response(Self.output(saved), status: .created)
        } catch TernError.conflict {
            throw SvixCodedError(status: .conflict, code: "event_type_exists", detail: "An event_type with this name already exists")
        }
    }

    @Sendable func get(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.read, "event_types")
        let eventType = try await self.store.eventType(
            organizationID: context.organizationID, applicationID: context.applicationID, name: try context.parameters.require("name"))
        return try SvixJSON.response(Self.output(eventType))
    }

    @Sendable func upsert(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.write, "event_types")
        let name = try context.parameters.require("name")
        var validator = Validator()
        validator.eventTypeName(name)
        try validator.check()
        var request = request
        let body = try await request.decodeJSON(Body.self).value
        try self.validate(body, descriptionRequired: true)
        let (saved, created) = try await self.store.saveEventType(
            organizationID: context.organizationID, applicationID: context.applicationID, Self.eventType(name, body, over: nil), replace: true)
        return try SvixJSON.response(Self.output(saved), status: created ? .created : .ok)
    }

    @Sendable func patch(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.write, "event_types")
        var request = request
        let body = try await request.decodeJSON(Body.self).value
        try self.validate(body, descriptionRequired: false)
        let saved = try await self.store.updateEventType(
            organizationID: context.organizationID, applicationID: context.applicationID, name: try context.parameters.require("name")
        ) { eventType in
            eventType = Self.eventType(eventType.name, body, over: eventType)
        }
        return try SvixJSON.response(Self.output(saved))
    }

    /// Archives the event type, or with `expunge=true` removes it.
    @Sendable func delete(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.write, "event_types")
        let name = try context.parameters.require("name")
        if try SvixQuery(request).bool("expunge", default: false) {
            try await self.store.expungeEventType(organizationID: context.organizationID, applicationID: context.applicationID, name: name)
        } else {
            _ = try await self.store.updateEventType(
                organizationID: context.organizationID, applicationID: context.applicationID, name: name
            ) { $0.archived = true }
        }
        return JSONResponse.noContent()
    }
}
