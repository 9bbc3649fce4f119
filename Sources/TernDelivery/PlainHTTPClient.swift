import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Deliveries to plain `http://` receivers reached directly (no proxy): one POST at a time on each kept-alive
/// connection, on NIO's HTTP/1.1 codec. async-http-client stays for everything else (TLS, mTLS, the proxy, OAuth2
/// token requests). On this path it cost 51–64 µs of CPU a 1 KB POST against 24–30 µs for this client
/// (`docs/benchmarks.md`, item 28): per request it builds a task, a state machine and a streamed response body, where
/// a delivery needs a head, a body, and the first 4 KiB of the answer.
final class PlainHTTPClient: Sendable {
    /// What came back: the status, `retry-after`, and the body's first `keep` bytes.
    struct Answer: Sendable {
        var status: Int
        var retryAfter: String?
        var body: [UInt8]
    }

    enum Failure: Error, Equatable {
        /// The deadline passed before the whole answer's head (and the body kept) came.
        case timedOut
        /// The receiver closed the connection after the request was sent and before it answered.
        case closedBeforeAnswer
        /// The receiver reset the connection (or refused the request's bytes) before any of its answer came.
        case resetBeforeAnswer
        /// A kept-alive connection was found closed before the request was handed to it: nothing was sent.
        case closedBeforeSending
    }

    private let group: any EventLoopGroup
    /// Whether a connection's peer is checked against the SSRF guard's internal ranges (`EgressGuard.checkConnected`).
    private let guarded: Bool
    /// Idle connections by `host:port`, the most recently used last; nil once shut down.
    private let idle = Mutex<[String: [Connection]]?>([:])
    /// How long a connection stays open unused (async-http-client's 60 s).
    private let idleTimeout: TimeAmount
    static let connectTimeout: TimeAmount = .seconds(10)

    init(group: any EventLoopGroup, guarded: Bool, idleTimeout: TimeAmount = .seconds(60)) {
        self.group = group
        self.guarded = guarded
        self.idleTimeout = idleTimeout
    }

