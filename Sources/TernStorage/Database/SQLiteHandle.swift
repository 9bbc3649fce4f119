import Foundation
import Logging
import NIOCore
import NIOPosix
import SQLKit
import SQLiteKit
import Synchronization
import VaporCSQLite

/// One SQLite connection driven directly through libsqlite3 (the library SQLiteNIO builds), for two costs SQLiteNIO's
/// connection has on every statement: it prepares the statement anew, and it runs it on NIO's thread pool and hands
/// each row and the result back through the event loop (three thread hops a statement).
///
/// Here a statement is prepared once per connection and kept (by its SQL text), and it runs on the thread that asks:
/// `SQLitePool` runs each whole transaction on the connection's own `SQLiteThread` (one hop in, one out), so its
/// statements run one after the other without a hop and the Swift pool's threads never wait for the disk.
///
/// Not thread-safe by itself: `SQLitePool` lends a connection to one task at a time.
final class SQLiteHandle: @unchecked Sendable {
    private var db: OpaquePointer?
    private(set) var statements: [String: CachedStatement] = [:]
    private var uses: UInt64 = 0
    /// Where the transactions of this connection run.
    let thread: SQLiteThread
    let logger: Logger
    let encoder = SQLiteDataEncoder()
    let decoder = SQLiteDataDecoder()

    /// Statements kept per connection (a multi-row statement is one per row count: up to 64 each for a batch's
    /// messages, deliveries, attempts and claimed ids); past it, the quarter least recently used are finalized.
    static let statementCacheSize = 512

    /// Opens (and creates) the file, or a private in-memory database when `path` is nil.
    init(path: String?, logger: Logger) throws {
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let status = sqlite_nio_sqlite3_open_v2(path ?? ":memory:", &handle, flags, nil)
        guard status == SQLITE_OK, let handle else {
            let message = handle.flatMap { sqlite_nio_sqlite3_errmsg($0) }.map { String(cString: $0) } ?? "out of memory"
            sqlite_nio_sqlite3_close(handle)
            throw SQLiteFailure(code: status, message: "cannot open \(path ?? ":memory:"): \(message)")
        }
        sqlite_nio_sqlite3_extended_result_codes(handle, 1)
        self.db = handle
        self.logger = logger
        self.thread = SQLiteThread(name: path == nil ? "sqlite-memory" : "sqlite")
    }

    /// This connection as SQLKit's database.
    func sql() -> any SQLDatabase {
        SQLiteSession(handle: self)
    }

    /// Finalizes the kept statements, closes the connection and stops its thread. Idempotent.
    func close() {
        for statement in self.statements.values { sqlite_nio_sqlite3_finalize(statement.pointer) }
        self.statements.removeAll()
        if let db = self.db { sqlite_nio_sqlite3_close_v2(db) }
        self.db = nil
        self.thread.stop()
    }

    deinit {
        self.close()
    }

    /// Runs one statement to its end, calling `onRow` for each row it returns.
    func run(_ sql: String, _ binds: [any Encodable & Sendable], _ onRow: (any SQLRow) -> Void) throws {
        guard let db = self.db else { throw SQLiteFailure(code: SQLITE_MISUSE, message: "the connection is closed") }
        let statement = try self.statement(sql, db)
        var large: [Int32] = []
        defer { statement.release(kept: self.statements[sql] === statement, unbinding: large) }
        let pointer = statement.pointer
        let parameters = sqlite_nio_sqlite3_bind_parameter_count(pointer)
        guard binds.count == parameters else {
            throw SQLiteFailure(code: SQLITE_RANGE, message: "\(binds.count) values for \(parameters) parameters")
        }
        for (offset, value) in binds.enumerated() {
            let data = try self.data(value)
            try self.check(Self.bind(data, at: Int32(offset + 1), pointer), db)
            if data.isLarge { large.append(Int32(offset + 1)) }
        }
        var columns: SQLiteColumnNames?
        while true {
            let status = sqlite_nio_sqlite3_step(pointer)
            if status == SQLITE_DONE { return }
            guard status == SQLITE_ROW else {
                throw SQLiteFailure(db)
            }
            let names = columns ?? SQLiteColumnNames(pointer)
            columns = names
            var values: [SQLiteData] = []
            values.reserveCapacity(names.names.count)
            for index in 0..<Int32(names.names.count) { values.append(Self.value(at: index, pointer)) }
            onRow(SQLiteResultRow(columns: names, values: values, decoder: self.decoder))
        }
    }

