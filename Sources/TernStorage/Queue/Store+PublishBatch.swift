import SQLKit
import TernCore

/// A batch that would pass a monthly quota or take tokens a concurrent batch took first: decided again with the
/// quota row and the rate buckets locked first.
struct DecideExactly: Error {}

/// A batch that `writeInOneStatement` cannot write without holding what it read: one with limits to take or FIFO
/// lines to release, which write more than one statement. Written again in a transaction.
struct NeedsTransaction: Error {}

/// One publish waiting for its batch.
struct PublishRequest: Sendable {
    var organizationID: String
    var applicationID: String
    var input: PublishInput
}

/// Publishing with group commit: the publishes that arrive while a transaction runs are stored together in the next
/// one. Each keeps its own outcome: an unknown event type, a rate or quota refusal or a repeated `event_id` affects
/// that publish alone, decided before anything is written, so a batch never half-stores a publish.
extension Store {
    static func publishBatch(_ database: Database, _ secretBox: SecretBox, _ requests: [PublishRequest]) async -> [Result<Published, any Error>] {
        // This process's worker, if it has room, takes the batch's deliveries once the write commits.
        let direct = database.directDelivery.batch(secretBox)
        do {
            do {
                // Without limits the batch usually writes with one statement, outside BEGIN and COMMIT on PostgreSQL.
                if !requests.contains(where: { $0.input.limits.bucket != nil || $0.input.limits.messagesPerMonth != nil }) {
                    do {
                        return try await DirectBatch.run(direct) {
                            try await database.writeInOneStatement { sql, held in
                                try await Self.publishAll(database, requests, exact: false, held: held, direct, sql)
                            }
                        }
                    } catch is NeedsTransaction {}
                }
                return try await DirectBatch.run(direct) {
                    try await database.writeQueuing(notifiesItself: true) { sql in
                        try await Self.publishAll(database, requests, exact: false, held: true, direct, sql)
                    }
                }
            } catch is DecideExactly {
                // The batch would pass a monthly quota or its rate bucket ran short meanwhile: decided again with the
                // rows locked first, publish by publish.
                return try await DirectBatch.run(direct) {
                    try await database.writeQueuing(notifiesItself: true) { sql in
                        try await Self.publishAll(database, requests, exact: true, held: true, direct, sql)
                    }
                }
            }
        } catch {
            guard requests.count > 1 else { return [.failure(error)] }
            // Something failed for the whole batch (a race on an event_id with another process, say): try each alone.
            var results: [Result<Published, any Error>] = []
            for request in requests { results += await Self.publishBatch(database, secretBox, [request]) }
            return results
        }
    }

