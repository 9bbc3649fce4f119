import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization
import TernCore
import TernStorage

extension HTTPField.Name {
    static let requestID = Self("X-Request-Id")!
    static let idempotencyKey = Self("Idempotency-Key")!
    static let idempotentReplayed = Self("Idempotent-Replayed")!
}

/// Outermost middleware: gives each request an id (the caller's `X-Request-Id` when it is sane), answers every
/// error as problem+json (a known path with an unknown method is 405 with the path's methods in `Allow`), and puts
/// `X-Request-Id` on every response.
struct APIMiddleware: RouterMiddleware {
    typealias Context = TernRequestContext
    let routes: RouteTable

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let incoming = request.headers[.requestID]
        if let incoming, !incoming.isEmpty, incoming.utf8.count <= 128, incoming.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) {
            context.requestID = incoming
        } else {
            context.requestID = Identifier.make("req")
        }
        context.logger[metadataKey: "request_id"] = .string(context.requestID)
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            var error = error
            // A method the path does not serve is 405 whatever else failed first (the router says 404, a key 401).
            var allowed = self.routes.methods(for: request.uri.path)
            if allowed.contains(request.method) { allowed = [] } else if !allowed.isEmpty { error = HTTPError(.methodNotAllowed) }
            let problem = Problem.logged(error, request: request, context: context)
            if SvixError.isSvixPath(request.uri.path) {
                // No route of the Svix API matched (so no group answered): its clients still parse {code, detail}.
                response = try SvixError.response(problem)
            } else {
                response = try JSONResponse.make(problem, status: problem.httpStatus)
                response.headers[.contentType] = "application/problem+json"
            }
            if !allowed.isEmpty { response.headers[.allow] = allowed.map(\.rawValue).joined(separator: ", ") }
            if case .rateLimited(let state)? = error as? TernError { response.headers.setRateLimit(state) }
        }
        response.headers[.requestID] = context.requestID
        return response
    }
}

/// Resolves `Authorization: Bearer …` into the context's identity. A request without the header passes
/// unauthenticated (the route's context decides); a bad key is 401 at once.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = TernRequestContext
    let authenticator: Authenticator

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else { return try await next(request, context) }
        guard header.count > 7, header.prefix(7).lowercased() == "bearer " else {
            throw TernError.unauthorized("The Authorization header must be 'Bearer <api key>'.")
        }
        var context = context
        context.identity = try await self.authenticator.authenticate(header.dropFirst(7).trimmingHTTPWhitespace())
        return try await next(request, context)
    }
}

/// Replays the first response to a POST with an `Idempotency-Key` for 24 hours; the same key with another
/// request is 409, and so is a repeat while the first is still running.
struct IdempotencyMiddleware<Context: TernContext>: RouterMiddleware {
    let store: Store

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .post, let key = request.headers[.idempotencyKey] else {
            return try await next(request, context)
        }
        guard !key.isEmpty, key.utf8.count <= 255 else {
            throw TernError.invalid("Idempotency-Key", "must be 1-255 characters")
        }
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: 1 << 20)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw TernError.payloadTooLarge(limit: 1 << 20)
        }
        var hasher = SHA256()
        hasher.update(data: Array("\(request.method.rawValue) \(request.uri.path)\n".utf8))
        hasher.update(data: Array(body.readableBytesView))
        let requestHash = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        let scope = context.idempotencyScope
        switch try await self.store.reserveIdempotencyKey(scope: scope, key: key, requestHash: requestHash) {
        case .mismatch:
            throw TernError.idempotencyConflict
        case .inProgress:
            throw TernError.conflict("A request with this Idempotency-Key is still being processed; retry shortly.")
        case .replay(let stored):
            var response = JSONResponse.raw(
                ByteBuffer(string: stored.body), status: HTTPResponse.Status(code: stored.statusCode), contentType: "application/json"
            )
            response.headers[.idempotentReplayed] = "true"
            return response
        case .reserved:
            break
        }
        return try await self.store.runReserved(scope: scope, key: key) { try await next(request, context) }
    }
}

extension Store {
    /// Runs the request a reserved idempotency key guards: a 2xx answer is kept for replay (its body read once and
    /// put back); an error or another status frees the key, so that a retry runs again.
    func runReserved(scope: String, key: String, _ run: () async throws -> Response) async throws -> Response {
        let response: Response
        do {
            response = try await run()
        } catch {
            try? await self.releaseIdempotencyKey(scope: scope, key: key)
            throw error
        }
        guard (200..<300).contains(response.status.code) else {
            try? await self.releaseIdempotencyKey(scope: scope, key: key)
            return response
        }
        let collector = BodyCollector()
        var copy = response
        try await copy.body.write(CollectingWriter(collector: collector))
        let bytes = collector.buffer.withLock { $0 }
        try await self.completeIdempotentRequest(
            scope: scope, key: key, StoredResponse(statusCode: Int(response.status.code), body: String(buffer: bytes)))
        copy.body = .init(byteBuffer: bytes)
        return copy
    }
}

final class BodyCollector: Sendable {
    let buffer = Mutex(ByteBuffer())
}

struct CollectingWriter: ResponseBodyWriter {
    let collector: BodyCollector

    mutating func write(_ buffer: ByteBuffer) async throws {
        var buffer = buffer
        _ = self.collector.buffer.withLock { $0.writeBuffer(&buffer) }
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
