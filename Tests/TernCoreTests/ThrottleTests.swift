import Testing

@testable import TernCore

/// The per-endpoint throttle as values: sends within the burst, reserved slots at the rate, the adaptive slow-down.
@Suite struct ThrottleTests {
    let start = Timestamp(microseconds: 1_000_000_000_000)

    func at(_ seconds: Double) -> Timestamp { self.start.adding(microseconds: Int64((seconds * 1_000_000).rounded())) }

    @Test func theBurstGoesNowAndTheRestGetConsecutiveSlots() {
        let limit = EndpointRateLimit(perSecond: 10, burst: 3)
        let (times, state) = Throttle.schedule(5, limit: limit, state: ThrottleState(), now: self.start)
        #expect(times == [nil, nil, nil, self.at(0.1), self.at(0.2)])
        #expect(state.nextSlot == self.at(0.5))
        // Later deliveries queue behind the reserved slots.
        let (later, _) = Throttle.schedule(2, limit: limit, state: state, now: self.at(0.05))
        #expect(later == [self.at(0.3), self.at(0.4)])
    }

    @Test func overAnyStretchTheSendsKeepToTheRate() {
        let limit = EndpointRateLimit(perSecond: 10, burst: 1)
        var state = ThrottleState()
        var times: [Timestamp] = []
        // Workers asking every 10 ms for 5 deliveries each, for 10 seconds: every delivery gets a time.
        for step in 0..<1_000 {
            let now = self.at(Double(step) / 100)
            let result = Throttle.schedule(5, limit: limit, state: state, now: now)
            times += result.sendAt.map { $0 ?? now }
            state = result.state
        }
        let inFirstTenSeconds = times.filter { $0 < self.at(10) }.count
        #expect(inFirstTenSeconds == 100, "\(inFirstTenSeconds) sends in 10 s at 10/s")
    }

    @Test func aSlowDownAnswerHalvesTheRateHoldsForRetryAfterAndRecovers() throws {
        let limit = EndpointRateLimit(perSecond: 8, burst: 1)
        let state = ThrottleState()
        #expect(Throttle.after(statusCode: 500, retryAfterSeconds: nil, state: state, now: self.start) == nil)
        let slowed = try #require(Throttle.after(statusCode: 429, retryAfterSeconds: 2, state: state, now: self.start))
        #expect(slowed.factor == 0.5 && slowed.holdUntil == self.at(2))
        let (held, _) = Throttle.schedule(2, limit: limit, state: slowed, now: self.at(1))
        #expect(held.count == 2 && held[0]! >= self.at(2), "nothing before Retry-After")
        #expect(held[1]! > held[0]! && held[1]! < held[0]!.adding(seconds: 1), "then at the slowed rate")
        #expect(Throttle.factor(slowed, now: self.at(10)) == 1, "back to the full rate after 10 s")
        var worst = slowed
        for _ in 0..<10 { worst = Throttle.after(statusCode: 503, retryAfterSeconds: nil, state: worst, now: self.start)! }
        #expect(worst.factor == Throttle.minimumFactor)
    }
}