    /// Decides every publish of the batch, then writes the accepted ones with multi-row inserts.
    ///
    /// Limits: with `exact`, the organization's count and the tenants' rate buckets are locked before anything else
    /// and each publish is decided against them. Without, the batch is decided against the buckets as last committed
    /// (read without a lock) and as if the quota had room; at the end its count and its tokens are taken only if the
    /// rows, locked from then to the commit (not the whole transaction), still allow them. Otherwise it throws
    /// `DecideExactly`, and the batch is decided again exactly. A bucket read without a lock holds at least the
    /// tokens the locked one does, so a publish refused on it would be refused anyway.
    ///
    /// `held`: whether what the batch reads stays as read until it commits (a transaction). Without (a batch without
    /// limits, as `publishBatch` sends it), the batch writes with one statement (`Database.writeInOneStatement`), which
    /// locks the endpoints it writes deliveries for and leaves out those disabled since they were read; a batch that
    /// needs more (FIFO lines to release) throws `NeedsTransaction` before it writes anything.
    ///
    /// `direct`: deliveries that need no claim (due now, to an active endpoint without a rate limit or ordering) are
    /// written leased to this process's worker, as many as it has room for, and handed to it after the commit.
    static func publishAll(
        _ database: Database, _ requests: [PublishRequest], exact: Bool, held: Bool, _ direct: DirectBatch?, _ sql: any SQLDatabase
    ) async throws -> ([Result<Published, any Error>], queued: Bool) {
        var results = [Result<Published, any Error>?](repeating: nil, count: requests.count)
        let now = Timestamp.now()

        // Applications (scoped by organization), once each, with the paths their filters route on, and with the event
        // type of the application's first publish in the batch (the common batch has one), read with it.
        var applications: [String: Result<Application, any Error>] = [:]
        var filterPaths: [String: [String]] = [:]
        // Event types read so far, by application and name: whether archived, nil when not registered.
        var eventTypes: [String: Bool?] = [:]
        // The endpoints without a route that take an event type, by application, tenant and type: for the first publish
        // of each application read with its row, one round trip fewer, unless they must be held (`shareRowsClause`).
        var unrouted: [String: [FanOutEndpoint]] = [:]
        let readTogether = !held || database.shareRowsClause.isEmpty
        for request in requests where applications["\(request.organizationID)/\(request.applicationID)"] == nil {
            let key = "\(request.organizationID)/\(request.applicationID)"
            let input = request.input
            do {
                let row: any SQLRow
                if readTogether {
                    let rows = try await Self.applicationWithEndpoints(request, direct: direct != nil, sql)
                    row = rows[0]
                    unrouted["\(request.applicationID)|\(input.tenantID)|\(input.eventType)"] = try rows.compactMap { row in
                        try row.optionalString("endpoint_id") == nil ? nil : try FanOutEndpoint(row, direct: direct != nil, id: "endpoint_id")
                    }
                } else {
                    row = try await Self.applicationRow(request.organizationID, request.applicationID, eventType: input.eventType, sql)
                }
                applications[key] = .success(try Self.application(row))
                filterPaths[request.applicationID] = try Self.filterPaths(row)
                let archived: Bool? = try row.optionalString("event_type_name") == nil ? nil : try row.bool("event_type_archived")
                eventTypes["\(request.applicationID)|\(request.input.eventType)"] = .some(archived)
            } catch let error as TernError {
                // This publish's own outcome (no such application); a database error fails the batch, whose caller
                // translates it.
                applications[key] = .failure(error)
            }
        }
        for (index, request) in requests.enumerated() {
            if case .failure(let error)? = applications["\(request.organizationID)/\(request.applicationID)"] { results[index] = .failure(error) }
        }

        // Repeated event ids: earlier messages, and repeats within this batch.
        var firstInBatch: [String: Int] = [:]
        var repeatOf: [Int: Int] = [:]
        for (index, request) in requests.enumerated() where results[index] == nil {
            guard let eventID = request.input.eventID else { continue }
            if let existing = try await Self.message(applicationID: request.applicationID, eventID: eventID, sql) {
                results[index] = .success(existing)
            } else if let first = firstInBatch["\(request.applicationID)|\(eventID)"] {
                repeatOf[index] = first
            } else {
                firstInBatch["\(request.applicationID)|\(eventID)"] = index
            }
        }

        // The rows that count against limits, locked in one order for every batch (the month's usage rows, then the
        // rate buckets, each sorted), so that concurrent batches on PostgreSQL cannot deadlock.
        let candidates = requests.indices.filter { results[$0] == nil && repeatOf[$0] == nil }
        var quotaLeft: [String: Int] = [:]
        var quotas: [String: Int] = [:]
        for index in candidates {
            if let quota = requests[index].input.limits.messagesPerMonth { quotas[requests[index].organizationID] = quota }
        }
        for (organizationID, quota) in quotas.sorted(by: { $0.key < $1.key }) where exact {
            quotaLeft[organizationID] = quota - (try await Self.lockUsage(organizationID, now, sql))
        }
        var buckets: [String: (tokens: Double, last: Timestamp, bucket: TokenBucket)] = [:]
        var bucketSpecs: [String: (applicationID: String, tenantID: String, bucket: TokenBucket)] = [:]
        for index in candidates {
            let request = requests[index]
            if let bucket = request.input.limits.bucket {
                bucketSpecs["\(request.applicationID)|\(request.input.tenantID)"] = (request.applicationID, request.input.tenantID, bucket)
            }
        }
        for (key, spec) in bucketSpecs.sorted(by: { $0.key < $1.key }) {
            let (tokens, last) = try await database.bucket(
                applicationID: spec.applicationID, tenantID: spec.tenantID, burst: spec.bucket.burst, now: now, locked: exact, sql)
            buckets[key] = (tokens, last, spec.bucket)
        }
        var tokensTaken: [String: Int] = [:]

        // Event types, rate buckets and quotas, in arrival order.
        var rates: [Int: RateLimitState] = [:]
        for (index, request) in requests.enumerated() where results[index] == nil && repeatOf[index] == nil {
            let input = request.input
            guard case .success(let application)? = applications["\(request.organizationID)/\(request.applicationID)"] else { continue }
            if !application.allowUnregisteredEventTypes && !input.allowUnregisteredType {
                let key = "\(request.applicationID)|\(input.eventType)"
                do {
                    if eventTypes[key] == nil {
                        eventTypes[key] = .some(try await Self.eventTypeArchived(request.applicationID, input.eventType, sql))
                    }
                    try Self.requirePublishable(input.eventType, archived: eventTypes[key]!)
                } catch let error as TernError {
                    results[index] = .failure(error)
                    continue
                }
            }
            var taken: (key: String, tokens: Double)?
            if let bucket = input.limits.bucket {
                let key = "\(request.applicationID)|\(input.tenantID)"
                let current = buckets[key]!
                let (tokens, state) = bucket.take(tokens: current.tokens, last: current.last, now: now)
                guard state.allowed else {
                    results[index] = .failure(TernError.rateLimited(state))
                    continue
                }
                rates[index] = state
                taken = (key, tokens)
            }
            if let quota = input.limits.messagesPerMonth, quotaLeft[request.organizationID] != nil {
                guard quotaLeft[request.organizationID]! > 0 else {
                    results[index] = .failure(TernError.planLimitExceeded("The plan allows \(quota) messages a month and this month's are used up."))
                    rates[index] = nil
                    continue
                }
                quotaLeft[request.organizationID]! -= 1
            }
            if let taken {
                buckets[taken.key]!.tokens = taken.tokens
                buckets[taken.key]!.last = now
                tokensTaken[taken.key, default: 0] += 1
            }
        }

        // Fan-out and the rows to write.
        var routed: [String: [FanOutEndpoint]] = [:]
        var lines: [Int: (line: String, place: Int)] = [:]
        var messages: [(Message, String)] = []
        var expiries: [Timestamp?] = []
        var deliveryRows: [(Message, String, String)] = []
        // Rows the worker may be handed (by index in `deliveryRows`), with their application.
        var handable: [(row: Int, application: Application)] = []
        var perOrganization: [String: Int] = [:]
        for (index, request) in requests.enumerated() where results[index] == nil && repeatOf[index] == nil {
            let input = request.input
            let key = "\(request.applicationID)|\(input.tenantID)|\(input.eventType)"
            if unrouted[key] == nil {
                unrouted[key] = try await Self.unroutedEndpoints(
                    database, applicationID: request.applicationID, tenantID: input.tenantID, eventType: input.eventType, lock: held,
                    direct: direct != nil, sql)
            }
            // A filter reads the message's document, made (its payload parsed) only when an endpoint needs it.
            var document: JSONValue?
            var candidates = unrouted[key]!
            if let paths = filterPaths[request.applicationID], !paths.isEmpty {
                document = input.filterDocument()
                let keys = paths.compactMap { RoutingFilter.routeKey($0, in: document!) }
                let routedKey = key + "|" + keys.joined(separator: "|")
                if routed[routedKey] == nil {
                    routed[routedKey] = try await Self.routedEndpoints(
                        database, applicationID: request.applicationID, tenantID: input.tenantID, eventType: input.eventType, keys: keys,
                        lock: held, direct: direct != nil, sql)
                }
                candidates += routed[routedKey]!
            }
            var message = Message(
                id: Identifier.make("msg"), applicationID: request.applicationID, tenantID: input.tenantID, eventType: input.eventType,
                eventID: input.eventID, payload: input.payload, createdAt: now, channels: input.channels, tags: input.tags,
                deliverAt: input.deliverAt, sourceID: input.sourceID, headers: input.headers
            )
            message.traceContext = input.traceContext
            messages.append((message, request.organizationID))
            expiries.append(input.payloadExpiry(from: now))
            // An endpoint with channels takes only messages that share one; one without takes every message.
            var targets: [String] = []
            let dueNow = (input.deliverAt ?? now) <= now
            for endpoint in candidates {
                if let channels = endpoint.channels, !(input.channels?.contains(where: channels.contains) ?? false) { continue }
                if let filter = endpoint.filter {
                    if document == nil { document = input.filterDocument() }
                    guard filter.evaluate(document!).matches else { continue }
                }
                if endpoint.fifo {
                    var line = ""
                    if endpoint.orderingKey != nil {
                        if document == nil { document = input.filterDocument() }
                        if case .object(let members)? = document, let payload = members["payload"] {
                            line = EndpointOrdering.line(key: endpoint.orderingKey, payload: payload)
                        }
                    }
                    lines[deliveryRows.count + targets.count] = (line, index)
                }
                if dueNow, endpoint.direct, case .success(let application)? = applications["\(request.organizationID)/\(request.applicationID)"] {
                    handable.append((deliveryRows.count + targets.count, application))
                }
                targets.append(endpoint.id)
            }
            for endpointID in targets { deliveryRows.append((message, endpointID, request.organizationID)) }
            perOrganization[request.organizationID, default: 0] += 1
            results[index] = .success(Published(message: message, deliveries: targets.count, created: true, rate: rates[index]))
        }
        for (index, first) in repeatOf {
            results[index] = results[first].map { outcome in
                outcome.map { Published(message: $0.message, deliveries: $0.deliveries, created: false, rate: nil) }
            }
        }

        let leased = Self.lease(handable, of: deliveryRows, to: direct, now: now)

        // The rows, and the month's counts that need no decision (no quota, or one held since the start), in one
        // statement on PostgreSQL (`runTogether`), which also tells other processes' workers when it queued deliveries.
        var writes = Self.messageInserts(messages, payloadExpiries: expiries)
        if let insert = Self.deliveryInsert(
            deliveryRows, lines: lines, leased: leased, trigger: .scheduled, now: now, lockingEndpoints: database.shareJoinedEndpointsClause, sql)
        {
            writes.append(insert)
        }
        let organizations = perOrganization.sorted(by: { $0.key < $1.key })
        for (organizationID, count) in organizations where quotas[organizationID] == nil || exact {
            writes.append((Self.usageAddition(organizationID, count, quota: quotas[organizationID], now), binds: 4))
        }
        if !held && (!lines.isEmpty || writes.reduce(0, { $0 + $1.binds }) > Database.bindsTogether) {
            throw NeedsTransaction()
        }
        // Rows handed to this process's worker need no claim: other workers are told only of the others. What sending
        // them takes from their endpoints is read by the same statement, as it writes them (`receivers`).
        let queued = deliveryRows.count > (leased?.ids.count ?? 0)
        let receivers = try await database.runTogether(
            writes, returning: leased.map { Self.receivers($0, of: deliveryRows, lockingEndpoints: database.shareJoinedEndpointsClause) },
            notifyingWorkers: queued, sql)
        if let leased, let direct { direct.hand(try Self.jobs(leased, of: deliveryRows, receivers: receivers, direct, now: now)) }
        // The endpoints are held shared since fan-out, so a worker ending a head releases after this commits.
        let touched = Set(lines.map { OrderingLine(endpointID: deliveryRows[$0.key].1, line: $0.value.line) })
        try await database.releaseLines(touched, now: now.microseconds, lock: false, sql)
        // The month's counts against a quota, then the buckets: the order in which an exact batch locks them.
        for (organizationID, count) in organizations where quotas[organizationID] != nil && !exact {
            try await Self.countUsage(organizationID, count, quota: quotas[organizationID]!, now, sql)
        }
        for (key, state) in buckets.sorted(by: { $0.key < $1.key }) {
            let spec = bucketSpecs[key]!
            if exact {
                try await sql.raw(
                    """
                    UPDATE rate_buckets SET tokens = \(bind: state.tokens), updated_at = \(bind: state.last.microseconds)
                    WHERE application_id = \(bind: spec.applicationID) AND tenant_id = \(bind: spec.tenantID)
                    """
                ).run()
            } else if let count = tokensTaken[key] {
                try await Self.takeTokens(count, spec.bucket, applicationID: spec.applicationID, tenantID: spec.tenantID, now: now, sql)
            }
        }
        return (results.map { $0 ?? .failure(TernError.unavailable("the publish was not decided")) }, queued: queued)
    }

