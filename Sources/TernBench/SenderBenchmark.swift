import Foundation
import Hummingbird
import Synchronization
import TernCore
import TernDelivery
import TernStorage

/// What one attempt costs the worker's sender, by HTTP client (`tern bench sender`): signed 1 KB deliveries to a
/// receiver answering 204 in a child process (`tern bench receive`), so that this process's CPU is the sender's alone.
/// Rounds alternate the two clients, so that the machine's drift falls on both.
public enum SenderBenchmark {
    public struct Result: Encodable, Sendable {
        var deliveries: Int
        var concurrency: Int
        /// CPU per attempt of each round, in µs: `PlainHTTPClient` (what a plain `http://` receiver gets).
        var plain_http_cpu_per_attempt_us: [Double]
        /// The same through async-http-client (what `https`, mTLS and the proxy get).
        var async_http_client_cpu_per_attempt_us: [Double]
        var plain_http_attempts_per_second: [Double]
        var async_http_client_attempts_per_second: [Double]
    }

    public static func run(executable: URL, deliveries: Int, concurrency: Int, rounds: Int) async throws -> Result {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tern-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let port = try Toolkit.freePort()
        let receiver = try ChildServer.start(
            executable: executable, arguments: ["bench", "receive", "--port", String(port)], environment: [:],
            log: directory.appendingPathComponent("receiver.log"))
        defer { receiver.stop() }
        let url = "http://127.0.0.1:\(port)/hook"
        let payload = #"{"t":0,"data":""# + String(repeating: "x", count: 1_000) + #""}"#
        let secret = "whsec_" + Base64URL.encode(randomBytes(24))
        let job: @Sendable (Int) -> DeliveryJob = { index in
            DeliveryJob(
                deliveryID: "dlv_bench\(index)", messageID: "msg_bench\(index)", endpointID: "ep_bench", organizationID: "org_bench",
                applicationID: "app_bench", tenantID: "tenant", eventType: "bench.event", payload: payload, url: url, headers: [:],
                timeoutSeconds: 30, secrets: [secret], attemptCount: 0, trigger: .scheduled, retrySchedule: RetrySchedule.standard,
                failureThreshold: 20, leaseToken: "lease", leaseExpiries: 0)
        }
        var result = Result(
            deliveries: deliveries, concurrency: concurrency, plain_http_cpu_per_attempt_us: [], async_http_client_cpu_per_attempt_us: [],
            plain_http_attempts_per_second: [], async_http_client_attempts_per_second: [])
        // The receiver is up when an attempt is answered.
        let probe = WebhookSender.make(concurrency: 1, allowPrivateEndpoints: true, userAgent: "Tern/bench", plainHTTP: false)
        let up = await Toolkit.until(timeout: .seconds(30)) { await probe.attempt(job(0)).statusCode == 204 }
        try await probe.shutdown()
        guard up else { throw ConfigurationError("tern bench receive did not start: \(receiver.log)") }
        for round in 0..<(rounds * 2) {
            let plain = round % 2 == 0
            let sender = WebhookSender.make(concurrency: concurrency, allowPrivateEndpoints: true, userAgent: "Tern/bench", plainHTTP: plain)
            let measured: Swift.Result<(cpu: Double, seconds: Double, answered: Int), any Error>
            do {
                // Connections made and the code paths warmed before the measure.
                _ = try await Self.attempts(sender, count: concurrency * 4, concurrency: concurrency, job)
                let cpu = Toolkit.cpuSeconds()
                let start = ContinuousClock.now
                let answered = try await Self.attempts(sender, count: deliveries, concurrency: concurrency, job)
                measured = .success((Toolkit.cpuSeconds() - cpu, (ContinuousClock.now - start).seconds, answered))
            } catch {
                measured = .failure(error)
            }
            try await sender.shutdown()
            let (cpu, seconds, answered) = try measured.get()
            guard answered == deliveries else { throw ConfigurationError("\(deliveries - answered) attempts were not answered 204") }
            let perAttempt = (cpu / Double(deliveries) * 1e7).rounded() / 10
            let rate = (Double(deliveries) / seconds).rounded()
            if plain {
                result.plain_http_cpu_per_attempt_us.append(perAttempt)
                result.plain_http_attempts_per_second.append(rate)
            } else {
                result.async_http_client_cpu_per_attempt_us.append(perAttempt)
                result.async_http_client_attempts_per_second.append(rate)
            }
        }
        return result
    }

    /// Attempts answered 204, of `count` from `concurrency` tasks.
    static func attempts(_ sender: WebhookSender, count: Int, concurrency: Int, _ job: @escaping @Sendable (Int) -> DeliveryJob) async throws -> Int {
        let answered = Atomic(0)
        try await Toolkit.closedLoop(count: count, concurrency: concurrency) { index in
            let record = await sender.attempt(job(index))
            if record.statusCode == 204 { answered.add(1, ordering: .relaxed) }
        }
        return answered.load(ordering: .relaxed)
    }

    /// The receiver of `tern bench receive`: 204 at `/hook` on 127.0.0.1:`port`, until SIGTERM or until the process
    /// that started it has ended (a benchmark that crashed does not leave it behind).
    public static func receive(port: Int) async throws {
        let parent = getppid()
        Task.detached {
            while getppid() == parent { try? await Task.sleep(for: .seconds(1)) }
            exit(0)
        }
        let (application, _) = try ServerRig.receiver(port: port) { _ in }
        try await application.runService()
    }
}
