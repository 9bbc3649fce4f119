import ArgumentParser
import Foundation
import Hummingbird
import Logging
import TernBench
import TernCore
import TernDelivery
import TernHTTP
import TernStorage

/// `tern`: webhooks as a service.
@main
struct Tern: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tern",
        abstract: "Webhooks as a service: sign, deliver, retry, and give every tenant a portal.",
        subcommands: [Serve.self, Migrate.self, Backup.self, Restore.self, Bench.self],
        defaultSubcommand: Serve.self
    )
}

/// Settings shared by the commands; each flag falls back to its `TERN_*` variable, then to the default.
struct Settings: ParsableArguments {
    @Option(help: "Address to listen on (TERN_HOST). Default 127.0.0.1.")
    var host: String?

    @Option(help: "Port to listen on (TERN_PORT). Default 8080.")
    var port: String?

    @Option(
        help: "sqlite:///path/file.sqlite, sqlite://:memory: or postgres://user:pass@host:port/db (TERN_DATABASE_URL). Default sqlite://tern.sqlite.")
    var database: String?

    @Option(help: "all, api or worker (TERN_ROLE). Default all.")
    var role: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error (TERN_LOG_LEVEL). Default info.")
    var logLevel: String?

    /// Builds the configuration, or fails with one line naming the bad setting.
    func configuration(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> TernConfiguration {
        guard let resources = TernConfiguration.locateResources(environment: environment) else {
            throw ConfigurationError("cannot find the Migrations/ folder; run from the Tern checkout or set TERN_RESOURCES_DIR")
        }
        var configuration = TernConfiguration(resourcesDirectory: resources)
        if let host = self.host ?? environment["TERN_HOST"] {
            guard !host.isEmpty else { throw ConfigurationError("TERN_HOST / --host must not be empty") }
            configuration.host = host
        }
        if let port = self.port ?? environment["TERN_PORT"] {
            guard let value = Int(port), (0...65535).contains(value) else {
                throw ConfigurationError("TERN_PORT / --port must be a port number from 0 (any free port) to 65535 (got '\(port)')")
            }
            configuration.port = value
        }
        if let database = self.database ?? environment["TERN_DATABASE_URL"] {
            configuration.databaseURL = database
        }
        _ = try DatabaseLocation(url: configuration.databaseURL)
        if let role = self.role ?? environment["TERN_ROLE"] {
            guard let value = Role(rawValue: role) else {
                throw ConfigurationError("TERN_ROLE / --role must be all, api or worker (got '\(role)')")
            }
            configuration.role = value
        }
        if let level = self.logLevel ?? environment["TERN_LOG_LEVEL"] {
            guard let value = Logger.Level(rawValue: level) else {
                throw ConfigurationError("TERN_LOG_LEVEL / --log-level must be trace, debug, info, notice, warning or error (got '\(level)')")
            }
            configuration.logLevel = value
        }
        configuration.adminKey = environment["TERN_ADMIN_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        if let adminKey = configuration.adminKey, adminKey.count < 16 {
            throw ConfigurationError("TERN_ADMIN_KEY must be at least 16 characters")
        }
        configuration.publicURL = environment["TERN_PUBLIC_URL"]
        if let url = configuration.publicURL, !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
            throw ConfigurationError("TERN_PUBLIC_URL must start with http:// or https:// (got '\(url)')")
        }
        configuration.encryptionKey = environment["TERN_ENCRYPTION_KEY"]
        configuration.dataDirectory = environment["TERN_DATA_DIR"]
        if let allow = try flag("TERN_ALLOW_PRIVATE_ENDPOINTS", environment) {
            configuration.allowPrivateEndpoints = allow
        }
        if let direct = try flag("TERN_DIRECT_DELIVERY", environment) {
            configuration.deliverySettings.direct = direct
        }
        if let onEventLoops = try flag("TERN_EVENT_LOOP_EXECUTOR", environment) {
            configuration.eventLoopExecutor = onEventLoops
        }
        if let proxies = environment["TERN_TRUSTED_PROXIES"], !proxies.isEmpty {
            configuration.trustedProxies = try proxies.split(separator: ",").map { text in
                let trimmed = text.trimmingCharacters(in: .whitespaces)
                guard let range = IPRange(trimmed) else {
                    throw ConfigurationError("TERN_TRUSTED_PROXIES must be IP addresses or CIDR ranges, comma-separated (got '\(trimmed)')")
                }
                return range
            }
        }
        if let endpoint = environment["TERN_OTEL_EXPORTER_OTLP_ENDPOINT"], !endpoint.isEmpty {
            guard endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://") else {
                throw ConfigurationError("TERN_OTEL_EXPORTER_OTLP_ENDPOINT must be an http:// or https:// URL (got '\(endpoint)')")
            }
            let format = environment["TERN_OTEL_EXPORTER_OTLP_PROTOCOL"] ?? "http/protobuf"
            guard ["http/protobuf", "http/json"].contains(format) else {
                throw ConfigurationError("TERN_OTEL_EXPORTER_OTLP_PROTOCOL must be http/protobuf or http/json (got '\(format)')")
            }
            configuration.tracing = TracingSettings(endpoint: endpoint, json: format == "http/json")
        }
        if let proxy = environment["TERN_DELIVERY_PROXY_URL"], !proxy.isEmpty {
            guard let parsed = DeliveryProxy(url: proxy) else {
                throw ConfigurationError("TERN_DELIVERY_PROXY_URL must be http://host:port, with user:password@ if the proxy asks for it")
            }
            configuration.deliverySettings.proxy = parsed
        }
        if let value = try wholeNumber("TERN_WORKER_CONCURRENCY", in: 1...10_000, environment) {
            configuration.deliverySettings.concurrency = value
        }
        if let value = try wholeNumber("TERN_DATABASE_POOL_SIZE", in: 2...1000, environment) {
            configuration.databaseConnections = value
        }
        for (name, keyPath) in [("TERN_RETENTION_DAYS", \RetentionPolicy.messageDays), ("TERN_DLQ_RETENTION_DAYS", \RetentionPolicy.deadLetterDays)] {
            if let days = try wholeNumber(name, in: 1...3650, of: "of days ", environment) { configuration.retention[keyPath: keyPath] = days }
        }
        if let value = try wholeNumber("TERN_DELIVERY_LEASE_SECONDS", in: 2...3600, environment) {
            configuration.deliverySettings.leaseSeconds = value
        }
        if let value = try wholeNumber("TERN_REQUEST_TIMEOUT_SECONDS", in: 1...3600, environment) {
            configuration.requestReadTimeout = .seconds(value)
        }
        if let value = try wholeNumber("TERN_SHUTDOWN_TIMEOUT_SECONDS", in: 1...3600, environment) {
            configuration.shutdownTimeout = .seconds(value)
        }
        return configuration
    }

    /// The yes or no the variable `name` holds (true or 1, false, 0 or empty), nil when it is unset.
    private func flag(_ name: String, _ environment: [String: String]) throws -> Bool? {
        guard let text = environment[name] else { return nil }
        guard ["true", "false", "1", "0", ""].contains(text.lowercased()) else {
            throw ConfigurationError("\(name) must be true or false (got '\(text)')")
        }
        return text.lowercased() == "true" || text == "1"
    }

    /// The whole number the variable `name` holds, nil when it is unset; outside `range` it is a configuration error.
    private func wholeNumber(
        _ name: String, in range: ClosedRange<Int>, of unit: String = "", _ environment: [String: String]
    ) throws -> Int? {
        guard let text = environment[name] else { return nil }
        guard let value = Int(text), range.contains(value) else {
            throw ConfigurationError("\(name) must be a whole number \(unit)from \(range.lowerBound) to \(range.upperBound) (got '\(text)')")
        }
        return value
    }
}