    /// Reserves room with this process's worker for the `handable` rows and returns the ids and lease under which the
    /// rows it took are written (nil when it took none).
    static func lease(
        _ handable: [(row: Int, application: Application)], of rows: [(Message, String, String)], to direct: DirectBatch?, now: Timestamp
    ) -> DeliveryLeases? {
        guard let direct else { return nil }
        let granted = direct.reserve(upTo: handable.count)
        guard granted > 0 else { return nil }
        var leases = DeliveryLeases(token: direct.token, until: now.adding(seconds: Int64(direct.taker.leaseSeconds)))
        for candidate in handable.prefix(granted) {
            leases.ids[candidate.row] = Identifier.make("dlv")
            leases.applications[candidate.row] = candidate.application
        }
        return leases
    }

    /// What sending the leased rows takes from their endpoints (`OpenedEndpoint.columns`), read by the statement that
    /// writes them: of the endpoints not disabled, as the insert joins them (on PostgreSQL locked as it locks them, so
    /// that both see an endpoint disabled meanwhile alike).
    static func receivers(_ leased: DeliveryLeases, of rows: [(Message, String, String)], lockingEndpoints: String) -> SQLQueryString {
        let endpointIDs = Array(Set(leased.ids.keys.map { rows[$0].1 }))
        return """
            SELECT e.id, \(unsafeRaw: OpenedEndpoint.columns) FROM endpoints e WHERE e.id IN (\(binds: endpointIDs))
            AND e.status <> 'disabled'\(unsafeRaw: lockingEndpoints)
            """
    }

