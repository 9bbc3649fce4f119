import Testing

@testable import TernCore

/// Operational events as values: when a failing streak speaks, and the two payload shapes.
@Suite struct OperationalEventTests {
    @Test(arguments: [(20, [10, 18]), (10, [5, 9]), (4, [2]), (5, [3]), (2, [1]), (1, [])])
    func aFailingStreakSpeaksAtHalfAndNinetyPercentBelowTheThreshold(_ threshold: Int, _ marks: [Int]) {
        #expect(FailingStreak.marks(threshold: threshold) == marks)
        let spoken = (1...threshold).filter { FailingStreak.reachesMark(consecutiveFailures: $0, threshold: threshold) }
        #expect(spoken == marks)
    }

    static func exhausted() -> OperationalEvent {
        var event = OperationalEvent(
            type: .attemptExhausted, organizationID: "org_1", applicationID: "app_1", tenantID: "customer-1", endpointID: "ep_1",
            endpointUID: "orders", at: Timestamp(microseconds: 1_764_000_000_000_000))
        event.messageID = "msg_1"
        event.eventID = "order-7"
        event.deliveryID = "dlv_1"
        event.lastAttempt = .init(id: "atmpt_1", statusCode: 503, error: "HTTP 503", at: Timestamp(microseconds: 1_764_000_000_000_000))
        return event
    }

    @Test func theNativeShapeNamesTheApplicationTenantEndpointMessageAndAttempt() {
        guard case .object(let payload) = Self.exhausted().nativePayload(), case .object(let data)? = payload["data"] else {
            Issue.record("not an object")
            return
        }
        #expect(payload["type"] == .string("message.attempt.exhausted") && payload["timestamp"] == .string("2025-11-24T16:00:00.000Z"))
        #expect(data["application_id"] == .string("app_1") && data["tenant_id"] == .string("customer-1") && data["endpoint_uid"] == .string("orders"))
        #expect(data["message_id"] == .string("msg_1") && data["event_id"] == .string("order-7") && data["delivery_id"] == .string("dlv_1"))
        #expect(
            data["last_attempt"]
                == .object([
                    "id": .string("atmpt_1"), "status_code": .number(503), "error": .string("HTTP 503"), "at": .string("2025-11-24T16:00:00.000Z"),
                ]))
    }

    @Test func theSvixShapeIsSvixsOperationalWebhook() {
        guard case .object(let payload) = Self.exhausted().svixPayload(appID: "app_svix", appUID: "customer-1"),
            case .object(let data)? = payload["data"]
        else {
            Issue.record("not an object")
            return
        }
        #expect(Set(data.keys) == ["appId", "appUid", "msgId", "msgEventId", "endpointId", "lastAttempt"])
        #expect(
            data["lastAttempt"]
                == .object(["id": .string("atmpt_1"), "responseStatusCode": .number(503), "timestamp": .string("2025-11-24T16:00:00.000Z")]))
        var failing = Self.exhausted()
        failing.type = .endpointFailing
        #expect(failing.svixPayload(appID: "a", appUID: nil).objectType == "message.attempt.failing")
        var disabled = OperationalEvent(
            type: .endpointDisabled, organizationID: "o", applicationID: "a", tenantID: "t", endpointID: "ep_1", endpointUID: nil)
        disabled.reason = CircuitBreaker.Reason.manual
        guard case .object(let disabledPayload) = disabled.svixPayload(appID: "app_x", appUID: nil),
            case .object(let disabledData)? = disabledPayload["data"]
        else { return }
        #expect(disabledData["trigger"] == .string("manual") && disabledData["failSince"] == .null && disabledData["appUid"] == .null)
    }

    @Test func svixNamesMapOntoTernsAndBack() {
        for type in OperationalEventType.allCases { #expect(OperationalEventType(svixName: type.svixName) == type) }
        #expect(OperationalEventType(svixName: "endpoint.failing") == nil && OperationalEventType(svixName: "background_task.finished") == nil)
    }
}

extension JSONValue {
    fileprivate var objectType: String? {
        guard case .object(let members) = self, case .string(let type)? = members["type"] else { return nil }
        return type
    }
}
