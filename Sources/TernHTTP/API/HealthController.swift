import HTTPTypes
import Hummingbird
import TernStorage

/// `GET /health`: the process and its database.
struct HealthController {
    let database: Database

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
        let start = ContinuousClock.now
        let database = self.database
        let check: Check
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await database.ping() }
                group.addTask {
                    try await Task.sleep(for: .seconds(2))
                    throw CancellationError()
                }
                try await group.next()
                group.cancelAll()
            }
            let elapsed = ContinuousClock.now - start
            let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
            check = Check(status: "ok", latencyMS: (milliseconds * 100).rounded() / 100, error: nil)
        } catch {
            check = Check(status: "error", latencyMS: nil, error: error is CancellationError ? "timed out after 2 s" : "unreachable")
        }
        let healthy = check.status == "ok"
        return try JSONResponse.make(
            Health(status: healthy ? "ok" : "degraded", checks: ["database": check]),
            status: healthy ? .ok : .serviceUnavailable
        )
    }
}
