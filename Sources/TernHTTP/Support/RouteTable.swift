import HTTPTypes
import Hummingbird
import Synchronization

/// The routes the router serves, kept to answer a path it knows with a method it does not: 405 with the methods the
/// path has in `Allow`, where the router alone would say 404.
final class RouteTable: Sendable {
    struct Route: Sendable {
        var method: String
        var path: RouterPath
    }

    let routes = Mutex<[Route]>([])

    /// Takes the router's routes once they are all added.
    func load(_ routes: [Router<TernRequestContext>.RouteDescription]) {
        let loaded = routes.map { Route(method: $0.method.rawValue, path: $0.path) }
        self.routes.withLock { $0 = loaded }
    }

    /// The methods of the routes the router would pick for `path`, sorted; empty when no route matches it. As in the
    /// router, a literal segment wins over a parameter: `deliveries/replay` is not `deliveries/{delivery_id}`.
    func methods(for path: String) -> [HTTPRequest.Method] {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        let routes = self.routes.withLock { $0 }
        var best: [Int] = []
        var methods = Set<String>()
        for route in routes {
            guard let rank = Self.rank(route.path, segments) else { continue }
            if rank.lexicographicallyPrecedes(best) { continue }
            if rank != best { methods = [] }
            best = rank
            methods.insert(route.method)
        }
        return methods.sorted().compactMap { HTTPRequest.Method($0) }
    }

    /// How well a route matches, segment by segment (2 a literal, 1 anything else), or nil when it does not.
    static func rank(_ route: RouterPath, _ segments: [Substring]) -> [Int]? {
        var rank: [Int] = []
        for (index, element) in route.components.enumerated() {
            if element.description == "**" { return rank + [0] }
            guard index < segments.count, element ~= segments[index] else { return nil }
            rank.append(element == segments[index] ? 2 : 1)
        }
        return route.components.count == segments.count ? rank : nil
    }
}
