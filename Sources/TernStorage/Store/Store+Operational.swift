import SQLKit
import TernCore

/// A new operational endpoint, already validated.
public struct OperationalEndpointInput: Sendable {
    public var url: String
    public var description: String?
    public var events: [String]
    public var headers: [String: String]
    public var metadata: [String: JSONValue]
    public var status: EndpointStatus
    public var secret: String
    public var uid: String?
    public var throttleRate: Int?
    public var watchedApplicationID: String?
    public var format: OperationalPayloadFormat

    public init(
        url: String, description: String?, events: [String], headers: [String: String], metadata: [String: JSONValue], status: EndpointStatus,
        secret: String, uid: String?, throttleRate: Int?, watchedApplicationID: String?, format: OperationalPayloadFormat
    ) {
        self.url = url
        self.description = description
        self.events = events
        self.headers = headers
        self.metadata = metadata
        self.status = status
        self.secret = secret
        self.uid = uid
        self.throttleRate = throttleRate
        self.watchedApplicationID = watchedApplicationID
        self.format = format
    }
}

/// Operational webhooks. An organization's operational endpoints are endpoints of its hidden application (kind
/// `operational`, made on first need), so the delivery engine signs, retries, dead-letters and records their deliveries
/// as any other; their own failures raise no operational events (nothing loops) and touch no customer endpoint.
extension Store {
    /// The tenant id of operational endpoints and messages.
    static let operationalTenant = "operational"
    /// At most this many operational endpoints per organization.
    public static let maxOperationalEndpoints = 50

    /// The event about `endpoint` of `type`, before any detail.
    static func operationalEvent(_ type: OperationalEventType, _ endpoint: Endpoint, _ organizationID: String) -> OperationalEvent {
        OperationalEvent(
            type: type, organizationID: organizationID, applicationID: endpoint.applicationID, tenantID: endpoint.tenantID,
            endpointID: endpoint.id, endpointUID: endpoint.uid)
    }

    /// Queues `events` for the operational endpoints that hear them, in the caller's transaction: an event is sent
    /// when the change that caused it commits, and never for one that rolled back. True when it queued a delivery
    /// (the caller's `writeQueuing` then wakes the workers).
    static func emitOperational(_ events: [OperationalEvent], _ sql: any SQLDatabase) async throws -> Bool {
        guard let organizationID = events.first?.organizationID else { return false }
        let listeners = try await Self.operationalListeners(organizationID, sql)
        guard !listeners.isEmpty else { return false }
        let messageIDs = events.compactMap { $0.eventID == nil ? $0.messageID : nil }
        var eventIDs: [String: String] = [:]
        if !messageIDs.isEmpty {
            for row in try await sql.raw("SELECT id, event_id FROM messages WHERE id IN (\(binds: messageIDs))").all() {
                if let eventID = try row.optionalString("event_id") { eventIDs[try row.string("id")] = eventID }
            }
        }
        let now = Timestamp.now()
        var messages: [(Message, String)] = []
        var deliveries: [(Message, String, String)] = []
        // A batch of recorded attempts may carry many events of one tenant: its Svix ids are read once.
        var svixApps: [String: (id: String, uid: String?)] = [:]
        for var event in events {
            let hearing = listeners.filter { $0.hears(event) }
            guard let applicationID = hearing.first?.endpoint.applicationID else { continue }
            if let messageID = event.messageID, event.eventID == nil { event.eventID = eventIDs[messageID] }
            for format in OperationalPayloadFormat.allCases {
                let targets = hearing.filter { $0.format == format }
                guard !targets.isEmpty else { continue }
                let payload: JSONValue
                switch format {
                case .native:
                    payload = event.nativePayload()
                case .svix:
                    let key = "\(event.applicationID)|\(event.tenantID)"
                    if svixApps[key] == nil {
                        let tenant = try await Self.svixTenant(event.organizationID, event.applicationID, event.tenantID, sql)
                        svixApps[key] = (tenant?.svixID ?? event.tenantID, tenant.map(Self.uid(of:)) ?? event.tenantID)
                    }
                    payload = event.svixPayload(appID: svixApps[key]!.id, appUID: svixApps[key]!.uid)
                }
                let message = Message(
                    id: Identifier.make("msg"), applicationID: applicationID, tenantID: Self.operationalTenant, eventType: event.type.rawValue,
                    eventID: nil, payload: JSONColumn.encode(payload), createdAt: now)
                messages.append((message, organizationID))
                deliveries += targets.map { (message, $0.endpoint.id, organizationID) }
            }
        }
        guard !messages.isEmpty else { return false }
        try await Self.insertMessages(messages, sql)
        try await Self.insertDeliveries(deliveries, trigger: .scheduled, now: now, sql)
        return true
    }

