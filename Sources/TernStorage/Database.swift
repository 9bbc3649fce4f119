// Every SQL value in this target goes through SQLKit's `\(bind:)`; no query is built by concatenating input.
import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresKit
import PostgresNIO
import SQLKit
import SQLiteKit
import ServiceLifecycle
import Synchronization
import TernCore

/// Which SQL engine a database runs on. The only place the two differ is in this file.
public enum DatabaseKind: String, Sendable {
    case sqlite, postgres
}

/// Where the data lives, parsed from `sqlite://…` or `postgres://…`.
public enum DatabaseLocation: Sendable, Equatable, CustomStringConvertible {
    case sqliteFile(String)
    case sqliteMemory
    case postgres(host: String, port: Int, username: String, password: String?, database: String?, tls: Bool)

    /// Parses a database URL; throws a one-line message for anything else.
    public init(url: String) throws {
        if url == "sqlite://:memory:" || url == "sqlite::memory:" {
            self = .sqliteMemory
        } else if url.hasPrefix("sqlite://") {
            let path = String(url.dropFirst("sqlite://".count))
            guard !path.isEmpty else { throw ConfigurationError("database URL '\(url)' has no file path") }
            self = .sqliteFile(path)
        } else if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            guard let components = URLComponents(string: url), let host = components.host, !host.isEmpty else {
                throw ConfigurationError("database URL is not a valid postgres:// URL (expected postgres://user:pass@host:port/db)")
            }
            let database = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
            let sslmode = components.queryItems?.first(where: { $0.name == "sslmode" })?.value ?? "disable"
            self = .postgres(
                host: host, port: components.port ?? 5432, username: components.user ?? "postgres",
                password: components.password, database: database.isEmpty ? nil : database,
                tls: sslmode == "require" || sslmode == "verify-full"
            )
        } else {
            throw ConfigurationError("database URL must start with sqlite:// or postgres:// (got '\(url)')")
        }
    }

    public var kind: DatabaseKind {
        if case .postgres = self { return .postgres }
        return .sqlite
    }

    /// A description without the password.
    public var description: String {
        switch self {
        case .sqliteFile(let path): return "sqlite://\(path)"
        case .sqliteMemory: return "sqlite://:memory:"
        case .postgres(let host, let port, let username, _, let database, _):
            return "postgres://\(username)@\(host):\(port)/\(database ?? "")"
        }
    }
}

/// A setting that cannot work; the message is one line for the operator.
public struct ConfigurationError: Error, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}

/// The database: reads and transactional writes over SQLKit, on SQLite or PostgreSQL.
public final class Database: Service, Sendable {
    public let kind: DatabaseKind
    let backend: Backend
    let logger: Logger
    /// Rung after a commit that queued deliveries, to wake this process's workers at once.
    public let deliveriesQueued = WakeSignal()
    /// Opened once the schema is migrated; workers wait for it before their first claim.
    public let migrated = Latch()

    enum Backend: Sendable {
        case sqlite(SQLitePool)
        case postgres(PostgresClient)
    }

    /// PostgreSQL reads and transactions in flight, abandoned when one outlives its time (see `OperationWatch`).
    let watch: OperationWatch

    private init(kind: DatabaseKind, backend: Backend, logger: Logger) {
        self.watch = OperationWatch(timeout: .seconds(15), logger: logger)
        self.kind = kind
        self.backend = backend
        self.logger = logger
    }

    /// Opens the database. For SQLite the file is created, in WAL mode; for PostgreSQL a client pool is made,
    /// which connects once `run()` is running.
    public static func open(_ location: DatabaseLocation, logger: Logger) async throws -> Database {
        switch location {
        case .sqliteFile(let path):
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty && !FileManager.default.fileExists(atPath: directory) {
                throw ConfigurationError("the directory of the SQLite file '\(path)' does not exist")
            }
            let pool = try await SQLitePool.open(path: path, readers: 4, logger: logger)
            return Database(kind: .sqlite, backend: .sqlite(pool), logger: logger)
        case .sqliteMemory:
            let pool = try await SQLitePool.open(path: nil, readers: 0, logger: logger)
            return Database(kind: .sqlite, backend: .sqlite(pool), logger: logger)
        case .postgres(let host, let port, let username, let password, let database, let tls):
            var configuration = PostgresClient.Configuration(
                host: host, port: port, username: username, password: password, database: database,
                tls: tls ? .require(.makeClientConfiguration()) : .disable
            )
            configuration.options.maximumConnections = 20
            configuration.options.connectTimeout = .seconds(5)
            let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
            return Database(kind: .postgres, backend: .postgres(client), logger: logger)
        }
    }

