import Logging
import PostgresKit
import PostgresNIO
import SQLKit
import SQLiteKit
import Synchronization
import TernCore
import _ConnectionPoolModule

// Every difference between SQLite and PostgreSQL is in this file: row locks, claiming, statements kept prepared,
// notifications, the migration lock, how a write transaction begins, error codes, planner statistics and
// rows sent as JSON. The rest of storage is one SQL text for both.
extension Database {
    /// How a write transaction begins: `BEGIN IMMEDIATE` takes SQLite's write lock at once (so a transaction never
    /// fails half-way on a lock upgrade); PostgreSQL's row locks need no more than `BEGIN`.
    static func begin(_ kind: DatabaseKind) -> String {
        kind == .sqlite ? "BEGIN IMMEDIATE" : "BEGIN"
    }

    /// A column for a statement that makes the running PostgreSQL transaction commit without waiting for its WAL to
    /// reach the disk (`synchronous_commit = off` for this transaction only), read with a statement the transaction
    /// runs anyway rather than with one more round trip. For a claim, whose loss in a database crash only means that
    /// its deliveries are claimed and sent again (at least once): publish → receipt no longer waits on an fsync
    /// between the two. Empty on SQLite, whose commits (WAL, `synchronous=NORMAL`) already do not wait for one.
    var commitWithoutWaitingForDiskColumn: String {
        self.kind == .postgres ? ", set_config('synchronous_commit', 'off', true) AS commit_without_waiting" : ""
    }

    /// Runs an erasure's statements with SQLite's `secure_delete` on (a flag of the writer connection, turned off
    /// again after them, also when they fail): the bytes they free are overwritten instead of left in free space.
    /// PostgreSQL keeps old row versions until (auto)vacuum removes them; nothing within a transaction can force that.
    func erasing<T: Sendable>(_ sql: any SQLDatabase, _ body: () async throws -> T) async throws -> T {
        guard self.kind == .sqlite else { return try await body() }
        _ = try await sql.raw("PRAGMA secure_delete = ON").all()
        do {
            let result = try await body()
            _ = try await sql.raw("PRAGMA secure_delete = OFF").all()
            return result
        } catch {
            _ = try? await sql.raw("PRAGMA secure_delete = OFF").all()
            throw error
        }
    }

    /// A consistent copy of a SQLite database into a new file (`VACUUM INTO`: one read transaction's snapshot, so
    /// writers carry on meanwhile and the copy holds every transaction committed before it began).
    public func snapshot(to path: String) async throws {
        guard case .sqlite(let pool) = self.backend else { throw ConfigurationError("backups copy SQLite databases; for PostgreSQL use pg_dump") }
        _ = try await pool.withWriter { connection in try await connection.sql().raw("VACUUM INTO \(bind: path)").all() }
    }

    /// After an erasure: SQLite copies the write-ahead log into the file and truncates it, so that no earlier
    /// version of an erased page stays in the `-wal` file. Best effort: a checkpoint that readers block is retried
    /// by SQLite's own automatic checkpoints.
    public func truncateWAL() async {
        guard case .sqlite(let pool) = self.backend else { return }
        _ = try? await pool.withWriter { connection in try await connection.sql().raw("PRAGMA wal_checkpoint(TRUNCATE)").all() }
    }

    /// How many publish transactions may run at once: PostgreSQL takes several (their row locks are taken in one
    /// order); SQLite has one writer, so a second commit would only queue behind the first. Two on PostgreSQL: one
    /// fills while the other commits, and each batch is larger than with four, so its statements (nine then, five now)
    /// are shared by more publishes (measured on 2 cores: 0.447 instead of 0.512 ms of CPU per event, p99 49 instead of
    /// 71 ms; measured again with five, four made the open loop at 1,000/s slower, receipt p50 25 against 17–22 ms).
    var publishConcurrency: Int {
        self.kind == .postgres ? Self.postgresPublishConcurrency : 1
    }

