/// One invalid field of a request, reported in a problem's `errors` list.
public struct FieldError: Sendable, Equatable, Codable {
    public var field: String
    public var message: String

    public init(_ field: String, _ message: String) {
        self.field = field
        self.message = message
    }
}

/// Errors by meaning. The HTTP layer maps each case to one RFC 9457 problem; nothing else formats errors.
public enum TernError: Error, Sendable, Equatable {
    /// The body is not well-formed JSON (400).
    case malformed(String)
    /// Missing or invalid credentials (401).
    case unauthorized(String)
    /// Authenticated, but not allowed (403).
    case forbidden(String)
    /// The plan does not allow another object of this kind (403, `plan-limit-exceeded`).
    case planLimitExceeded(String)
    /// No such object visible to the caller (404), also for another organization's object.
    case notFound(String)
    /// The request conflicts with the current state, e.g. a name already taken (409).
    case conflict(String)
    /// The same `Idempotency-Key` was used with another request (409).
    case idempotencyConflict
    /// The body is over the size limit (413).
    case payloadTooLarge(limit: Int)
    /// The body is not JSON (415).
    case unsupportedMediaType(String)
    /// Well-formed but invalid input (422) with per-field errors.
    case validation([FieldError])
    /// A dependency (the database) is unavailable (503).
    case unavailable(String)
    /// Over the rate limit (429): the bucket's state gives `Retry-After` and the `RateLimit-*` headers.
    case rateLimited(RateLimitState)
    /// The message's payload was erased, so there is nothing to send (410).
    case payloadExpunged(String)

    /// A validation error about one field.
    public static func invalid(_ field: String, _ message: String) -> TernError {
        .validation([FieldError(field, message)])
    }
}
