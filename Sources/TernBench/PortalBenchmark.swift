import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import TernCore
import TernStorage

/// `tern bench portal`: how long portal pages take for a tenant with many endpoints and deliveries. Starts Tern
/// and a receiver on 127.0.0.1, creates `endpoints` endpoints for one tenant and publishes until it has
/// `deliveries` deliveries, waits for them to be delivered, then times each page over a keep-alive connection
/// (client-side, so the figures include the HTTP round trip on loopback). Prints one JSON object.
public enum PortalBenchmark {
    public struct Result: Encodable, Sendable {
        var database: String
        var endpoints: Int
        var deliveries: Int
        var requests_per_page: Int
        var pages_ms: [String: Toolkit.Latency]
    }

    public static func run(
        executable: URL, resources: URL, databaseURL: String?, endpoints: Int, deliveries: Int, requests: Int
    ) async throws -> Result {
        try await ServerRig.run(executable: executable, resources: resources, databaseURL: databaseURL) { rig in
            let (api, key, app) = (rig.api, rig.key, rig.app)
            for name in ["order.created", "order.shipped", "invoice.paid"] {
                _ = try await api.post(
                    "/v1/applications/\(app)/event-types", key: key, #"{"name": "\#(name)", "description": "An event", "example": {"id": 1}}"#)
            }
            for index in 0..<endpoints { try await rig.endpoint(tenant: "tenant-1", name: "Endpoint \(index)") }
            let publishes = (deliveries + endpoints - 1) / max(endpoints, 1)
            for index in 0..<publishes {
                try await api.publish(
                    rig.eventsPath, key: key,
                    #"{"event_type": "order.created", "tenant_id": "tenant-1", "payload": {"n": \#(index)}}"#)
            }
            let total = publishes * endpoints
            let delivered = await Toolkit.until(timeout: .seconds(600)) {
                let (_, body) = (try? await api.send("/v1/applications/\(app)/deliveries?status=pending&limit=1", key: key, nil)) ?? (0, "")
                let (_, failed) = (try? await api.send("/v1/applications/\(app)/deliveries?status=failed&limit=1", key: key, nil)) ?? (0, "")
                return body.contains(#""data":[]"#) && failed.contains(#""data":[]"#)
            }
            guard delivered else { throw ConfigurationError("the deliveries did not finish") }
            let session = try await api.post("/v1/applications/\(app)/portal-sessions", key: key, #"{"tenant_id": "tenant-1"}"#)
            let cookie = "tern_portal=\(session["token"]!)"
            let (_, list) = try await api.send("/v1/applications/\(app)/deliveries?limit=1", key: key, nil)
            let deliveryID = list.range(of: #"dlv_[0-9a-z]+"#, options: .regularExpression).map { String(list[$0]) } ?? ""
            let (_, endpointList) = try await api.send("/v1/applications/\(app)/endpoints?limit=1", key: key, nil)
            let endpointID = endpointList.range(of: #"ep_[0-9a-z]+"#, options: .regularExpression).map { String(endpointList[$0]) } ?? ""
            let pages = [
                "/portal/endpoints", "/portal/endpoints/\(endpointID)", "/portal/events", "/portal/deliveries",
                "/portal/deliveries?status=delivered", "/portal/deliveries/\(deliveryID)",
            ]
            var figures: [String: Toolkit.Latency] = [:]
            for page in pages {
                let times = Toolkit.Recorder()
                for round in 0..<(requests + 5) {
                    let start = ContinuousClock.now
                    let status = try await api.page(page, cookie: cookie)
                    guard status == 200 else { throw ConfigurationError("\(page) answered \(status)") }
                    if round >= 5 { times.record(ContinuousClock.now - start) }
                }
                figures[
                    page.replacingOccurrences(of: endpointID, with: "{endpoint_id}").replacingOccurrences(of: deliveryID, with: "{delivery_id}")] =
                    times.latency
            }
            return Result(
                database: rig.databaseKind, endpoints: endpoints, deliveries: total, requests_per_page: requests, pages_ms: figures
            )
        }
    }
}

extension Toolkit.Client {
    /// GETs a page with a cookie and reads it whole; returns the status.
    func page(_ path: String, cookie: String) async throws -> Int {
        var request = HTTPClientRequest(url: self.base + path)
        request.headers.add(name: "cookie", value: cookie)
        let response = try await self.http.execute(request, timeout: .seconds(30))
        _ = try await response.body.collect(upTo: 16 << 20)
        return Int(response.status.code)
    }
}
