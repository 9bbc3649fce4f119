import NIOCore
import NIOPosix
import TernCore
import Testing

@testable import TernHTTP

@Suite struct EventLoopExecutorTests {
    /// `tern serve`'s tasks run on NIO's event loops: a task continues on the loop whose work resumed it, and its
    /// child tasks and the tasks Tern starts unstructured run on the loops too; outside, nothing changes.
    @Test func tasksContinueOnTheLoopThatResumedThem() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loops = Array(group.makeIterator())
        try await EventLoopExecutor(group: group).run {
            #expect(MultiThreadedEventLoopGroup.currentEventLoop != nil)
            for loop in loops + loops.reversed() {
                // Later than the task's suspension: a continuation resumed before it suspends carries on where it is.
                try await loop.scheduleTask(in: .milliseconds(50)) {}.futureResult.get()
                #expect(loop.inEventLoop)
            }
            async let child = MultiThreadedEventLoopGroup.currentEventLoop != nil
            #expect(await child)
            let started = Task(executorPreference: PreferredExecutor.current) { MultiThreadedEventLoopGroup.currentEventLoop != nil }
            #expect(await started.value)
        }
        #expect(MultiThreadedEventLoopGroup.currentEventLoop == nil)
        let outside = Task(executorPreference: PreferredExecutor.current) { MultiThreadedEventLoopGroup.currentEventLoop == nil }
        #expect(await outside.value)
        try await group.shutdownGracefully()
    }
}