    /// A bind as SQLite's value: the common types and `nil` at once, the rest (values written as JSON) through
    /// SQLiteKit's encoder, which looks up each value's conformance and unwraps an optional with an encoder of its own
    /// (1.3% of the server's CPU under `tern bench`, `docs/benchmarks.md`, item 30). The same values either way
    /// (`SQLiteHandleTests.bindsAreTheValuesSQLiteKitsEncoderMakes`).
    func data(_ value: any Encodable & Sendable) throws -> SQLiteData {
        switch value {
        case let text as String: .text(text)
        case let number as Int64: .integer(Int(number))
        case let number as Int: .integer(number)
        case let number as Double: .float(number)
        case let flag as Bool: .integer(flag ? 1 : 0)
        case let missing as String? where missing == nil: .null  // any optional's nil casts to nil
        default: try self.encoder.encode(value)
        }
    }

    /// The kept statement for `sql`, or a new one (kept unless the kept one is in use by a statement still running).
    private func statement(_ sql: String, _ db: OpaquePointer) throws -> CachedStatement {
        self.uses &+= 1
        if let kept = self.statements[sql], !kept.busy {
            kept.busy = true
            kept.lastUse = self.uses
            return kept
        }
        var pointer: OpaquePointer?
        let status = sqlite_nio_sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &pointer, nil)
        guard status == SQLITE_OK, let pointer else {
            throw SQLiteFailure(db)
        }
        let statement = CachedStatement(pointer: pointer, lastUse: self.uses)
        if self.statements[sql] == nil {
            if self.statements.count >= Self.statementCacheSize { self.evictLeastRecentlyUsed() }
            self.statements[sql] = statement
        }
        return statement
    }

    private func evictLeastRecentlyUsed() {
        let idle = self.statements.filter { !$0.value.busy }.sorted { $0.value.lastUse < $1.value.lastUse }
        for (sql, statement) in idle.prefix(max(1, Self.statementCacheSize / 4)) {
            sqlite_nio_sqlite3_finalize(statement.pointer)
            self.statements[sql] = nil
        }
    }

    private func check(_ status: Int32, _ db: OpaquePointer) throws {
        guard status == SQLITE_OK else {
            throw SQLiteFailure(db)
        }
    }

    private static func bind(_ data: SQLiteData, at index: Int32, _ statement: OpaquePointer) -> Int32 {
        switch data {
        case .integer(let value):
            return sqlite_nio_sqlite3_bind_int64(statement, index, Int64(value))
        case .float(let value):
            return sqlite_nio_sqlite3_bind_double(statement, index, value)
        case .text(let value):
            var value = value
            return value.withUTF8 {
                sqlite_nio_sqlite3_bind_text64(statement, index, $0.baseAddress, UInt64($0.count), sqliteTransient, UInt8(SQLITE_UTF8))
            }
        case .blob(let value):
            return value.withUnsafeReadableBytes {
                sqlite_nio_sqlite3_bind_blob64(statement, index, $0.baseAddress, UInt64($0.count), sqliteTransient)
            }
        case .null:
            return sqlite_nio_sqlite3_bind_null(statement, index)
        }
    }

    private static func value(at index: Int32, _ statement: OpaquePointer) -> SQLiteData {
        switch sqlite_nio_sqlite3_column_type(statement, index) {
        case SQLITE_INTEGER:
            return .integer(Int(sqlite_nio_sqlite3_column_int64(statement, index)))
        case SQLITE_FLOAT:
            return .float(sqlite_nio_sqlite3_column_double(statement, index))
        case SQLITE_TEXT:
            let bytes = sqlite_nio_sqlite3_column_text(statement, index)
            let count = Int(sqlite_nio_sqlite3_column_bytes(statement, index))
            return .text(String(decoding: UnsafeRawBufferPointer(start: bytes, count: count), as: UTF8.self))
        case SQLITE_BLOB:
            let bytes = sqlite_nio_sqlite3_column_blob(statement, index)
            let count = Int(sqlite_nio_sqlite3_column_bytes(statement, index))
            var buffer = ByteBufferAllocator().buffer(capacity: count)
            if let bytes { buffer.writeBytes(UnsafeRawBufferPointer(start: bytes, count: count)) }
            return .blob(buffer)
        default:
            return .null
        }
    }
}

