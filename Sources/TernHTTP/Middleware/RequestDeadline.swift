import HTTPTypes
import NIOCore
import NIOHTTPTypes
import TernDelivery

/// Closes a connection whose next request does not arrive whole in time: its head within `timeout` of the
/// connection opening or of the previous answer, and its body within `timeout` of the head. A client trickling a
/// byte at a time (slow loris) keeps the idle timeout from firing, but not this. No deadline runs while Tern works
/// on a request and answers it.
///
/// Arming and disarming only move a stored instant, kept with one `MovingDeadlineTimer`: when it fires, the
/// connection closes if the deadline has passed, the timer is set again for a deadline that has moved, and it lapses
/// while none is set.
final class RequestDeadlineHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let timeout: TimeAmount
    /// When the connection closes unless the request in progress has arrived whole; nil while none is awaited.
    var deadline: NIODeadline?
    let timer = MovingDeadlineTimer()

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
        self.timer.cancel()
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
        self.timer.arm(by: deadline, on: context.eventLoop) { self.fire(context) }
    }

    private func fire(_ context: ChannelHandlerContext) {
        guard let deadline = self.deadline else { return }
        if deadline <= .now() {
            context.channel.close(promise: nil)
        } else {
            self.timer.arm(by: deadline, on: context.eventLoop) { self.fire(context) }
        }
    }
}