    /// The organization's operational endpoints that take deliveries (a paused one queues them).
    static func operationalListeners(_ organizationID: String, _ sql: any SQLDatabase) async throws -> [OperationalEndpoint] {
        try await sql.raw(
            """
            SELECT e.* FROM applications a JOIN endpoints e ON e.application_id = a.id
            WHERE a.organization_id = \(bind: organizationID) AND a.kind = 'operational' AND e.status <> 'disabled'
            """
        ).all().map(Self.operationalEndpoint)
    }

    /// The organization's hidden application for operational endpoints; with `create`, made if it has none.
    static func operationalApplication(_ organizationID: String, create: Bool, _ sql: any SQLDatabase) async throws -> Application? {
        let select: SQLQueryString = "SELECT * FROM applications WHERE organization_id = \(bind: organizationID) AND kind = 'operational'"
        if let row = try await sql.raw(select).first() { return try Self.application(row) }
        guard create else { return nil }
        let now = Timestamp.now().microseconds
        try await sql.raw(
            """
            INSERT INTO applications (id, organization_id, name, retry_schedule, failure_threshold, portal, allow_unregistered_event_types,
            webhook_headers, kind, created_at, updated_at) VALUES (\(bind: Identifier.make("app")), \(bind: organizationID),
            'Operational webhooks', \(bind: JSONColumn.encode(RetrySchedule.standard)), \(bind: CircuitBreakerPolicy.defaultFailureThreshold),
            \(bind: JSONColumn.encode(PortalSettings())), TRUE, \(bind: WebhookHeaderStyle.both.rawValue), 'operational', \(bind: now),
            \(bind: now)) ON CONFLICT (organization_id) WHERE kind = 'operational' DO NOTHING
            """
        ).run()
        return try await sql.raw(select).first().map(Self.application)
    }

    public func createOperationalEndpoint(organizationID: String, _ input: OperationalEndpointInput) async throws -> OperationalEndpoint {
        let sealedSecret = try self.secretBox.seal(input.secret)
        return try await self.database.write { sql in
            if let watched = input.watchedApplicationID { try await Self.requireWatchable(organizationID, watched, sql) }
            guard let application = try await Self.operationalApplication(organizationID, create: true, sql) else {
                throw TernError.unavailable("the operational application could not be made")
            }
            let used = try await Self.count(sql, "SELECT COUNT(*) AS n FROM endpoints WHERE application_id = \(bind: application.id)")
            if used >= Self.maxOperationalEndpoints {
                throw TernError.conflict("An organization has at most \(Self.maxOperationalEndpoints) operational endpoints.")
            }
            var endpoint = Self.newEndpoint(
                applicationID: application.id,
                EndpointInput(
                    tenantID: Self.operationalTenant, url: input.url, name: nil, description: input.description, events: input.events,
                    headers: input.headers, timeoutSeconds: Endpoint.defaultTimeoutSeconds, metadata: input.metadata, status: input.status,
                    secret: input.secret, uid: input.uid, throttleRate: input.throttleRate))
            endpoint.uid = Self.storedUID(input.uid, watching: input.watchedApplicationID)
            try await Self.requireFreeUID(endpoint, sql)
            let operational = OperationalEndpoint(endpoint: endpoint, watchedApplicationID: input.watchedApplicationID, format: input.format)
            try await Self.insertEndpoint(endpoint, organizationID: organizationID, sealedSecret: sealedSecret, operational: operational, sql)
            endpoint.uid = input.uid
            return OperationalEndpoint(endpoint: endpoint, watchedApplicationID: input.watchedApplicationID, format: input.format)
        }
    }

