import HTTPTypes
import Hummingbird
import Synchronization
import TernStorage

/// `GET /health`: the process and its database: that it answers, and that it accepts writes (a full disk answers
/// reads while refusing every write). The write check runs at most once a second; health recovers by itself with the
/// first write that succeeds again.
struct HealthController {
    let database: Database
    let lastWriteCheck = WriteCheckCache()

    /// The last write check and when it ran, shared by the requests of one process.
    final class WriteCheckCache: Sendable {
        let state = Mutex<(at: ContinuousClock.Instant, check: Check)?>(nil)
    }

    func addRoutes(to router: Router<TernRequestContext>) {
        router.get("health", use: self.health)
        // Liveness: the process answers HTTP, nothing else checked (no database), for orchestrators and benchmarks.
        router.get("livez") { _, _ in "ok" }
    }

    struct Check: Encodable {
        var status: String
        var latencyMS: Double?
        var error: String?

        enum CodingKeys: String, CodingKey {
            case status
            case latencyMS = "latency_ms"
            case error
        }
    }

    struct Health: Encodable {
        var status: String
        var checks: [String: Check]
    }

    @Sendable func health(_ request: Request, context: TernRequestContext) async throws -> Response {
        let database = self.database
        let check = await Self.timed(failure: "unreachable") { try await database.ping() }
        var checks = ["database": check]
        if check.status == "ok" { checks["database_writes"] = await self.writeCheck() }
        let healthy = checks.values.allSatisfy { $0.status == "ok" }
        return try JSONResponse.make(
            Health(status: healthy ? "ok" : "degraded", checks: checks),
            status: healthy ? .ok : .serviceUnavailable
        )
    }

    /// Writes the probe row, or reuses a result under a second old.
    func writeCheck() async -> Check {
        if let cached = self.lastWriteCheck.state.withLock({ $0 }), ContinuousClock.now - cached.at < .seconds(1) { return cached.check }
        let database = self.database
        let check = await Self.timed(failure: "refuses writes") { try await database.probeWrite() }
        self.lastWriteCheck.state.withLock { $0 = (ContinuousClock.now, check) }
        return check
    }

    /// Runs one check with a 2-second limit: its latency, or why it failed.
    static func timed(failure: String, _ body: @escaping @Sendable () async throws -> Void) async -> Check {
        let start = ContinuousClock.now
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await body() }
                group.addTask {
                    try await Task.sleep(for: .seconds(2))
                    throw CancellationError()
                }
                try await group.next()
                group.cancelAll()
            }
            let elapsed = ContinuousClock.now - start
            let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
            return Check(status: "ok", latencyMS: (milliseconds * 100).rounded() / 100, error: nil)
        } catch {
            return Check(status: "error", latencyMS: nil, error: error is CancellationError ? "timed out after 2 s" : failure)
        }
    }
}
