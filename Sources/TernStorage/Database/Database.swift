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

/// Which SQL engine a database runs on. Where the two differ is in `Dialect.swift`.
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
    /// This process's delivery worker, when it takes what publishes queue straight from their commit.
    public let directDelivery = DirectDelivery()
    /// The payload of this object's PostgreSQL notifications, which its own listener skips: its workers were rung in
    /// process already, and an echo would only cost them an empty claim.
    let notificationOrigin = Identifier.make("origin")
    /// Opened once the schema is migrated; workers wait for it before their first claim.
    public let migrated = Latch()
    /// Opened as the PostgreSQL pool starts (`run()`, `whileRunning`), at once on SQLite. A statement sent before
    /// it would wait for the pool too, but PostgresNIO logs a warning for each; start-up waits for this instead.
    public let started = Latch()

    enum Backend: Sendable {
        case sqlite(SQLitePool)
        case postgres(PostgresClient, workers: PostgresClient, publishes: PostgresClient)
    }

    /// PostgreSQL reads and transactions in flight, abandoned when one outlives its time (see `OperationWatch`).
    let watch: OperationWatch

    private init(kind: DatabaseKind, backend: Backend, logger: Logger) {
        self.watch = OperationWatch(timeout: .seconds(15), logger: logger)
        self.kind = kind
        self.backend = backend
        self.logger = logger
        if kind == .sqlite { self.started.open() }
    }

    /// The PostgreSQL connections a process keeps for requests and housekeeping unless told otherwise
    /// (`TERN_DATABASE_POOL_SIZE`); the workers' claims have one more of their own, and publishes two.
    public static let defaultConnections = 20

    /// Opens the database. For SQLite the file is created, in WAL mode; for PostgreSQL a client pool of at most
    /// `connections` is made (plus the workers' one), which connects once `run()` is running.
    public static func open(_ location: DatabaseLocation, connections: Int = defaultConnections, logger: Logger) async throws -> Database {
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
            configuration.options.maximumConnections = connections
            configuration.options.connectTimeout = .seconds(5)
            let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
            // The workers' claims on a connection of their own, whose statements keep one generic plan each (see
            // `onWorkersConnection`); one claim loop per process needs one connection.
            configuration.options.maximumConnections = 1
            configuration.options.additionalStartupParameters = [("plan_cache_mode", "force_generic_plan")]
            let workers = PostgresClient(configuration: configuration, backgroundLogger: logger)
            // The publishes written with one statement, on connections of their own, as many as publish at once, where
            // their statements are planned once (`writeInOneStatement`).
            configuration.options.maximumConnections = Self.postgresPublishConcurrency
            let publishes = PostgresClient(configuration: configuration, backgroundLogger: logger)
            return Database(kind: .postgres, backend: .postgres(client, workers: workers, publishes: publishes), logger: logger)
        }
    }

    /// Runs the connection pool until shutdown (PostgreSQL); closes the SQLite connections afterwards.
    public func run() async throws {
        switch self.backend {
        case .postgres(let client, let workers, let publishes):
            await withTaskGroup(of: Void.self) { group in
                for pool in [workers, publishes] { group.addTask { await pool.run() } }
                group.addTask { await self.watch.sweep() }
                group.addTask { await self.keepPlannerStatisticsFresh() }
                self.started.open()
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
        case .postgres(let client, let workers, let publishes):
            return try await withThrowingTaskGroup(of: T?.self) { group in
                for pool in [workers, publishes] {
                    group.addTask {
                        await pool.run()
                        return nil
                    }
                }
                group.addTask {
                    await self.watch.sweep()
                    return nil
                }
                group.addTask {
                    self.started.open()
                    await client.run()
                    return nil
                }
                defer { group.cancelAll() }
                await self.started.wait()
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
            case .postgres(let client, _, _):
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
                    try await Self.transaction(connection.sql(), begin: Self.begin(.sqlite), body)
                }
            case .postgres(let client, _, _):
                return try await client.withConnection { connection in
                    try await self.watch.run(connection) {
                        try await Self.transaction(LiveConnection(connection), begin: Self.begin(.postgres), body)
                    }
                }
            }
        } catch let error as TernError {
            throw error
        } catch {
            throw self.translate(error)
        }
    }

    /// Checks that the database accepts a write (one row of `health_probe`): a full disk answers reads but not this.
    public func probeWrite() async throws {
        try await self.write { sql in
            try await sql.raw("UPDATE health_probe SET checked_at = \(bind: Timestamp.now().microseconds) WHERE id = 1").run()
        }
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

}
