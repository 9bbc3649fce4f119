import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// A raw HTTP/1.1 receiver on 127.0.0.1 that misbehaves on purpose, per request: it can answer, answer late, cut the
/// connection in the middle of its answer, or close it without answering. `decide` picks, from the request's path,
/// its `webhook-id` and which attempt of that id this is (1, 2, …).
final class ChaosReceiver: Sendable {
    enum Action: Sendable {
        case answer(status: Int, headers: [String: String] = [:], delay: Duration = .zero, body: String? = nil)
        /// Answers 204 (without `connection: close`), then closes the connection.
        case answerThenClose
        /// Sends the status line, headers announcing 64 bytes and 3 of them, then closes.
        case cutMidResponse
        /// Closes the connection once the request has arrived, sending nothing.
        case closeWithoutAnswer
        /// Resets the connection (a TCP RST) once the request has arrived, sending nothing.
        case resetWithoutAnswer
    }

    struct Arrival: Sendable {
        var path: String
        var id: String
        var body: String
        var attempt: Int
        var at: ContinuousClock.Instant
    }

    let channel: any Channel
    let arrivals = Mutex<[Arrival]>([])
    /// Connections accepted so far.
    let connections = Atomic<Int>(0)
    let decide: @Sendable (String, String, String, Int) -> Action

    var port: Int { self.channel.localAddress?.port ?? 0 }
    func url(_ path: String) -> String { "http://127.0.0.1:\(self.port)\(path)" }
    var all: [Arrival] { self.arrivals.withLock { $0 } }

    private init(channel: any Channel, decide: @escaping @Sendable (String, String, String, Int) -> Action) {
        self.channel = channel
        self.decide = decide
    }

    /// `decide(path, webhook-id, body, attempt)`.
    static func start(decide: @escaping @Sendable (String, String, String, Int) -> Action) async throws -> ChaosReceiver {
        let holder = Mutex<ChaosReceiver?>(nil)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                holder.withLock { $0 }?.connections.add(1, ordering: .relaxed)
                return channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Handler { holder.withLock { $0 }! }) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let receiver = ChaosReceiver(channel: channel, decide: decide)
        holder.withLock { $0 = receiver }
        return receiver
    }

    func stop() async {
        try? await self.channel.close()
    }

    /// Records the request and returns what to do with it.
    func arrived(path: String, id: String, body: String) -> Action {
        let attempt = self.arrivals.withLock { arrivals in
            let attempt = arrivals.filter { $0.path == path && $0.id == id }.count + 1
            arrivals.append(Arrival(path: path, id: id, body: body, attempt: attempt, at: .now))
            return attempt
        }
        return self.decide(path, id, body, attempt)
    }

    final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        let receiver: () -> ChaosReceiver
        var buffer: [UInt8] = []

        init(_ receiver: @escaping () -> ChaosReceiver) {
            self.receiver = receiver
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = self.unwrapInboundIn(data)
            self.buffer += bytes.readBytes(length: bytes.readableBytes) ?? []
            // One whole request: headers, then Content-Length bytes of body.
            guard let end = self.buffer.firstRange(of: Array("\r\n\r\n".utf8)) else { return }
            let head = String(decoding: self.buffer[..<end.lowerBound], as: UTF8.self)
            let lines = head.split(separator: "\r\n")
            var fields: [String: String] = [:]
            for line in lines.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            let length = Int(fields["content-length"] ?? "0") ?? 0
            guard self.buffer.count - end.upperBound >= length else { return }
            let body = String(decoding: self.buffer[end.upperBound..<(end.upperBound + length)], as: UTF8.self)
            self.buffer.removeFirst(end.upperBound + length)
            let path = lines.first.map { $0.split(separator: " ").dropFirst().first.map(String.init) ?? "/" } ?? "/"
            let action = self.receiver().arrived(path: path, id: fields["webhook-id"] ?? "", body: body)
            let channel = context.channel
            switch action {
            case .answer(let status, let headers, let delay, let answerBody):
                // 204 and 304 answers have no body (a body there would be read as the start of the next answer).
                let body = status == 204 || status == 304 ? "" : answerBody ?? "ok"
                var text = "HTTP/1.1 \(status) Chaos\r\n" + (body.isEmpty ? "" : "Content-Length: \(body.utf8.count)\r\n")
                for (name, value) in headers { text += "\(name): \(value)\r\n" }
                text += "\r\n" + body
                let response = ByteBuffer(string: text)
                if delay > .zero {
                    let nanoseconds = Int64(delay.components.seconds) * 1_000_000_000 + Int64(delay.components.attoseconds / 1_000_000_000)
                    context.eventLoop.scheduleTask(in: .nanoseconds(nanoseconds)) {
                        channel.writeAndFlush(response, promise: nil)
                    }
                } else {
                    context.writeAndFlush(self.wrapOutboundOut(response), promise: nil)
                }
            case .cutMidResponse:
                context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 64\r\n\r\nhal")), promise: nil)
                context.close(promise: nil)
            case .closeWithoutAnswer:
                context.close(promise: nil)
            case .resetWithoutAnswer:
                // Lingering for 0 s makes the close a reset.
                let linger = (channel as? any SocketOptionProvider)?.setSoLinger(linger(l_onoff: 1, l_linger: 0))
                (linger ?? channel.eventLoop.makeSucceededVoidFuture()).whenComplete { _ in channel.close(promise: nil) }
            case .answerThenClose:
                context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 204 No Content\r\n\r\n")), promise: nil)
                context.close(promise: nil)
            }
        }
    }
}
