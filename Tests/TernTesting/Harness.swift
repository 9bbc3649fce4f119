import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import SQLKit
import TernCore
import TernHTTP
import TernStorage
import Testing

/// The databases the API tests run on: SQLite always, PostgreSQL when `TERN_TEST_POSTGRES_URL` is set.
enum Backend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite, postgres

    static var available: [Backend] {
        ProcessInfo.processInfo.environment["TERN_TEST_POSTGRES_URL"].map { $0.isEmpty ? [.sqlite] : [.sqlite, .postgres] } ?? [.sqlite]
    }

    var testDescription: String { self.rawValue }

    /// A fresh, empty database for one test: a new SQLite file, or a new PostgreSQL database. Its name carries this
    /// process's id, so that a later test process removes it once this one has ended (`Leftovers`).
    func freshDatabaseURL() async throws -> String {
        await Leftovers.sweep.value
        switch self {
        case .sqlite:
            let directory = Leftovers.temporary("db")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            return "sqlite://\(directory.path)/tern.sqlite"
        case .postgres:
            let base = ProcessInfo.processInfo.environment["TERN_TEST_POSTGRES_URL"]!
            let name = "\(Leftovers.databasePrefix)\(UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16))"
            let database = try await Database.forTest(base)
            try await database.whileRunning {
                try await database.read { sql in try await sql.raw("CREATE DATABASE \(unsafeRaw: name)").run() }
            }
            var components = URLComponents(string: base)!
            components.path = "/" + name
            return components.string!
        }
    }

    /// Runs `body` with a fresh, empty database of this backend, migrated by nothing, its connections running.
    func withFreshDatabase<T: Sendable>(_ body: @Sendable (Database) async throws -> T) async throws -> T {
        let database = try await Database.forTest(try await self.freshDatabaseURL())
        return try await database.whileRunning { try await body(database) }
    }
}

/// What tests leave behind, removed when a later test process first asks for a database (which waits for it: a few
/// seconds after a run on PostgreSQL, each `DROP DATABASE` taking a checkpoint): each temporary file and directory
/// (`temporary(_:)`, SQLite databases among them) and each PostgreSQL database is named after the process that made
/// it (`tern-test-<pid>-…`, `tern_test_<pid>_…`) and goes once that process no longer runs, whether it ended or
/// crashed. A database still in use is not dropped (PostgreSQL refuses). Names from before they carried a process id
/// go too: databases at once, files and directories once a day old.
enum Leftovers {
    static let filePrefix = "tern-test-\(getpid())-"
    static let databasePrefix = "tern_test_\(getpid())_"

    /// A path in the temporary directory for this process's `name` (a file or a directory, made by the caller).
    static func temporary(_ name: String, suffix: String = "") -> URL {
        _ = Self.sweep
        return FileManager.default.temporaryDirectory.appendingPathComponent("\(Self.filePrefix)\(name)-\(UUID().uuidString)\(suffix)")
    }

