import Synchronization

/// A counting semaphore for async code: waiters queue in order.
public final class AsyncSemaphore: Sendable {
    struct State {
        var permits: Int
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    let state: Mutex<State>

    public init(permits: Int) {
        self.state = Mutex(State(permits: permits))
    }

    public func wait() async {
        let acquired = self.state.withLock { state -> Bool in
            if state.permits > 0 {
                state.permits -= 1
                return true
            }
            return false
        }
        if acquired { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = self.state.withLock { state -> Bool in
                if state.permits > 0 {
                    state.permits -= 1
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    public func signal() {
        let next = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.permits += 1
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }
}

/// A wake-up call for a sleeping loop: `ring()` wakes every waiter, or the next one to wait if none is waiting,
/// so that a ring between two waits is never lost.
public final class WakeSignal: Sendable {
    struct State {
        var rung = false
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextID = 0
        /// Waits woken (by cancellation or timeout) before their continuation was stored.
        var woken: Set<Int> = []
    }

    let state = Mutex(State())

    public init() {}

    /// Wakes the waiters (or the next wait).
    public func ring() {
        let waiters = self.state.withLock { state -> [CheckedContinuation<Void, Never>] in
            if state.waiters.isEmpty {
                state.rung = true
                return []
            }
            let waiting = Array(state.waiters.values)
            state.waiters.removeAll()
            return waiting
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Whether it rang since the last wait returned, without waiting: true once per ring, as a wait would return.
    public func takeRing() -> Bool {
        self.state.withLock { state in
            defer { state.rung = false }
            return state.rung
        }
    }

    /// Returns at the next ring, after `timeout`, or when the task is cancelled, whichever is first.
    public func wait(timeout: Duration) async {
        let id = self.state.withLock { state -> Int? in
            if state.rung {
                state.rung = false
                return nil
            }
            state.nextID += 1
            return state.nextID
        }
        guard let id else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                        let resumeNow = self.state.withLock { state -> Bool in
                            if state.rung || state.woken.contains(id) {
                                state.rung = false
                                state.woken.remove(id)
                                return true
                            }
                            state.waiters[id] = continuation
                            return false
                        }
                        if resumeNow { continuation.resume() }
                    }
                } onCancel: {
                    self.wake(id)
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                self.wake(id)
            }
            await group.next()
            group.cancelAll()
        }
        self.state.withLock { _ = $0.woken.remove(id) }
    }

    func wake(_ id: Int) {
        let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiters.removeValue(forKey: id) { return waiter }
            state.woken.insert(id)
            return nil
        }
        waiter?.resume()
    }
}

/// A gate that opens once and stays open: `wait()` returns as soon as `open()` has been called.
public final class Latch: Sendable {
    let opened = Mutex(false)
    let signal = WakeSignal()

    public init() {}

    public var isOpen: Bool { self.opened.withLock { $0 } }

    public func open() {
        self.opened.withLock { $0 = true }
        self.signal.ring()
    }

    /// Waits until the latch opens, `giveUp` answers true, or the task is cancelled.
    public func wait(giveUp: () -> Bool = { false }) async {
        while !self.isOpen && !Task.isCancelled && !giveUp() {
            await self.signal.wait(timeout: .milliseconds(200))
        }
    }
}

/// Group commit: items submitted while commits are running wait and go together in the next one, so that N
/// concurrent callers cost one transaction instead of N. Up to `concurrency` commits run at once (1 where the
/// database has a single writer). `commit` returns one result per item, in order.
public final class GroupCommitter<Item: Sendable, Output: Sendable>: Sendable {
    public typealias Commit = @Sendable ([Item]) async -> [Result<Output, any Error>]

    struct State {
        var pending: [(Item, CheckedContinuation<Result<Output, any Error>, Never>)] = []
        var committing = 0
    }

    let state = Mutex(State())
    let maxBatch: Int
    let concurrency: Int
    let commit: Commit

    public init(maxBatch: Int, concurrency: Int = 1, commit: @escaping Commit) {
        self.maxBatch = maxBatch
        self.concurrency = max(1, concurrency)
        self.commit = commit
    }

    /// Submits one item and waits for the commit that includes it.
    public func submit(_ item: Item) async throws -> Output {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Output, any Error>, Never>) in
            let lead = self.state.withLock { state -> Bool in
                state.pending.append((item, continuation))
                if state.committing >= self.concurrency { return false }
                state.committing += 1
                return true
            }
            if lead { Task(executorPreference: PreferredExecutor.current) { await self.drain() } }
        }
        return try result.get()
    }

    /// Commits batches until nothing is pending.
    func drain() async {
        while true {
            let batch = self.state.withLock { state -> [(Item, CheckedContinuation<Result<Output, any Error>, Never>)] in
                let batch = Array(state.pending.prefix(self.maxBatch))
                state.pending.removeFirst(batch.count)
                if batch.isEmpty { state.committing -= 1 }
                return batch
            }
            if batch.isEmpty { return }
            // A closure, not `\.0`: a key path into a generic tuple is built anew on every call (0.6% of the server's
            // CPU under `tern bench`, `docs/benchmarks.md`, item 30).
            let results = await self.commit(batch.map { $0.0 })
            for (index, entry) in batch.enumerated() {
                entry.1.resume(returning: index < results.count ? results[index] : .failure(CancellationError()))
            }
        }
    }
}

/// The executor the server's tasks prefer (`EventLoopExecutor` under `tern serve`), so that the tasks it starts
/// unstructured (which do not inherit a preference) run where their parents run. Nil: Swift's global executor.
public enum PreferredExecutor {
    @TaskLocal public static var current: (any TaskExecutor)?
}
