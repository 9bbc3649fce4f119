import AsyncHTTPClient
import Logging
import Metrics
import ServiceLifecycle
import Synchronization
import TernCore
import TernStorage
import Tracing

/// How a process's delivery workers run.
public struct DeliveryWorkerSettings: Sendable {
    /// Deliveries being sent at once.
    public var concurrency = 128
    /// Sent deliveries awaiting their record, per place of `concurrency`: within this many a sent delivery gives its
    /// place to the next one before its record commits; beyond, it keeps the place until then.
    public var recordingPerPlace = 4
    /// Deliveries claimed per query.
    public var batchSize = 64
    /// How long a claim lasts; a worker that dies releases its deliveries when it ends. Longer than any
    /// endpoint timeout (at most 30 s).
    public var leaseSeconds = 60
    /// The safety-net poll when no wake-up comes.
    public var pollInterval = Duration.seconds(5)
    public var allowPrivateEndpoints = false
    public var userAgent = "Tern/\(TernVersion.current)"
    /// Every delivery (and OAuth2 token request) goes through this HTTP proxy with CONNECT
    /// (`TERN_DELIVERY_PROXY_URL`), so that deliveries leave from the proxy's address.
    public var proxy: DeliveryProxy?
    /// Takes the deliveries this process's publishes queue straight from their commit, without claiming them
    /// (`DirectDelivery`; `TERN_DIRECT_DELIVERY`).
    public var direct = true

    public init() {}
}

/// The delivery engine of one process: claims due deliveries in batches, sends them concurrently, records each
/// attempt, and sleeps until publish wakes it (in process, or by PostgreSQL `NOTIFY`) or a retry falls due.
/// On graceful shutdown it stops claiming and lets the deliveries in flight finish.
public final class DeliveryWorker: Service, Sendable {
    let store: Store
    let settings: DeliveryWorkerSettings
    let logger: Logger
    /// Deliveries taken and not yet sent (`sending`, at most `concurrency`), and sent ones awaiting their record.
    let places = Mutex(Places())
    let slotFreed = WakeSignal()
    let stopping = Mutex(false)
    /// The last claim took all it asked for, so more may be due: publishes then queue their deliveries behind those
    /// instead of handing them over (`DirectTaker`), until a claim finds the queue drained. True until the first claim.
    let behind = Mutex(true)
    /// Attempts finishing together are recorded in one transaction.
    let recorder: GroupCommitter<AttemptRecord, RecordedAttempt>

    public init(store: Store, settings: DeliveryWorkerSettings, logger: Logger) {
        self.store = store
        self.settings = settings
        self.logger = logger
        self.recorder = GroupCommitter(maxBatch: 256) { [store] records in await store.recordAttemptsEach(records) }
    }

