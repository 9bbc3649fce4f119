import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import TernCore
import TernStorage
import Tracing

/// Sends one delivery: a signed Standard Webhooks POST of the payload bytes, and what came back.
public struct WebhookSender: Sendable {
    let client: HTTPClient
    /// Plain `http://` receivers without a proxy; nil when deliveries go through the operator's proxy.
    let plain: PlainHTTPClient?
    /// nil when the operator allows private endpoints.
    let egressGuard: EgressGuard?
    let userAgent: String
    /// OAuth2 tokens of the endpoints that authenticate with client credentials.
    let tokens = OAuth2Tokens()
    /// TLS configurations of the endpoints with a client certificate or their own CAs.
    let tls = ReceiverTLS()

    /// Makes the HTTP client deliveries use: no redirects, many connections per receiver, and the SSRF check
    /// on every new connection unless private endpoints are allowed.
    static func makeClient(connectionsPerHost: Int, allowPrivateEndpoints: Bool, proxy: DeliveryProxy? = nil) -> HTTPClient {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(10), read: nil),
            decompression: .disabled
        )
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: connectionsPerHost)
        // A refused or unreachable receiver fails the attempt at once (the retry schedule tries again later)
        // instead of the pool re-dialling until the endpoint's timeout, holding a worker slot all that time.
        configuration.connectionPool.retryConnectionEstablishment = false
        // Tern's own attempt span describes each delivery; the client's would record endpoint URLs, which may hold
        // credentials in their query.
        configuration.tracing.tracer = nil
        if let proxy {
            // Through the proxy the connected peer is the proxy: the guard checks each target's name and addresses
            // before asking the proxy (`EgressGuard.check`), and the proxy's own egress rules do the rest.
            configuration.proxy = .server(
                host: proxy.host, port: proxy.port, authorization: proxy.credentials.map { .basic(username: $0.username, password: $0.password) })
        } else if !allowPrivateEndpoints {
            configuration.http1_1ConnectionDebugInitializer = { EgressGuard.checkConnected($0) }
            configuration.http2ConnectionDebugInitializer = { EgressGuard.checkConnected($0) }
        }
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    /// The sender of a worker with `concurrency` deliveries in flight: async-http-client (`makeClient`), and
    /// `PlainHTTPClient` for plain `http://` receivers unless deliveries go through the operator's proxy (or
    /// `plainHTTP` is false: `tern bench sender` measures both); the SSRF guard unless private endpoints are allowed.
    public static func make(
        concurrency: Int, allowPrivateEndpoints: Bool, proxy: DeliveryProxy? = nil, userAgent: String, plainHTTP: Bool = true
    ) -> WebhookSender {
        WebhookSender(
            client: Self.makeClient(connectionsPerHost: concurrency, allowPrivateEndpoints: allowPrivateEndpoints, proxy: proxy),
            plain: plainHTTP && proxy == nil ? PlainHTTPClient(group: HTTPClient.defaultEventLoopGroup, guarded: !allowPrivateEndpoints) : nil,
            egressGuard: allowPrivateEndpoints ? nil : EgressGuard(), userAgent: userAgent)
    }

    /// Closes the sender's connections.
    public func shutdown() async throws {
        self.plain?.shutdown()
        try await self.client.shutdown()
    }

    /// Sends within a span of the publishing request's trace (when tracing is on): endpoint, delivery, status and
    /// error; never a secret or the payload.
    func send(_ job: DeliveryJob) async -> AttemptRecord {
        return await withSpan("tern.attempt", context: TraceCarrier.context(job.traceContext), ofKind: .client) { span in
            span.attributes["tern.endpoint_id"] = job.endpointID
            span.attributes["tern.delivery_id"] = job.deliveryID
            span.attributes["tern.message_id"] = job.messageID
            span.attributes["tern.attempt"] = job.attemptCount + 1
            let record = await self.attempt(job, extraHeaders: job.sendTraceparent ? TraceCarrier.headers() : [:])
            if let status = record.statusCode { span.attributes["http.response.status_code"] = status }
            span.attributes["tern.duration_ms"] = record.durationMS
            if let error = record.error {
                span.attributes["error.type"] = error
                span.setStatus(.init(code: .error, message: error))
            } else if record.outcome != .success {
                span.setStatus(.init(code: .error, message: "HTTP \(record.statusCode ?? 0)"))
            }
            return record
        }
    }

    /// One attempt; `extraHeaders` (the attempt's `traceparent`, when the application opts in) go beside the endpoint's.
    public func attempt(_ job: DeliveryJob, extraHeaders: [String: String] = [:]) async -> AttemptRecord {
        let started = ContinuousClock.now
        let at = Timestamp.now()
        let body = Array(job.payload.utf8)
        let timestamp = at.microseconds / 1_000_000
        var headers: [(String, String)] = [("content-type", "application/json"), ("user-agent", self.userAgent)]
        for (name, value) in job.headers.sorted(by: { $0.key < $1.key }) where job.auth == nil || name.lowercased() != "authorization" {
            headers.append((name, value))
        }
        for (name, value) in extraHeaders.sorted(by: { $0.key < $1.key }) { headers.append((name, value)) }
        let signature = WebhookSignature.header(secrets: job.secrets, messageID: job.messageID, timestamp: timestamp, body: body)
        for prefix in job.headerStyle.prefixes {
            headers.append(("\(prefix)-id", job.messageID))
            headers.append(("\(prefix)-timestamp", String(timestamp)))
            headers.append(("\(prefix)-signature", signature))
        }
        var recordedHeaders = Dictionary(headers, uniquingKeysWith: { _, last in last })
        // The attempt shows that credentials were sent, never the credentials.
        if let auth = job.auth { recordedHeaders["authorization"] = (auth.type == "basic" ? "Basic" : "Bearer") + " [redacted]" }

        func finish(status: Int?, responseBody: String?, error: String?, retryAfter: String?) -> AttemptRecord {
            let elapsed = ContinuousClock.now - started
            let milliseconds = Int(elapsed.components.seconds * 1000) + Int(elapsed.components.attoseconds / 1_000_000_000_000_000)
            let outcome =
                error != nil ? AttemptOutcome.failure(retryAfterSeconds: nil) : AttemptOutcome.of(statusCode: status, retryAfter: retryAfter)
            return AttemptRecord(
                job: job, requestHeaders: recordedHeaders, statusCode: status, responseBody: responseBody, durationMS: milliseconds,
                error: error, outcome: outcome, at: at
            )
        }

        do {
            guard let url = URL(string: job.url), let host = url.host, !host.isEmpty else {
                return finish(status: nil, responseBody: nil, error: "the endpoint URL is not valid", retryAfter: nil)
            }
            if let egressGuard = self.egressGuard {
                try await egressGuard.check(host: host)
            }
            var tlsConfiguration: TLSConfiguration?
            if let tls = job.tls {
                do {
                    tlsConfiguration = try self.tls.configuration(tls)
                } catch {
                    throw ReceiverAccessError(description: "the endpoint's TLS material cannot be used: \(error)")
                }
            }
            let deadline = NIODeadline.now() + .seconds(Int64(job.timeoutSeconds))
            let receiver = Receiver(url: url, text: job.url, host: host, tls: tlsConfiguration)
            var authorization = try await self.authorization(job, deadline: deadline, replacing: nil)
            var answer = try await self.post(to: receiver, headers: headers + authorization.header, body: body, deadline: deadline)
            if answer.status == 401, case .oauth2? = job.auth {
                // The receiver no longer takes the token (revoked, or expired early): one new token, one more try.
                authorization = try await self.authorization(job, deadline: deadline, replacing: authorization.token)
                answer = try await self.post(to: receiver, headers: headers + authorization.header, body: body, deadline: deadline)
            }
            return finish(status: answer.status, responseBody: Attempt.truncatedBody(answer.body), error: nil, retryAfter: answer.retryAfter)
        } catch {
            return finish(status: nil, responseBody: nil, error: Self.describe(error, timeout: job.timeoutSeconds), retryAfter: nil)
        }
    }

    /// Where an attempt goes: the endpoint's URL, read once.
    struct Receiver {
        var url: URL
        var text: String
        var host: String
        var tls: TLSConfiguration?
    }

    /// POSTs the delivery: straight to a plain `http://` receiver on `PlainHTTPClient` when there is one (no proxy, no
    /// credentials in the URL), through async-http-client otherwise. One byte more than is kept tells
    /// `truncatedBody` that the body was cut; the rest is not read.
    func post(
        to receiver: Receiver, headers: [(String, String)], body: [UInt8], deadline: NIODeadline
    ) async throws
        -> PlainHTTPClient.Answer
    {
        let keep = Attempt.maxResponseBodyBytes + 4
        if let plain = self.plain, receiver.url.scheme?.lowercased() == "http", receiver.url.user == nil, receiver.url.password == nil {
            let path = receiver.url.path(percentEncoded: true)
            let target = (path.isEmpty ? "/" : path) + (receiver.url.query(percentEncoded: true).map { "?" + $0 } ?? "")
            return try await plain.post(
                host: receiver.host, port: receiver.url.port ?? 80, target: target, headers: headers, body: body, keep: keep, deadline: deadline)
        }
        var request = HTTPClientRequest(url: receiver.text)
        request.method = .POST
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        request.tlsConfiguration = receiver.tls
        let response = try await self.execute(request, deadline: deadline)
        var kept: [UInt8] = []
        for try await chunk in response.body {
            kept.append(contentsOf: chunk.readableBytesView.prefix(keep - kept.count))
            if kept.count > Attempt.maxResponseBodyBytes || NIODeadline.now() > deadline { break }
        }
        return PlainHTTPClient.Answer(status: Int(response.status.code), retryAfter: response.headers.first(name: "retry-after"), body: kept)
    }

    /// Sends, once more on a new connection when a kept-alive one was closed by the receiver just as the request was
    /// handed to it (nothing was sent, so that was not an attempt yet).
    func execute(_ request: HTTPClientRequest, deadline: NIODeadline) async throws -> HTTPClientResponse {
        do {
            return try await self.client.execute(request, deadline: deadline)
        } catch ChannelError.ioOnClosedChannel {
            return try await self.client.execute(request, deadline: deadline)
        }
    }

    /// The `authorization` header for the endpoint's receiver authentication (none without one), and the OAuth2 token
    /// it carries.
    func authorization(
        _ job: DeliveryJob, deadline: NIODeadline, replacing refused: String?
    ) async throws
        -> (header: [(String, String)], token: String?)
    {
        switch job.auth {
        case nil: return ([], nil)
        case .basic(let username, let password)?:
            return ([("authorization", "Basic " + Data("\(username):\(password)".utf8).base64EncodedString())], nil)
        case .bearer(let bearer)?: return ([("authorization", "Bearer " + bearer)], nil)
        case .oauth2(let grant)?:
            if let egressGuard = self.egressGuard, let host = URL(string: grant.tokenURL)?.host {
                try await egressGuard.check(host: host)
            }
            let client = self.client
            let fresh = try await self.tokens.token(endpointID: job.endpointID, grant, replacing: refused) {
                try await OAuth2Tokens.request(grant, client: client, deadline: deadline, timeoutSeconds: job.timeoutSeconds)
            }
            return ([("authorization", "Bearer " + fresh)], fresh)
        }
    }

    /// One line saying why no answer came, for the attempt's `error`.
    static func describe(_ error: any Error, timeout: Int) -> String {
        if let refused = error as? EgressGuard.Refused { return refused.description }
        if let access = error as? ReceiverAccessError { return access.description }
        if error is NIOSSLError || error is BoringSSLError { return Self.tlsFailure("\(error)") }
        if let resolution = error as? AddressClassifier.ResolutionError { return resolution.description }
        if let plain = error as? PlainHTTPClient.Failure {
            switch plain {
            case .timedOut: return "timed out after \(timeout) s"
            case .closedBeforeAnswer: return "the receiver closed the connection before answering"
            case .resetBeforeAnswer: return "the receiver reset the connection before answering"
            case .closedBeforeSending: return "the connection closed before the request was sent"
            }
        }
        if case ChannelError.connectTimeout? = error as? ChannelError { return "connect timed out" }
        if let parser = error as? HTTPParserError {
            switch parser {
            case .invalidEOFState: return "the receiver closed the connection in the middle of its answer"
            case .invalidHeaderToken: return "the request's headers cannot be sent: a name or value is not allowed in HTTP"
            default: return "the receiver's answer is not HTTP/1.1 (\(parser))"
            }
        }
        if let client = error as? HTTPClientError {
            switch client {
            case .deadlineExceeded, .readTimeout: return "timed out after \(timeout) s"
            case .connectTimeout: return "connect timed out"
            case .remoteConnectionClosed: return "the receiver closed the connection before answering"
            default: return "HTTP error: \(client)"
            }
        }
        if let connection = error as? NIOConnectionError {
            if connection.connectionErrors.contains(where: { Self.isRefused($0.error) }) { return "connection refused" }
            return "cannot connect: \(connection.connectionErrors.first.map { "\($0.error)" } ?? "\(connection)")"
        }
        if Self.isRefused(error) { return "connection refused" }
        if let channel = error as? ChannelError, channel == .ioOnClosedChannel { return "the connection closed before the request was sent" }
        let text = "\(error)"
        if text.contains("refused by the SSRF guard") { return String(text.prefix(300)) }
        return "cannot deliver: \(String(text.prefix(300)))"
    }

    /// A TLS failure in words, with BoringSSL's reason code (`TLSV1_ALERT_UNKNOWN_CA`) for searching.
    static func tlsFailure(_ text: String) -> String {
        let reason = text.range(of: #"OPENSSL_internal:[A-Z0-9_]+"#, options: .regularExpression).map {
            String(text[$0].dropFirst("OPENSSL_internal:".count))
        }
        switch reason {
        case "TLSV1_ALERT_CERTIFICATE_REQUIRED"?:
            return
                "TLS: the receiver requires a client certificate (TLSV1_ALERT_CERTIFICATE_REQUIRED); set tls.client_certificate_pem and tls.client_key_pem"
        case "TLSV1_ALERT_UNKNOWN_CA"?, "SSLV3_ALERT_BAD_CERTIFICATE"?, "TLSV1_ALERT_ACCESS_DENIED"?, "SSLV3_ALERT_CERTIFICATE_UNKNOWN"?:
            return "TLS: the receiver rejected the client certificate (\(reason!))"
        case "CERTIFICATE_VERIFY_FAILED"?:
            return "TLS: the receiver's certificate is not trusted (CERTIFICATE_VERIFY_FAILED); for a private CA set tls.ca_bundle_pem"
        case let reason?:
            return "TLS with the receiver failed (\(reason))"
        case nil:
            return "TLS with the receiver failed: \(String(text.prefix(200)))"
        }
    }

    /// Whether the receiver refused the connection (ECONNREFUSED), told by the error's type and code, not its text.
    static func isRefused(_ error: any Error) -> Bool {
        if let io = error as? IOError { return io.errnoCode == ECONNREFUSED }
        if let connection = error as? NIOConnectionError { return connection.connectionErrors.contains { Self.isRefused($0.error) } }
        return false
    }
}
