import Logging
import NIOCore
import SQLKit
import SQLiteKit
import Synchronization
import TernCore

/// SQLite connections: one writer (transactions take turns on it) and a few readers, which WAL lets read
/// while the writer writes. An in-memory database has only the writer.
final class SQLitePool: Sendable {
    let writer: SQLiteConnection
    let writerLock = AsyncSemaphore(permits: 1)
    let readers: Mutex<[SQLiteConnection]>
    let readerPermits: AsyncSemaphore
    let hasReaders: Bool
    let closed = Mutex(false)

    private init(writer: SQLiteConnection, readers: [SQLiteConnection]) {
        self.writer = writer
        self.readers = Mutex(readers)
        self.readerPermits = AsyncSemaphore(permits: max(readers.count, 1))
        self.hasReaders = !readers.isEmpty
    }

    static func open(path: String?, readers: Int, logger: Logger) async throws -> SQLitePool {
        let storage: SQLiteConnection.Storage = path.map { .file(path: $0) } ?? .memory
        let writer = try await SQLiteConnection.open(storage: storage, logger: logger)
        if path != nil {
            _ = try await writer.sql().raw("PRAGMA journal_mode=WAL").all()
        }
        try await configure(writer)
        var readerConnections: [SQLiteConnection] = []
        for _ in 0..<readers {
            let reader = try await SQLiteConnection.open(storage: storage, logger: logger)
            try await configure(reader)
            readerConnections.append(reader)
        }
        return SQLitePool(writer: writer, readers: readerConnections)
    }

    static func configure(_ connection: SQLiteConnection) async throws {
        let sql = connection.sql()
        _ = try await sql.raw("PRAGMA busy_timeout=10000").all()
        _ = try await sql.raw("PRAGMA foreign_keys=ON").all()
        _ = try await sql.raw("PRAGMA synchronous=NORMAL").all()
    }

    func withWriter<T>(_ body: (SQLiteConnection) async throws -> T) async throws -> T {
        await self.writerLock.wait()
        defer { self.writerLock.signal() }
        guard !self.closed.withLock({ $0 }) else { throw TernError.unavailable("the database is closed") }
        return try await body(self.writer)
    }

    func withReader<T>(_ body: (SQLiteConnection) async throws -> T) async throws -> T {
        guard self.hasReaders else { return try await self.withWriter(body) }
        guard !self.closed.withLock({ $0 }) else { throw TernError.unavailable("the database is closed") }
        await self.readerPermits.wait()
        let connection = self.readers.withLock { $0.removeLast() }
        defer {
            self.readers.withLock { $0.append(connection) }
            self.readerPermits.signal()
        }
        return try await body(connection)
    }

    /// A pool dropped without `close()` (a start-up that failed half-way) still closes its connections.
    deinit {
        guard !self.closed.withLock({ $0 }) else { return }
        for connection in [self.writer] + self.readers.withLock({ $0 }) {
            // The close's work item holds the connection until it has run (an open one must not be deinitialized).
            _ = connection.close()
        }
    }

    /// Closes the connections once; later reads and writes fail at once instead of waiting.
    func close() async {
        await self.writerLock.wait()
        defer { self.writerLock.signal() }
        guard !self.closed.withLock({ $0 }) else { return }
        self.closed.withLock { $0 = true }
        // The future-based close, which a cancelled task cannot skip (SQLiteNIO's async one is cancelled with the task,
        // leaving the connection open, and SQLiteNIO traps when an open connection is deinitialized).
        for connection in [self.writer] + self.readers.withLock({ $0 }) {
            try? await connection.close().get()
        }
    }
}