    /// POSTs `body` to `target` (path and query) on `host:port` with `headers`; `host` is added. Sends once more on a
    /// new connection when a kept-alive one is found closed before the request went out. A close that crosses the
    /// request on the wire (the receiver ended an idle connection just as it came) fails the attempt, as it does
    /// through async-http-client: from here it cannot be told from a receiver that drops what it was sent, and a
    /// failed attempt is what the attempt log should then show; the retry schedule sends it again.
    func post(
        host: String, port: Int, target: String, headers: [(String, String)], body: [UInt8], keep: Int, deadline: NIODeadline
    )
        async throws -> Answer
    {
        let key = "\(host):\(port)"
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: target)
        head.headers.reserveCapacity(headers.count + 2)
        head.headers.add(name: "host", value: port == 80 ? host : key)
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        head.headers.add(name: "content-length", value: String(body.count))
        if let kept = self.takeIdle(key) {
            do {
                return try await self.exchange(on: kept, key: key, head: head, body: body, keep: keep, deadline: deadline)
            } catch Failure.closedBeforeSending {}
        }
        let fresh = try await self.connect(host: host, port: port, key: key, deadline: deadline)
        return try await self.exchange(on: fresh, key: key, head: head, body: body, keep: keep, deadline: deadline)
    }

    /// Idle connections kept, to any receiver.
    var idleCount: Int { self.idle.withLock { $0?.values.reduce(0) { $0 + $1.count } ?? 0 } }

    /// Closes the idle connections.
    func shutdown() {
        let connections = self.idle.withLock { idle in
            defer { idle = nil }
            return idle?.values.flatMap { $0 } ?? []
        }
        for connection in connections { connection.channel.close(promise: nil) }
    }

    private func exchange(
        on connection: Connection, key: String, head: HTTPRequestHead, body: [UInt8], keep: Int, deadline: NIODeadline
    )
        async throws -> Answer
    {
        let (answer, reusable) = try await connection.exchange(head: head, body: body, keep: keep, deadline: deadline).get()
        // A connection whose close came already is not pooled: its `forget` may have run before this.
        let pooled =
            reusable
            && self.idle.withLock { idle in
                guard idle != nil, connection.channel.isActive else { return false }
                idle?[key, default: []].append(connection)
                return true
            }
        if pooled {
            connection.channel.eventLoop.execute { connection.handler.armIdleTimer(self.idleTimeout) }
        } else {
            connection.channel.close(promise: nil)
        }
        return answer
    }

    private func takeIdle(_ key: String) -> Connection? {
        self.idle.withLock { idle in
            while let connection = idle?[key]?.popLast() {
                if idle?[key]?.isEmpty == true { idle?[key] = nil }
                if connection.channel.isActive { return connection }
            }
            return nil
        }
    }

    /// Forgets a connection that closed while idle.
    private func forget(_ connection: Connection, key: String) {
        self.idle.withLock { idle in
            idle?[key]?.removeAll { $0 === connection }
            if idle?[key]?.isEmpty == true { idle?[key] = nil }
        }
    }

    private func connect(host: String, port: Int, key: String, deadline: NIODeadline) async throws -> Connection {
        let handler = AnswerHandler()
        let left = deadline - .now()
        let channel = try await ClientBootstrap(group: self.group)
            .connectTimeout(max(.milliseconds(1), min(Self.connectTimeout, left)))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: host, port: port).get()
        let connection = Connection(channel: channel, handler: handler)
        channel.closeFuture.whenComplete { [weak self] _ in self?.forget(connection, key: key) }
        if self.guarded {
            do {
                try await EgressGuard.checkConnected(channel).get()
            } catch {
                channel.close(promise: nil)
                throw error
            }
        }
        return connection
    }

    final class Connection: Sendable {
        let channel: any Channel
        let handler: AnswerHandler

        init(channel: any Channel, handler: AnswerHandler) {
            self.channel = channel
            self.handler = handler
        }

        /// Sends the request and completes with the answer and whether the connection can carry another.
        func exchange(head: HTTPRequestHead, body: [UInt8], keep: Int, deadline: NIODeadline) -> EventLoopFuture<(Answer, Bool)> {
            let channel = self.channel
            let handler = self.handler
            let promise = channel.eventLoop.makePromise(of: (Answer, Bool).self)
            channel.eventLoop.execute {
                guard channel.isActive else { return promise.fail(Failure.closedBeforeSending) }
                handler.expect(promise, keep: keep, deadline: deadline)
                let bytes = channel.allocator.buffer(bytes: body)
                channel.write(HTTPClientRequestPart.head(head), promise: nil)
                channel.write(HTTPClientRequestPart.body(.byteBuffer(bytes)), promise: nil)
                channel.writeAndFlush(HTTPClientRequestPart.end(nil)).whenFailure { error in
                    handler.fail(error)
                    channel.close(promise: nil)
                }
            }
            return promise.futureResult
        }
    }

    /// Reads one answer at a time; all of its state is the event loop's.
    ///
    /// One timer per connection (`MovingDeadlineTimer`) keeps both of its time limits: the answer's deadline while one
    /// is awaited, the idle deadline while the connection is pooled. When it fires it acts on the limit that holds
    /// then, sets itself again for a later one, or lapses without one. An exchange therefore schedules no timer and
    /// cancels none, where it scheduled and cancelled two (the answer's and the idle one): 1 to 4% less CPU per
    /// publish (`docs/benchmarks.md`, item 40).
    final class AnswerHandler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPClientResponsePart

        private var promise: EventLoopPromise<(Answer, Bool)>?
        /// The answer's deadline while one is awaited.
        private var deadline: NIODeadline?
        /// When the pooled connection is closed unused.
        private var idleDeadline: NIODeadline?
        private let timer = MovingDeadlineTimer()
        private var answer = Answer(status: 0, retryAfter: nil, body: [])
        private var keep = 0
        private var keepAlive = true
        /// The receiver's `Keep-Alive: timeout=N`, in seconds: how long it keeps an idle connection open.
        private var receiverIdleSeconds: Int64?
        private var context: ChannelHandlerContext?

        func handlerAdded(context: ChannelHandlerContext) { self.context = context }
        func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

        func expect(_ promise: EventLoopPromise<(Answer, Bool)>, keep: Int, deadline: NIODeadline) {
            self.idleDeadline = nil
            self.promise = promise
            self.deadline = deadline
            self.arm(deadline)
            self.keep = keep
            self.answer = Answer(status: 0, retryAfter: nil, body: [])
            self.keepAlive = true
            self.receiverIdleSeconds = nil
        }

        /// Closes the connection after `timeout` unused, or a second before the receiver said it would close it
        /// (`Keep-Alive: timeout=N`, sent by Node and Apache, 5 s by default): a request sent just as the receiver
        /// closes an idle connection fails (`aRequestTheCloseCrossedFailsOnceAndIsNotSentAgain`).
        func armIdleTimer(_ timeout: TimeAmount) {
            guard self.promise == nil else { return }
            let idle = self.receiverIdleSeconds.map { min(timeout, .seconds($0 - Self.idleMargin)) } ?? timeout
            self.idleDeadline = .now() + idle
            self.arm(self.idleDeadline!)
        }

        private func arm(_ limit: NIODeadline) {
            guard let context = self.context else { return }
            self.timer.arm(by: limit, on: context.eventLoop) { self.fire() }
        }

        /// Acts on the limit that holds now: an answer awaited past its deadline fails and the connection closes, a
        /// connection idle past its deadline closes; a limit still ahead sets the timer again.
        private func fire() {
            let limit = self.promise != nil ? self.deadline : self.idleDeadline
            guard let limit else { return }
            guard NIODeadline.now() >= limit else { return self.arm(limit) }
            if self.promise != nil { self.fail(Failure.timedOut) }
            self.idleDeadline = nil
            self.context?.channel.close(promise: nil)
        }

        static let idleMargin: Int64 = 1

        /// The `timeout=N` of a `Keep-Alive` header (`timeout=5, max=100`).
        static func idleSeconds(_ keepAlive: String) -> Int64? {
            for part in keepAlive.split(separator: ",") {
                let pair = part.filter { !$0.isWhitespace }.split(separator: "=", maxSplits: 1)
                if pair.count == 2, pair[0].lowercased() == "timeout", let seconds = Int64(pair[1]), seconds >= 0 { return seconds }
            }
            return nil
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard self.promise != nil else { return }
            switch self.unwrapInboundIn(data) {
            case .head(let head):
                self.answer.status = Int(head.status.code)
                self.answer.retryAfter = head.headers.first(name: "retry-after")
                self.keepAlive = head.isKeepAlive
                if let hint = head.headers.first(name: "keep-alive").flatMap(Self.idleSeconds) {
                    self.receiverIdleSeconds = hint
                    // Too short to reuse safely.
                    if hint <= Self.idleMargin { self.keepAlive = false }
                }
            case .body(let part):
                self.answer.body.append(contentsOf: part.readableBytesView.prefix(self.keep - self.answer.body.count))
                // Enough is kept: the rest is not read, and the connection, its answer unfinished, is not reused.
                if self.answer.body.count >= self.keep { self.succeed(reusable: false) }
            case .end:
                self.succeed(reusable: self.keepAlive)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            self.timer.cancel()
            self.fail(Failure.closedBeforeAnswer)
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            self.fail(error)
            context.close(promise: nil)
        }

        /// Fails the answer awaited; a reset before any of the answer came is told as such.
        func fail(_ error: any Error) {
            if self.answer.status == 0, let io = error as? IOError, io.errnoCode == ECONNRESET || io.errnoCode == EPIPE {
                self.finish(.failure(Failure.resetBeforeAnswer))
            } else {
                self.finish(.failure(error))
            }
        }

        private func succeed(reusable: Bool) {
            self.finish(.success((self.answer, reusable)))
        }

        private func finish(_ result: Result<(Answer, Bool), any Error>) {
            guard let promise = self.promise else { return }
            self.promise = nil
            self.deadline = nil
            promise.completeWith(result)
        }
    }
}
