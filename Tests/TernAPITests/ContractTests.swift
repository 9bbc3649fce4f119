import Foundation
import TernCore
import Testing
import Yams

@testable import TernTesting

/// docs/openapi.yaml and the server say the same thing where the spec writes a rule out (schemathesis checks the rest
/// from outside, in FuzzTests).
@Suite struct ContractTests {
    func schema(_ name: String) throws -> [String: Any] {
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/openapi.yaml"), encoding: .utf8)
        let spec = try #require(try Yams.load(yaml: text) as? [String: Any])
        let schemas = try #require((spec["components"] as? [String: Any])?["schemas"] as? [String: Any])
        return try #require(schemas[name] as? [String: Any])
    }

    /// Every operation that reads the database answers 503 when it is unavailable (`TernError.unavailable`: an outage, a
    /// restart, a full disk; FaultTests and FullDiskTests see it), so the spec lists it on each of them.
    @Test func everyOperationOnTheDatabaseListsUnavailability() throws {
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/openapi.yaml"), encoding: .utf8)
        let spec = try #require(try Yams.load(yaml: text) as? [String: Any])
        let paths = try #require(spec["paths"] as? [String: [String: Any]])
        var checked = 0
        for (path, operations) in paths where path.hasPrefix("/v1/") || path.hasPrefix("/in/") {
            for (method, operation) in operations {
                guard let responses = (operation as? [String: Any])?["responses"] as? [String: Any] else { continue }
                checked += 1
                let unavailable = responses["503"] as? [String: Any]
                #expect(unavailable?["$ref"] as? String == "#/components/responses/Unavailable", "\(method) \(path)")
            }
        }
        #expect(checked > 50)
    }

    @Test func theEndpointURLPatternOfTheSpecIsTheOneTheServerChecks() throws {
        #expect(try self.schema("EndpointURL")["pattern"] as? String == Rules.endpointURLPattern)
    }

    @Test func endpointURLsAreCheckedByTheirShape() {
        for good in ["https://example.com/hooks?a=1", "HTTP://a:8080", "https://user:pw@example.com/x#frag", #"http://h/x?q="><s>"#] {
            #expect(Rules.endpointURLProblem(good, allowPrivate: true) == nil, "\(good)")
        }
        for bad in ["ftp://example.com", "https://", "https://exa mple.com", "https://example.com/a b", "https://h/%zz", "https://h\n"] {
            #expect(Rules.endpointURLProblem(bad, allowPrivate: true) != nil, "\(bad)")
        }
    }

    @Test func timesAreReadAsRFC3339SaysWithTheirOffset() throws {
        let utc = try #require(Timestamp(rfc3339: "2026-01-31T12:00:00Z"))
        #expect(Timestamp(rfc3339: "2026-01-31T14:30:00.000+02:30") == utc)
        #expect(Timestamp(rfc3339: "2026-01-31t12:00:00z") == utc)
        #expect(Timestamp(rfc3339: "2026-01-31T12:00:00.123456789Z")?.microseconds == utc.microseconds + 123_456)
        #expect(Timestamp(rfc3339: "0098-07-14T19:55:58.241-16:50") != nil)
        #expect(Timestamp(rfc3339: "1969-12-31T23:59:59Z")?.microseconds == -1_000_000)
        for bad in ["2026-02-30T00:00:00Z", "2026-13-01T00:00:00Z", "2026-01-31T24:00:00Z", "2026-01-31T12:00:00", "2026-01-31", "x"] {
            #expect(Timestamp(rfc3339: bad) == nil, "\(bad)")
        }
    }
}