    /// Runs the connection pool until shutdown (PostgreSQL); closes the SQLite connections afterwards.
    public func run() async throws {
        switch self.backend {
        case .postgres(let client):
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.watch.sweep() }
                await client.run()
                group.cancelAll()
            }
        case .sqlite(let pool):
            try? await gracefulShutdown()
            await pool.close()
        }
    }

    /// Closes the SQLite connections of a database that will not run (PostgreSQL's pool closes when `run()` ends).
    public func close() async {
        if case .sqlite(let pool) = self.backend { await pool.close() }
    }

    /// Runs `body` with the connection pool running, outside a service group (commands and tests).
    public func whileRunning<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        switch self.backend {
        case .sqlite(let pool):
            do {
                let result = try await body()
                await pool.close()
                return result
            } catch {
                await pool.close()
                throw error
            }
        case .postgres(let client):
            return try await withThrowingTaskGroup(of: T?.self) { group in
                group.addTask {
                    await client.run()
                    return nil
                }
                group.addTask {
                    await self.watch.sweep()
                    return nil
                }
                defer { group.cancelAll() }
                return try await body()
            }
        }
    }

    /// Runs `body` on a connection for reading.
    public func read<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        do {
            switch self.backend {
            case .sqlite(let pool):
                return try await pool.withReader { try await body($0.sql()) }
            case .postgres(let client):
                return try await client.withConnection { connection in
                    try await self.watch.run(connection) { try await body(LiveConnection(connection)) }
                }
            }
        } catch let error as TernError {
            throw error
        } catch {
            throw self.translate(error)
        }
    }

    /// Runs `body` in one transaction, committed when it returns and rolled back when it throws.
    public func write<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        do {
            switch self.backend {
            case .sqlite(let pool):
                return try await pool.withWriter { connection in
                    try await Self.transaction(connection.sql(), begin: "BEGIN IMMEDIATE", body)
                }
            case .postgres(let client):
                return try await client.withConnection { connection in
                    try await self.watch.run(connection) { try await Self.transaction(LiveConnection(connection), begin: "BEGIN", body) }
                }
            }
        } catch let error as TernError {
            throw error
        } catch {
            throw self.translate(error)
        }
    }

    /// Runs `body` while holding the migration lock: a PostgreSQL advisory lock (so two processes migrating at
    /// once take turns), or the SQLite writer (whose `BEGIN IMMEDIATE` excludes other processes).
    func withMigrationLock<T: Sendable>(_ body: @Sendable (any SQLDatabase, _ begin: String) async throws -> T) async throws -> T {
        switch self.backend {
        case .sqlite(let pool):
            return try await pool.withWriter { try await body($0.sql(), "BEGIN IMMEDIATE") }
        case .postgres(let client):
            return try await client.withConnection { connection in
                let sql = connection.sql()
                try await sql.raw("SELECT pg_advisory_lock(\(literal: Self.migrationLockKey))").run()
                do {
                    let result = try await body(sql, "BEGIN")
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

    /// Checks that the database answers.
    public func ping() async throws {
        _ = try await self.read { sql in try await sql.raw("SELECT 1 AS one").first() }
    }

    static func transaction<T>(_ sql: any SQLDatabase, begin: String, _ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await sql.raw(SQLQueryString(begin)).run()
        do {
            let result = try await body(sql)
            try await sql.raw("COMMIT").run()
            return result
        } catch {
            try? await sql.raw("ROLLBACK").run()
            throw error
        }
    }

    /// Maps driver errors to domain errors: unique violations become conflicts, the rest unavailability.
    func translate(_ error: any Error) -> any Error {
        if let psql = error as? PSQLError {
            if psql.serverInfo?[.sqlState] == "23505" { return TernError.conflict("the object already exists") }
            if psql.serverInfo?[.sqlState] == "23503" { return TernError.notFound("a referenced object does not exist") }
            self.logger.error("database error", metadata: ["error": "\(String(reflecting: psql))"])
            return TernError.unavailable("the database is unavailable")
        }
        if let sqlite = error as? SQLiteError {
            if sqlite.reason == .constraintUniqueFailed || sqlite.reason == .constraintPrimaryKeyFailed {
                return TernError.conflict("the object already exists")
            }
            if sqlite.reason == .constraintForeignKeyFailed { return TernError.notFound("a referenced object does not exist") }
            self.logger.error("database error", metadata: ["error": "\(sqlite)"])
            return TernError.unavailable("the database is unavailable: \(sqlite.message)")
        }
        return error
    }
}

/// SQLite connections: one writer (transactions take turns on it) and a few readers, which WAL lets read
/// while the writer writes. An in-memory database has only the writer.
final class SQLitePool: Sendable {
    let writer: SQLiteConnection
    let writerLock = AsyncSemaphore(permits: 1)
    let readers: Mutex<[SQLiteConnection]>
    let readerPermits: AsyncSemaphore
    let hasReaders: Bool
    let closed = Mutex(false)

    private init(writer: SQLiteConnection, readers: [SQLiteConnection]) {
        self.writer = writer
        self.readers = Mutex(readers)
        self.readerPermits = AsyncSemaphore(permits: max(readers.count, 1))
        self.hasReaders = !readers.isEmpty
    }

    static func open(path: String?, readers: Int, logger: Logger) async throws -> SQLitePool {
        let storage: SQLiteConnection.Storage = path.map { .file(path: $0) } ?? .memory
        let writer = try await SQLiteConnection.open(storage: storage, logger: logger)
        if path != nil {
            _ = try await writer.sql().raw("PRAGMA journal_mode=WAL").all()
        }
        try await configure(writer)
        var readerConnections: [SQLiteConnection] = []
        for _ in 0..<readers {
            let reader = try await SQLiteConnection.open(storage: storage, logger: logger)
            try await configure(reader)
            readerConnections.append(reader)
        }
        return SQLitePool(writer: writer, readers: readerConnections)
    }

    static func configure(_ connection: SQLiteConnection) async throws {
        let sql = connection.sql()
        _ = try await sql.raw("PRAGMA busy_timeout=10000").all()
        _ = try await sql.raw("PRAGMA foreign_keys=ON").all()
        _ = try await sql.raw("PRAGMA synchronous=NORMAL").all()
    }

    func withWriter<T>(_ body: (SQLiteConnection) async throws -> T) async throws -> T {
        await self.writerLock.wait()
        defer { self.writerLock.signal() }
        guard !self.closed.withLock({ $0 }) else { throw TernError.unavailable("the database is closed") }
        return try await body(self.writer)
    }

    func withReader<T>(_ body: (SQLiteConnection) async throws -> T) async throws -> T {
        guard self.hasReaders else { return try await self.withWriter(body) }
        guard !self.closed.withLock({ $0 }) else { throw TernError.unavailable("the database is closed") }
        await self.readerPermits.wait()
        let connection = self.readers.withLock { $0.removeLast() }
        defer {
            self.readers.withLock { $0.append(connection) }
            self.readerPermits.signal()
        }
        return try await body(connection)
    }

    /// A pool dropped without `close()` (a start-up that failed half-way) still closes its connections.
    deinit {
        guard !self.closed.withLock({ $0 }) else { return }
        for connection in [self.writer] + self.readers.withLock({ $0 }) {
            let closing: EventLoopFuture<Void> = connection.close()
            _ = closing
        }
    }

    /// Closes the connections once; later reads and writes fail at once instead of waiting.
    func close() async {
        await self.writerLock.wait()
        defer { self.writerLock.signal() }
        guard !self.closed.withLock({ $0 }) else { return }
        self.closed.withLock { $0 = true }
        try? await self.writer.close()
        for reader in self.readers.withLock({ $0 }) {
            try? await reader.close()
        }
    }
}


// MARK: - The delivery queue's dialect: claiming and notifications

extension Database {
    /// The PostgreSQL channel that publishers notify and workers listen on.
    static let deliveryChannel = "tern_deliveries"

    /// ` FOR UPDATE OF d SKIP LOCKED` on PostgreSQL, so that workers claiming at once take different rows;
    /// empty on SQLite, whose single writer already serializes claims.
    var skipLockedClause: String {
        self.kind == .postgres ? " FOR UPDATE OF d SKIP LOCKED" : ""
    }

    /// Inside a transaction that queued deliveries: tells workers in other processes (PostgreSQL `NOTIFY`, sent
    /// at commit). Workers in this process are woken by `deliveriesQueued` after the commit.
    func notifyWorkers(_ sql: any SQLDatabase) async throws {
        guard self.kind == .postgres else { return }
        try await sql.raw("SELECT pg_notify(\(bind: Self.deliveryChannel), '')").run()
    }

    /// Calls `onNotify` whenever a process queues deliveries, until the task is cancelled. On SQLite, where
    /// workers of other processes are not told, this returns at once and the workers' poll covers them.
    public func listenForDeliveries(_ onNotify: @escaping @Sendable () -> Void) async {
        guard case .postgres(let client) = self.backend else { return }
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await connection.listen(on: Self.deliveryChannel) { notifications in
                        // Anything queued while not listening is found by the first claim after this.
                        onNotify()
                        for try await _ in notifications { onNotify() }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                self.logger.warning("delivery notifications lost; listening again", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }
}