extension SQLiteData {
    /// A text or blob whose copy a kept statement should not hold until its next use.
    fileprivate var isLarge: Bool {
        switch self {
        case .text(let text): text.utf8.count >= 1024
        case .blob(let bytes): bytes.readableBytes >= 1024
        default: false
        }
    }
}

/// SQLite's `SQLITE_TRANSIENT`: the library copies the bound bytes before the call returns.
private let sqliteTransient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// A prepared statement kept by its connection.
final class CachedStatement {
    let pointer: OpaquePointer
    var lastUse: UInt64
    var busy = true

    init(pointer: OpaquePointer, lastUse: UInt64) {
        self.pointer = pointer
        self.lastUse = lastUse
    }

    /// Makes the statement ready for its next use (or finalizes one that was not kept). Its next use binds every
    /// parameter again, so only the `large` ones (a payload's copy) are let go of here, one by one:
    /// `sqlite3_clear_bindings` would expire a statement whose plan SQLite 3.5x lets depend on a bound value (a LEFT
    /// JOIN's `ON … = ?` might be a constant 0 or 1), making the next use prepare it anew from its text. The publish's
    /// read of its application and endpoints was one: prepared again at every publish, 1.4% of the server's CPU
    /// (`docs/benchmarks.md`, item 38). Binding over a text leaves such a plan as it is.
    func release(kept: Bool, unbinding large: [Int32]) {
        if kept {
            sqlite_nio_sqlite3_reset(self.pointer)
            for index in large { sqlite_nio_sqlite3_bind_null(self.pointer, index) }
            self.busy = false
        } else {
            sqlite_nio_sqlite3_finalize(self.pointer)
        }
    }
}

/// A statement's column names, read once per run and shared by its rows.
final class SQLiteColumnNames: Sendable {
    let names: [String]
    let offsets: [String: Int]

    convenience init(_ statement: OpaquePointer) {
        let count = Int(sqlite_nio_sqlite3_column_count(statement))
        self.init(
            names: (0..<count).map { index in
                sqlite_nio_sqlite3_column_name(statement, Int32(index)).map { String(cString: $0) } ?? ""
            })
    }

    init(names: [String]) {
        self.names = names
        self.offsets = Dictionary(names.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
    }
}

/// One row of a result.
struct SQLiteResultRow: SQLRow {
    let columns: SQLiteColumnNames
    let values: [SQLiteData]
    let decoder: SQLiteDataDecoder

    var allColumns: [String] { self.columns.names }

    func contains(column: String) -> Bool {
        self.columns.offsets[column] != nil
    }

    func decodeNil(column: String) throws -> Bool {
        guard let offset = self.columns.offsets[column] else { return true }
        return self.values[offset] == .null
    }

    func decode<D: Decodable>(column: String, as type: D.Type) throws -> D {
        guard let offset = self.columns.offsets[column] else {
            throw DecodingError.keyNotFound(
                SQLiteColumnKey(stringValue: column), .init(codingPath: [], debugDescription: "no column '\(column)' in the result"))
        }
        let value = self.values[offset]
        if let direct = Self.direct(value, as: D.self) { return direct }
        return try self.decoder.decode(D.self, from: value)
    }

