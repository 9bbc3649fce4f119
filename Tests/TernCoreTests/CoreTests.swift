import Foundation
import Testing

@testable import TernCore

@Suite struct IdentifierTests {
    @Test func identifiersArePrefixedValidAndTimeSortable() {
        let early = Identifier.make("app", at: Date(timeIntervalSince1970: 1_700_000_000))
        let late = Identifier.make("app", at: Date(timeIntervalSince1970: 1_700_000_001))
        #expect(early.hasPrefix("app_"))
        #expect(Identifier.isValid(early, prefix: "app"))
        #expect(!Identifier.isValid(early, prefix: "ep"))
        #expect(early < late)
        #expect(Set((0..<1000).map { _ in Identifier.make("x") }).count == 1000)
    }

    @Test func theCharactersAreTheTimeThenTheRandomBitsLikeALowerCaseULID() throws {
        // The ULID specification's example: 1469918176385 ms is 01ARYZ6S41.
        let date = Date(timeIntervalSince1970: 1_469_918_176.385)
        // Enough identifiers to refill the random pool a few times.
        let identifiers = (0..<2_000).map { _ in Identifier.make("msg", at: date) }
        #expect(identifiers.allSatisfy { $0.hasPrefix("msg_01aryz6s41") && Identifier.isValid($0, prefix: "msg") })
        #expect(Set(identifiers).count == identifiers.count)
        // The random part uses every character: a stuck bit would leave some out.
        #expect(Set(identifiers.flatMap { $0.utf8.suffix(16) }).count == 32)
    }

    @Test(arguments: [0, 1, 255, 256, 257, 4_096])
    func randomBytesFillEveryByteAcrossTheSystemCallsChunks(_ count: Int) {
        let draws = (0..<64).map { _ in randomBytes(count) }
        #expect(draws.allSatisfy { $0.count == count })
        guard count > 0 else { return }
        // Each position (the last chunk's bytes included) takes many values over the draws: none is left unwritten.
        for position in Set([0, count / 2, count - 1]) {
            #expect(Set(draws.map { $0[position] }).count > 16, "byte \(position) of \(count)")
        }
        if count >= 16 { #expect(Set(draws).count == draws.count) }
    }

    /// `JSONText.appendString` writes a string literal JSON reads back as the text, escaping exactly quotes,
    /// backslashes and control characters (the short forms for newline, return and tab), and nothing else.
    @Test func jsonStringsAreWrittenAsJSONReadsThem() throws {
        var texts = [
            "", "plain", #"{"content-type":"application/json","webhook-id":"msg_1"}"#, #"back\slash"#, "é and 😀 and \u{2028}",
            "line\nbreak\r\ttab", "\"", "\\", String(repeating: "x", count: 300) + "\"",
        ]
        texts.append(String(decoding: (0..<0x20).map { UInt8($0) } + [0x7F], as: UTF8.self))
        var random = SystemRandomNumberGenerator()
        let alphabet = Array("ab\"\\\n\t\u{1}\u{1F}é😀 {}:,")
        for _ in 0..<500 { texts.append(String((0..<Int.random(in: 0...40, using: &random)).map { _ in alphabet.randomElement(using: &random)! })) }
        for text in texts {
            var out = "["
            JSONText.appendString(text, to: &out)
            out += "]"
            #expect(try JSONDecoder().decode([String].self, from: Data(out.utf8)) == [text], "\(out)")
            let special = text.unicodeScalars.filter { $0.value < 0x20 || $0 == "\"" || $0 == "\\" }
            let short = special.filter { ["\n", "\r", "\t", "\"", "\\"].contains($0) }.count
            #expect(out.utf8.count == text.utf8.count + 4 + short + 5 * (special.count - short), "\(out)")
        }
        var control = ""
        JSONText.appendString("\u{0}\u{1F}\n", to: &control)
        #expect(control == #""\u0000\u001f\n""#)
    }

    @Test func timestampsAreRFC3339UTC() {
        let time = Timestamp(microseconds: 1_700_000_000_123_456)
        #expect(time.description == "2023-11-14T22:13:20.123Z")
        #expect(Timestamp(microseconds: 0).description == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp(microseconds: -1).description == "1969-12-31T23:59:59.999Z")
        #expect(Timestamp(microseconds: 253_402_300_799_999_999).description == "9999-12-31T23:59:59.999Z")
        #expect(Timestamp(microseconds: 951_827_696_007_000).description == "2000-02-29T12:34:56.007Z")
        for micros in stride(from: Int64(-62_135_596_800_000_000), to: 253_402_300_800_000_000, by: 7_777_777_777_777) {
            let time = Timestamp(microseconds: micros)
            #expect(Timestamp(rfc3339: time.description)?.microseconds == micros - ((micros % 1000) + 1000) % 1000, "\(micros)")
        }
        #expect(Timestamp(rfc3339: "2023-11-14T22:13:20.123Z")?.microseconds == 1_700_000_000_123_000)
        #expect(Timestamp(rfc3339: "2023-11-14T23:13:20+01:00")?.microseconds == 1_700_000_000_000_000)
        #expect(Timestamp(rfc3339: "yesterday") == nil)
    }
}

@Suite struct APIKeyTests {
    @Test func tokensRoundTripThroughParsing() throws {
        let token = APIKeyToken.generate()
        #expect(token.token.hasPrefix("tern_key_"))
        #expect(try #require(Base64URL.decode(token.secret)).count == 32)
        #expect(APIKeyToken(parsing: token.token) == token)
        #expect(token.displayPrefix.count < token.token.count - 30)
    }