    /// The jobs of the leased rows whose endpoint `receivers` returned (the others were not written). A row whose
    /// endpoint cannot be opened (a secret sealed with another key, say) is left to a claim when its lease ends, which
    /// reports it.
    static func jobs(
        _ leased: DeliveryLeases, of rows: [(Message, String, String)], receivers: [any SQLRow], _ direct: DirectBatch, now: Timestamp
    ) throws -> [DeliveryJob] {
        var opened: [String: OpenedEndpoint] = [:]
        for row in receivers { opened[try row.string("id")] = try? OpenedEndpoint(row, direct.secretBox, now: now) }
        var settings: [String: DeliverySettings] = [:]
        return leased.ids.sorted { $0.key < $1.key }.compactMap { index, id in
            let (message, endpointID, organizationID) = rows[index]
            guard let endpoint = opened[endpointID], let application = leased.applications[index] else { return nil }
            if settings[application.id] == nil { settings[application.id] = DeliverySettings(application) }
            var job = DeliveryJob(
                deliveryID: id, messageID: message.id, endpointID: endpointID, organizationID: organizationID,
                applicationID: message.applicationID, tenantID: message.tenantID, eventType: message.eventType, payload: message.payload,
                attemptCount: 0, trigger: .scheduled, leaseToken: leased.token, leaseExpiries: 0, endpoint: endpoint,
                settings: settings[application.id]!)
            job.traceContext = message.traceContext
            return job
        }
    }

