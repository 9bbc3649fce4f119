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

@Suite struct JSONEnvelopeTests {
    func member(_ name: String, _ text: String) -> String? {
        (try? JSONEnvelope(Array(text.utf8)))?.text(name)
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
        #expect(member("n", #"{"n":-1.5e3 , "m":true}"#) == "-1.5e3")
    }

    @Test func readsTheFieldsAroundThePayload() throws {
        let body = try JSONEnvelope(
            Array(#"{"event_type":"a.b","tenant_id":"t\u00e9","channels":["x", "y"],"days":3,"big":2e2,"none":null,"p":{"k":[]}}"#.utf8))
        #expect(try body.string("event_type") == "a.b")
        #expect(try body.string("tenant_id") == "té")
        #expect(try body.strings("channels") == ["x", "y"])
        #expect(try body.int("days") == 3)
        #expect(try body.int("big") == 200)
        #expect(try body.string("none") == nil && body.isNull("none") && body.has("none") && !body.has("absent"))
        #expect(body.members["p"]?.kind == .object)
        #expect(throws: TernError.self) { try body.string("days") }
        #expect(throws: TernError.self) { try body.strings("event_type") }
        #expect(throws: TernError.self) { try body.int("event_type") }
        #expect(throws: TernError.self) { try JSONEnvelope(Array(#"{"c":["x",1]}"#.utf8)).strings("c") }
        #expect(throws: TernError.self) { try JSONEnvelope(Array(#"{"d":1.5}"#.utf8)).int("d") }
    }

    /// Valid exactly when Foundation's parser says so (but for trailing commas), over documents mutated at random from valid ones.
    @Test func acceptsWhatFoundationAcceptsAndNothingElse() throws {
        let seeds = [
            #"{"a":1,"b":[true,false,null,-0.5e+3,"x\n\"y\u00e9"],"c":{"d":{}},"e":[]}"#,
            #" { "payload" : { "z" : [ 1 , 2 , { "q" : "w" } ] } , "t" : "é☃😀" } "#,
            #"{"n":[0,10,1.25,-1,1E5,2e-3],"s":"\/\\\b\f\r\t"}"#,
        ]
        let alphabet = Array(#"{}[]:,"\ 0123456789.-+eEtrufalsn\u"#.utf8) + [0x09, 0x0A, 0x01, 0xC3, 0xA9, 0xFF, 0xE2]
        var generator = SystemRandomNumberGenerator()
        var disagreements: [String] = []
        for _ in 0..<20_000 {
            var bytes = Array(seeds.randomElement(using: &generator)!.utf8)
            for _ in 0..<Int.random(in: 1...3, using: &generator) {
                let at = Int.random(in: 0..<bytes.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: bytes.remove(at: at)
                case 1: bytes.insert(alphabet.randomElement(using: &generator)!, at: at)
                default: bytes[at] = alphabet.randomElement(using: &generator)!
                }
                if bytes.isEmpty { bytes = [0x7B, 0x7D] }
            }
            let foundation = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] != nil
            let envelope = (try? JSONEnvelope(bytes)) != nil
            // Foundation also takes a trailing comma, which RFC 8259 does not allow (and a receiver's parser may not), and
            // refuses a number beyond a Double, which the grammar allows (the payload is kept as text).
            let text = String(decoding: bytes, as: UTF8.self)
            let trailingComma = text.contains(/,[ \t\n\r]*[\]}]/)
            let hugeNumber = text.contains(/[0-9][eE][+-]?[0-9]{3}/)
            if foundation != envelope && !(foundation && trailingComma) && !(envelope && hugeNumber) { disagreements.append(text) }
        }
        #expect(disagreements.isEmpty, "\(disagreements.prefix(5))")
        #expect(throws: TernError.self) { try JSONEnvelope(Array("[1]".utf8)) }
        #expect(throws: TernError.self) { try JSONEnvelope(Array(#"{"a":1} x"#.utf8)) }
        #expect(throws: TernError.self) { try JSONEnvelope(Array(String(repeating: "[", count: 600).utf8)) }
        #expect(throws: TernError.self) { try JSONEnvelope([0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xED, 0xA0, 0x80, 0x22, 0x7D]) }
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
