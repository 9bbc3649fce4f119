import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Closes a connection whose next request does not arrive whole in time: its head within `timeout` of the
/// connection opening or of the previous answer, and its body within `timeout` of the head. A client trickling a
/// byte at a time (slow loris) keeps the idle timeout from firing, but not this. No deadline runs while Tern works
/// on a request and answers it.
///
/// Arming and disarming only move a stored instant: the connection has at most one timer, which, when it fires,
/// closes the connection if the deadline has passed, sets itself again for a deadline that has moved, and lapses
/// while none is set. A connection serving requests one after another schedules a timer once per `timeout`, not
/// two per request (`docs/benchmarks.md`, "Looked at after item 37").
final class RequestDeadlineHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let timeout: TimeAmount
    /// When the connection closes unless the request in progress has arrived whole; nil while none is awaited.
    var deadline: NIODeadline?
    var timer: Scheduled<Void>?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { self.arm(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        self.arm(context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.deadline = nil
        self.timer?.cancel()
        self.timer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head: self.arm(context)
        case .body: break
        case .end: self.deadline = nil
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = self.unwrapOutboundIn(data) { self.arm(context) }
        context.write(data, promise: promise)
    }

    func arm(_ context: ChannelHandlerContext) {
        let deadline = NIODeadline.now() + self.timeout
        self.deadline = deadline
        if self.timer == nil { self.setTimer(for: deadline, context) }
    }

    private func setTimer(for deadline: NIODeadline, _ context: ChannelHandlerContext) {
        self.timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.timer = nil
            guard let deadline = self.deadline else { return }
            if deadline <= .now() {
                context.channel.close(promise: nil)
            } else {
                self.setTimer(for: deadline, context)
            }
        }
    }
}
