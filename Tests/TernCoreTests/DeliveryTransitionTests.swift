import Testing

@testable import TernCore

/// Every row of the recording table in docs/architecture.md, as pure values: no database, no receiver.
@Suite struct DeliveryTransitionTests {
    let answered = Timestamp(microseconds: 1_000_000_000)
    let schedule = [5, 300, 1800]

    func after(
        _ outcome: AttemptOutcome, attempts: Int = 1, trigger: AttemptTrigger = .scheduled, failures: Int = 1, threshold: Int = 10,
        disabled: Bool = false
    ) -> DeliveryTransition {
        DeliveryTransition.after(
            outcome: outcome, attemptsMade: attempts, trigger: trigger, schedule: self.schedule, consecutiveFailures: failures,
            threshold: threshold, endpointDisabled: disabled, answeredAt: self.answered, random: { _ in 1 }
        )
    }

    @Test func a2xxDeliversAndResetsTheEndpointsFailures() {
        #expect(self.after(.success) == DeliveryTransition(status: .delivered, resetsFailures: true))
        #expect(self.after(.success, trigger: .manual) == DeliveryTransition(status: .delivered, resetsFailures: true))
    }

    @Test func a410ExhaustsTheDeliveryAndDisablesTheEndpointAsGone() {
        let transition = self.after(.gone)
        #expect(transition.status == .exhausted && transition.nextAttemptAt == nil)
        #expect(transition.disableReason == "gone" && transition.disableDetail == "the endpoint answered 410 Gone")
        #expect(!transition.resetsFailures)
        // Already disabled: nothing more to disable.
        #expect(self.after(.gone, disabled: true) == DeliveryTransition(status: .exhausted))
    }

    @Test func aFailureWithTheScheduleLeftIsRetriedAfterTheScheduledDelayFromTheAnswer() {
        let first = self.after(.failure(retryAfterSeconds: nil), attempts: 1)
        #expect(first == DeliveryTransition(status: .failed, nextAttemptAt: self.answered.adding(seconds: 5)))
        let third = self.after(.failure(retryAfterSeconds: nil), attempts: 3, failures: 3)
        #expect(third.status == .failed && third.nextAttemptAt == self.answered.adding(seconds: 1800))
    }

    @Test func aRetryAfterLongerThanTheScheduleWinsAndAShorterOneDoesNot() {
        #expect(self.after(.failure(retryAfterSeconds: 60)).nextAttemptAt == self.answered.adding(seconds: 60))
        #expect(self.after(.failure(retryAfterSeconds: 1)).nextAttemptAt == self.answered.adding(seconds: 5))
    }

    @Test func jitterSpreadsTheRetryByUpToTenPercent() {
        let early = DeliveryTransition.after(
            outcome: .failure(retryAfterSeconds: nil), attemptsMade: 2, trigger: .scheduled, schedule: self.schedule, consecutiveFailures: 2,
            threshold: 10, endpointDisabled: false, answeredAt: self.answered, random: { $0.lowerBound }
        )
        #expect(early.nextAttemptAt == self.answered.adding(seconds: 270))
    }

    @Test func aFailureWithTheScheduleUsedUpGoesToTheDeadLetterQueue() {
        #expect(self.after(.failure(retryAfterSeconds: nil), attempts: 4, failures: 4) == DeliveryTransition(status: .exhausted))
    }

    @Test func aManualAttemptIsSingleAndAFailureGoesBackToTheDeadLetterQueue() {
        #expect(self.after(.failure(retryAfterSeconds: nil), attempts: 1, trigger: .manual) == DeliveryTransition(status: .exhausted))
    }

    @Test func reachingTheThresholdTripsTheBreakerAndExhaustsTheDelivery() {
        let below = self.after(.failure(retryAfterSeconds: nil), attempts: 1, failures: 9, threshold: 10)
        #expect(below.status == .failed && below.disableReason == nil)
        let trip = self.after(.failure(retryAfterSeconds: nil), attempts: 1, failures: 10, threshold: 10)
        #expect(trip.status == .exhausted && trip.nextAttemptAt == nil)
        #expect(trip.disableReason == "circuit_breaker")
        #expect(trip.disableDetail == "10 consecutive attempts failed (threshold 10)")
        // A manual attempt counts towards the breaker too.
        #expect(self.after(.failure(retryAfterSeconds: nil), trigger: .manual, failures: 10, threshold: 10).disableReason == "circuit_breaker")
    }

    @Test func aFailureOnAnAlreadyDisabledEndpointExhaustsWithoutTrippingAgain() {
        let transition = self.after(.failure(retryAfterSeconds: nil), attempts: 1, failures: 50, threshold: 10, disabled: true)
        #expect(transition == DeliveryTransition(status: .exhausted))
    }
}
