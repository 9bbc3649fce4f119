import Crypto
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import TernCore
import TernStorage

/// Verifies API keys. Argon2id runs once per token; after that the verified token is served from memory, keyed
/// by its SHA-256, so an authenticated request costs microseconds. Each cached entry is re-checked against the
/// database (a primary-key read, no argon2) once it is older than `recheckInterval`, so a key revoked on another
/// node stops working within that interval; on this node revocation evicts it at once.
public final class Authenticator: Service, Sendable {
    struct Entry: Sendable {
        var identity: Identity
        var keyID: String?
        var checkedAt: ContinuousClock.Instant
    }

    let store: Store
    let adminKeyDigest: [UInt8]?
    let recheckInterval: Duration
    let lastUsedFlushInterval: Duration
    let logger: Logger
    let cache = Mutex<[Data: Entry]>([:])
    let rejected = Mutex<[Data: ContinuousClock.Instant]>([:])
    let pendingUses = Mutex<[String: Timestamp]>([:])
    /// Argon2 verifications at once: each takes ~19 MiB and tens of milliseconds of CPU.
    let verifications = Argon2Gate(permits: 2)

    public init(
        store: Store, adminKey: String?, recheckInterval: Duration = .seconds(5), lastUsedFlushInterval: Duration = .seconds(30),
        logger: Logger
    ) {
        self.store = store
        self.adminKeyDigest = adminKey.map { Array(SHA256.hash(data: Array($0.utf8))) }
        self.recheckInterval = recheckInterval
        self.lastUsedFlushInterval = lastUsedFlushInterval
        self.logger = logger
        Argon2id.returnMemoryAfterUse()
    }

    /// The identity of a bearer token; 401 when it is not a valid, unrevoked key.
    public func authenticate(_ token: String) async throws -> Identity {
        let digestBytes = Array(tokenFingerprint(token))
        if let adminKeyDigest, constantTimeEqual(digestBytes, adminKeyDigest) { return .admin }
        let digest = Data(digestBytes)
        let now = ContinuousClock.now
        if let entry = self.cache.withLock({ $0[digest] }) {
            if now - entry.checkedAt < self.recheckInterval {
                self.recordUse(entry.keyID)
                return entry.identity
            }
            // Stale: confirm the key still stands, without argon2.
            if let keyID = entry.keyID, let stored = try await self.store.storedKey(keyID), let identity = Self.identity(of: stored) {
                self.cache.withLock { $0[digest] = Entry(identity: identity, keyID: keyID, checkedAt: now) }
                self.recordUse(keyID)
                return identity
            }
            self.cache.withLock { _ = $0.removeValue(forKey: digest) }
            throw TernError.unauthorized("This API key is revoked or unknown.")
        }
        if let rejectedAt = self.rejected.withLock({ $0[digest] }), now - rejectedAt < .seconds(10) {
            throw TernError.unauthorized("This API key is revoked or unknown.")
        }
        guard let parsed = APIKeyToken(parsing: token), let stored = try await self.store.storedKey(parsed.keyID) else {
            self.reject(digest, now)
            throw TernError.unauthorized("This API key is revoked or unknown.")
        }
        let verified = await self.verifications.run { Argon2id.verify(parsed.secret, encoded: stored.secretHash) }
        guard verified, let identity = Self.identity(of: stored) else {
            self.reject(digest, now)
            throw TernError.unauthorized("This API key is revoked or unknown.")
        }
        self.cache.withLock { cache in
            if cache.count > 100_000 { cache.removeAll() }
            cache[digest] = Entry(identity: identity, keyID: parsed.keyID, checkedAt: now)
        }
        self.recordUse(parsed.keyID)
        return identity
    }

    /// Forgets every cached token of `keyID` on this node.
    public func evict(keyID: String) {
        self.cache.withLock { cache in
            cache = cache.filter { $0.value.keyID != keyID }
        }
    }

    static func identity(of stored: StoredKey) -> Identity? {
        guard stored.key.revokedAt == nil else { return nil }
        guard let organizationID = stored.key.organizationID else { return .admin }
        guard stored.organizationStatus == .active else { return nil }
        return .organization(
            Principal(
                organizationID: organizationID, keyID: stored.key.id, scopes: stored.key.scopes, applicationID: stored.key.applicationID
            ))
    }

    func reject(_ digest: Data, _ now: ContinuousClock.Instant) {
        self.rejected.withLock { rejected in
            if rejected.count > 10_000 { rejected.removeAll() }
            rejected[digest] = now
        }
    }

    func recordUse(_ keyID: String?) {
        guard let keyID else { return }
        let now = Timestamp.now()
        self.pendingUses.withLock { $0[keyID] = now }
    }

    /// Writes the collected `last_used_at` times: one batch per interval, not one write per request.
    public func flushLastUsed() async {
        let uses = self.pendingUses.withLock { uses in
            defer { uses.removeAll() }
            return uses
        }
        do {
            try await self.store.touchAPIKeys(uses)
        } catch {
            self.logger.warning("could not record API key use", metadata: ["error": "\(error)"])
        }
    }

    public func run() async throws {
        let interval = self.lastUsedFlushInterval
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                await self.flushLastUsed()
            }
        }
        await self.flushLastUsed()
    }
}

/// Bounds how many argon2 verifications run at once, on threads outside the event loops.
final class Argon2Gate: Sendable {
    let permits: Mutex<(available: Int, waiters: [CheckedContinuation<Void, Never>])>

    init(permits: Int) {
        self.permits = Mutex((permits, []))
    }

    func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = self.permits.withLock { state -> Bool in
                if state.available > 0 {
                    state.available -= 1
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
        defer {
            let next = self.permits.withLock { state -> CheckedContinuation<Void, Never>? in
                if state.waiters.isEmpty {
                    state.available += 1
                    return nil
                }
                return state.waiters.removeFirst()
            }
            next?.resume()
        }
        return await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
            Thread.detachNewThread { continuation.resume(returning: work()) }
        }
    }
}