    /// The publish transactions PostgreSQL runs at once, and the connections of their own they keep (`open`).
    public static let postgresPublishConcurrency = 2

    /// Maps driver errors to domain errors: unique violations become conflicts, the rest unavailability.
    func translate(_ error: any Error) -> any Error {
        if let psql = error as? PSQLError {
            if psql.serverInfo?[.sqlState] == "23505" { return TernError.conflict("the object already exists") }
            if psql.serverInfo?[.sqlState] == "23503" { return TernError.notFound("a referenced object does not exist") }
        }
        // The pool's own errors too: it gave up connecting (PostgreSQL down or restarting,
        // `connectionCreationCircuitBreakerTripped`) or is shutting down, which PostgresNIO passes on unmapped.
        if error is PSQLError || error is _ConnectionPoolModule.ConnectionPoolError {
            self.logger.error("database error", metadata: ["error": "\(String(reflecting: error))"])
            return TernError.unavailable("the database is unavailable")
        }
        if let sqlite = error as? SQLiteFailure {
            if sqlite.isUniqueViolation { return TernError.conflict("the object already exists") }
            if sqlite.isForeignKeyViolation { return TernError.notFound("a referenced object does not exist") }
            self.logger.error("database error", metadata: ["error": "\(sqlite)"])
            return TernError.unavailable("the database is unavailable: \(sqlite.message)")
        }
        return error
    }

    /// Runs `body` while holding the migration lock: a PostgreSQL advisory lock (so two processes migrating at
    /// once take turns), or the SQLite writer (whose `BEGIN IMMEDIATE` excludes other processes).
    func withMigrationLock<T: Sendable>(_ body: @Sendable (any SQLDatabase, _ begin: String) async throws -> T) async throws -> T {
        switch self.backend {
        case .sqlite(let pool):
            return try await pool.withWriter { try await body($0.sql(), Self.begin(.sqlite)) }
        case .postgres(let client, _, _):
            return try await client.withConnection { connection in
                let sql = connection.sql()
                try await sql.raw("SELECT pg_advisory_lock(\(literal: Self.migrationLockKey))").run()
                do {
                    let result = try await body(sql, Self.begin(.postgres))
                    try await sql.raw("SELECT pg_advisory_unlock(\(literal: Self.migrationLockKey))").run()
                    return result
                } catch {
                    try? await sql.raw("SELECT pg_advisory_unlock(\(literal: Self.migrationLockKey))").run()
                    throw error
                }
            }
        }
    }

    static let migrationLockKey = 7_364_281_905

    /// ` FOR UPDATE` on PostgreSQL, where concurrent transactions must lock the row they count against;
    /// empty on SQLite, where writers are already serialized.
    public var lockRowsClause: String {
        self.kind == .postgres ? " FOR UPDATE" : ""
    }

    /// ` FOR SHARE` on PostgreSQL: a publish holds the endpoints it matched until it commits, so that disabling one
    /// of them (which then moves its queued deliveries to the DLQ) waits for the publish's deliveries, or the
    /// publish waits and no longer matches it. Without it a delivery could be queued, after the move, to an
    /// endpoint that is disabled and stay pending. Empty on SQLite, where writers are serialized.
    public var shareRowsClause: String {
        self.kind == .postgres ? " FOR SHARE" : ""
    }