    @Test(arguments: ["", "tern_", "tern_key_abc_def", "Bearer x", "tern_app_01m85kc8g1vxt7zk8c3xn62s9y_" + String(repeating: "a", count: 43)])
    func malformedTokensAreRejected(_ text: String) {
        #expect(APIKeyToken(parsing: text) == nil)
    }

    @Test func argon2idHashesVerifyOnlyTheirSecret() {
        let hash = Argon2id.hash("correct horse")
        #expect(hash.hasPrefix("$argon2id$v=19$m=19456,t=2,p=1$"))
        #expect(Argon2id.verify("correct horse", encoded: hash))
        #expect(!Argon2id.verify("correct horsf", encoded: hash))
        #expect(Argon2id.hash("correct horse") != hash)
    }

    @Test func scopesGrantWhatTheyName() {
        #expect(Scopes.allows(["*"], action: .write, resource: "endpoints"))
        #expect(Scopes.allows(["read:endpoints"], action: .read, resource: "endpoints"))
        #expect(!Scopes.allows(["read:endpoints"], action: .write, resource: "endpoints"))
        #expect(Scopes.allows(["write:endpoints"], action: .read, resource: "endpoints"))
        #expect(!Scopes.allows(["write:endpoints"], action: .read, resource: "applications"))
        #expect(Scopes.allows(["read:*"], action: .read, resource: "audit"))
        #expect(Scopes.isValid("write:event_types") && Scopes.isValid("*") && Scopes.isValid("read:*"))
        #expect(!Scopes.isValid("delete:endpoints") && !Scopes.isValid("read:nothing") && !Scopes.isValid("read"))
    }
}

@Suite struct SecretTests {
    @Test func secretBoxSealsAndOpens() throws {
        let box = try #require(SecretBox(keyBase64: SecretBox.generateKeyBase64()))
        let sealed = try box.seal("whsec_abc")
        #expect(!sealed.contains("whsec_abc"))
        #expect(try box.open(sealed) == "whsec_abc")
        let other = try #require(SecretBox(keyBase64: SecretBox.generateKeyBase64()))
        #expect(throws: (any Error).self) { try other.open(sealed) }
        #expect(SecretBox(keyBase64: "c2hvcnQ=") == nil)
    }

