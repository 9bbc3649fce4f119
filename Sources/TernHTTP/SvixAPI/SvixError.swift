import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import TernCore

/// The error bodies of the Svix API (`/api/v1`), which the Svix SDKs parse on every non-2xx: `{code, detail}`, and for
/// 422 `{detail: [{loc, msg, type}]}`. Statuses and words come from the same mapping as problem+json (`Problem`).
struct SvixError: Encodable {
    struct Standard: Encodable {
        var code: String
        var detail: String
    }

    struct Validation: Encodable {
        struct Item: Encodable {
            var loc: [String]
            var msg: String
            var type: String
        }

        var detail: [Item]
    }

    /// The Svix code of a status (the Svix server's defaults).
    static func code(_ status: Int) -> String {
        switch status {
        case 401: "authentication_failed"
        case 403: "insufficient access"
        case 404: "not_found"
        case 405: "method_not_allowed"
        case 409: "conflict"
        case 413: "payload_too_large"
        case 429: "rate_limit_exceeded"
        case 500...: "server_error"
        default: "generic_error"
        }
    }

    /// The response for an error: 422 with one item per field (`loc` = `["body", <camelCase field>]`, or `["query", …]` and
    /// `["path", …]` for fields named `query.…` and `path.…`), else `{code, detail}`.
    static func response(_ problem: Problem) throws -> Response {
        let body: Data
        if problem.status == 422 {
            let items = (problem.errors ?? [FieldError("body", problem.detail)]).map { error in
                var loc = error.field.split(separator: ".").map { Self.camelCase(String($0)) }
                if loc.first != "query" && loc.first != "path" && loc.first != "body" { loc.insert("body", at: 0) }
                return Validation.Item(loc: loc, msg: error.message, type: "value_error")
            }
            body = try JSONResponse.encoder.encode(Validation(detail: items))
        } else {
            body = try JSONResponse.encoder.encode(Standard(code: Self.code(problem.status), detail: problem.detail))
        }
        return JSONResponse.raw(ByteBuffer(bytes: body), status: problem.httpStatus, contentType: "application/json")
    }

    /// `tenant_id` → `tenantId`, as the Svix API spells its members.
    static func camelCase(_ field: String) -> String {
        let parts = field.split(separator: "_")
        guard let first = parts.first else { return field }
        return String(first) + parts.dropFirst().map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    }

    /// True for the paths of the Svix API, whose errors take these shapes even where no route matches.
    static func isSvixPath(_ path: String) -> Bool {
        path == "/api/v1" || path.hasPrefix("/api/v1/")
    }
}

/// An error with a code of the Svix API's own (`event_type_exists`, `invalid_range`, …).
struct SvixCodedError: Error {
    var status: HTTPResponse.Status
    var code: String
    var detail: String

    func response() throws -> Response {
        JSONResponse.raw(
            ByteBuffer(bytes: try JSONResponse.encoder.encode(SvixError.Standard(code: self.code, detail: self.detail))), status: self.status,
            contentType: "application/json")
    }
}

/// Outermost on the `/api/v1` group: every error in the Svix shapes.
struct SvixErrorMiddleware: RouterMiddleware {
    typealias Context = TernRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as SvixCodedError {
            return try error.response()
        } catch {
            return try SvixError.response(Problem.logged(error, request: request, context: context))
        }
    }
}