    /// Rows sent as one value, read in a statement's FROM clause as `alias`: `rows` is a JSON array of arrays, and each
    /// of `columns` (name, then `TEXT` or `BIGINT`) is read from its position in them. One bind however many rows:
    /// PostgreSQL parses and binds a VALUES list value by value (a 1,000-row insert of 15 columns spent 3 to 4 ms
    /// parsing it and 6 to 8 ms binding it), and Tern serializes each value on its side. PostgreSQL reads the rows as
    /// `jsonb`, SQLite with `json_each`.
    /// (A static function: the statements that use it are built without the `Database`, from `sql`'s dialect.)
    static func jsonRows(_ rows: JSONRows, columns: [(name: String, type: String)], as alias: String, _ sql: any SQLDatabase) -> SQLQueryString {
        let postgres = sql.dialect.name == "postgresql"
        let cells = columns.enumerated().map { index, column in
            postgres
                ? "CAST(r.value ->> \(index) AS \(column.type)) AS \(column.name)"
                : "CAST(json_extract(r.value, '$[\(index)]') AS \(column.type)) AS \(column.name)"
        }.joined(separator: ", ")
        let elements = postgres ? "jsonb_array_elements(CAST(" : "json_each(("
        return
            "(SELECT \(unsafeRaw: cells) FROM \(unsafeRaw: elements)\(bind: rows.json)\(unsafeRaw: postgres ? " AS JSONB" : ""))) AS r) AS \(unsafeRaw: alias)"
    }

    /// ` FOR SHARE OF e` on PostgreSQL: a statement that writes rows for the endpoints it joins as `e` holds them
    /// until it commits (see `shareRowsClause`). Empty on SQLite.
    var shareJoinedEndpointsClause: String {
        self.kind == .postgres ? " FOR SHARE OF e" : ""
    }

    /// A write that reads first and then writes with one statement (`runTogether` within `bindsTogether` values),
    /// the last thing `body` does, which returns its result and whether it queued deliveries (as `writeQueuing`'s).
    /// On PostgreSQL without BEGIN and COMMIT: the statement commits as its own transaction, two round trips fewer
    /// than `write`. What `body` reads before it is then read as committed at that moment and not held (`held` is
    /// false: no row stays locked), so the statement itself must lock and check what it relies on. On SQLite as
    /// `writeQueuing`, `held` true: one transaction on the single writer, whose reads nothing can change before the
    /// commit. PostgreSQL runs it on the publishes' connections (`postgresPublishConcurrency`, started with
    /// `plan_cache_mode = force_generic_plan`), where the statements it keeps prepared (`Prepared`: the publish's read
    /// and its write) are planned once per connection instead of on every call (0.2 to 0.5 ms each; with the default
    /// mode PostgreSQL kept planning the read anew, its generic plan costed higher for a tenant of 1,000 endpoints).
    /// Every statement a publish sends finds its rows by equal values, which a generic plan finds as well.
    func writeInOneStatement<T: Sendable>(
        _ body: @escaping @Sendable (any SQLDatabase, _ held: Bool) async throws -> (T, queued: Bool)
    ) async throws -> T {
        guard case .postgres(_, _, let publishes) = self.backend else {
            return try await self.writeQueuing(notifiesItself: true) { sql in try await body(sql, true) }
        }
        let (result, queued): (T, Bool)
        do {
            (result, queued) = try await publishes.withConnection { connection in
                try await self.watch.run(connection) { try await body(LiveConnection(connection), false) }
            }
        } catch let error as TernError {
            throw error
        } catch {
            throw self.translate(error)
        }
        if queued { self.deliveriesQueued.ring() }
        return result
    }

    /// The PostgreSQL channel that publishers notify and workers listen on.
    static let deliveryChannel = "tern_deliveries"

    /// ` FOR UPDATE OF d SKIP LOCKED` on PostgreSQL, so that workers claiming at once take different rows;
    /// empty on SQLite, whose single writer already serializes claims.
    var skipLockedClause: String {
        self.kind == .postgres ? " FOR UPDATE OF d SKIP LOCKED" : ""
    }