/// Prints a one-line error and exits with status 2, for settings and start-up failures.
func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("tern: \(message)\n".utf8))
    exit(2)
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the API, the portal and the delivery workers (migrations are applied first).",
        discussion: """
            Environment: TERN_HOST, TERN_PORT, TERN_DATABASE_URL, TERN_ROLE, TERN_ADMIN_KEY, TERN_PUBLIC_URL,
            TERN_ENCRYPTION_KEY (base64 of 32 bytes), TERN_ALLOW_PRIVATE_ENDPOINTS, TERN_DATA_DIR, TERN_LOG_LEVEL,
            TERN_TRUSTED_PROXIES (CIDRs whose X-Forwarded-For names an inbound request's client),
            TERN_DELIVERY_PROXY_URL (http://host:port of an HTTP CONNECT proxy every delivery goes through),
            TERN_LOG_FORMAT (text, the default, or json: one JSON object per line),
            TERN_OTEL_EXPORTER_OTLP_ENDPOINT (OTLP/HTTP traces URL, e.g. http://collector:4318/v1/traces; off when unset),
            TERN_OTEL_EXPORTER_OTLP_PROTOCOL (http/protobuf, the default, or http/json),
            TERN_WORKER_CONCURRENCY (deliveries being sent at once per process, default 128),
            TERN_DATABASE_POOL_SIZE (PostgreSQL connections per process, default 20, one more for the workers' claims, two for publishes),
            TERN_DELIVERY_LEASE_SECONDS (how long a worker holds a delivery before another may retry it, default 60),
            TERN_DIRECT_DELIVERY (true, the default: a process's worker takes its publishes' deliveries without claiming them),
            TERN_EVENT_LOOP_EXECUTOR (true, the default: the server's tasks run on NIO's event loops; false: on Swift's pool),
            TERN_RETENTION_DAYS (delivered messages, default 30), TERN_DLQ_RETENTION_DAYS (exhausted deliveries, default 7),
            TERN_REQUEST_TIMEOUT_SECONDS (time for a client to send a request's head, then its body, default 30),
            TERN_SHUTDOWN_TIMEOUT_SECONDS (how long SIGTERM lets work in flight finish before cancelling it, default 45).
            """
    )

    @OptionGroup var settings: Settings

    func run() async throws {
        do {
            switch ProcessInfo.processInfo.environment["TERN_LOG_FORMAT"] ?? "text" {
            case "json": LoggingSystem.bootstrap { TernLogHandler(label: $0, format: .json) }
            case "text", "": LoggingSystem.bootstrap { TernLogHandler(label: $0, format: .text) }
            case let other: throw ConfigurationError("TERN_LOG_FORMAT must be text or json (got '\(other)')")
            }
            let configuration = try self.settings.configuration()
            let app = try await buildApplication(configuration)
            try await runUntilStopped(app, gracefulFor: configuration.shutdownTimeout, onEventLoops: configuration.eventLoopExecutor)
        } catch let error as ConfigurationError {
            fail(error.description)
        } catch {
            fail("cannot start: \(describeDatabaseError(error))")
        }
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply the database migrations and exit.")

    @OptionGroup var settings: Settings

    func run() async throws {
        do {
            let configuration = try self.settings.configuration()
            var logger = Logger(label: "tern")
            logger.logLevel = configuration.logLevel
            let location = try DatabaseLocation(url: configuration.databaseURL)
            let migrator = try Migrator(directory: configuration.resourcesDirectory.appendingPathComponent("Migrations"))
            let database = try await Database.open(location, connections: configuration.databaseConnections, logger: logger)
            let applied = try await database.whileRunning { [logger] in try await migrator.migrate(database, logger: logger) }
            print(applied.isEmpty ? "Database is up to date." : "Applied: \(applied.joined(separator: ", "))")
        } catch let error as ConfigurationError {
            fail(error.description)
        } catch {
            fail("cannot migrate: \(describeDatabaseError(error))")
        }
    }
}