    static let sweep: Task<Void, Never> = Task.detached(priority: .utility) {
        let temporary = FileManager.default.temporaryDirectory
        let dayAgo = Date().addingTimeInterval(-86_400)
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: temporary.path)) ?? [] {
            let url = temporary.appendingPathComponent(entry)
            if entry.hasPrefix("tern-test-") {
                if let owner = Leftovers.owner(entry.dropFirst("tern-test-".count), separator: "-"), Leftovers.processRuns(owner) { continue }
            } else if Leftovers.unowned.contains(where: { entry.hasPrefix($0) }) {
                let modified = (try? FileManager.default.attributesOfItem(atPath: url.path)[.modificationDate] as? Date) ?? Date()
                if modified > dayAgo { continue }
            } else {
                continue
            }
            try? FileManager.default.removeItem(at: url)
        }
        guard let base = ProcessInfo.processInfo.environment["TERN_TEST_POSTGRES_URL"], !base.isEmpty,
            let database = try? await Database.forTest(base)
        else { return }
        _ = try? await database.whileRunning {
            let names = try await database.read { sql in
                try await sql.raw("SELECT datname FROM pg_database WHERE datname LIKE 'tern\\_test\\_%'").all().map {
                    try $0.decode(column: "datname", as: String.self)
                }
            }
            for name in names {
                if let owner = Leftovers.owner(name.dropFirst("tern_test_".count), separator: "_"), Leftovers.processRuns(owner) { continue }
                _ = try? await database.read { sql in try await sql.raw("DROP DATABASE \(ident: name)").run() }
            }
        }
    }

    /// How the tests named their files before the names carried a process id.
    private static let unowned = [
        "tern-tests-", "tern-program-", "tern-worker-", "tern-handle-", "tern-secrets-", "tern-interop-", "tern-browser-", "tern-tls-",
        "tern-tracing-", "tern-operational-",
    ]

    /// The process id a leftover's name starts with, if it has one.
    private static func owner(_ rest: Substring, separator: Character) -> Int32? {
        guard let end = rest.firstIndex(of: separator) else { return nil }
        return Int32(rest[..<end])
    }

    private static func processRuns(_ pid: Int32) -> Bool {
        kill(pid, 0) == 0 || errno == EPERM
    }
}

extension Database {
    /// Opens a database for a test with a pool of `testDatabaseConnections`.
    static func forTest(_ url: String) async throws -> Database {
        try await Database.open(try DatabaseLocation(url: url), connections: testDatabaseConnections, logger: Logger(label: "test"))
    }
}

/// The PostgreSQL connections each Tern of a test keeps (`TERN_DATABASE_POOL_SIZE`). A test process runs dozens of
/// Terns at once against one server and shares its `max_connections` (500 in CI): at the default 20 each, the start
/// of a run reached 300, the limit then, and a health check failed. At 2 the run peaked at 211 connections, but one of
/// the two listens for notifications, and a `/health` waiting behind the worker's queries on the other ran past its
/// 2 s limit once in CI. Four leaves three for queries.
let testDatabaseConnections = 4

let testAdminKey = "test-admin-key-0123456789abcdef"
let testEncryptionKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

func testConfiguration(_ databaseURL: String) -> TernConfiguration {
    var configuration = TernConfiguration(resourcesDirectory: repositoryRoot)
    configuration.databaseURL = databaseURL
    configuration.databaseConnections = testDatabaseConnections
    configuration.adminKey = testAdminKey
    configuration.encryptionKey = testEncryptionKey
    configuration.allowPrivateEndpoints = true
    configuration.logLevel = .warning
    return configuration
}

/// Starts Tern on `backend` and runs `body` against it through HTTP (`.live`: on a real port on 127.0.0.1).
func withTern(
    _ backend: Backend, databaseURL: String? = nil, live: Bool = false, configure: (inout TernConfiguration) -> Void = { _ in },
    _ body: @escaping @Sendable (API) async throws -> Void
) async throws {
    let url: String
    if let databaseURL { url = databaseURL } else { url = try await backend.freshDatabaseURL() }
    var configuration = testConfiguration(url)
    configure(&configuration)
    let app = try await buildApplication(configuration)
    let databaseURL = configuration.databaseURL
    try await app.test(live ? .live : .router) { client in
        try await body(API(client: client, databaseURL: databaseURL))
    }
}

/// A response, with its JSON parsed.
struct Reply: @unchecked Sendable {
    var status: Int
    var headers: HTTPFields
    var text: String
    var json: Any?

    subscript(_ key: String) -> Any? { (self.json as? [String: Any])?[key] }
    func string(_ key: String) -> String? { self[key] as? String }
    var items: [[String: Any]] { (self["data"] as? [[String: Any]]) ?? [] }
    var fieldErrors: [String] { ((self["errors"] as? [[String: Any]]) ?? []).compactMap { $0["field"] as? String } }
    var problemType: String { self.string("type") ?? "" }
}

