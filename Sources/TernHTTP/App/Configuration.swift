import Foundation
import Logging
import TernCore
import TernDelivery
import TernStorage

/// Which parts of Tern a process runs.
public enum Role: String, Sendable, CaseIterable {
    /// API, portal and delivery workers.
    case all
    /// The HTTP API and portal only.
    case api
    /// Delivery workers only (with `/health` and `/metrics`).
    case worker
}

/// Everything a Tern process is configured with, from flags and `TERN_*` variables.
public struct TernConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    public var databaseURL = "sqlite://tern.sqlite"
    /// PostgreSQL connections this process keeps for requests, recording and housekeeping (`TERN_DATABASE_POOL_SIZE`);
    /// the workers' claims have one more of their own, and publishes two (`Database.postgresPublishConcurrency`).
    public var databaseConnections = Database.defaultConnections
    public var role = Role.all
    /// The operator key; when nil one is generated on first start and printed once.
    public var adminKey: String?
    /// Base of portal and ingress URLs; defaults to `http://host:port`.
    public var publicURL: String?
    /// Base64 of 32 bytes; when nil a key is generated once into `dataDirectory`.
    public var encryptionKey: String?
    /// Lets endpoints on loopback and private addresses receive deliveries.
    public var allowPrivateEndpoints = false
    /// Proxies (`TERN_TRUSTED_PROXIES`) whose `X-Forwarded-For` names the client of an inbound request.
    public var trustedProxies: [IPRange] = []
    /// OpenTelemetry tracing (`TERN_OTEL_EXPORTER_OTLP_ENDPOINT`); nil: off, at no cost.
    public var tracing: TracingSettings?
    /// Where a generated encryption key is kept; defaults to the SQLite file's directory, else the working directory.
    public var dataDirectory: String?
    /// The folder holding `Migrations/`, `Templates/` and `Public/`.
    public var resourcesDirectory: URL
    public var logLevel = Logger.Level.info
    /// How long a client may take to send a request's head (from connecting, or from the previous answer) and then
    /// its body; a connection that takes longer is closed.
    public var requestReadTimeout = Duration.seconds(30)
    /// How long SIGTERM waits for deliveries in flight (and everything else) to finish before cancelling them.
    public var shutdownTimeout = Duration.seconds(45)
    /// How long delivered messages and dead-lettered deliveries are kept.
    public var retention = RetentionPolicy.standard
    /// Whether the server's tasks run on NIO's event loops (`EventLoopExecutor`, `TERN_EVENT_LOOP_EXECUTOR`) rather
    /// than on Swift's global pool.
    public var eventLoopExecutor = true
    /// The delivery workers' settings; `allowPrivateEndpoints` is copied in from above.
    public var deliverySettings = DeliveryWorkerSettings()

    /// The workers' settings with the SSRF switch applied.
    var delivery: DeliveryWorkerSettings {
        var settings = self.deliverySettings
        settings.allowPrivateEndpoints = self.allowPrivateEndpoints
        return settings
    }

    public init(resourcesDirectory: URL) {
        self.resourcesDirectory = resourcesDirectory
    }

    /// Finds the folder with `Migrations/`: `TERN_RESOURCES_DIR`, the working directory or one of its parents,
    /// or a parent of the executable's folder (so `.build/debug/tern` finds the checkout it was built in).
    public static func locateResources(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL? {
        if let explicit = environment["TERN_RESOURCES_DIR"] { return URL(fileURLWithPath: explicit) }
        var candidates: [URL] = []
        var directory = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        for _ in 0..<4 {
            candidates.append(directory)
            directory.deleteLastPathComponent()
        }
        var executable = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<5 {
            candidates.append(executable)
            executable.deleteLastPathComponent()
        }
        return candidates.first { FileManager.default.fileExists(atPath: $0.appendingPathComponent("Migrations").path) }
    }

    /// The public base URL without a trailing slash.
    public var publicBaseURL: String {
        let base = self.publicURL ?? "http://\(self.host):\(self.port)"
        return base.hasSuffix("/") ? String(base.dropLast()) : base
    }

    /// Where the generated encryption key is kept when `TERN_ENCRYPTION_KEY` is not set: `tern.key` in
    /// `TERN_DATA_DIR`, else beside the SQLite file, else in the working directory.
    public func keyFilePath(for location: DatabaseLocation) -> String {
        let directory: String
        if let dataDirectory {
            directory = dataDirectory
        } else if case .sqliteFile(let path) = location {
            let parent = (path as NSString).deletingLastPathComponent
            directory = parent.isEmpty ? "." : parent
        } else {
            directory = "."
        }
        return (directory as NSString).appendingPathComponent("tern.key")
    }

    /// Checks the settings and loads (or, on first start, creates) the encryption key.
    func secretBox(for location: DatabaseLocation, logger: Logger) throws -> SecretBox {
        if let encryptionKey {
            guard let box = SecretBox(keyBase64: encryptionKey) else {
                throw ConfigurationError("TERN_ENCRYPTION_KEY must be base64 of exactly 32 bytes (try: openssl rand -base64 32)")
            }
            return box
        }
        let path = self.keyFilePath(for: location)
        if let existing = try? String(contentsOfFile: path, encoding: .utf8) {
            guard let box = SecretBox(keyBase64: existing) else {
                throw ConfigurationError("the encryption key file \(path) is not base64 of 32 bytes")
            }
            return box
        }
        let key = SecretBox.generateKeyBase64()
        guard FileManager.default.createFile(atPath: path, contents: Data((key + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ConfigurationError("cannot write the generated encryption key to \(path); set TERN_ENCRYPTION_KEY")
        }
        logger.warning("TERN_ENCRYPTION_KEY is not set: generated one into \(path). Production must set TERN_ENCRYPTION_KEY (and keep it safe).")
        return SecretBox(keyBase64: key)!
    }
}
