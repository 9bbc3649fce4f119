import SQLKit
import TernCore

/// A response kept for an `Idempotency-Key`.
public struct StoredResponse: Sendable, Equatable {
    public var statusCode: Int
    public var body: String

    public init(statusCode: Int, body: String) {
        self.statusCode = statusCode
        self.body = body
    }
}

/// What to do with a request that carries an `Idempotency-Key`.
public enum IdempotencyReservation: Sendable, Equatable {
    /// First use of the key: run the request, then `completeIdempotentRequest` or `releaseIdempotencyKey`.
    case reserved
    /// The key was used with the same request: answer with its first response.
    case replay(StoredResponse)
    /// The key was used with another request.
    case mismatch
    /// The first request with this key has not finished yet.
    case inProgress
}

extension Store {
    /// How long a key's first response is replayed.
    public static let idempotencyWindowSeconds: Int64 = 24 * 3600

    /// Claims `key` for a request whose method, path and body hash to `requestHash`.
    public func reserveIdempotencyKey(scope: String, key: String, requestHash: String) async throws -> IdempotencyReservation {
        let now = Timestamp.now().microseconds
        return try await self.database.write { sql in
            try await sql.raw(
                """
                DELETE FROM idempotency_keys WHERE scope = \(bind: scope) AND idempotency_key = \(bind: key)
                AND created_at <= \(bind: now - Self.idempotencyWindowSeconds * 1_000_000)
                """
            ).run()
            if let row = try await sql.raw(
                """
                SELECT * FROM idempotency_keys WHERE scope = \(bind: scope) AND idempotency_key = \(bind: key)
                """
            ).first() {
                guard try row.string("request_hash") == requestHash else { return .mismatch }
                let status = try row.int("status_code")
                guard status > 0 else { return .inProgress }
                return .replay(StoredResponse(statusCode: status, body: try row.string("response_body")))
            }
            try await sql.raw(
                """
                INSERT INTO idempotency_keys (scope, idempotency_key, request_hash, status_code, response_body, created_at)
                VALUES (\(bind: scope), \(bind: key), \(bind: requestHash), \(bind: 0), \(bind: ""), \(bind: now))
                """
            ).run()
            return .reserved
        }
    }

    /// Records the response to replay for a reserved key.
    public func completeIdempotentRequest(scope: String, key: String, _ response: StoredResponse) async throws {
        try await self.database.write { sql in
            try await sql.raw(
                """
                UPDATE idempotency_keys SET status_code = \(bind: response.statusCode), response_body = \(bind: response.body)
                WHERE scope = \(bind: scope) AND idempotency_key = \(bind: key)
                """
            ).run()
        }
    }

    /// Frees a reserved key whose request failed, so that it can be retried.
    public func releaseIdempotencyKey(scope: String, key: String) async throws {
        try await self.database.write { sql in
            try await sql.raw(
                """
                DELETE FROM idempotency_keys WHERE scope = \(bind: scope) AND idempotency_key = \(bind: key) AND status_code = 0
                """
            ).run()
        }
    }
}