/// A small client for the Tern API inside tests.
struct API: Sendable {
    let client: any TestClientProtocol
    let databaseURL: String

    @discardableResult
    func call(
        _ method: HTTPRequest.Method, _ path: String, key: String? = nil, json: String? = nil,
        contentType: String? = "application/json", headers: [String: String] = [:]
    ) async throws -> Reply {
        var fields = HTTPFields()
        if let key { fields[.authorization] = "Bearer \(key)" }
        if json != nil, let contentType { fields[.contentType] = contentType }
        for (name, value) in headers { fields[HTTPField.Name(name)!] = value }
        return try await self.client.execute(uri: path, method: method, headers: fields, body: json.map { ByteBuffer(string: $0) }) { response in
            let text = String(buffer: response.body)
            return Reply(
                status: Int(response.status.code), headers: response.headers, text: text,
                json: text.isEmpty ? nil : try? JSONSerialization.jsonObject(with: Data(text.utf8))
            )
        }
    }

    func get(_ path: String, key: String?) async throws -> Reply { try await self.call(.get, path, key: key) }

    func post(_ path: String, key: String?, _ json: String, headers: [String: String] = [:]) async throws -> Reply {
        try await self.call(.post, path, key: key, json: json, headers: headers)
    }

    /// The port of a `.live` test server.
    var port: Int? { self.client.port }

