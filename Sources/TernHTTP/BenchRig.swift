import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import TernCore
import TernStorage

/// What the benchmarks run against: Tern (all roles, on a temporary SQLite file unless a database URL is given)
/// and a receiver answering 204 at `/hook`, both on 127.0.0.1 in this process, with an organization on a plan
/// without publish limits, its API key and an application.
struct BenchRig: Sendable {
    let api: DeliveryBenchmark.Client
    let key: String
    let app: String
    let receiverPort: Int
    let databaseKind: String

    /// Starts everything, runs `body`, and stops everything (also when `body` throws). `receive` sees each body
    /// the receiver gets.
    static func run<T: Sendable>(
        resources: URL, databaseURL: String?, connections: Int = 64, receive: @escaping @Sendable (ByteBuffer) -> Void = { _ in },
        _ body: (BenchRig) async throws -> T
    ) async throws -> T {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tern-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let (receiver, receiverPort) = try Self.receiver(receive)
        var configuration = TernConfiguration(resourcesDirectory: resources)
        configuration.databaseURL = databaseURL ?? "sqlite://\(directory.path)/bench.sqlite"
        configuration.port = try DeliveryBenchmark.freePort()
        configuration.adminKey = "bench-admin-" + Base64URL.encode(randomBytes(18))
        configuration.encryptionKey = SecretBox.generateKeyBase64()
        configuration.allowPrivateEndpoints = true
        configuration.logLevel = .error
        let tern = try await buildApplication(configuration)
        let services = ServiceGroup(configuration: .init(services: [receiver, tern], logger: Self.quietLogger))
        let running = Task { try await services.run() }
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: .init(
            connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: connections)
        ))
        let outcome: Result<T, any Error>
        do {
            let api = DeliveryBenchmark.Client(http: client, base: "http://127.0.0.1:\(configuration.port)")
            guard await api.waitForHealth() else { throw ConfigurationError("Tern did not start") }
            let (key, app) = try await Self.application(api, admin: configuration.adminKey!)
            let rig = BenchRig(
                api: api, key: key, app: app, receiverPort: receiverPort,
                databaseKind: configuration.databaseURL.hasPrefix("postgres") ? "postgres" : "sqlite"
            )
            outcome = .success(try await body(rig))
        } catch {
            outcome = .failure(error)
        }
        try? await client.shutdown()
        await services.triggerGracefulShutdown()
        _ = await running.result
        return try outcome.get()
    }

    static var quietLogger: Logger {
        var logger = Logger(label: "bench")
        logger.logLevel = .critical
        return logger
    }

    /// A receiver on a free port of 127.0.0.1 answering 204 at `/hook`, handing each body to `receive`; not started.
    static func receiver(_ receive: @escaping @Sendable (ByteBuffer) -> Void) throws -> (some ApplicationProtocol, Int) {
        let router = Router()
        router.post("hook") { request, _ -> HTTPResponse.Status in
            receive(try await request.body.collect(upTo: 1 << 20))
            return .noContent
        }
        let port = try DeliveryBenchmark.freePort()
        return (Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: Self.quietLogger), port)
    }

    /// Through the admin API: a plan without limits (the benchmarks measure the engine, not the plan), an
    /// organization on it, its API key and an application; returns (key, application id).
    static func application(_ api: DeliveryBenchmark.Client, admin: String) async throws -> (String, String) {
        let (planStatus, planBody) = try await api.send(
            "/v1/admin/plans/bench", key: admin,
            #"{"name": "Bench", "rate_limit_per_minute": null, "max_messages_per_month": null, "max_endpoints": null, "max_applications": null}"#,
            method: .PUT
        )
        guard planStatus == 201 || planStatus == 200 else { throw ConfigurationError("cannot create the bench plan: \(planBody)") }
        let org = try await api.post("/v1/admin/organizations", key: admin, #"{"name": "bench", "plan": "bench"}"#)
        let key = try await api.post("/v1/admin/organizations/\(org["id"]!)/api-keys", key: admin, #"{"name": "bench"}"#)["key"]!
        let app = try await api.post("/v1/applications", key: key, #"{"name": "bench"}"#)["id"]!
        return (key, app)
    }

    /// Creates an endpoint of `tenant` at the receiver.
    func endpoint(tenant: String = "tenant-1", name: String? = nil) async throws {
        let named = name.map { #", "name": "\#($0)""# } ?? ""
        _ = try await self.api.post("/v1/applications/\(self.app)/endpoints", key: self.key,
                                    #"{"tenant_id": "\#(tenant)", "url": "http://127.0.0.1:\#(self.receiverPort)/hook"\#(named)}"#)
    }
}