    /// Claims deliveries (`claim(now)`: `UPDATE deliveries … WHERE id IN (…)`, due by `now`) and returns what the claim
    /// took: `columns` of them as `d` and of the tables `joins` adds, in due order, committed, and the `now` it claimed
    /// at, taken once the connection is in hand (a time taken before waiting for the SQLite writer would miss what
    /// publishes committed meanwhile). On PostgreSQL one statement, run on its own: the UPDATE sits in a WITH named `d`
    /// whose RETURNING gives the rows as updated (the statement's other parts do not see the update, so they must not
    /// read the delivery from its table), in the statement's own transaction, which commits without waiting for the
    /// disk; so a claim is one round trip instead of three (BEGIN, the statement, COMMIT), and it runs prepared on the
    /// workers' connection (`onWorkersConnection`), planned once. SQLite, whose UPDATE cannot
    /// sit in a WITH, runs the UPDATE and then reads the rows whose ids it returned, in one transaction.
    func claimed(
        _ claim: @escaping @Sendable (Timestamp) -> SQLQueryString, columns: String, joins: String
    ) async throws -> (rows: [any SQLRow], at: Timestamp) {
        switch self.kind {
        case .postgres:
            return try await self.onWorkersConnection { now in
                """
                WITH d AS (\(claim(now)) RETURNING *)
                SELECT \(unsafeRaw: columns)\(unsafeRaw: self.commitWithoutWaitingForDiskColumn) FROM d \(unsafeRaw: joins)
                ORDER BY d.next_attempt_at
                """
            }
        case .sqlite:
            return try await self.write { sql in
                let now = Timestamp.now()
                let ids = try await sql.raw("\(claim(now)) RETURNING id").all().map { try $0.string("id") }
                guard !ids.isEmpty else { return ([], now) }
                let rows = try await sql.raw(
                    "SELECT \(unsafeRaw: columns) FROM deliveries d \(unsafeRaw: joins) WHERE d.id IN (\(binds: ids)) ORDER BY d.next_attempt_at"
                ).all()
                return (rows, now)
            }
        }
    }

    /// Runs a statement of the delivery workers (the claim, the next due time) and returns its rows: on PostgreSQL on
    /// the workers' connection of their own, started with `plan_cache_mode = force_generic_plan`, where it is kept
    /// prepared (`Prepared`), so that PostgreSQL plans it once per connection instead of on every call (the claim
    /// planned for 0.79 ms a call and ran for 0.64 in the open loop); `ANALYZE` of a table it reads makes PostgreSQL plan
    /// it again. Not for the other statements, whose generic plans can be worse than the custom ones (a range on a bound
    /// value is guessed at a third of the rows). Its text must not change with every call, its values being binds; a
    /// `LIMIT` is written into it, as a generic plan takes a bound `LIMIT` for a tenth of the rows and planned the
    /// claim's UPDATE as a scan of the whole table. `statement` is made once the connection is in hand, for the time it
    /// is given, which is returned with the rows. On SQLite a read.
    func onWorkersConnection(
        _ statement: @escaping @Sendable (_ now: Timestamp) -> SQLQueryString
    ) async throws -> (rows: [any SQLRow], at: Timestamp) {
        guard case .postgres(_, let workers, _) = self.backend else {
            return try await self.read { sql in
                let now = Timestamp.now()
                return (try await sql.raw(statement(now)).all(), now)
            }
        }
        do {
            return try await workers.withConnection { connection in
                try await self.watch.run(connection) {
                    let now = Timestamp.now()
                    return (try await LiveConnection(connection).all(prepared: statement(now)), now)
                }
            }
        } catch let error as TernError {
            throw error
        } catch {
            throw self.translate(error)
        }
    }

    /// The most values `runTogether` binds in one statement (PostgreSQL takes 65,535).
    static let bindsTogether = 30_000

