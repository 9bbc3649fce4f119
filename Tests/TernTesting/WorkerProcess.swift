import Foundation
import NIOCore
import NIOPosix
import TernCore

/// A `tern serve --role worker` process on the test's database: what operators run to scale delivery out.
final class WorkerProcess: Sendable {
    let process: Process
    let logPath: String
    let port: Int

    /// The `tern` executable built beside the tests.
    static var executable: URL {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent(
            "tern")
        if FileManager.default.isExecutableFile(atPath: beside.path) { return beside }
        return repositoryRoot.appendingPathComponent(".build/debug/tern")
    }

    static func start(
        databaseURL: String, role: String = "worker", leaseSeconds: Int = 60, concurrency: Int = 128, environment: [String: String] = [:]
    ) throws -> WorkerProcess {
        let port = try freePort()
        let logPath = Leftovers.temporary("worker", suffix: ".log").path
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let process = Process()
        process.executableURL = Self.executable
        process.arguments = ["serve"]
        process.currentDirectoryURL = repositoryRoot
        process.environment = [
            "TERN_DATABASE_URL": databaseURL, "TERN_ROLE": role, "TERN_PORT": String(port), "TERN_ADMIN_KEY": testAdminKey,
            "TERN_ENCRYPTION_KEY": testEncryptionKey, "TERN_ALLOW_PRIVATE_ENDPOINTS": "true", "TERN_LOG_LEVEL": "info",
            "TERN_DELIVERY_LEASE_SECONDS": String(leaseSeconds), "TERN_WORKER_CONCURRENCY": String(concurrency),
            "TERN_DATABASE_POOL_SIZE": String(testDatabaseConnections),
            "TERN_RESOURCES_DIR": repositoryRoot.path, "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
        ].merging(environment) { $1 }
        let log = FileHandle(forWritingAtPath: logPath)
        process.standardOutput = log
        process.standardError = log
        try process.run()
        return WorkerProcess(process: process, logPath: logPath, port: port)
    }

    private init(process: Process, logPath: String, port: Int) {
        self.process = process
        self.logPath = logPath
        self.port = port
    }

    var log: String { (try? String(contentsOfFile: self.logPath, encoding: .utf8)) ?? "" }

    func kill() async {
        Foundation.kill(self.process.processIdentifier, SIGKILL)
        _ = await eventually(timeout: .seconds(10)) { !self.process.isRunning }
    }

    /// Sends SIGTERM and waits up to 30 s for the process to exit; returns its exit status (-1 if it is still running).
    func terminate() async -> Int32 {
        Foundation.kill(self.process.processIdentifier, SIGTERM)
        _ = await eventually(timeout: .seconds(30)) { !self.process.isRunning }
        return self.process.isRunning ? -1 : self.process.terminationStatus
    }

    /// Waits until `GET /health` answers (the worker has migrated and runs).
    func waitUntilReady() async -> Bool {
        await eventually(timeout: .seconds(30)) { self.log.contains("Server started") }
    }

    /// A port nobody listens on right now.
    static func freePort() throws -> Int {
        let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).wait()
        let port = channel.localAddress?.port ?? 0
        try channel.close().wait()
        return port
    }
}
