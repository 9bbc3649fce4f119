import Foundation
import TernCore
import Testing

@testable import TernTesting

/// Real deliveries verified by the official Python libraries of Standard Webhooks and Svix (from PyPI).
@Suite struct InteropTests {
    @Test(arguments: Backend.available)
    func theOfficialStandardWebhooksAndSvixLibrariesVerifyRealDeliveries(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        try await withTern(backend) { api in
            let (key, app) = try await api.shop()
            let (endpointID, firstSecret) = try await api.endpoint(key, app: app, url: receiver.url())
            _ = try await api.publish(key, app: app, payload: #"{"order": {"id": 7, "total": 12.50}, "note": "naïve ✓"}"#)
            await receiver.waitFor(1)
            let rotated = try await api.post("/v1/applications/\(app)/endpoints/\(endpointID)/rotate-secret", key: key, "{}")
            let secondSecret = try #require(rotated.string("secret"))
            _ = try await api.publish(key, app: app, payload: #"{ "spaced" : [ 1 , 2 ] }"#)
            let received = await receiver.waitFor(2)
            try #require(received.count == 2)

            // The first delivery was signed before rotation (one secret); the second by both secrets.
            let deliveries: [[String: Any]] = zip(received, [[firstSecret], [secondSecret, firstSecret]]).map { request, secrets in
                var headers: [String: String] = [:]
                for field in request.headers { headers[field.name.canonicalName] = field.value }
                return ["body_b64": Data(request.body).base64EncodedString(), "headers": headers, "secrets": secrets]
            }
            let input = Leftovers.temporary("interop", suffix: ".json")
            try JSONSerialization.data(withJSONObject: ["deliveries": deliveries]).write(to: input)
            let (status, output) = try await Self.python(repositoryRoot.appendingPathComponent("Tests/interop/verify_signatures.py").path, input.path)
            #expect(status == 0, "\(output)")
            #expect(output.contains(#""failed": []"#), "\(output)")
        }
    }

    /// Runs a Python script; returns its exit status and output.
    static func python(_ arguments: String...) async throws -> (Int32, String) {
        try await runProgram("python3", arguments)
    }
}
