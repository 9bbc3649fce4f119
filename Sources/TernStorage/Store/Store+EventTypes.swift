import SQLKit
import TernCore

extension Store {
    public func createEventType(
        organizationID: String, applicationID: String, name: String, description: String?, schema: JSONValue?, example: JSONValue?
    ) async throws -> EventType {
        try await self.database.write { sql in
            _ = try await Self.application(organizationID, applicationID, sql)
            if try await sql.raw(
                """
                SELECT name FROM event_types WHERE application_id = \(bind: applicationID) AND name = \(bind: name)
                """
            ).first() != nil {
                throw TernError.conflict("The event type '\(name)' already exists in this application.")
            }
            let now = Timestamp.now()
            let eventType = EventType(
                applicationID: applicationID, name: name, description: description, schema: schema, example: example,
                archived: false, createdAt: now, updatedAt: now
            )
            try await sql.raw(
                """
                INSERT INTO event_types (application_id, name, seq, description, schema, example, archived, created_at, updated_at)
                VALUES (\(bind: applicationID), \(bind: name), \(bind: Identifier.make("et")), \(bind: description),
                \(bind: schema.map(JSONColumn.encode)), \(bind: example.map(JSONColumn.encode)), \(bind: false),
                \(bind: now.microseconds), \(bind: now.microseconds))
                """
            ).run()
            return eventType
        }
    }

    public func listEventTypes(
        organizationID: String, applicationID: String, includeArchived: Bool, _ page: PageRequest
    ) async throws -> Page<EventType> {
        try await self.database.read { sql in
            _ = try await Self.application(organizationID, applicationID, sql)
            var query = sql.select().column("*").from("event_types").where("application_id", .equal, applicationID)
            if !includeArchived { query = query.where("archived", .equal, false) }
            if let after = page.after { query = query.where("seq", .lessThan, after) }
            let rows = try await query.orderBy("seq", .descending).limit(page.limit + 1).all()
            return try page.page(rows, key: { (try? $0.string("seq")) ?? "" }, map: Self.eventType)
        }
    }

    public func eventType(organizationID: String, applicationID: String, name: String) async throws -> EventType {
        try await self.database.read { sql in
            _ = try await Self.application(organizationID, applicationID, sql)
            return try await Self.eventType(applicationID, name, sql)
        }
    }

    static func eventType(_ applicationID: String, _ name: String, _ sql: any SQLDatabase) async throws -> EventType {
        guard
            let row = try await sql.raw(
                """
                SELECT * FROM event_types WHERE application_id = \(bind: applicationID) AND name = \(bind: name)
                """
            ).first()
        else { throw TernError.notFound("No event type '\(name)'.") }
        return try Self.eventType(row)
    }

    public func updateEventType(
        organizationID: String, applicationID: String, name: String, _ update: @escaping @Sendable (inout EventType) throws -> Void
    ) async throws -> EventType {
        try await self.database.write { sql in
            _ = try await Self.application(organizationID, applicationID, sql)
            var eventType = try await Self.eventType(applicationID, name, sql)
            try update(&eventType)
            eventType.updatedAt = .now()
            try await sql.raw(
                """
                UPDATE event_types SET description = \(bind: eventType.description), schema = \(bind: eventType.schema.map(JSONColumn.encode)),
                example = \(bind: eventType.example.map(JSONColumn.encode)), archived = \(bind: eventType.archived),
                schemas = \(bind: eventType.schemas.map(JSONColumn.encode)), deprecated = \(bind: eventType.deprecated),
                group_name = \(bind: eventType.groupName), feature_flags = \(bind: eventType.featureFlags.map(JSONColumn.encode)),
                updated_at = \(bind: eventType.updatedAt.microseconds) WHERE application_id = \(bind: applicationID) AND name = \(bind: name)
                """
            ).run()
            return eventType
        }
    }