    /// The application an operational endpoint watches must be one of the organization's.
    static func requireWatchable(_ organizationID: String, _ applicationID: String, _ sql: any SQLDatabase) async throws {
        do {
            _ = try await Self.application(organizationID, applicationID, sql)
        } catch TernError.notFound {
            throw TernError.invalid("application_id", "no application '\(applicationID)' in this organization")
        }
    }

    /// The organization's operational endpoints, newest first; `only` narrows them to those watching one application
    /// (a key restricted to that application sees no others).
    public func listOperationalEndpoints(organizationID: String, only: String?, _ page: PageRequest) async throws -> Page<OperationalEndpoint> {
        try await self.database.read { sql in
            guard let query = try await Self.operationalQuery(organizationID, only: only, sql) else {
                return Page(data: [], nextCursor: nil, hasMore: false)
            }
            let rows = try await Self.newestFirst(query, page)
            return try page.page(rows, key: { (try? $0.string("id")) ?? "" }, map: Self.operationalEndpoint)
        }
    }

    /// The same list in Svix's paging.
    public func svixOperationalEndpoints(organizationID: String, only: String?, _ page: SvixPageRequest) async throws -> SvixPage<OperationalEndpoint>
    {
        try await self.database.read { sql in
            guard let query = try await Self.operationalQuery(organizationID, only: only, sql) else {
                return SvixPage(data: [], iterator: nil, prevIterator: nil, done: true)
            }
            return try await page.run(query, key: "id", map: Self.operationalEndpoint)
        }
    }

    static func operationalQuery(_ organizationID: String, only: String?, _ sql: any SQLDatabase) async throws -> SQLSelectBuilder? {
        guard let application = try await Self.operationalApplication(organizationID, create: false, sql) else { return nil }
        var query = sql.select().column("*").from("endpoints").where("application_id", .equal, application.id)
        if let only { query = query.where("watched_application_id", .equal, only) }
        return query
    }

    public func operationalEndpoint(organizationID: String, only: String?, id: String) async throws -> OperationalEndpoint {
        try await self.database.read { sql in try await Self.operationalEndpoint(organizationID, only: only, id, sql) }
    }

    /// The operational endpoint whose id or uid is `id` (a uid is the caller's within the application watched, so
    /// without `only` the one watching all applications comes first, then the oldest).
    static func operationalEndpoint(_ organizationID: String, only: String?, _ id: String, _ sql: any SQLDatabase) async throws -> OperationalEndpoint
    {
        guard let application = try await Self.operationalApplication(organizationID, create: false, sql) else {
            throw TernError.notFound("No operational endpoint '\(id)'.")
        }
        let candidates = try await sql.raw(
            """
            SELECT * FROM endpoints WHERE application_id = \(bind: application.id) AND (id = \(bind: id) OR uid LIKE \(bind: "%/" + id))
            ORDER BY watched_application_id IS NOT NULL, id
            """
        ).all().map(Self.operationalEndpoint)
        guard
            let found = candidates.first(where: { operational in
                (operational.endpoint.id == id || operational.endpoint.uid == id) && (only == nil || operational.watchedApplicationID == only)
            })
        else { throw TernError.notFound("No operational endpoint '\(id)'.") }
        return found
    }

    /// Operational endpoints' uids are unique within the application they watch: stored as `<scope>/<uid>` (`/` is in
    /// no uid), so that the one unique index of uids serves them too.
    static func storedUID(_ uid: String?, watching applicationID: String?) -> String? {
        uid.map { "\(applicationID ?? "*")/\($0)" }
    }