    /// The month's message count, with its quota row (shard 0) locked (PostgreSQL) until the transaction ends.
    static func lockUsage(_ organizationID: String, _ now: Timestamp, _ sql: any SQLDatabase) async throws -> Int {
        let period = Self.usagePeriod(now)
        try await sql.raw(
            """
            INSERT INTO usage_counters (organization_id, period, shard, messages) VALUES (\(bind: organizationID), \(bind: period), 0, 0)
            ON CONFLICT (organization_id, period, shard) DO UPDATE SET messages = usage_counters.messages
            """
        ).run()
        return try await Self.usageCount(organizationID, period, sql)
    }

    /// The month's message count: the sum of its shards.
    static func usageCount(_ organizationID: String, _ period: String, _ sql: any SQLDatabase) async throws -> Int {
        try await sql.raw(
            """
            SELECT CAST(COALESCE(SUM(messages), 0) AS BIGINT) AS n FROM usage_counters WHERE organization_id = \(bind: organizationID) AND period = \(bind: period)
            """
        ).first()?.int("n") ?? 0
    }

    /// Adds `count` messages to the month of an organization with a quota, whose count row (shard 0) the batch does
    /// not hold: only if the month stays within the quota (else `DecideExactly`, and nothing is added). Every other
    /// count is added by `usageAddition` with the batch's rows.
    static func countUsage(_ organizationID: String, _ count: Int, quota: Int, _ now: Timestamp, _ sql: any SQLDatabase) async throws {
        let period = Self.usagePeriod(now)
        guard count <= quota else { throw DecideExactly() }
        // The other shards hold counts from before the organization had a quota (a plan change within the month).
        let added = try await sql.raw(
            """
            INSERT INTO usage_counters (organization_id, period, shard, messages) VALUES (\(bind: organizationID), \(bind: period), 0,
            \(bind: count)) ON CONFLICT (organization_id, period, shard) DO UPDATE SET messages = usage_counters.messages + \(bind: count)
            WHERE usage_counters.messages + \(bind: count) + (SELECT COALESCE(SUM(o.messages), 0) FROM usage_counters o
            WHERE o.organization_id = \(bind: organizationID) AND o.period = \(bind: period) AND o.shard <> 0) <= \(bind: quota)
            RETURNING messages
            """
        ).first()
        guard added != nil else { throw DecideExactly() }
    }

