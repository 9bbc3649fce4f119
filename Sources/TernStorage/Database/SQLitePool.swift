import Logging
import SQLKit
import Synchronization
import TernCore

/// SQLite connections: one writer (transactions take turns on it) and a few readers, which WAL lets read
/// while the writer writes. An in-memory database has only the writer. Each use of a connection runs on the
/// connection's own thread (`SQLiteThread`), as one hop in and one out however many statements it runs.
final class SQLitePool: Sendable {
    let writer: SQLiteHandle
    let writerLock = AsyncSemaphore(permits: 1)
    let readers: Mutex<[SQLiteHandle]>
    let readerCount: Int
    let readerPermits: AsyncSemaphore
    let closed = Mutex(false)

    private init(writer: SQLiteHandle, readers: [SQLiteHandle]) {
        self.writer = writer
        self.readers = Mutex(readers)
        self.readerCount = readers.count
        self.readerPermits = AsyncSemaphore(permits: max(readers.count, 1))
    }

    static func open(path: String?, readers: Int, logger: Logger) async throws -> SQLitePool {
        let writer = try SQLiteHandle(path: path, logger: logger)
        if path != nil {
            _ = try await writer.sql().raw("PRAGMA journal_mode=WAL").all()
        }
        try await configure(writer)
        var readerConnections: [SQLiteHandle] = []
        for _ in 0..<(path == nil ? 0 : readers) {
            let reader = try SQLiteHandle(path: path, logger: logger)
            try await configure(reader)
            readerConnections.append(reader)
        }
        return SQLitePool(writer: writer, readers: readerConnections)
    }

    static func configure(_ connection: SQLiteHandle) async throws {
        let sql = connection.sql()
        _ = try await sql.raw("PRAGMA busy_timeout=10000").all()
        _ = try await sql.raw("PRAGMA foreign_keys=ON").all()
        _ = try await sql.raw("PRAGMA synchronous=NORMAL").all()
    }

    func withWriter<T>(_ body: (SQLiteHandle) async throws -> T) async throws -> T {
        await self.writerLock.wait()
        defer { self.writerLock.signal() }
        guard !self.closed.withLock({ $0 }) else { throw TernError.unavailable("the database is closed") }
        return try await withTaskExecutorPreference(self.writer.thread) {
            try await body(self.writer)
        }
    }

    func withReader<T>(_ body: (SQLiteHandle) async throws -> T) async throws -> T {
        guard self.readerCount > 0 else { return try await self.withWriter(body) }
        guard !self.closed.withLock({ $0 }) else { throw TernError.unavailable("the database is closed") }
        await self.readerPermits.wait()
        let connection = self.readers.withLock { $0.removeLast() }
        defer {
            self.readers.withLock { $0.append(connection) }
            self.readerPermits.signal()
        }
        return try await withTaskExecutorPreference(connection.thread) {
            try await body(connection)
        }
    }

    /// Closes the connections once, after the reads and the write in progress; later ones fail at once.
    func close() async {
        await self.writerLock.wait()
        defer { self.writerLock.signal() }
        guard !self.closed.withLock({ $0 }) else { return }
        self.closed.withLock { $0 = true }
        for _ in 0..<self.readerCount { await self.readerPermits.wait() }
        self.writer.close()
        for reader in self.readers.withLock({ $0 }) { reader.close() }
        for _ in 0..<self.readerCount { self.readerPermits.signal() }
    }
}