    /// Applies `update`; status and settings change as for any endpoint (`changeEndpoint`).
    public func updateOperationalEndpoint(
        organizationID: String, only: String?, id: String, _ update: @escaping @Sendable (inout OperationalEndpoint) throws -> Void
    ) async throws -> OperationalEndpoint {
        try await self.database.writeQueuing { sql -> (OperationalEndpoint, queued: Bool) in
            let before = try await Self.operationalEndpoint(organizationID, only: only, id, sql)
            var changed = before
            try update(&changed)
            if let watched = changed.watchedApplicationID, watched != before.watchedApplicationID {
                try await Self.requireWatchable(organizationID, watched, sql)
            }
            var stored = before.endpoint
            stored.uid = Self.storedUID(before.endpoint.uid, watching: before.watchedApplicationID)
            var wanted = changed.endpoint
            wanted.uid = Self.storedUID(changed.endpoint.uid, watching: changed.watchedApplicationID)
            var (endpoint, queued) = try await self.changeEndpoint(
                stored, organizationID: organizationID, application: nil, { [wanted] in $0 = wanted }, sql)
            endpoint.uid = changed.endpoint.uid
            try await sql.raw(
                """
                UPDATE endpoints SET watched_application_id = \(bind: changed.watchedApplicationID), payload_format = \(bind: changed.format.rawValue)
                WHERE id = \(bind: endpoint.id)
                """
            ).run()
            return (OperationalEndpoint(endpoint: endpoint, watchedApplicationID: changed.watchedApplicationID, format: changed.format), queued)
        }
    }

    public func deleteOperationalEndpoint(organizationID: String, only: String?, id: String) async throws {
        try await self.database.write { sql in
            let operational = try await Self.operationalEndpoint(organizationID, only: only, id, sql)
            try await sql.raw("DELETE FROM endpoints WHERE id = \(bind: operational.endpoint.id)").run()
        }
    }

    /// The operational endpoint's current signing secret.
    public func operationalSecret(organizationID: String, only: String?, id: String) async throws -> String {
        try await self.database.read { sql in
            let operational = try await Self.operationalEndpoint(organizationID, only: only, id, sql)
            return try await self.openSecret(endpointID: operational.endpoint.id, sql)
        }
    }

    /// Replaces the secret; the old one keeps signing beside it until the returned time (24 hours).
    public func rotateOperationalSecret(organizationID: String, only: String?, id: String, newSecret: String) async throws -> Timestamp {
        let sealed = try self.secretBox.seal(newSecret)
        return try await self.database.write { sql in
            let operational = try await Self.operationalEndpoint(organizationID, only: only, id, sql)
            return try await Self.replaceSecret(endpointID: operational.endpoint.id, sealed: sealed, sql)
        }
    }

    /// The operational endpoint's deliveries (one per event it heard), newest first.
    public func operationalDeliveries(
        organizationID: String, only: String?, id: String, status: DeliveryStatus?, _ page: PageRequest
    ) async throws -> Page<Delivery> {
        try await self.database.read { sql in
            let operational = try await Self.operationalEndpoint(organizationID, only: only, id, sql)
            var query = sql.select().column("*").from("deliveries").where("endpoint_id", .equal, operational.endpoint.id)
            if let status { query = query.where("status", .equal, status.rawValue) }
            let rows = try await Self.newestFirst(query, page)
            return try page.page(rows, key: { (try? $0.string("id")) ?? "" }, map: Self.delivery)
        }
    }

    /// The operational endpoint's attempts, newest first.
    public func operationalAttempts(organizationID: String, only: String?, id: String, _ page: PageRequest) async throws -> Page<Attempt> {
        try await self.database.read { sql in
            let operational = try await Self.operationalEndpoint(organizationID, only: only, id, sql)
            let query = sql.select().column("*").from("attempts").where("endpoint_id", .equal, operational.endpoint.id)
            let rows = try await Self.newestFirst(query, page)
            return try page.page(rows, key: { (try? $0.string("id")) ?? "" }, map: Self.attempt)
        }
    }

    static func operationalEndpoint(_ row: any SQLRow) throws -> OperationalEndpoint {
        var endpoint = try Self.endpoint(row)
        endpoint.uid = endpoint.uid.flatMap { $0.split(separator: "/", maxSplits: 1).last.map(String.init) }
        return OperationalEndpoint(
            endpoint: endpoint, watchedApplicationID: try row.optionalString("watched_application_id"),
            format: OperationalPayloadFormat(rawValue: try row.optionalString("payload_format") ?? "") ?? .native)
    }
}