struct Backup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy the SQLite database to PATH while Tern runs (a consistent snapshot), and its key file to PATH.key.",
        discussion: """
            The copy holds every transaction committed before it began; publishing and delivery carry on meanwhile. The
            encryption key file (tern.key) is copied beside it when TERN_ENCRYPTION_KEY is not set: without the key the
            endpoint secrets in the copy cannot be read. For PostgreSQL use pg_dump.
            """
    )

    @OptionGroup var settings: Settings
    @Argument(help: "The new file to write (it must not exist).") var path: String

    func run() async throws {
        do {
            let configuration = try self.settings.configuration()
            let location = try DatabaseLocation(url: configuration.databaseURL)
            guard case .sqliteFile = location else { throw ConfigurationError("tern backup copies SQLite databases; for PostgreSQL use pg_dump") }
            guard !FileManager.default.fileExists(atPath: self.path) else { throw ConfigurationError("\(self.path) already exists") }
            var logger = Logger(label: "tern")
            logger.logLevel = .warning
            let database = try await Database.open(location, connections: configuration.databaseConnections, logger: logger)
            try await database.whileRunning { try await database.snapshot(to: self.path) }
            var copied = [self.path]
            let keyFile = configuration.keyFilePath(for: location)
            if configuration.encryptionKey == nil, FileManager.default.fileExists(atPath: keyFile) {
                try FileManager.default.copyItem(atPath: keyFile, toPath: self.path + ".key")
                try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: self.path + ".key")
                copied.append(self.path + ".key")
            }
            print("Backed up to \(copied.joined(separator: " and ")).")
        } catch let error as ConfigurationError {
            fail(error.description)
        } catch {
            fail("cannot back up: \(describeDatabaseError(error))")
        }
    }
}