    /// Writes the event type whole (Svix create and upsert): inserted when new, replaced when it exists and `replace`
    /// allows it (an archived one is always replaced). Returns it and whether it was new.
    public func saveEventType(
        organizationID: String, applicationID: String, _ eventType: EventType, replace: Bool
    ) async throws -> (EventType, created: Bool) {
        try await self.database.write { sql in
            _ = try await Self.application(organizationID, applicationID, sql)
            var eventType = eventType
            let now = Timestamp.now()
            eventType.updatedAt = now
            if let existing = try? await Self.eventType(applicationID, eventType.name, sql) {
                guard replace || existing.archived else {
                    throw TernError.conflict("The event type '\(eventType.name)' already exists in this application.")
                }
                eventType.createdAt = existing.createdAt
                try await sql.raw(
                    """
                    UPDATE event_types SET description = \(bind: eventType.description), schema = \(bind: eventType.schema.map(JSONColumn.encode)),
                    example = \(bind: eventType.example.map(JSONColumn.encode)), archived = \(bind: eventType.archived),
                    schemas = \(bind: eventType.schemas.map(JSONColumn.encode)), deprecated = \(bind: eventType.deprecated),
                    group_name = \(bind: eventType.groupName), feature_flags = \(bind: eventType.featureFlags.map(JSONColumn.encode)),
                    updated_at = \(bind: now.microseconds) WHERE application_id = \(bind: applicationID) AND name = \(bind: eventType.name)
                    """
                ).run()
                return (eventType, created: false)
            }
            eventType.createdAt = now
            try await sql.raw(
                """
                INSERT INTO event_types (application_id, name, seq, description, schema, example, archived, schemas, deprecated, group_name,
                feature_flags, created_at, updated_at) VALUES (\(bind: applicationID), \(bind: eventType.name), \(bind: Identifier.make("et")),
                \(bind: eventType.description), \(bind: eventType.schema.map(JSONColumn.encode)), \(bind: eventType.example.map(JSONColumn.encode)),
                \(bind: eventType.archived), \(bind: eventType.schemas.map(JSONColumn.encode)), \(bind: eventType.deprecated),
                \(bind: eventType.groupName), \(bind: eventType.featureFlags.map(JSONColumn.encode)), \(bind: now.microseconds),
                \(bind: now.microseconds))
                """
            ).run()
            return (eventType, created: true)
        }
    }

    /// Removes the event type for good (Svix `expunge`).
    public func expungeEventType(organizationID: String, applicationID: String, name: String) async throws {
        try await self.database.write { sql in
            _ = try await Self.application(organizationID, applicationID, sql)
            _ = try await Self.eventType(applicationID, name, sql)
            try await sql.raw("DELETE FROM event_types WHERE application_id = \(bind: applicationID) AND name = \(bind: name)").run()
        }
    }

    /// Event types by name, ascending (the Svix list).
    public func svixEventTypes(
        organizationID: String, applicationID: String, includeArchived: Bool, _ page: SvixPageRequest
    ) async throws -> SvixPage<EventType> {
        try await self.database.read { sql in
            _ = try await Self.application(organizationID, applicationID, sql)
            var query = sql.select().column("*").from("event_types").where("application_id", .equal, applicationID)
            if !includeArchived { query = query.where("archived", .equal, false) }
            return try await page.run(query, key: "name", map: Self.eventType)
        }
    }

    /// The names among `names` that are not registered (or are archived) in the application.
    static func unknownEventTypes(_ applicationID: String, _ names: [String], _ sql: any SQLDatabase) async throws -> [String] {
        guard !names.isEmpty else { return [] }
        let rows = try await sql.select().column("name").from("event_types")
            .where("application_id", .equal, applicationID)
            .where("archived", .equal, false)
            .where("name", .in, names)
            .all()
        let known = Set(try rows.map { try $0.string("name") })
        return names.filter { !known.contains($0) }
    }

    static func eventType(_ row: any SQLRow) throws -> EventType {
        EventType(
            applicationID: try row.string("application_id"), name: try row.string("name"),
            description: try row.optionalString("description"),
            schema: try JSONColumn.decode(JSONValue.self, try row.optionalString("schema")),
            example: try JSONColumn.decode(JSONValue.self, try row.optionalString("example")),
            archived: try row.bool("archived"), createdAt: try row.timestamp("created_at"), updatedAt: try row.timestamp("updated_at"),
            schemas: try JSONColumn.decode([String: JSONValue].self, try row.optionalString("schemas")), deprecated: try row.bool("deprecated"),
            groupName: try row.optionalString("group_name"),
            featureFlags: try JSONColumn.decode([String].self, try row.optionalString("feature_flags"))
        )
    }
}
