import Foundation
import NIOCore
import NIOPosix
import Synchronization
import TernCore

/// The SSRF guard: refuses deliveries whose host is, or resolves to, a loopback, private, link-local, multicast
/// or unspecified address. Checked twice: on the name's resolved addresses before connecting (for a clear
/// error), and on the connected socket's address (so that a name re-pointed between the two cannot slip by).
final class EgressGuard: Sendable {
    /// A delivery refused by the guard; its description is the attempt's error.
    struct Refused: Error, CustomStringConvertible {
        var description: String
    }

    /// Resolved addresses are reused for this long.
    static let cacheSeconds: Int64 = 30
    let cache = Mutex<[String: (addresses: [AddressClassifier.Address], until: Timestamp)]>([:])
    /// Looks a name up; the system resolver, run off the event loops.
    let resolver: @Sendable (String) async throws -> [AddressClassifier.Address]

    init(resolver: @escaping @Sendable (String) async throws -> [AddressClassifier.Address] = EgressGuard.systemResolve) {
        self.resolver = resolver
    }

    static func systemResolve(_ name: String) async throws -> [AddressClassifier.Address] {
        try await NIOThreadPool.singleton.runIfActive { try AddressClassifier.resolve(name) }
    }

    /// Throws `Refused` when the URL's host is or resolves to an internal address.
    func check(host: String) async throws {
        let name = host.lowercased()
        if name == "localhost" || name.hasSuffix(".localhost") {
            throw Refused(description: "refused by the SSRF guard: \(host) is a loopback name")
        }
        let addresses: [AddressClassifier.Address]
        if let literal = AddressClassifier.parse(name) {
            addresses = [literal]
        } else {
            addresses = try await self.resolve(name)
        }
        if let bad = addresses.first(where: AddressClassifier.isForbidden) {
            let shown = AddressClassifier.parse(name) == nil ? "\(host) resolves to \(bad.text)" : "\(bad.text)"
            throw Refused(
                description: "refused by the SSRF guard: \(shown), an internal address (loopback, private, link-local, "
                    + "multicast or unspecified); TERN_ALLOW_PRIVATE_ENDPOINTS=true allows it")
        }
    }

    func resolve(_ name: String) async throws -> [AddressClassifier.Address] {
        let now = Timestamp.now()
        if let cached = self.cache.withLock({ $0[name] }), cached.until > now { return cached.addresses }
        let addresses = try await self.resolver(name)
        self.cache.withLock { cache in
            if cache.count > 10_000 { cache.removeAll() }
            cache[name] = (addresses, now.adding(seconds: Self.cacheSeconds))
        }
        return addresses
    }

    /// Fails a new connection whose peer is internal: the last line of defence, after the name was checked.
    static func checkConnected(_ channel: any Channel) -> EventLoopFuture<Void> {
        if let ip = channel.remoteAddress?.ipAddress, let address = AddressClassifier.parse(ip), AddressClassifier.isForbidden(address) {
            return channel.eventLoop.makeFailedFuture(Refused(description: "refused by the SSRF guard: connected to \(ip), an internal address"))
        }
        return channel.eventLoop.makeSucceededVoidFuture()
    }
}

/// The operator's HTTP proxy for deliveries (`TERN_DELIVERY_PROXY_URL`, `http://[user:password@]host:port`).
public struct DeliveryProxy: Sendable, Equatable {
    public struct Credentials: Sendable, Equatable {
        public var username: String
        public var password: String
    }

    public var host: String
    public var port: Int
    public var credentials: Credentials?

    /// Reads the URL; nil when it is not `http://host:port` (with optional credentials).
    public init?(url text: String) {
        guard let url = URL(string: text), url.scheme == "http", let host = url.host, !host.isEmpty, url.path.isEmpty || url.path == "/",
            url.query == nil
        else { return nil }
        self.host = host
        self.port = url.port ?? 80
        if let user = url.user {
            self.credentials = Credentials(
                username: user.removingPercentEncoding ?? user, password: (url.password ?? "").removingPercentEncoding ?? "")
        }
    }
}