    /// Adds `count` messages to the month without a quota, or with one whose row the batch already holds: to one of 16
    /// shards at random without a quota (so that concurrent transactions seldom meet on a row), to shard 0 with one.
    static func usageAddition(_ organizationID: String, _ count: Int, quota: Int?, _ now: Timestamp) -> SQLQueryString {
        """
        INSERT INTO usage_counters (organization_id, period, shard, messages) VALUES (\(bind: organizationID), \(bind: Self.usagePeriod(now)),
        \(bind: quota == nil ? Int.random(in: 1...16) : 0), \(bind: count)) ON CONFLICT (organization_id, period, shard)
        DO UPDATE SET messages = usage_counters.messages + \(bind: count)
        """
    }

    /// Takes `count` tokens from the tenant's bucket as it is now (refilled as `TokenBucket.take` refills it, locked
    /// until the commit), or throws `DecideExactly` when it no longer holds them. One statement: the row is created
    /// full when missing.
    static func takeTokens(
        _ count: Int, _ bucket: TokenBucket, applicationID: String, tenantID: String, now: Timestamp, _ sql: any SQLDatabase
    ) async throws {
        let perMicrosecond = Double(bucket.perMinute) / 60_000_000
        let burst = Double(bucket.burst)
        // The bucket refilled up to now (never past `burst`, never back in time), written without LEAST/GREATEST,
        // which SQLite names MIN/MAX.
        let available: SQLQueryString = """
            (CASE WHEN rate_buckets.updated_at >= \(bind: now.microseconds) THEN rate_buckets.tokens
            WHEN rate_buckets.tokens + (\(bind: now.microseconds) - rate_buckets.updated_at) * \(bind: perMicrosecond) > \(bind: burst)
            THEN \(bind: burst) ELSE rate_buckets.tokens + (\(bind: now.microseconds) - rate_buckets.updated_at) * \(bind: perMicrosecond) END)
            """
        guard count <= bucket.burst else { throw DecideExactly() }
        let taken = try await sql.raw(
            """
            INSERT INTO rate_buckets (application_id, tenant_id, tokens, updated_at) VALUES (\(bind: applicationID), \(bind: tenantID),
            \(bind: burst - Double(count)), \(bind: now.microseconds)) ON CONFLICT (application_id, tenant_id) DO UPDATE
            SET tokens = \(available) - \(bind: Double(count)),
            updated_at = CASE WHEN rate_buckets.updated_at > \(bind: now.microseconds) THEN rate_buckets.updated_at ELSE \(bind: now.microseconds) END
            WHERE \(available) >= \(bind: Double(count)) RETURNING tokens
            """
        ).first()
        guard taken != nil else { throw DecideExactly() }
    }

