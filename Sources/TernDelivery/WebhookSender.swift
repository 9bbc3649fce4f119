import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import TernCore
import TernStorage

/// Sends one delivery: a signed Standard Webhooks POST of the payload bytes, and what came back.
struct WebhookSender: Sendable {
    let client: HTTPClient
    /// nil when the operator allows private endpoints.
    let egressGuard: EgressGuard?
    let userAgent: String

    /// Makes the HTTP client deliveries use: no redirects, many connections per receiver, and the SSRF check
    /// on every new connection unless private endpoints are allowed.
    static func makeClient(connectionsPerHost: Int, allowPrivateEndpoints: Bool) -> HTTPClient {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(10), read: nil),
            decompression: .disabled
        )
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: connectionsPerHost)
        // A refused or unreachable receiver fails the attempt at once (the retry schedule tries again later)
        // instead of the pool re-dialling until the endpoint's timeout, holding a worker slot all that time.
        configuration.connectionPool.retryConnectionEstablishment = false
        if !allowPrivateEndpoints {
            configuration.http1_1ConnectionDebugInitializer = { EgressGuard.checkConnected($0) }
            configuration.http2ConnectionDebugInitializer = { EgressGuard.checkConnected($0) }
        }
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    func send(_ job: DeliveryJob) async -> AttemptRecord {
        let started = ContinuousClock.now
        let at = Timestamp.now()
        let body = Array(job.payload.utf8)
        let timestamp = at.microseconds / 1_000_000
        var headers: [(String, String)] = [("content-type", "application/json"), ("user-agent", self.userAgent)]
        for (name, value) in job.headers.sorted(by: { $0.key < $1.key }) { headers.append((name, value)) }
        let signature = WebhookSignature.header(secrets: job.secrets, messageID: job.messageID, timestamp: timestamp, body: body)
        for prefix in job.headerStyle.prefixes {
            headers.append(("\(prefix)-id", job.messageID))
            headers.append(("\(prefix)-timestamp", String(timestamp)))
            headers.append(("\(prefix)-signature", signature))
        }
        let recordedHeaders = Dictionary(headers, uniquingKeysWith: { _, last in last })

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
            var request = HTTPClientRequest(url: job.url)
            request.method = .POST
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            request.body = .bytes(ByteBuffer(bytes: body))
            let deadline = NIODeadline.now() + .seconds(Int64(job.timeoutSeconds))
            let response: HTTPClientResponse
            do {
                response = try await self.client.execute(request, deadline: deadline)
            } catch ChannelError.ioOnClosedChannel {
                // A kept-alive connection that the receiver closed just as this request was handed to it: nothing
                // was sent, so this is not an attempt yet. Once more, on a new connection.
                response = try await self.client.execute(request, deadline: deadline)
            }
            // One byte more than is kept tells `truncatedBody` that the body was cut; the rest is not read.
            var kept: [UInt8] = []
            for try await chunk in response.body {
                kept.append(contentsOf: chunk.readableBytesView.prefix(Attempt.maxResponseBodyBytes + 4 - kept.count))
                if kept.count > Attempt.maxResponseBodyBytes || NIODeadline.now() > deadline { break }
            }
            return finish(
                status: Int(response.status.code), responseBody: Attempt.truncatedBody(kept), error: nil,
                retryAfter: response.headers.first(name: "retry-after")
            )
        } catch {
            return finish(status: nil, responseBody: nil, error: Self.describe(error, timeout: job.timeoutSeconds), retryAfter: nil)
        }
    }

    /// One line saying why no answer came, for the attempt's `error`.
    static func describe(_ error: any Error, timeout: Int) -> String {
        if let refused = error as? EgressGuard.Refused { return refused.description }
        if let resolution = error as? AddressClassifier.ResolutionError { return resolution.description }
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

    /// Whether the receiver refused the connection (ECONNREFUSED), told by the error's type and code, not its text.
    static func isRefused(_ error: any Error) -> Bool {
        if let io = error as? IOError { return io.errnoCode == ECONNREFUSED }
        if let connection = error as? NIOConnectionError { return connection.connectionErrors.contains { Self.isRefused($0.error) } }
        return false
    }
}