struct Restore: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Put a backup in place of the SQLite database (and BACKUP.key in place of the key file); run it with Tern stopped.",
        discussion: "Refuses to replace an existing database unless --force. The next `tern serve` applies any newer migrations."
    )

    @OptionGroup var settings: Settings
    @Argument(help: "A file written by tern backup.") var backup: String
    @Flag(help: "Replace an existing database file.") var force = false

    func run() async throws {
        do {
            let configuration = try self.settings.configuration()
            guard case .sqliteFile(let target) = try DatabaseLocation(url: configuration.databaseURL) else {
                throw ConfigurationError("tern restore writes SQLite databases; for PostgreSQL use pg_restore")
            }
            let files = FileManager.default
            guard files.fileExists(atPath: self.backup) else { throw ConfigurationError("no backup at \(self.backup)") }
            if files.fileExists(atPath: target) {
                guard self.force else { throw ConfigurationError("\(target) exists; stop Tern and pass --force to replace it") }
                for file in [target, target + "-wal", target + "-shm"] { try? files.removeItem(atPath: file) }
            }
            try files.copyItem(atPath: self.backup, toPath: target)
            var restored = [target]
            let keyFile = configuration.keyFilePath(for: .sqliteFile(target))
            if files.fileExists(atPath: self.backup + ".key"), configuration.encryptionKey == nil {
                try? files.removeItem(atPath: keyFile)
                try files.createDirectory(atPath: (keyFile as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try files.copyItem(atPath: self.backup + ".key", toPath: keyFile)
                restored.append(keyFile)
            }
            print("Restored \(restored.joined(separator: " and ")).")
        } catch let error as ConfigurationError {
            fail(error.description)
        } catch {
            fail("cannot restore: \(error)")
        }
    }
}

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks on 127.0.0.1; prints one JSON object.",
        subcommands: [All.self, Growth.self, Auth.self, Portal.self, Controls.self, Sender.self, Receive.self],
        defaultSubcommand: All.self
    )

    /// This executable, for benchmarks that start `tern serve` as a child process.
    static var executable: URL { URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath() }

    struct All: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The whole benchmark (the default): ceilings, burst, fan-out and open loop, on SQLite and optionally PostgreSQL."
        )

        @Option(help: "Also measure on this PostgreSQL database (postgres://…).") var postgres: String?
        @Option(help: "Events in the closed-loop burst (one endpoint).") var events = 20_000
        @Option(help: "Events in the fan-out burst.") var fanoutEvents = 2_000
        @Option(help: "Endpoints of the fan-out tenant.") var fanoutEndpoints = 10
        @Option(help: "Endpoints of the wide tenant, which single publishes fan out to.") var wideFanoutEndpoints = 1_000
        @Option(help: "Single publishes to the wide tenant.") var wideFanoutPublishes = 5
        @Flag(help: "Also measure /livez and the publish burst with wrk (installed: apt-get install wrk).") var wrk = false
        @Option(help: "Seconds of each wrk run.") var wrkSeconds = 10
        @Flag(help: "Publish under a plan with a rate limit and a monthly quota (too high to refuse anything).") var limited = false
        @Option(help: "Concurrent keep-alive clients.") var concurrency = 64
        @Option(help: "Events per second in the open-loop run.") var rate = 1_000
        @Option(help: "Seconds of the open-loop run.") var seconds = 30
        @Option(help: "Approximate payload size in bytes.") var payloadBytes = 1_024

        func run() async throws {
            var options = Benchmark.Options(resources: Bench.resources(), executable: Bench.executable)
            options.postgresURL = self.postgres
            options.events = self.events
            options.fanoutEvents = self.fanoutEvents
            options.fanoutEndpoints = self.fanoutEndpoints
            options.wideFanoutEndpoints = self.wideFanoutEndpoints
            options.wideFanoutPublishes = self.wideFanoutPublishes
            options.wrk = self.wrk
            options.wrkSeconds = self.wrkSeconds
            options.limited = self.limited
            options.concurrency = self.concurrency
            options.rate = self.rate
            options.seconds = self.seconds
            options.payloadBytes = self.payloadBytes
            try Bench.printJSON(try await Benchmark.run(options))
        }
    }

    /// The checkout's `Migrations/` folder, or exit with one line.
    static func resources() -> URL {
        guard let resources = TernConfiguration.locateResources() else { fail("cannot find the Migrations/ folder") }
        return resources
    }

    /// The result as one line of JSON with sorted keys: the last line a benchmark prints.
    static func printJSON<T: Encodable>(_ result: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        print(String(decoding: try encoder.encode(result), as: UTF8.self))
    }

    struct Growth: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Publish and delivery cost as the store grows to a million delivered messages, then with many other endpoints; then pruning."
        )

        @Option(help: "Database URL (default: a temporary SQLite file).") var database: String?
        @Option(help: "Stored message counts to measure at, comma-separated.") var sizes = "0,100000,1000000"
        @Option(help: "Events in each step's burst.") var events = 5_000
        @Option(help: "Concurrent keep-alive clients.") var concurrency = 64
        @Option(help: "Endpoints added in other tenants for the last step.") var otherEndpoints = 1_000

        func run() async throws {
            var options = GrowthBenchmark.Options(resources: Bench.resources(), executable: Bench.executable)
            options.databaseURL = self.database
            options.sizes = self.sizes.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            options.events = self.events
            options.concurrency = self.concurrency
            options.otherEndpoints = self.otherEndpoints
            try Bench.printJSON(try await GrowthBenchmark.run(options))
        }
    }

    struct Portal: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Time the portal's pages for a tenant with many endpoints and deliveries (all on 127.0.0.1)."
        )

        @Option(help: "Database URL (default: a temporary SQLite file).") var database: String?
        @Option(help: "Endpoints of the tenant.") var endpoints = 100
        @Option(help: "Deliveries of the tenant (rounded up to a multiple of the endpoints).") var deliveries = 10_000
        @Option(help: "Timed requests per page.") var requests = 50

        func run() async throws {
            let resources = Bench.resources()
            let result = try await PortalBenchmark.run(
                executable: Bench.executable, resources: resources, databaseURL: self.database, endpoints: self.endpoints,
                deliveries: self.deliveries, requests: self.requests
            )
            try Bench.printJSON(result)
        }
    }

    struct Controls: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "What delivery controls cost: filtered fan-out (ten of 1,000 endpoints matching) and FIFO throughput."
        )

        @Option(help: "Database URL (default: a temporary SQLite file).") var database: String?
        @Option(help: "Events published in each fan-out scenario.") var events = 2_000
        @Option(help: "Events published to each FIFO endpoint.") var fifoEvents = 1_000
        @Option(help: "Concurrent keep-alive clients.") var concurrency = 64

        func run() async throws {
            var options = ControlsBenchmark.Options(resources: Bench.resources(), executable: Bench.executable)
            options.databaseURL = self.database
            options.events = self.events
            options.fifoEvents = self.fifoEvents
            options.concurrency = self.concurrency
            try Bench.printJSON(try await ControlsBenchmark.run(options))
        }
    }

    struct Sender: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "What an attempt costs the worker's sender, by HTTP client: Tern's own for plain http:// against async-http-client."
        )

        @Option(help: "Attempts measured in each round.") var deliveries = 50_000
        @Option(help: "Attempts in flight.") var concurrency = 64
        @Option(help: "Rounds of each client, alternating.") var rounds = 3

        func run() async throws {
            let result = try await SenderBenchmark.run(
                executable: Bench.executable, deliveries: self.deliveries, concurrency: self.concurrency, rounds: self.rounds)
            try Bench.printJSON(result)
        }
    }

    /// The receiver `tern bench sender` starts as its child.
    struct Receive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A receiver answering 204 at /hook on 127.0.0.1 (for tern bench sender).", shouldDisplay: false)

        @Option(help: "Port on 127.0.0.1.") var port: Int

        func run() async throws {
            try await SenderBenchmark.receive(port: self.port)
        }
    }

    struct Auth: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "What authentication costs: a first (argon2id) verification against the warm key cache."
        )

        @Option(help: "Database URL (default: a temporary SQLite file).") var database: String?
        @Option(help: "Keys verified for the first time (argon2id).") var keys = 10
        @Option(help: "Verifications of one key from the warm cache.") var iterations = 200_000

        func run() async throws {
            let resources = Bench.resources()
            let result = try await AuthBenchmark.run(
                resources: resources, databaseURL: self.database, keys: self.keys, warmIterations: self.iterations)
            try Bench.printJSON(result)
        }
    }
}
