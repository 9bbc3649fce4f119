import Logging
import ServiceLifecycle
import TernCore
import TernStorage

/// Deletes data past retention (`RetentionPolicy`) once the schema is ready and then every `interval`.
public final class Pruner: Service, Sendable {
    let store: Store
    let policy: RetentionPolicy
    let interval: Duration
    let logger: Logger

    public init(store: Store, policy: RetentionPolicy, interval: Duration = .seconds(3600), logger: Logger) {
        self.store = store
        self.policy = policy
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            await self.store.database.migrated.wait()
            while !Task.isCancelled {
                do {
                    let counts = try await self.store.prune(self.policy)
                    if counts.messages + counts.deadLetters + counts.payloads > 0 {
                        self.logger.info(
                            "pruned data past retention",
                            metadata: [
                                "messages": "\(counts.messages)", "dead_letters": "\(counts.deadLetters)", "payloads_erased": "\(counts.payloads)",
                                "idempotency_keys": "\(counts.idempotencyKeys)",
                            ])
                    }
                } catch {
                    self.logger.warning("pruning failed; trying again later", metadata: ["error": "\(error)"])
                }
                try await Task.sleep(for: self.interval)
            }
        }
    }
}
