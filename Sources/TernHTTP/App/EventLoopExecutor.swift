import NIOCore
import NIOPosix
import TernCore

/// NIO's event loops as the server's task executor (`runUntilStopped`; `TERN_EVENT_LOOP_EXECUTOR`). A job runs on
/// the loop of the thread that enqueued it, which is the loop whose I/O resumed the task (a request read, a row
/// received, a receiver's answer), and on the group's next loop when enqueued from elsewhere (a timer, SQLite's
/// thread). A publish then reads its request, runs its statements, answers and sends its deliveries without hopping
/// between NIO's threads and Swift's global pool: 5.4–7.9 thread switches a publish instead of 19–23 at moderate
/// rates (`docs/benchmarks.md`, item 36). Blocking work never runs here: argon2 has threads of its own, SQLite its
/// connections' threads (`SQLiteThread`, preferred inside a transaction), name resolution NIO's thread pool.
final class EventLoopExecutor: TaskExecutor {
    let group: MultiThreadedEventLoopGroup

    init(group: MultiThreadedEventLoopGroup) {
        self.group = group
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let loop = MultiThreadedEventLoopGroup.currentEventLoop ?? self.group.next()
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    /// Runs `body` with this executor preferred by its task, its child tasks and the unstructured tasks Tern starts
    /// (`PreferredExecutor`).
    func run<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await withTaskExecutorPreference(self) {
            try await PreferredExecutor.$current.withValue(self) { try await body() }
        }
    }
}
