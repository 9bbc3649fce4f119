import Foundation
import Logging
import TernCore
import Testing

@testable import TernHTTP

/// `TERN_LOG_FORMAT=json`: each line is one JSON object with the message, level, label, source and every metadata key.
@Suite struct JSONLogTests {
    @Test func aLogLineIsOneJSONObjectWithItsMetadata() throws {
        let line = TernLogHandler.jsonLine(
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

/// `TERN_LOG_FORMAT=text`: the lines `StreamLogHandler` writes, for the same metadata, source and message.
@Suite struct TextLogTests {
    final class Captured: TextOutputStream, @unchecked Sendable {
        var text = ""
        func write(_ string: String) { self.text += string }
    }

    @Test func aLineIsWhatStreamLogHandlerWrites() {
        let cases: [(label: String, metadata: Logger.Metadata)] = [
            ("tern", ["delivery_id": "dlv_1", "attempt": .stringConvertible(3), "tags": .array(["a", "b"]), "a": .dictionary(["k": "v"])]),
            ("tern", [:]),
            ("", ["error": "HTTP 500 \"quoted\""]),
        ]
        for (label, metadata) in cases {
            let captured = Captured()
            var stream = StreamLogHandler(label: label, stream: captured, metadataProvider: nil)
            stream.metadata = metadata
            stream.log(
                event: LogEvent(
                    level: .warning, message: "delivery exhausted", metadata: nil, source: "TernDelivery", file: "", function: "", line: 0))
            let ours = TernLogHandler.textLine(
                time: TernLogHandler.localTime(), level: .warning, label: label, metadata: metadata, source: "TernDelivery",
                message: "delivery exhausted")
            // The same line after the time (the two clocks may read different seconds); the time in the same form.
            #expect(ours.drop { $0 != " " } == captured.text.drop { $0 != " " })
            #expect(ours.prefix { $0 != " " }.count == captured.text.prefix { $0 != " " }.count)
        }
    }

    @Test func metadataSetOnTheLoggerAndGivenWithTheLineAreBothWritten() {
        var handler = TernLogHandler(label: "tern", format: .text)
        handler[metadataKey: "request_id"] = "req_1"
        #expect(handler[metadataKey: "request_id"] == "req_1")
        #expect(handler.metadata == ["request_id": "req_1"])
        let line = TernLogHandler.textLine(
            time: "T", level: .info, label: "tern", metadata: handler.metadata.merging(["b": "2"]) { $1 }, source: "S", message: "m")
        #expect(line == "T info tern: b=2 request_id=req_1 [S] m\n")
    }
}

/// The publish answer, written by hand, is the JSON `JSONResponse` would write for the same fields.
@Suite struct PublishReplyTests {
    @Test func theHandWrittenReplyIsWhatTheEncoderWrites() throws {
        struct Reply: Encodable {
            var id: String
            var event_type: String
            var tenant_id: String
            var event_id: String?
            var created_at: Timestamp
            var deliveries: Int

            func encode(to encoder: any Encoder) throws {
                enum Keys: String, CodingKey { case id, event_type, tenant_id, event_id, created_at, deliveries }
                var container = encoder.container(keyedBy: Keys.self)
                try container.encode(self.id, forKey: .id)
                try container.encode(self.event_type, forKey: .event_type)
                try container.encode(self.tenant_id, forKey: .tenant_id)
                try container.encodeOrNull(self.event_id, forKey: .event_id)
                try container.encode(self.created_at, forKey: .created_at)
                try container.encode(self.deliveries, forKey: .deliveries)
            }
        }
        for eventID in [nil, "order-1", "q\"u/o\\te\n\u{01}é😀"] {
            let message = Message(
                id: "msg_1", applicationID: "app_1", tenantID: "tenant-1", eventType: "order.created", eventID: eventID, payload: "{}",
                createdAt: Timestamp(microseconds: 1_764_979_200_123_456))
            let expected = String(
                decoding: try JSONResponse.encoder.encode(
                    Reply(
                        id: message.id, event_type: message.eventType, tenant_id: message.tenantID, event_id: eventID,
                        created_at: message.createdAt, deliveries: 3)), as: UTF8.self)
            #expect(EventController.reply(message, deliveries: 3) == expected)
        }
    }
}

/// Header values lose HTTP's optional whitespace (spaces and tabs) and nothing else; audit rules match by shape.
@Suite struct HeaderValueTests {
    @Test func onlySpacesAndTabsAroundTheValueAreTrimmed() {
        #expect(" \tapplication/json \t".trimmingHTTPWhitespace() == "application/json")
        #expect("tern_key_a b".trimmingHTTPWhitespace() == "tern_key_a b")
        #expect("é x\u{00A0}".trimmingHTTPWhitespace() == "é x\u{00A0}")
        #expect(" \t ".trimmingHTTPWhitespace() == "")
        #expect("".trimmingHTTPWhitespace() == "")
        #expect("a, b ,c".split(separator: ",").map { $0.trimmingHTTPWhitespace() } == ["a", "b", "c"])
    }

    @Test func auditRulesMatchWritesAndNotPublishes() {
        let update = AuditRules.match(.patch, "/v1/applications/app_1/endpoints/ep_1")
        #expect(update?.action == "endpoint.updated" && update?.parameters["endpoint_id"] == "ep_1")
        #expect(AuditRules.match(.post, "/v1/applications/app_1/events") == nil)
        #expect(AuditRules.match(.post, "/api/v1/app/t1/msg") == nil)
        #expect(AuditRules.match(.delete, "/api/v1/app/t1")?.action == "tenant.deleted")
        #expect(AuditRules.match(.patch, "/v1/applications/app_1/event-types/user%2Ecreated")?.parameters["name"] == "user.created")
        #expect(AuditRules.match(.patch, "//v1/applications//app_1/")?.parameters == ["app_id": "app_1"])
        #expect(AuditRules.match(.post, "/v1/applications/app_1/endpoint") == nil)
    }
}