    /// Runs statements whose rows are not read, in order, then `last` (when given), whose rows it returns. On
    /// PostgreSQL as one statement: each a part of a WITH and `last` its main statement (they see the same snapshot
    /// and none reads what another writes; their foreign keys are checked at the end of the statement, when every part
    /// has written), split only where a statement would bind more than 30,000 values (PostgreSQL takes 65,535; `last`
    /// is not counted). On SQLite one after the other: there is no round trip to save. `notifyingWorkers`: the statement
    /// also tells workers in other processes, as `notifyWorkers` does, for a write of `writeQueuing(notifiesItself:
    /// true)` or `writeInOneStatement` (with `last`, whose rows it returns, a statement of its own follows: in a
    /// transaction sent at its commit, outside one just after the statement committed). Each statement is kept
    /// prepared (`Prepared`): `last` names the columns it returns.
    @discardableResult
    func runTogether(
        _ statements: [(any SQLExpression, binds: Int)], returning last: (any SQLExpression)? = nil, notifyingWorkers: Bool = false,
        _ sql: any SQLDatabase
    ) async throws -> [any SQLRow] {
        guard self.kind == .postgres else {
            for (statement, _) in statements { try await sql.execute(sql: statement) { _ in } }
            guard let last else { return [] }
            return try await sql.raw("\(last)").all()
        }
        let notifyAfter = notifyingWorkers && last != nil
        let last = notifyingWorkers && last == nil ? self.notification : last
        var groups: [[any SQLExpression]] = []
        var binds = 0
        for (statement, count) in statements {
            if groups.isEmpty || binds + count > Self.bindsTogether {
                groups.append([])
                binds = 0
            }
            groups[groups.count - 1].append(statement)
            binds += count
        }
        if groups.isEmpty { groups.append([]) }
        var rows: [any SQLRow] = []
        for (number, var group) in groups.enumerated() {
            var main = number == groups.count - 1 ? last : nil
            if main == nil, group.count == 1 { main = group.removeLast() }
            guard let statement = main ?? (group.isEmpty ? nil : SQLRaw("SELECT 1")) else { continue }
            rows = try await sql.all(prepared: SQLList(Self.withClauses(group) + [statement], separator: SQLRaw("")))
        }
        if notifyAfter { try await sql.raw(self.notification).run() }
        return rows
    }

    /// `update` (an UPDATE … RETURNING `id`) with the `rows` of `table` whose `key` it returned, after `parts` (as
    /// `runTogether`'s), as one statement committed on its own, all three from `build`; returns the update's rows. On
    /// PostgreSQL the statement runs outside BEGIN … COMMIT on the pool, kept prepared: one round trip where a
    /// transaction takes four (BEGIN, the update, the insert, COMMIT). Nil on SQLite, without calling `build`: a
    /// transaction costs no round trips there, and the caller writes in one as usual.
    func updateWithTheirRows(
        insertInto table: String, columns: [(name: String, type: String)], key: String,
        _ build: () -> (parts: [any SQLExpression], update: SQLQueryString, rows: JSONRows)
    ) async throws -> [any SQLRow]? {
        guard self.kind == .postgres else { return nil }
        let (parts, update, rows) = build()
        return try await self.read { sql in
            let names = columns.map(\.name).joined(separator: ", ")
            let statement =
                Self.withClauses(parts) + [
                    SQLRaw(parts.isEmpty ? "WITH u AS (" : ", u AS ("), update,
                    SQLRaw("), i AS (INSERT INTO \(table) (\(names)) SELECT \(names) FROM "),
                    Self.jsonRows(rows, columns: columns, as: "r", sql), SQLRaw(" WHERE r.\(key) IN (SELECT id FROM u)) SELECT id FROM u"),
                ]
            return try await sql.all(prepared: SQLList(statement, separator: SQLRaw("")))
        }
    }

    /// `parts` as the clauses `w0`, `w1`, … of a WITH, for a statement that follows them.
    static func withClauses(_ parts: [any SQLExpression]) -> [any SQLExpression] {
        parts.enumerated().flatMap { index, part in [SQLRaw(index == 0 ? "WITH w0 AS (" : ", w\(index) AS ("), part, SQLRaw(") ")] }
    }

    /// Inside a transaction that queued deliveries: tells workers in other processes (PostgreSQL `NOTIFY`, sent
    /// at commit). Workers in this process are woken by `deliveriesQueued` after the commit.
    func notifyWorkers(_ sql: any SQLDatabase) async throws {
        guard self.kind == .postgres else { return }
        try await sql.raw(self.notification).run()
    }

    private var notification: SQLQueryString { "SELECT pg_notify(\(bind: Self.deliveryChannel), \(bind: self.notificationOrigin))" }

