import HTTPTypes
import Hummingbird
import TernCore
import TernStorage

/// The event catalog of an application.
struct EventTypeController {
    let store: Store

    func addRoutes(to group: RouterGroup<ApplicationContext>) {
        group.post("event-types", use: self.create)
        group.get("event-types", use: self.list)
        group.get("event-types/:name", use: self.get)
        group.patch("event-types/:name", use: self.update)
        group.delete("event-types/:name", use: self.archive)
    }

    struct EventTypeBody: Decodable, Sendable {
        var name: String?
        var description: String?
        var schema: JSONValue?
        var example: JSONValue?
        var archived: Bool?
    }

    static func validate(_ body: JSONBody<EventTypeBody>, creating: Bool) throws {
        var validator = Validator()
        if creating || body.value.name != nil { validator.eventTypeName(body.value.name) }
        validator.text(body.value.description, "description", max: 4096)
        if let schema = body.value.schema, schema != .null, !schema.isObject {
            validator.fail("schema", "must be a JSON Schema object")
        }
        try validator.check()
    }

    @Sendable func create(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.write, "event_types")
        let applicationID = context.applicationID
        var request = request
        let body = try await request.decodeJSON(EventTypeBody.self)
        try Self.validate(body, creating: true)
        let eventType = try await self.store.createEventType(
            organizationID: context.organizationID, applicationID: applicationID, name: body.value.name!,
            description: body.value.description, schema: body.value.schema == .null ? nil : body.value.schema,
            example: body.has("example") ? (body.value.example ?? .null) : nil
        )
        return try JSONResponse.created(eventType, id: eventType.name)
    }

    @Sendable func list(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.read, "event_types")
        let applicationID = context.applicationID
        let page = try request.pageRequest()
        let includeArchived = try Bool.query(request.uri.queryParameters.get("include_archived"), "include_archived") ?? false
        let eventTypes = try await self.store.listEventTypes(
            organizationID: context.organizationID, applicationID: applicationID, includeArchived: includeArchived, page
        )
        return try JSONResponse.make(eventTypes)
    }

    @Sendable func get(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.read, "event_types")
        let applicationID = context.applicationID
        let name = try context.parameters.require("name")
        return try JSONResponse.make(
            try await self.store.eventType(organizationID: context.organizationID, applicationID: applicationID, name: name)
        )
    }

    @Sendable func update(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.write, "event_types")
        let applicationID = context.applicationID
        let name = try context.parameters.require("name")
        var request = request
        let body = try await request.decodeJSON(EventTypeBody.self)
        try Self.validate(body, creating: false)
        if let newName = body.value.name, newName != name {
            throw TernError.invalid("name", "an event type cannot be renamed; create a new one")
        }
        let value = body.value
        let hasDescription = body.has("description")
        let hasSchema = body.has("schema")
        let hasExample = body.has("example")
        let eventType = try await self.store.updateEventType(
            organizationID: context.organizationID, applicationID: applicationID, name: name
        ) { eventType in
            if hasDescription { eventType.description = value.description }
            if hasSchema { eventType.schema = value.schema == .null ? nil : value.schema }
            if hasExample { eventType.example = value.example }
            if let archived = value.archived { eventType.archived = archived }
        }
        return try JSONResponse.make(eventType)
    }

    @Sendable func archive(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.write, "event_types")
        let applicationID = context.applicationID
        let name = try context.parameters.require("name")
        _ = try await self.store.updateEventType(organizationID: context.organizationID, applicationID: applicationID, name: name) {
            $0.archived = true
        }
        return JSONResponse.noContent()
    }
}
