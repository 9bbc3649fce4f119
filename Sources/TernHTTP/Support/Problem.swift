import Foundation
import HTTPTypes
import Hummingbird
import TernCore

/// An RFC 9457 problem document.
struct Problem: Encodable {
    var type: String
    var title: String
    var status: Int
    var detail: String
    var instance: String
    var errors: [FieldError]?

    /// The one place that turns errors into problems.
    init(_ error: any Error, requestID: String) {
        let (status, slug, title, detail, errors) = Self.describe(error)
        self.type = "urn:tern:problem:\(slug)"
        self.title = title
        self.status = Int(status.code)
        self.detail = detail
        self.instance = "urn:tern:request:\(requestID)"
        self.errors = errors
    }

    var httpStatus: HTTPResponse.Status { HTTPResponse.Status(code: self.status) }

    static func describe(_ error: any Error) -> (HTTPResponse.Status, String, String, String, [FieldError]?) {
        switch error {
        case let error as TernError:
            switch error {
            case .malformed(let detail): return (.badRequest, "malformed-request", "Malformed request", detail, nil)
            case .unauthorized(let detail): return (.unauthorized, "unauthorized", "Unauthorized", detail, nil)
            case .forbidden(let detail): return (.forbidden, "forbidden", "Forbidden", detail, nil)
            case .planLimitExceeded(let detail): return (.forbidden, "plan-limit-exceeded", "Plan limit exceeded", detail, nil)
            case .notFound(let detail): return (.notFound, "not-found", "Not found", detail, nil)
            case .conflict(let detail): return (.conflict, "conflict", "Conflict", detail, nil)
            case .idempotencyConflict:
                return (
                    .conflict, "idempotency-conflict", "Idempotency key reused",
                    "This Idempotency-Key was already used with a different request.", nil
                )
            case .payloadTooLarge(let limit):
                return (.contentTooLarge, "payload-too-large", "Payload too large", "The request body is over the limit of \(limit) bytes.", nil)
            case .unsupportedMediaType(let detail):
                return (.unsupportedMediaType, "unsupported-media-type", "Unsupported media type", detail, nil)
            case .validation(let errors):
                let summary = errors.map { "\($0.field) \($0.message)" }.joined(separator: "; ")
                return (.unprocessableContent, "validation-failed", "Validation failed", summary, errors)
            case .unavailable(let detail): return (.serviceUnavailable, "unavailable", "Service unavailable", detail, nil)
            case .payloadExpunged(let detail): return (.gone, "payload-expunged", "Payload expunged", detail, nil)
            case .rateLimited(let state):
                return (
                    .tooManyRequests, "rate-limited", "Rate limited",
                    "This tenant's publish rate is over its plan's limit; retry after \(state.retryAfterSeconds ?? 1) s.", nil
                )
            }
        case let error as HTTPError:
            switch error.status {
            case .notFound: return (.notFound, "not-found", "Not found", "No route matches this path.", nil)
            case .methodNotAllowed:
                return (.methodNotAllowed, "method-not-allowed", "Method not allowed", "This path does not accept this method.", nil)
            case .contentTooLarge:
                return (.contentTooLarge, "payload-too-large", "Payload too large", error.body ?? "The request body is too large.", nil)
            default:
                return (error.status, "http-\(error.status.code)", error.status.reasonPhrase, error.body ?? error.status.reasonPhrase, nil)
            }
        default:
            return (.internalServerError, "internal", "Internal server error", "An unexpected error occurred.", nil)
        }
    }
}

extension Problem {
    /// The problem for an error, logged when it is the server's fault (5xx): the one place errors are logged.
    static func logged(_ error: any Error, request: Request, context: TernRequestContext) -> Problem {
        let problem = Problem(error, requestID: context.requestID)
        if problem.status >= 500 {
            context.logger.error("request failed", metadata: ["error": "\(String(reflecting: error))", "path": "\(request.uri.path)"])
        }
        return problem
    }
}