    /// Writes the messages; `payloadExpiries` (by index, when given) says when each payload is erased.
    static func insertMessages(_ messages: [(Message, String)], payloadExpiries: [Timestamp?] = [], _ sql: any SQLDatabase) async throws {
        for (insert, _) in Self.messageInserts(messages, payloadExpiries: payloadExpiries) { try await sql.execute(sql: insert) { _ in } }
    }

    /// The inserts that write the messages (500 rows each), with the values each binds.
    static func messageInserts(_ messages: [(Message, String)], payloadExpiries: [Timestamp?] = []) -> [(any SQLExpression, binds: Int)] {
        stride(from: 0, to: messages.count, by: 500).map { start in
            let rows = start..<min(start + 500, messages.count)
            var values: [any Encodable & Sendable] = []
            values.reserveCapacity(rows.count * Self.messagesInsert.columns.count)
            for index in rows {
                let (message, organizationID) = messages[index]
                let expiry = index < payloadExpiries.count ? payloadExpiries[index] : nil
                values +=
                    [
                        message.id, organizationID, message.applicationID, message.tenantID, message.eventType, message.eventID, message.payload,
                        message.channels.map(JSONColumn.encode), message.tags.map(JSONColumn.encode), message.deliverAt?.microseconds,
                        message.sourceID, message.headers.map(JSONColumn.encode), expiry?.microseconds, message.traceContext,
                        message.createdAt.microseconds,
                    ] as [any Encodable & Sendable]
            }
            return (RowsInsert(Self.messagesInsert, values: values), values.count)
        }
    }

    static let messagesInsert = RowsInsert.Shape(
        table: "messages",
        columns: [
            "id", "organization_id", "application_id", "tenant_id", "event_type", "event_id", "payload", "channels", "tags", "deliver_at",
            "source_id", "headers", "payload_expires_at", "trace_context", "created_at",
        ])

    /// Writes one pending delivery per row (message, endpoint, organization). `lines` gives the rows of FIFO endpoints
    /// (by index) their line and the message's place in its batch: their order within the line. Those wait in line;
    /// the caller releases the lines' heads.
    static func insertDeliveries(
        _ rows: [(Message, String, String)], lines: [Int: (line: String, place: Int)] = [:], trigger: AttemptTrigger, now: Timestamp,
        _ sql: any SQLDatabase
    ) async throws {
        guard let insert = Self.deliveryInsert(rows, lines: lines, trigger: trigger, now: now, sql) else { return }
        try await sql.execute(sql: insert.0) { _ in }
    }

