import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization
import TernCore

/// A real HTTP receiver on 127.0.0.1 (port chosen by the system) that records every request and answers as a
/// test scripts it: per path, a queue of answers, then a default.
final class Receiver: Sendable {
    /// A request as it arrived.
    struct Received: Sendable {
        var path: String
        var headers: HTTPFields
        var body: [UInt8]
        var at: ContinuousClock.Instant

        func header(_ name: String) -> String? { self.headers[HTTPField.Name(name)!] }
        var messageID: String { self.header("webhook-id") ?? "" }
    }

    /// An answer: status, headers, body, and how long to wait before answering.
    struct Answer: Sendable {
        var status: Int = 200
        var headers: [String: String] = [:]
        var body: String = "ok"
        var delay: Duration = .zero
    }

    struct State {
        var received: [Received] = []
        var scripts: [String: [Answer]] = [:]
        var defaults: [String: Answer] = [:]
    }

    let state = Mutex(State())
    let port: Int
    let task: Task<Void, any Error>

    private init(port: Int, task: Task<Void, any Error>) {
        self.port = port
        self.task = task
    }

    /// Starts a receiver; `stop()` it at the end.
    static func start() async throws -> Receiver {
        let holder = Mutex<Receiver?>(nil)
        let (portStream, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let router = Router()
        router.post("**") { request, context -> Response in
            let receiver = holder.withLock { $0 }!
            let body = try await request.body.collect(upTo: 16 << 20)
            let answer = receiver.arrived(
                Received(
                    path: request.uri.path, headers: request.headers, body: Array(body.readableBytesView), at: .now
                ))
            if answer.delay > .zero { try await Task.sleep(for: answer.delay) }
            var headers = HTTPFields()
            for (name, value) in answer.headers { headers[HTTPField.Name(name)!] = value }
            return Response(status: .init(code: answer.status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: answer.body)))
        }
        var logger = Logger(label: "receiver")
        logger.logLevel = .critical
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "receiver"),
            onServerRunning: { channel in
                portContinuation.yield(channel.localAddress?.port ?? 0)
                portContinuation.finish()
            },
            logger: logger
        )
        let task = Task { try await app.runService(gracefulShutdownSignals: []) }
        var iterator = portStream.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else { throw CancellationError() }
        let receiver = Receiver(port: port, task: task)
        holder.withLock { $0 = receiver }
        return receiver
    }

    func stop() async {
        self.task.cancel()
        _ = await self.task.result
    }

    /// `http://127.0.0.1:<port><path>`.
    func url(_ path: String = "/hook") -> String { "http://127.0.0.1:\(self.port)\(path)" }

    /// Answers `path` with `answers` in turn, then with `then` (default 200).
    func script(_ path: String, _ answers: [Answer] = [], then: Answer = Answer()) {
        self.state.withLock { state in
            state.scripts[path] = answers
            state.defaults[path] = then
        }
    }

    func arrived(_ request: Received) -> Answer {
        self.state.withLock { state -> Answer in
            state.received.append(request)
            var answer = state.defaults[request.path] ?? Answer()
            if var queue = state.scripts[request.path], !queue.isEmpty {
                answer = queue.removeFirst()
                state.scripts[request.path] = queue
            }
            return answer
        }
    }

    var received: [Received] { self.state.withLock { $0.received } }

    func received(path: String) -> [Received] { self.received.filter { $0.path == path } }

    /// Waits until `count` requests have arrived in all, or `timeout` passes; returns what arrived.
    @discardableResult
    func waitFor(_ count: Int, timeout: Duration = .seconds(30)) async -> [Received] {
        _ = await eventually(timeout: timeout) { self.received.count >= count }
        return self.received
    }
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes; for database states no event announces.
func eventually(timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}
