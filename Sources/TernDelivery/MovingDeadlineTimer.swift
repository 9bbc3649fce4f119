import NIOCore

/// One NIO timer for a connection's time limits, which move at every request (`RequestDeadlineHandler`, the inbound
/// guard; `PlainHTTPClient.AnswerHandler`, an outbound connection's answer and idle limits). Setting a limit later
/// than the timer leaves the timer as it is; the owner's `fire`, when it runs, acts on the limit that holds then or
/// sets the timer again for it. Only a limit earlier than the timer schedules it anew. A connection serving requests
/// one after another then schedules a timer about once per limit's length instead of one or two per request
/// (`docs/benchmarks.md`, item 40 and "Looked at after item 37"). Not thread-safe: its connection's event loop only.
public final class MovingDeadlineTimer {
    private var timer: (scheduled: Scheduled<Void>, at: NIODeadline)?

    public init() {}

    /// Makes `fire` run by `limit` on `loop`: the timer set already fires in time, or it is scheduled (again).
    public func arm(by limit: NIODeadline, on loop: any EventLoop, _ fire: @escaping () -> Void) {
        if let timer = self.timer {
            guard timer.at > limit else { return }
            timer.scheduled.cancel()
        }
        let scheduled = loop.assumeIsolated().scheduleTask(deadline: limit) {
            self.timer = nil
            fire()
        }
        self.timer = (scheduled, limit)
    }

    public func cancel() {
        self.timer?.scheduled.cancel()
        self.timer = nil
    }
}