    @Test func endpointSecretsAreWhsecBase64Of32Bytes() throws {
        let secret = EndpointSecret.generate()
        #expect(secret.hasPrefix("whsec_"))
        #expect(try #require(Data(base64Encoded: String(secret.dropFirst(6)))).count == 32)
        #expect(EndpointSecret.isValid(secret))
        #expect(!EndpointSecret.isValid("whsec_short") && !EndpointSecret.isValid("secret"))
    }
}

@Suite struct AddressClassifierTests {
    @Test(arguments: [
        "127.0.0.1", "127.9.9.9", "127.1", "2130706433", "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1",
        "169.254.169.254", "100.64.0.1", "100.127.255.255", "0.0.0.0", "0.1.2.3", "224.0.0.1", "239.255.255.255",
        "255.255.255.255", "::1", "::", "[::1]", "fc00::1", "fd12:3456::1", "fe80::1", "ff02::1", "::ffff:127.0.0.1",
        "[::ffff:127.0.0.1]", "::ffff:10.1.2.3", "::ffff:169.254.169.254", "64:ff9b::7f00:1",
    ])
    func internalAddressesAreForbidden(_ host: String) throws {
        let address = try #require(AddressClassifier.parse(host))
        #expect(AddressClassifier.isForbidden(address))
        #expect(AddressClassifier.isForbiddenHostLiteral(host))
    }

    @Test(arguments: ["8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "192.169.0.1", "2606:4700::1111", "::ffff:8.8.8.8"])
    func publicAddressesAreAllowed(_ host: String) throws {
        let address = try #require(AddressClassifier.parse(host))
        #expect(!AddressClassifier.isForbidden(address))
    }

    @Test func localhostNamesAreForbiddenAndOtherNamesAreLeftToResolution() {
        #expect(AddressClassifier.isForbiddenHostLiteral("localhost"))
        #expect(AddressClassifier.isForbiddenHostLiteral("LOCALHOST."))
        #expect(AddressClassifier.isForbiddenHostLiteral("api.localhost"))
        #expect(!AddressClassifier.isForbiddenHostLiteral("example.com"))
        #expect(AddressClassifier.parse("example.com") == nil)
    }
}

@Suite struct RuleTests {
    @Test func endpointURLsMustBeHTTPWithAHost() {
        #expect(Rules.endpointURLProblem("https://example.com/hook", allowPrivate: false) == nil)
        #expect(Rules.endpointURLProblem("ftp://example.com", allowPrivate: false) != nil)
        #expect(Rules.endpointURLProblem("https://", allowPrivate: false) != nil)
        #expect(Rules.endpointURLProblem("not a url", allowPrivate: false) != nil)
        #expect(Rules.endpointURLProblem("http://127.0.0.1:8080/x", allowPrivate: false) != nil)
        #expect(Rules.endpointURLProblem("http://[::ffff:127.0.0.1]/x", allowPrivate: false) != nil)
        #expect(Rules.endpointURLProblem("http://127.0.0.1:8080/x", allowPrivate: true) == nil)
    }

    @Test func eventTypeNamesTenantIDsAndHeaders() {
        #expect(Rules.isEventTypeName("order.created") && Rules.isEventTypeName("A_b-1.2"))
        #expect(!Rules.isEventTypeName("order created") && !Rules.isEventTypeName("") && !Rules.isEventTypeName("é"))
        #expect(Rules.tenantIDProblem(String(repeating: "t", count: 255)) == nil)
        #expect(Rules.tenantIDProblem(String(repeating: "t", count: 256)) != nil)
        #expect(Rules.tenantIDProblem(String(repeating: "é", count: 255)) == nil)
        #expect(Rules.tenantIDProblem(String(repeating: "é", count: 256)) != nil)
        #expect(Rules.tenantIDProblem("customer 42/ünïcode ☃") == nil)
        for control in ["a\u{0}b", "a\tb", "a\u{7F}", "a\u{85}b", "é\nb"] {
            #expect(Rules.tenantIDProblem(control) == "must not contain control characters", "\(control.debugDescription)")
        }
        #expect(Rules.headerProblem(name: "X-Custom", value: "1") == nil)
        #expect(Rules.headerProblem(name: "Transfer-Encoding", value: "chunked") != nil)
        #expect(Rules.headerProblem(name: "Bad Header", value: "1") != nil)
        #expect(Rules.headerProblem(name: "X-Split", value: "a\r\nInjected: 1") != nil)
    }

    @Test func planLimitsRefuseTheOneOverTheLimit() throws {
        try checkPlanLimit("endpoints", used: 9, limit: 10, plan: "free")
        #expect(throws: TernError.self) { try checkPlanLimit("endpoints", used: 10, limit: 10, plan: "free") }
        try checkPlanLimit("endpoints", used: 1_000_000, limit: nil, plan: "enterprise")
    }
}
