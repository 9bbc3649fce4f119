import Foundation
import TernCore
import Testing

@testable import TernTesting

/// The Svix-compatible API (`/api/v1`) as the official Svix SDK from PyPI drives it, and its error shapes, which the
/// SDK parses on every non-2xx (`{code, detail}`, 422 `{detail: [{loc, msg, type}]}`).
@Suite struct SvixSDKTests {
    @Test func theSvixSDKReachesTernAndEveryErrorUnderApiV1HasTheSvixShape() async throws {
        try await withTern(.sqlite, live: true) { api in
            let port = try #require(api.port)
            let (_, key) = try await api.organization()
            let (status, output) = try await InteropTests.python(
                repositoryRoot.appendingPathComponent("Tests/interop/svix_sdk.py").path, "http://127.0.0.1:\(port)", key)
            #expect(status == 0, "\(output)")
            let result = try #require(
                output.split(separator: "\n").last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String] })
            #expect(result == ["health_sync": "ok", "health_async": "ok"])

            let unknown = try await api.get("/api/v1/no-such-thing", key: key)
            #expect(unknown.status == 404 && unknown.string("code") == "not_found" && unknown.string("detail") != nil)
            #expect(unknown.headers[.contentType] == "application/json")
            let method = try await api.call(.delete, "/api/v1/health", key: key)
            #expect(method.status == 405 && method.string("code") == "method_not_allowed")
            #expect(method.headers[.allow] == "GET")
            // Native paths keep problem+json.
            #expect(try await api.get("/v1/no-such-thing", key: key).headers[.contentType] == "application/problem+json")
        }
    }
}