    /// A text, integer, real or null column read as a `String`, `Int`, `Int64` or `Double` (or an optional of one), as
    /// SQLiteKit's decoder reads it but without its conformance lookup and, for an optional, its decoder object (0.97%
    /// of the server's CPU under `tern bench` with them, `docs/benchmarks.md`, item 31); nil for anything else, which the
    /// decoder reads. The same values either way (`SQLiteHandleTests.columnsReadAsSQLiteKitsDecoderReadsThem`).
    static func direct<D>(_ value: SQLiteData, as type: D.Type) -> D? {
        switch value {
        case .text(let text) where D.self == String.self || D.self == String?.self: text as? D
        case .integer(let number) where D.self == Int.self || D.self == Int?.self: number as? D
        case .integer(let number) where D.self == Int64.self || D.self == Int64?.self: Int64(number) as? D
        case .float(let number) where D.self == Double.self || D.self == Double?.self: number as? D
        case .null where D.self == String?.self: String?.none as? D
        case .null where D.self == Int?.self: Int?.none as? D
        case .null where D.self == Int64?.self: Int64?.none as? D
        case .null where D.self == Double?.self: Double?.none as? D
        default: nil
        }
    }
}

private struct SQLiteColumnKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }

    init(stringValue: String) {
        self.stringValue = stringValue
    }

    init?(intValue: Int) {
        nil
    }
}

/// An error from libsqlite3: its extended result code and message.
struct SQLiteFailure: Error, CustomStringConvertible {
    let code: Int32
    let message: String

    init(code: Int32, message: String) {
        self.code = code
        self.message = message
    }

    /// The connection's last error.
    init(_ db: OpaquePointer) {
        self.init(code: sqlite_nio_sqlite3_extended_errcode(db), message: String(cString: sqlite_nio_sqlite3_errmsg(db)))
    }

    var description: String { "SQLite error \(self.code): \(self.message)" }

    /// A UNIQUE or PRIMARY KEY constraint refused the row.
    var isUniqueViolation: Bool { self.code == 2067 || self.code == 1555 }  // SQLITE_CONSTRAINT_UNIQUE, _PRIMARYKEY
    /// A FOREIGN KEY constraint refused the row.
    var isForeignKeyViolation: Bool { self.code == 787 }  // SQLITE_CONSTRAINT_FOREIGNKEY
}

/// A connection as SQLKit's `SQLDatabase`: serializes the query with SQLite's dialect and runs it at once.
struct SQLiteSession: SQLDatabase {
    let handle: SQLiteHandle

    var logger: Logger { self.handle.logger }
    var eventLoop: any EventLoop { MultiThreadedEventLoopGroup.singleton.any() }
    var version: (any SQLDatabaseReportedVersion)? { nil }
    var dialect: any SQLDialect { SQLiteDialect() }
    var queryLogLevel: Logger.Level? { .debug }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) async throws {
        let (sql, binds) = self.serialize(query)
        self.logger.debug("\(sql)")
        try self.handle.run(sql, binds, onRow)
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) -> EventLoopFuture<Void> {
        let (sql, binds) = self.serialize(query)
        return self.eventLoop.makeCompletedFuture { try self.handle.run(sql, binds, onRow) }
    }
}

/// A thread of its own for one SQLite connection, as a task executor: `SQLitePool` runs each transaction with this
/// as its preferred executor, so the statements of the transaction run here one after the other, and the disk waits
/// of SQLite (a checkpoint's fsync) hold this thread instead of one of the Swift pool's.
final class SQLiteThread: TaskExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var stopped = false
    private let threadID = Mutex<pthread_t?>(nil)

    init(name: String) {
        let thread = Thread { [self] in self.loop() }
        thread.name = name
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        self.condition.lock()
        if self.stopped {
            self.condition.unlock()
            // A stopped thread hands late work to the global executor rather than dropping it.
            globalConcurrentExecutor.enqueue(job)
            return
        }
        self.jobs.append(job)
        self.condition.signal()
        self.condition.unlock()
    }

    /// Lets the thread finish the jobs it has and end.
    func stop() {
        self.condition.lock()
        self.stopped = true
        self.condition.signal()
        self.condition.unlock()
    }

    /// Whether the caller runs on this thread.
    var isCurrent: Bool {
        self.threadID.withLock { id in id.map { pthread_equal($0, pthread_self()) != 0 } ?? false }
    }

    private func loop() {
        self.threadID.withLock { $0 = pthread_self() }
        var batch: [UnownedJob] = []
        while true {
            self.condition.lock()
            while self.jobs.isEmpty && !self.stopped { self.condition.wait() }
            if self.jobs.isEmpty && self.stopped {
                self.condition.unlock()
                return
            }
            swap(&batch, &self.jobs)
            self.condition.unlock()
            for job in batch { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
            batch.removeAll(keepingCapacity: true)
        }
    }
}