    /// Calls `onNotify` whenever another process (another `Database`) queues deliveries, until the task is cancelled.
    /// On SQLite, where workers of other processes are not told, this returns at once and the workers' poll covers them.
    public func listenForDeliveries(_ onNotify: @escaping @Sendable () -> Void) async {
        guard case .postgres(let client, _, _) = self.backend else { return }
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await connection.listen(on: Self.deliveryChannel) { notifications in
                        // Anything queued while not listening is found by the first claim after this.
                        onNotify()
                        for try await notification in notifications where notification.payload != self.notificationOrigin { onNotify() }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                self.logger.warning("delivery notifications lost; listening again", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// PostgreSQL's planner chooses the claim's plan from table statistics, which autovacuum refreshes at most once a
    /// minute. A young database that grows fast (a new installation under load, a tenant given 1,000 endpoints) is
    /// planned meanwhile as if its tables were nearly empty: the claim then loops over every endpoint and scans all
    /// due deliveries for each, taking up to 240 ms instead of 0.3 ms (`docs/benchmarks.md`). Every 5 s this analyzes
    /// the queue's tables that changed by more than 500 rows and a tenth of their size since their last analysis, while
    /// their statistics count fewer than 10,000 rows. Past that the planner scales what they say by the table's
    /// current size, and autovacuum keeps them: analyzing a large `deliveries` under load took 0.3–0.6 s of a core,
    /// during which claims took up to 150 ms.
    func keepPlannerStatisticsFresh() async {
        guard self.kind == .postgres else { return }
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(5))
            guard self.migrated.isOpen else { continue }
            do {
                let stale = try await self.read { sql in
                    try await sql.raw(
                        """
                        SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
                        WHERE s.relname IN ('deliveries', 'endpoints', 'messages') AND s.n_mod_since_analyze > 500 + s.n_live_tup / 10
                        AND c.reltuples < 10000
                        """
                    ).all().map { try $0.string("relname") }
                }
                for table in stale {
                    try await self.read { sql in try await sql.raw("ANALYZE \(unsafeRaw: table)").run() }
                }
            } catch {
                self.logger.debug("cannot refresh planner statistics", metadata: ["error": "\(error)"])
            }
        }
    }

    /// After a bulk load: PostgreSQL's planner needs fresh statistics to keep using the indexes; SQLite's has none to
    /// refresh for these queries.
    func refreshPlannerStatistics() async throws {
        guard self.kind == .postgres else { return }
        try await self.read { sql in try await sql.raw("ANALYZE").run() }
    }
}

/// A statement that PostgreSQL keeps prepared on each connection that runs it (`LiveConnection.runPrepared`), so that
/// it is parsed once per connection and planned once where the connection was started with `plan_cache_mode =
/// force_generic_plan` (the workers' claims, `onWorkersConnection`; the publishes, `writeInOneStatement`), elsewhere
/// once PostgreSQL finds its generic plan no costlier than the custom ones of its first five runs (the record of
/// successes). For the hot statements whose planning cost as much as their execution or more: a publish's read of
/// its application and endpoints planned for 0.22 ms and ran for 0.03, its write planned for 0.23 to 0.47 ms. Sent
/// with `SQLDatabase.all(prepared:)`. On SQLite, whose connections keep every statement prepared (`SQLiteHandle`),
/// and where it cannot be kept, an ordinary statement. Its columns must be named, not `*`, which a migration changes.
struct Prepared: SQLExpression {
    let statement: any SQLExpression

    init(_ statement: any SQLExpression) { self.statement = statement }

