import Foundation
import Testing

@testable import TernCore

@Suite struct SigningTests {
    /// The example of the Standard Webhooks specification (also what its reference library computes).
    @Test func signaturesMatchTheStandardWebhooksExample() {
        let body = Array(#"{"test": 2432232314}"#.utf8)
        let signature = WebhookSignature.sign(
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", messageID: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330, body: body
        )
        #expect(signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    }

    @Test func aHeaderCarriesOneSignaturePerSecretAndEachVerifies() {
        let (current, previous) = (EndpointSecret.generate(), EndpointSecret.generate())
        let body = Array(#"{"a":1}"#.utf8)
        let header = WebhookSignature.header(secrets: [current, previous], messageID: "msg_1", timestamp: 100, body: body)
        #expect(header.split(separator: " ").count == 2)
        #expect(WebhookSignature.verify(header: header, secret: current, messageID: "msg_1", timestamp: 100, body: body))
        #expect(WebhookSignature.verify(header: header, secret: previous, messageID: "msg_1", timestamp: 100, body: body))
        #expect(!WebhookSignature.verify(header: header, secret: current, messageID: "msg_2", timestamp: 100, body: body))
        #expect(!WebhookSignature.verify(header: header, secret: current, messageID: "msg_1", timestamp: 101, body: body))
        #expect(!WebhookSignature.verify(header: header, secret: EndpointSecret.generate(), messageID: "msg_1", timestamp: 100, body: body))
    }
}

@Suite struct RetryPolicyTests {
    @Test func theScheduleGivesTheDelayAfterEachAttemptThenRunsOut() {
        let schedule = RetrySchedule.standard
        let exact: (ClosedRange<Double>) -> Double = { _ in 1.0 }
        #expect(RetryPolicy.delay(afterAttempt: 1, schedule: schedule, random: exact) == 5)
        #expect(RetryPolicy.delay(afterAttempt: 2, schedule: schedule, random: exact) == 300)
        #expect(RetryPolicy.delay(afterAttempt: 6, schedule: schedule, random: exact) == 36_000)
        #expect(RetryPolicy.delay(afterAttempt: 7, schedule: schedule, random: exact) == nil, "7 attempts in all, then the dead-letter queue")
        #expect(RetryPolicy.delay(afterAttempt: 1, schedule: [], random: exact) == nil)
    }

    @Test func jitterStaysWithinTenPercent() {
        for _ in 0..<1000 {
            let delay = RetryPolicy.delay(afterAttempt: 2, schedule: [5, 300])!
            #expect(delay >= 270 && delay <= 330)
        }
    }

    @Test func aLongerRetryAfterWinsAndIsCapped() {
        let exact: (ClosedRange<Double>) -> Double = { _ in 1.0 }
        #expect(RetryPolicy.delay(afterAttempt: 1, schedule: [5], retryAfterSeconds: 60, random: exact) == 60)
        #expect(RetryPolicy.delay(afterAttempt: 1, schedule: [5], retryAfterSeconds: 1, random: exact) == 5)
        #expect(RetryPolicy.delay(afterAttempt: 1, schedule: [5], retryAfterSeconds: 10_000_000, random: exact) == 86_400)
        #expect(RetryPolicy.delay(afterAttempt: 2, schedule: [5], retryAfterSeconds: 60, random: exact) == nil, "Retry-After does not add attempts")
    }

    @Test func retryAfterIsSecondsOrAnHTTPDate() {
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        #expect(RetryPolicy.parseRetryAfter("120", now: now) == 120)
        #expect(RetryPolicy.parseRetryAfter("Tue, 14 Nov 2023 22:14:20 GMT", now: now) == 60)
        #expect(RetryPolicy.parseRetryAfter("Tue, 14 Nov 2023 22:00:00 GMT", now: now) == 0)
        #expect(RetryPolicy.parseRetryAfter("-5", now: now) == nil)
        #expect(RetryPolicy.parseRetryAfter("soon", now: now) == nil)
    }

    @Test func answersAreClassified() {
        #expect(AttemptOutcome.of(statusCode: 200) == .success)
        #expect(AttemptOutcome.of(statusCode: 204) == .success)
        #expect(AttemptOutcome.of(statusCode: 301) == .failure(retryAfterSeconds: nil), "3xx is a failure: redirects are not followed")
        #expect(AttemptOutcome.of(statusCode: 410) == .gone)
        #expect(AttemptOutcome.of(statusCode: 429, retryAfter: "30") == .failure(retryAfterSeconds: 30))
        #expect(AttemptOutcome.of(statusCode: 503, retryAfter: "7") == .failure(retryAfterSeconds: 7))
        #expect(AttemptOutcome.of(statusCode: 500, retryAfter: "7") == .failure(retryAfterSeconds: nil), "Retry-After counts on 429 and 503 only")
        #expect(AttemptOutcome.of(statusCode: nil) == .failure(retryAfterSeconds: nil))
    }

    @Test func theBreakerTripsAtTheThreshold() {
        #expect(!CircuitBreaker.trips(consecutiveFailures: 19, threshold: 20))
        #expect(CircuitBreaker.trips(consecutiveFailures: 20, threshold: 20))
    }
}

@Suite struct RawJSONTests {
    func member(_ name: String, _ text: String) -> String? {
        let bytes = Array(text.utf8)
        return RawJSON.memberRange(name, in: bytes).map { String(decoding: bytes[$0], as: UTF8.self) }
    }

    @Test func findsAMembersExactBytes() {
        #expect(
            member("payload", #"{"event_type":"a","payload":{ "z" : 1.50,"a":[1,{"}":"]"}] },"tenant_id":"t"}"#)
                == #"{ "z" : 1.50,"a":[1,{"}":"]"}] }"#)
        #expect(member("payload", #"  {  "payload"  :  {"x":"a\"b\\"}  }  "#) == #"{"x":"a\"b\\"}"#)
        #expect(member("payload", #"{"a":"payload","payload":[1,2]}"#) == "[1,2]")
        #expect(member("payload", #"{"payload":{"payload":1}}"#) == #"{"payload":1}"#)
        #expect(member("payload", #"{"p\u0061yload":{"escaped":true}}"#) == #"{"escaped":true}"#)
        #expect(member("payload", #"{"payload":1,"payload":{"last":"wins"}}"#) == #"{"last":"wins"}"#, "as JSONDecoder reads it")
        #expect(member("payload", #"{"other":1}"#) == nil)
        #expect(member("payload", "[1]") == nil)
        #expect(member("n", #"{"n":-1.5e3 , "m":true}"#) == "-1.5e3")
    }
}

@Suite struct WakeSignalTests {
    @Test func aRingBeforeTheWaitIsNotLost() async {
        let signal = WakeSignal()
        signal.ring()
        let start = ContinuousClock.now
        await signal.wait(timeout: .seconds(30))
        #expect(ContinuousClock.now - start < .seconds(25))
    }

    @Test func aRingWakesAWaiterAndCancellationEndsTheWait() async {
        let signal = WakeSignal()
        let waiter = Task { await signal.wait(timeout: .seconds(60)) }
        try? await Task.sleep(for: .milliseconds(50))
        signal.ring()
        await waiter.value
        let cancelled = Task { await signal.wait(timeout: .seconds(60)) }
        cancelled.cancel()
        await cancelled.value
    }

    @Test func aLatchOpensOnce() async {
        let latch = Latch()
        Task { latch.open() }
        await latch.wait()
        await latch.wait()
    }
}

@Suite struct EgressAddressTests {
    @Test func resolvedAndLiteralAddressesAreShownAndClassified() throws {
        #expect(AddressClassifier.parse("10.1.2.3")?.text == "10.1.2.3")
        #expect(AddressClassifier.parse("[fe80::1]")?.text == "fe80::1")
        let loopback = try AddressClassifier.resolve("localhost")
        #expect(!loopback.isEmpty)
        #expect(loopback.allSatisfy(AddressClassifier.isForbidden), "localhost resolves only to loopback addresses")
    }
}
