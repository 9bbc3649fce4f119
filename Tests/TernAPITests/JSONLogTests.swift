import Foundation
import Logging
import Testing

@testable import TernHTTP

/// `TERN_LOG_FORMAT=json`: each line is one JSON object with the message, level, label, source and every metadata key.
@Suite struct JSONLogTests {
    @Test func aLogLineIsOneJSONObjectWithItsMetadata() throws {
        let line = JSONLogHandler.line(
            time: Date(timeIntervalSince1970: 1_764_979_200.5), level: .warning, label: "tern", message: "delivery exhausted; \"quoted\"\nnext",
            source: "TernDelivery", metadata: ["delivery_id": "dlv_1", "attempt": .stringConvertible(3), "tags": .array(["a", "b"])])
        #expect(!line.contains("\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["message"] as? String == "delivery exhausted; \"quoted\"\nnext")
        #expect(object["level"] as? String == "warning" && object["label"] as? String == "tern" && object["source"] as? String == "TernDelivery")
        #expect(object["delivery_id"] as? String == "dlv_1" && object["attempt"] as? String == "3" && object["tags"] as? [String] == ["a", "b"])
        #expect(object["time"] as? String == "2025-12-06T00:00:00.500Z")
    }
}