    func serialize(to serializer: inout SQLSerializer) { self.statement.serialize(to: &serializer) }
}

extension SQLDatabase {
    /// The rows of `statement`, kept prepared where the connection can (`Prepared`).
    func all(prepared statement: any SQLExpression) async throws -> [any SQLRow] {
        let rows = Mutex<[any SQLRow]>([])
        try await self.execute(sql: Prepared(statement)) { row in rows.withLock { $0.append(row) } }
        return rows.withLock { $0 }
    }
}

/// The names of the statements kept prepared (`Prepared`), by connection and by text with the types of its values: a
/// statement prepared with a value's type is run with that type only. A connection is given at most `perConnection`
/// names (a publish's statement differs with its batch's size); past that a statement runs unprepared, as does one
/// that binds more than `mostValues` (a large batch, whose planning its many rows share, and whose plan PostgreSQL
/// would keep in the connection's memory for good). A name whose
/// run failed is given up, and the next run prepares the text anew under a new one: PostgresNIO remembers a failed
/// preparation for good, and PostgreSQL refuses a kept statement whose columns a migration changed. What a connection
/// was given is forgotten when it closes.
final class PreparedStatements: Sendable {
    static let perConnection = 32
    static let mostValues = 256

    /// A statement as kept: its text and the types of its values.
    struct Key: Hashable {
        var sql: String
        var types: [PostgresDataType]
    }

    private struct Kept {
        var names: [Key: String] = [:]
        var given = 0
    }

    private let state = Mutex<(kept: [ObjectIdentifier: Kept], next: Int)>(([:], 0))

    /// The name of `key` on `connection`, nil when the connection was given as many as it may be.
    func name(_ key: Key, on connection: PostgresConnection) -> String? {
        let object = ObjectIdentifier(connection)
        let (name, first) = self.state.withLock { state -> (String?, Bool) in
            let first = state.kept[object] == nil
            if first { state.kept[object] = Kept() }
            if let known = state.kept[object]!.names[key] { return (known, first) }
            guard state.kept[object]!.given < Self.perConnection else { return (nil, first) }
            state.next += 1
            state.kept[object]!.given += 1
            state.kept[object]!.names[key] = "tern_prepared_\(state.next)"
            return ("tern_prepared_\(state.next)", first)
        }
        if first { connection.closeFuture.whenComplete { _ in self.state.withLock { _ = $0.kept.removeValue(forKey: object) } } }
        return name
    }

    /// Gives up the name of `key` on `connection` after a failed run.
    func failed(_ key: Key, on connection: PostgresConnection) {
        self.state.withLock { _ = $0.kept[ObjectIdentifier(connection)]?.names.removeValue(forKey: key) }
    }
}

extension LiveConnection {
    static let prepared = PreparedStatements()

    /// Runs `statement` by name, prepared on this connection the first time; false, having run nothing, when it is not
    /// kept (too many values, a value of a type `PreparedValue` does not cover, or the connection keeps as many as it
    /// may).
    func runPrepared(_ statement: Prepared, _ onRow: @escaping @Sendable (any SQLRow) -> Void) async throws -> Bool {
        var serializer = SQLSerializer(database: self)
        statement.serialize(to: &serializer)
        guard serializer.binds.count <= PreparedStatements.mostValues else { return false }
        var bindings = PostgresBindings(capacity: serializer.binds.count)
        var types: [PostgresDataType] = []
        types.reserveCapacity(serializer.binds.count)
        for bind in serializer.binds {
            guard let value = bind as? any PreparedValue else { return false }
            value.append(to: &bindings)
            types.append(type(of: value).postgresType)
        }
        let key = PreparedStatements.Key(sql: serializer.sql, types: types)
        guard let name = Self.prepared.name(key, on: self.connection) else { return false }
        do {
            let rows = try await NamedStatement.$current.withValue((name, serializer.sql, types)) {
                try await self.connection.execute(NamedStatement(bindings: bindings), logger: self.logger)
            }
            for try await row in rows { onRow(PostgresResultRow(row)) }
        } catch {
            Self.prepared.failed(key, on: self.connection)
            throw error
        }
        return true
    }
}

/// A row of a statement run prepared (`runPrepared`). A column read as a `String`, `Int`, `Int64`, `Double` or `Bool`
/// (or an optional of one) is decoded by that type's own PostgresNIO decoder; PostgresKit's row finds that decoder by
/// a conformance lookup at every column (`SQLRow.string` and `optionalString` 11.6% of the server's samples over
/// publishes to 1,000 endpoints, `docs/benchmarks.md`, item 46). The same decoders either way, so the same values and
/// errors; any other type is read through PostgresKit's row
/// (`PreparedStatementTests.columnsReadAsPostgresKitsRowReadsThem`).
struct PostgresResultRow: SQLRow {
    let row: PostgresRow
    let cells: PostgresRandomAccessRow

