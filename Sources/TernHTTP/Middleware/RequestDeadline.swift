import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Closes a connection whose next request does not arrive whole in time: its head within `timeout` of the
/// connection opening or of the previous answer, and its body within `timeout` of the head. A client trickling a
/// byte at a time (slow loris) keeps the idle timeout from firing, but not this. No deadline runs while Tern works
/// on a request and answers it.
final class RequestDeadlineHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let timeout: TimeAmount
    var deadline: Scheduled<Void>?

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
        self.disarm()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head: self.arm(context)
        case .body: break
        case .end: self.disarm()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = self.unwrapOutboundIn(data) { self.arm(context) }
        context.write(data, promise: promise)
    }

    func arm(_ context: ChannelHandlerContext) {
        self.disarm()
        let channel = context.channel
        self.deadline = context.eventLoop.scheduleTask(in: self.timeout) {
            channel.close(promise: nil)
        }
    }

    func disarm() {
        self.deadline?.cancel()
        self.deadline = nil
    }
}