    /// Creates an organization (on `plan`) and a `*` key for it; returns (organization id, key).
    func organization(
        _ name: String = "Acme", plan: String = "free", scopes: String? = nil, applicationID: String? = nil
    ) async throws -> (String, String) {
        let org = try await self.post("/v1/admin/organizations", key: testAdminKey, #"{"name": "\#(name)", "plan": "\#(plan)"}"#)
        try #require(org.status == 201, "\(org.text)")
        let orgID = try #require(org.string("id"))
        let key = try await self.createKey(orgID: orgID, scopes: scopes, applicationID: applicationID)
        return (orgID, key)
    }

    func createKey(orgID: String, scopes: String? = nil, applicationID: String? = nil) async throws -> String {
        var body = #"{"name": "test key""#
        if let scopes { body += #", "scopes": \#(scopes)"# }
        if let applicationID { body += #", "application_id": "\#(applicationID)""# }
        let reply = try await self.post("/v1/admin/organizations/\(orgID)/api-keys", key: testAdminKey, body + "}")
        try #require(reply.status == 201, "\(reply.text)")
        return try #require(reply.string("key"))
    }

    func application(_ key: String, name: String = "Shop", extra: String = "") async throws -> String {
        let reply = try await self.post("/v1/applications", key: key, #"{"name": "\#(name)"\#(extra)}"#)
        try #require(reply.status == 201, "\(reply.text)")
        return try #require(reply.string("id"))
    }

    func eventType(_ key: String, app: String, name: String) async throws {
        let reply = try await self.post("/v1/applications/\(app)/event-types", key: key, #"{"name": "\#(name)", "description": "d"}"#)
        try #require(reply.status == 201, "\(reply.text)")
    }

    func endpoint(_ key: String, app: String, tenant: String = "tenant-1", events: String = "[]") async throws -> Reply {
        try await self.post(
            "/v1/applications/\(app)/endpoints", key: key,
            #"{"tenant_id": "\#(tenant)", "url": "http://127.0.0.1:9/hook", "events": \#(events)}"#
        )
    }
}

extension API {
    /// A new organization with a key and an application that has the event type `order.created`; returns (key, app).
    func shop(_ applicationExtra: String = "") async throws -> (String, String) {
        let (_, key) = try await self.organization()
        let app = try await self.application(key, extra: applicationExtra)
        try await self.eventType(key, app: app, name: "order.created")
        return (key, app)
    }

    /// Publishes `payload` (raw JSON text) and returns the reply.
    func publish(
        _ key: String, app: String, type: String = "order.created", tenant: String = "tenant-1", payload: String = #"{"n": 1}"#,
        eventID: String? = nil, deliverAt: Timestamp? = nil, headers: [String: String] = [:]
    ) async throws -> Reply {
        var body = #"{"event_type": "\#(type)", "tenant_id": "\#(tenant)", "payload": \#(payload)"#
        if let eventID { body += #", "event_id": "\#(eventID)""# }
        if let deliverAt { body += #", "deliver_at": "\#(deliverAt)""# }
        return try await self.post("/v1/applications/\(app)/events", key: key, body + "}", headers: headers)
    }

    /// Creates an endpoint at `url` and returns (id, secret).
    func endpoint(_ key: String, app: String, url: String, tenant: String = "tenant-1", extra: String = "") async throws -> (String, String) {
        let reply = try await self.post(
            "/v1/applications/\(app)/endpoints", key: key, #"{"tenant_id": "\#(tenant)", "url": "\#(url)"\#(extra)}"#
        )
        try #require(reply.status == 201, "\(reply.text)")
        return (try #require(reply.string("id")), try #require(reply.string("secret")))
    }

    func delivery(_ key: String, app: String, _ id: String) async throws -> [String: Any] {
        (try await self.get("/v1/applications/\(app)/deliveries/\(id)", key: key).json as? [String: Any]) ?? [:]
    }

    /// The deliveries of one message.
    func deliveries(_ key: String, app: String, message: String) async throws -> [[String: Any]] {
        try await self.get("/v1/applications/\(app)/deliveries?message_id=\(message)", key: key).items
    }

    /// Waits until the delivery's status is `status`; returns the delivery last read.
    func waitForDelivery(_ key: String, app: String, _ id: String, status: String, timeout: Duration = .seconds(30)) async throws -> [String: Any] {
        var last: [String: Any] = [:]
        _ = try await eventually(timeout: timeout) {
            last = try await self.delivery(key, app: app, id)
            return last["status"] as? String == status
        }
        return last
    }

    /// Runs `body` with a store on this test's database, for what runs on a schedule rather than through HTTP.
    func withStore<T: Sendable>(_ body: @escaping @Sendable (Store) async throws -> T) async throws -> T {
        let database = try await Database.forTest(self.databaseURL)
        let store = Store(database: database, secretBox: SecretBox(keyBase64: testEncryptionKey)!)
        return try await database.whileRunning { try await body(store) }
    }

    /// Runs `body` on this test's database directly: for what no API shows yet, or to move time forward.
    func withDatabase<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        let database = try await Database.forTest(self.databaseURL)
        return try await database.whileRunning { try await database.write(body) }
    }
}

/// Runs a program to its end without blocking a thread of the concurrency pool (the tests share two cores); returns
/// its exit status and its output (standard output and error, through a file so that no pipe fills up).
func runProgram(_ executable: String, _ arguments: [String]) async throws -> (Int32, String) {
    let output = Leftovers.temporary("program", suffix: ".log")
    FileManager.default.createFile(atPath: output.path, contents: nil)
    let handle = try FileHandle(forWritingTo: output)
    defer { try? handle.close() }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [executable] + arguments
    process.standardOutput = handle
    process.standardError = handle
    let status = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int32, any Error>) in
        process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
        do {
            try process.run()
        } catch {
            process.terminationHandler = nil
            continuation.resume(throwing: error)
        }
    }
    return (status, (try? String(contentsOf: output, encoding: .utf8)) ?? "")
}

/// The value of the metric line `name` (without labels) in Prometheus text; 0 when it has none.
func metricValue(_ name: String, in metrics: String) -> Int {
    let line = metrics.split(separator: "\n").first { $0.hasPrefix(name + " ") }
    return line.flatMap { Double($0.split(separator: " ").last ?? "").map { Int($0) } } ?? 0
}