    init(_ row: PostgresRow) {
        self.row = row
        self.cells = row.makeRandomAccess()
    }

    var allColumns: [String] { self.cells.map(\.columnName) }

    func contains(column: String) -> Bool { self.cells.contains(column) }

    func decodeNil(column: String) throws -> Bool { !self.cells.contains(column) || self.cells[column].bytes == nil }

    func decode<D: Decodable>(column: String, as type: D.Type) throws -> D {
        if self.cells.contains(column), let direct = try Self.direct(self.cells[column], as: D.self) { return direct }
        return try self.row.sql().decode(column: column, as: D.self)
    }

    /// The cell decoded by its type's own decoder, for the types the store reads; nil for any other, and for the cells
    /// PostgresKit reads another way (a `numeric` read as a `Double`, a user-defined type as a `String`).
    static func direct<D>(_ cell: PostgresCell, as type: D.Type) throws -> D? {
        guard cell.dataType != .numeric, !cell.dataType.isUserDefined else { return nil }
        if D.self == String.self { return try cell.decode(String.self) as? D }
        if D.self == String?.self { return try cell.decode(String?.self) as? D }
        if D.self == Int.self { return try cell.decode(Int.self) as? D }
        if D.self == Int?.self { return try cell.decode(Int?.self) as? D }
        if D.self == Int64.self { return try cell.decode(Int64.self) as? D }
        if D.self == Int64?.self { return try cell.decode(Int64?.self) as? D }
        if D.self == Double.self { return try cell.decode(Double.self) as? D }
        if D.self == Double?.self { return try cell.decode(Double?.self) as? D }
        if D.self == Bool.self { return try cell.decode(Bool.self) as? D }
        if D.self == Bool?.self { return try cell.decode(Bool?.self) as? D }
        return nil
    }
}

/// PostgresNIO's prepared statement, whose name, text and value types are static: here those of the statement being
/// run (`runPrepared`), which PostgresNIO reads as it sends it.
private struct NamedStatement: PostgresPreparedStatement {
    @TaskLocal static var current: (name: String, sql: String, types: [PostgresDataType]) = ("", "", [])
    static var name: String { Self.current.name }
    static var sql: String { Self.current.sql }
    static var bindingDataTypes: [PostgresDataType] { Self.current.types }

    let bindings: PostgresBindings

    func makeBindings() -> PostgresBindings { self.bindings }
    func decodeRow(_ row: PostgresRow) -> PostgresRow { row }
}

/// A value a prepared statement binds, with the type it is prepared with, also when it is NULL: the types the
/// statements kept prepared bind, each as PostgresNIO encodes it (and as PostgresKit binds it unprepared).
protocol PreparedValue {
    static var postgresType: PostgresDataType { get }
    func append(to bindings: inout PostgresBindings)
}

extension PreparedValue where Self: PostgresNonThrowingEncodable {
    static var postgresType: PostgresDataType { Self.psqlType }
    func append(to bindings: inout PostgresBindings) { bindings.append(self) }
}

extension String: PreparedValue {}
extension Int: PreparedValue {}
extension Int64: PreparedValue {}
extension Double: PreparedValue {}
extension Bool: PreparedValue {}

extension Optional: PreparedValue where Wrapped: PreparedValue {
    static var postgresType: PostgresDataType { Wrapped.postgresType }
    func append(to bindings: inout PostgresBindings) {
        if let value = self { value.append(to: &bindings) } else { bindings.appendNull() }
    }
}
