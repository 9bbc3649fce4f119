import Logging
import NIOCore
import PostgresKit
import PostgresNIO
import SQLKit
import Synchronization
import TernCore

/// A PostgreSQL connection that refuses queries once it has closed. PostgresNIO 1.33 drops a query written to a
/// closed channel without failing it, so the query's caller would wait forever: after a failed statement (the server
/// restarting, say) a transaction's `ROLLBACK`, or the next statement of a batch, would hang. Checking first turns
/// that into an error at once; `OperationWatch` covers the instant between the check and the write.
struct LiveConnection: SQLDatabase {
    let connection: PostgresConnection
    let database: any SQLDatabase

    init(_ connection: PostgresConnection) {
        self.connection = connection
        self.database = connection.sql()
    }

    var logger: Logger { self.database.logger }
    var eventLoop: any EventLoop { self.database.eventLoop }
    var version: (any SQLDatabaseReportedVersion)? { self.database.version }
    var dialect: any SQLDialect { self.database.dialect }
    var queryLogLevel: Logger.Level? { self.database.queryLogLevel }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) -> EventLoopFuture<Void> {
        guard !self.connection.isClosed else { return self.eventLoop.makeFailedFuture(OperationWatch.closed) }
        return self.database.execute(sql: query, onRow)
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) async throws {
        guard !self.connection.isClosed else { throw OperationWatch.closed }
        if let prepared = query as? Prepared, try await self.runPrepared(prepared, onRow) { return }
        try await self.database.execute(sql: query, onRow)
    }
}

/// Database operations in flight on PostgreSQL. Each runs in a task of its own, and its caller waits for the first
/// of: the operation's end, or `timeout` passing (checked once a second by `sweep`), when the caller gets 503, the
/// connection is closed, and the operation is abandoned. So a query that never returns (see `LiveConnection`)
/// holds up neither its caller nor what queues behind it (the publish group commit, a worker's loop).
final class OperationWatch: Sendable {
    static let closed = TernError.unavailable("the database connection closed")

    final class Operation: Sendable {
        let started = ContinuousClock.now
        let connection: PostgresConnection
        let continuation: Mutex<CheckedContinuation<any Sendable, any Error>?>
        let task = Mutex<Task<Void, Never>?>(nil)

        init(_ connection: PostgresConnection, _ continuation: CheckedContinuation<any Sendable, any Error>) {
            self.connection = connection
            self.continuation = Mutex(continuation)
        }

        /// Resumes the caller once; later calls do nothing.
        func finish(_ result: Result<any Sendable, any Error>) -> Bool {
            guard let continuation = self.continuation.withLock({ $0.take() }) else { return false }
            continuation.resume(with: result)
            return true
        }
    }

    let timeout: Duration
    let logger: Logger
    let inFlight = Mutex<[ObjectIdentifier: Operation]>([:])

    init(timeout: Duration, logger: Logger) {
        self.timeout = timeout
        self.logger = logger
    }

    func run<T: Sendable>(_ connection: PostgresConnection, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let box = Mutex<Operation?>(nil)
        let value = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<any Sendable, any Error>) in
                let operation = Operation(connection, continuation)
                box.withLock { $0 = operation }
                let key = ObjectIdentifier(operation)
                self.inFlight.withLock { $0[key] = operation }
                operation.task.withLock {
                    $0 = Task(executorPreference: PreferredExecutor.current) {
                        let result: Result<any Sendable, any Error>
                        do { result = .success(try await body()) } catch { result = .failure(error) }
                        self.inFlight.withLock { _ = $0.removeValue(forKey: key) }
                        _ = operation.finish(result)
                    }
                }
            }
        } onCancel: {
            box.withLock { $0 }?.task.withLock { $0 }?.cancel()
        }
        return value as! T
    }

    /// Abandons the operations older than `timeout`, once a second, until the task is cancelled.
    func sweep() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            let now = ContinuousClock.now
            let stale = self.inFlight.withLock { inFlight -> [Operation] in
                let stale = inFlight.values.filter { now - $0.started > self.timeout }
                for operation in stale { inFlight.removeValue(forKey: ObjectIdentifier(operation)) }
                return stale
            }
            for operation in stale where operation.finish(.failure(TernError.unavailable("the database did not answer in time"))) {
                self.logger.error(
                    "a database operation did not return in time; abandoned it and closed its connection", metadata: ["timeout": "\(self.timeout)"])
                operation.task.withLock { $0 }?.cancel()
                operation.connection.close().whenComplete { _ in }
            }
        }
    }
}
