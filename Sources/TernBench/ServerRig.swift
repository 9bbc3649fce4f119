import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import TernCore
import TernStorage

/// `tern serve` as a child process on a free port of 127.0.0.1 (all roles), a receiver in this process answering
/// 204 at `/hook`, and an organization on a plan without publish limits with its key and an application.
struct ServerRig: Sendable {
    let api: Toolkit.Client
    let key: String
    let app: String
    let receiverPort: Int
    let databaseURL: String
    let server: ChildServer

    static func run<T: Sendable>(
        executable: URL, resources: URL, databaseURL: String?, concurrency: Int = 64, receive: @escaping @Sendable (ByteBuffer) -> Void = { _ in },
        planLimits: String? = nil, _ body: (ServerRig) async throws -> T
    ) async throws -> T {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tern-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let (receiver, receiverPort) = try ServerRig.receiver(receive)
        let receiving = Task { try await receiver.runService(gracefulShutdownSignals: []) }
        defer { receiving.cancel() }

        let url = databaseURL ?? "sqlite://\(directory.path)/bench.sqlite"
        let admin = "bench-admin-" + Base64URL.encode(randomBytes(18))
        let port = try Toolkit.freePort()
        var environment = [
            "TERN_DATABASE_URL": url, "TERN_PORT": String(port), "TERN_ADMIN_KEY": admin, "TERN_ENCRYPTION_KEY": SecretBox.generateKeyBase64(),
            "TERN_ALLOW_PRIVATE_ENDPOINTS": "true", "TERN_LOG_LEVEL": "error", "TERN_RESOURCES_DIR": resources.path,
        ]
        // Set for the benchmark, they are the server's too (`TERN_DIRECT_DELIVERY=false` measures every delivery
        // claimed, `TERN_EVENT_LOOP_EXECUTOR=false` the server's tasks on Swift's global pool).
        for name in ["TERN_DIRECT_DELIVERY", "TERN_EVENT_LOOP_EXECUTOR"] {
            if let value = ProcessInfo.processInfo.environment[name] { environment[name] = value }
        }
        let server = try ChildServer.start(executable: executable, environment: environment, log: directory.appendingPathComponent("server.log"))
        defer { server.stop() }
        let client = HTTPClient(
            eventLoopGroup: HTTPClient.defaultEventLoopGroup,
            configuration: .init(
                connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(concurrency, 64))
            ))
        let outcome: Result<T, any Error>
        do {
            let api = Toolkit.Client(http: client, base: "http://127.0.0.1:\(port)")
            guard await api.waitForHealth() else { throw ConfigurationError("tern serve did not start: \(server.log)") }
            let (key, app) = try await ServerRig.application(api, admin: admin, limits: planLimits)
            let rig = ServerRig(api: api, key: key, app: app, receiverPort: receiverPort, databaseURL: url, server: server)
            outcome = .success(try await body(rig))
        } catch {
            outcome = .failure(error)
        }
        try? await client.shutdown()
        return try outcome.get()
    }

    /// A receiver on `port` (a free one when nil) of 127.0.0.1 answering 204 at `/hook`, handing each body to `receive`;
    /// not started.
    static func receiver(port: Int? = nil, _ receive: @escaping @Sendable (ByteBuffer) -> Void) throws -> (some ApplicationProtocol, Int) {
        let router = Router()
        router.post("hook") { request, _ -> HTTPResponse.Status in
            receive(try await request.body.collect(upTo: 1 << 20))
            return .noContent
        }
        let port = try port ?? Toolkit.freePort()
        return (Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: Self.quietLogger), port)
    }

    /// Through the admin API: a plan without limits (the benchmarks measure the engine, not the plan) or with
    /// `limits` (JSON members), an organization on it and an application, with an API key restricted to that
    /// application (as the Svix API takes it); returns (key, application id).
    static func application(_ api: Toolkit.Client, admin: String, limits: String? = nil) async throws -> (String, String) {
        let planLimits = limits ?? #""rate_limit_per_minute": null, "max_messages_per_month": null"#
        let (planStatus, planBody) = try await api.send(
            "/v1/admin/plans/bench", key: admin,
            #"{"name": "Bench", \#(planLimits), "max_endpoints": null, "max_applications": null}"#,
            method: .PUT
        )
        guard planStatus == 201 || planStatus == 200 else { throw ConfigurationError("cannot create the bench plan: \(planBody)") }
        let org = try await api.post("/v1/admin/organizations", key: admin, #"{"name": "bench", "plan": "bench"}"#)
        let setup = try await api.post("/v1/admin/organizations/\(org["id"]!)/api-keys", key: admin, #"{"name": "setup"}"#)["key"]!
        let app = try await api.post("/v1/applications", key: setup, #"{"name": "bench"}"#)["id"]!
        let key = try await api.post(
            "/v1/admin/organizations/\(org["id"]!)/api-keys", key: admin, #"{"name": "bench", "application_id": "\#(app)"}"#)["key"]!
        return (key, app)
    }

    /// Creates an endpoint of `tenant` at the receiver, with `extra` JSON members; returns its id.
    @discardableResult
    func endpoint(tenant: String, name: String? = nil, extra: String = "") async throws -> String {
        let named = name.map { #", "name": "\#($0)""# } ?? ""
        return try await self.api.post(
            "/v1/applications/\(self.app)/endpoints", key: self.key,
            #"{"tenant_id": "\#(tenant)", "url": "http://127.0.0.1:\#(self.receiverPort)/hook"\#(named)\#(extra)}"#
        )["id"] ?? ""
    }

    static var quietLogger: Logger {
        var logger = Logger(label: "bench")
        logger.logLevel = .critical
        return logger
    }

    /// Where the rig's application publishes.
    var eventsPath: String { "/v1/applications/\(self.app)/events" }

    var databaseKind: String { self.databaseURL.hasPrefix("postgres") ? "postgres" : "sqlite" }
}

/// A `tern serve` child process (or another subcommand's, `arguments`).
final class ChildServer: Sendable {
    let process: Process
    let logURL: URL

    private init(process: Process, logURL: URL) {
        self.process = process
        self.logURL = logURL
    }

    static func start(executable: URL, arguments: [String] = ["serve"], environment: [String: String], log: URL) throws -> ChildServer {
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = environment.merging(["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]) { $1 }
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return ChildServer(process: process, logURL: log)
    }

    var log: String { String((try? String(contentsOf: self.logURL, encoding: .utf8))?.suffix(2_000) ?? "") }

    /// SIGTERM, then up to 30 s for the process to end.
    func stop() {
        guard self.process.isRunning else { return }
        self.process.terminate()
        let deadline = Date().addingTimeInterval(30)
        while self.process.isRunning && Date() < deadline { usleep(20_000) }
        if self.process.isRunning { kill(self.process.processIdentifier, SIGKILL) }
    }

    /// The child's CPU time so far (user + system), in seconds.
    func cpuSeconds() -> Double {
        Toolkit.cpuSeconds(statFile: "/proc/\(self.process.processIdentifier)/stat")
    }

    /// The child's resident memory now and at its peak (VmRSS, VmHWM), in MiB.
    func residentMiB() -> (current: Double, peak: Double) {
        Toolkit.residentMiB(statusFile: "/proc/\(self.process.processIdentifier)/status")
    }
}