    public func run() async throws {
        let sender = WebhookSender.make(
            concurrency: self.settings.concurrency, allowPrivateEndpoints: self.settings.allowPrivateEndpoints, proxy: self.settings.proxy,
            userAgent: self.settings.userAgent)
        let database = self.store.database
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await database.listenForDeliveries { database.deliveriesQueued.ring() } }
                await self.deliverUntilStopped(sender)
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.stop()
        }
        try await sender.shutdown()
        self.logger.info("delivery worker stopped")
    }

    /// Stops claiming; deliveries in flight finish.
    func stop() {
        self.stopping.withLock { $0 = true }
        self.store.database.directDelivery.register(nil)
        self.store.database.deliveriesQueued.ring()
        self.slotFreed.ring()
    }

    var isStopping: Bool { self.stopping.withLock { $0 } || Task.isCancelled }

    func deliverUntilStopped(_ sender: WebhookSender) async {
        await self.store.database.migrated.wait { self.isStopping }
        if self.settings.direct && !self.isStopping {
            self.store.database.directDelivery.register(DirectTaker(worker: self, sender: sender))
        }
        await withTaskCancellationHandler {
            await withDiscardingTaskGroup { group in
                while !self.isStopping {
                    let free = self.settings.concurrency - self.places.withLock { $0.sending }
                    if free <= 0 {
                        await self.slotFreed.wait(timeout: self.settings.pollInterval)
                        continue
                    }
                    let jobs: [DeliveryJob]
                    let limit = Store.claimSize(upTo: min(free, self.settings.batchSize))
                    let span = InstrumentationSystem.tracer.startSpan("tern.claim", context: .topLevel)
                    defer { span.end() }
                    // The claim sees every commit rung before it starts (the ring comes after the commit): a ring kept
                    // from before it would only send the worker into an empty claim after it.
                    _ = self.store.database.deliveriesQueued.takeRing()
                    do {
                        jobs = try await self.store.claimDeliveries(limit: limit, leaseSeconds: self.settings.leaseSeconds)
                        span.attributes["tern.claimed"] = jobs.count
                    } catch {
                        span.recordError(error)
                        self.logger.error("cannot claim deliveries", metadata: ["error": "\(error)"])
                        await self.store.database.deliveriesQueued.wait(timeout: .seconds(1))
                        continue
                    }
                    self.behind.withLock { $0 = jobs.count == limit }
                    if jobs.isEmpty {
                        await self.sleepUntilWork()
                        continue
                    }
                    self.places.withLock { $0.sending += jobs.count }
                    for job in jobs { group.addTask { await self.deliver(job, sender) } }
                    // Fewer than asked for: nothing else was due when the claim ran. Claim again when more is queued
                    // (at once if it already was), not in an empty claim first.
                    if jobs.count < limit { await self.sleepUntilWork() }
                }
            }
            // Deliveries handed over by publishes run outside the group: they finish too.
            while !self.places.withLock(\.isEmpty) && !Task.isCancelled { await self.slotFreed.wait(timeout: .seconds(1)) }
        } onCancel: {
            self.stop()
        }
    }

    /// Sends a delivery this worker holds, records the attempt, and frees its place: once sent, if few enough others
    /// await their record (a record waits for its group's commit, which on PostgreSQL under load takes longer than the
    /// send, so places held until then would fill and leave publishes to queue what they could hand over); else once
    /// recorded. Shutdown waits for both.
    func deliver(_ job: DeliveryJob, _ sender: WebhookSender) async {
        let record = await sender.send(job)
        let bound = self.settings.concurrency * self.settings.recordingPerPlace
        let freedEarly = self.places.withLock { places in
            guard places.recording < bound else { return false }
            places.sending -= 1
            places.recording += 1
            return true
        }
        if freedEarly { self.slotFreed.ring() }
        await self.record(record)
        let emptied = self.places.withLock { places in
            if freedEarly { places.recording -= 1 } else { places.sending -= 1 }
            return places.isEmpty
        }
        // A place to send from, or (for shutdown, which waits for none) the last record in.
        if !freedEarly || emptied { self.slotFreed.ring() }
    }

    /// Sleeps until publish rings, the next retry is due, or the poll interval passes. Returns at once, without
    /// reading when the next retry is due, when a publish rang since the last claim (the common case under load), or
    /// when stopping (whose ring the claim may have taken).
    func sleepUntilWork() async {
        if self.isStopping || self.store.database.deliveriesQueued.takeRing() { return }
        var timeout = self.settings.pollInterval
        if let due = try? await self.store.nextDueTime() {
            let wait = Duration.microseconds(max(0, due.microseconds - Timestamp.now().microseconds))
            timeout = min(timeout, wait)
        }
        if timeout > .zero {
            await self.store.database.deliveriesQueued.wait(timeout: timeout)
        }
    }

    /// Records the attempt, trying again while the database is unreachable; if it never is, the lease expires and
    /// the delivery is sent again (at least once).
    func record(_ record: AttemptRecord) async {
        let job = record.job
        if job.leaseExpiries > 0 {
            self.logger(for: job).warning("delivery lease expired; sent again", metadata: ["lease_expiries": "\(job.leaseExpiries)"])
        }
        DeliveryMetrics.attemptDuration.recordMilliseconds(record.durationMS)
        for retry in 0..<5 {
            do {
                let result = try await self.recorder.submit(record)
                self.report(record, result)
                // A retry was scheduled: let the claiming loop re-read when it is due.
                if result.status == .failed { self.store.database.deliveriesQueued.ring() }
                return
            } catch {
                self.logger(for: job).error("cannot record the attempt; retrying", metadata: ["error": "\(error)", "retry": "\(retry)"])
                try? await Task.sleep(for: .seconds(retry + 1))
            }
        }
    }

    /// The worker's logger with the delivery's ids, made only for a line that is written (a success is logged at
    /// `debug`, off by default, so the common case builds no metadata).
    func logger(for job: DeliveryJob) -> Logger {
        var logger = self.logger
        logger[metadataKey: "message_id"] = "\(job.messageID)"
        logger[metadataKey: "delivery_id"] = "\(job.deliveryID)"
        logger[metadataKey: "endpoint_id"] = "\(job.endpointID)"
        return logger
    }

    func report(_ record: AttemptRecord, _ result: RecordedAttempt) {
        if record.job.operational { DeliveryMetrics.operational(type: record.job.eventType, result.status) }
        if result.status == .delivered, result.disabledReason == nil {
            DeliveryMetrics.outcome(.delivered)
            if self.logger.logLevel <= .debug {
                self.logger(for: record.job).debug(
                    "delivered", metadata: ["status_code": "\(record.statusCode.map(String.init) ?? "none")", "duration_ms": "\(record.durationMS)"])
            }
            return
        }
        let logger = self.logger(for: record.job)
        let metadata: Logger.Metadata = [
            "status_code": "\(record.statusCode.map(String.init) ?? "none")", "duration_ms": "\(record.durationMS)",
            "attempt": "\(record.job.attemptCount + 1)", "trigger": "\(record.job.trigger.rawValue)",
        ]
        switch result.status {
        case .delivered:
            DeliveryMetrics.outcome(.delivered)
            logger.debug("delivered", metadata: metadata)
        case .failed:
            DeliveryMetrics.outcome(.failed)
            logger.info(
                "attempt failed; retry scheduled",
                metadata: metadata.merging([
                    "error": "\(record.error ?? "HTTP \(record.statusCode ?? 0)")", "next_attempt_at": "\(result.nextAttemptAt?.description ?? "")",
                ]) { $1 })
        case .exhausted:
            DeliveryMetrics.outcome(.exhausted)
            logger.warning(
                "delivery exhausted; in the dead-letter queue",
                metadata: metadata.merging([
                    "error": "\(record.error ?? "HTTP \(record.statusCode ?? 0)")"
                ]) { $1 })
        default:
            logger.info("attempt recorded; another worker holds the delivery now", metadata: metadata)
        }
        if let reason = result.disabledReason {
            DeliveryMetrics.breakerTrip(reason: reason)
            logger.warning("endpoint disabled", metadata: ["disabled_reason": "\(reason)", "detail": "\(result.disabledDetail ?? "")"])
        }
    }
}