    /// The insert of `insertDeliveries` (none without rows), with the values it binds: its rows sent as one JSON value
    /// (`Database.jsonRows`), so a fan-out to 1,000 endpoints binds five values, not 15,000. `lockingEndpoints` (a
    /// publish's, `Database.shareJoinedEndpointsClause`): only rows whose endpoint is not disabled when the statement
    /// runs are written, and those endpoints are held until it commits.
    /// `leased`: rows written `delivering` under a lease (handed to this process's worker), by index, with their ids.
    static func deliveryInsert(
        _ rows: [(Message, String, String)], lines: [Int: (line: String, place: Int)] = [:], leased: DeliveryLeases? = nil,
        trigger: AttemptTrigger, now: Timestamp, lockingEndpoints: String? = nil, _ sql: any SQLDatabase
    ) -> (any SQLExpression, binds: Int)? {
        guard !rows.isEmpty else { return nil }
        var values = JSONRows(reservingRows: rows.count, bytesEach: 200)
        for (index, (message, endpointID, organizationID)) in rows.enumerated() {
            let line = lines[index]
            let leaseID = leased?.ids[index]
            let due = leaseID != nil ? leased!.until.microseconds : line == nil ? max(now, message.deliverAt ?? now).microseconds : Self.waitingInLine
            values.append(
                .text(leaseID ?? Identifier.make("dlv")), .text(organizationID), .text(message.applicationID), .text(message.id),
                .text(endpointID), .text(message.tenantID), .text(message.eventType), .integer(due), .text(line?.line),
                .integer(line.map { now.microseconds * 1024 + Int64($0.place) }),
                .text(leaseID == nil ? DeliveryStatus.pending.rawValue : DeliveryStatus.delivering.rawValue),
                .text(leaseID.map { _ in leased!.token })
            )
        }
        let source = Database.jsonRows(
            values,
            columns: [
                ("id", "TEXT"), ("organization_id", "TEXT"), ("application_id", "TEXT"), ("message_id", "TEXT"), ("endpoint_id", "TEXT"),
                ("tenant_id", "TEXT"), ("event_type", "TEXT"), ("next_attempt_at", "BIGINT"), ("ordering_line", "TEXT"),
                ("ordering_seq", "BIGINT"), ("status", "TEXT"), ("lease_token", "TEXT"),
            ], as: "x", sql)
        // Joined again to the endpoints, which must still take deliveries when the statement runs.
        let stillEnabled = lockingEndpoints.map { " JOIN endpoints e ON e.id = x.endpoint_id AND e.status <> 'disabled'" + $0 } ?? ""
        let insert: SQLQueryString = """
            INSERT INTO deliveries (id, organization_id, application_id, message_id, endpoint_id, tenant_id, event_type, status,
            attempt_count, next_attempt_at, next_trigger, lease_token, ordering_line, ordering_seq, created_at, updated_at)
            SELECT x.id, x.organization_id, x.application_id, x.message_id, x.endpoint_id, x.tenant_id, x.event_type,
            x.status, 0, x.next_attempt_at, \(bind: trigger.rawValue), x.lease_token, x.ordering_line, x.ordering_seq,
            \(bind: now.microseconds), \(bind: now.microseconds) FROM \(source)\(unsafeRaw: stillEnabled)
            """
        return (insert, 4)
    }
}

extension Database {
    /// A tenant's bucket. `locked`: created full if it has none, and read with its row locked (PostgreSQL) until the
    /// transaction ends. Otherwise as last committed, without a lock (full when it has no row yet).
    func bucket(
        applicationID: String, tenantID: String, burst: Int, now: Timestamp, locked: Bool, _ sql: any SQLDatabase
    ) async throws -> (Double, Timestamp) {
        if locked {
            try await sql.raw(
                """
                INSERT INTO rate_buckets (application_id, tenant_id, tokens, updated_at) VALUES (\(bind: applicationID), \(bind: tenantID),
                \(bind: Double(burst)), \(bind: now.microseconds)) ON CONFLICT (application_id, tenant_id) DO NOTHING
                """
            ).run()
        }
        guard
            let row = try await sql.raw(
                """
                SELECT tokens, updated_at FROM rate_buckets WHERE application_id = \(bind: applicationID) AND tenant_id = \(bind: tenantID)
                \(unsafeRaw: locked ? self.lockRowsClause : "")
                """
            ).first()
        else {
            if locked { throw TernError.unavailable("the rate limiter lost its bucket") }
            return (Double(burst), now)
        }
        return (try row.decode(column: "tokens", as: Double.self), try row.timestamp("updated_at"))
    }
}

/// The rows of a publish written leased to this process's worker: their ids and applications by index, and the lease.
struct DeliveryLeases {
    var ids: [Int: String] = [:]
    var applications: [Int: Application] = [:]
    var token: String
    var until: Timestamp
}