/// The worker's side of `DirectDelivery`: room from the same places in flight as its claims, and each delivery handed
/// over sent in a task of its own (waited for at shutdown by the count in flight).
final class DirectTaker: DirectDeliveryTaker {
    let worker: DeliveryWorker
    let sender: WebhookSender

    init(worker: DeliveryWorker, sender: WebhookSender) {
        self.worker = worker
        self.sender = sender
    }

    var leaseSeconds: Int { self.worker.settings.leaseSeconds }

    /// None while stopping, or while the worker's claims are behind (older deliveries go first).
    func reserve(upTo count: Int) -> Int {
        guard !self.worker.stopping.withLock({ $0 }), !self.worker.behind.withLock({ $0 }) else { return 0 }
        return self.worker.places.withLock { places in
            let granted = min(count, max(0, self.worker.settings.concurrency - places.sending))
            places.sending += granted
            return granted
        }
    }

    func giveBack(_ count: Int) {
        self.worker.places.withLock { $0.sending -= count }
        self.worker.slotFreed.ring()
    }

    /// Starts the sends from a task of its own: called before the batch's publishers are answered, whose 202s then
    /// go ahead of the sends in the executor's queue (a fan-out to 1,000 endpoints was answered 5 ms later otherwise).
    func take(_ jobs: [DeliveryJob]) {
        DeliveryMetrics.direct.increment(by: jobs.count)
        let executor = PreferredExecutor.current
        Task(executorPreference: executor) {
            for job in jobs { Task(executorPreference: executor) { await self.worker.deliver(job, self.sender) } }
        }
    }
}

/// A worker's places: deliveries taken (claimed or handed over) and not yet sent, and sent ones awaiting their record.
struct Places: Sendable {
    var sending = 0
    var recording = 0
    var isEmpty: Bool { self.sending == 0 && self.recording == 0 }
}
