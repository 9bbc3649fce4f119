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

    /// The methods of the routes whose path matches `path`, sorted; empty when no route matches it.
    func methods(for path: String) -> [HTTPRequest.Method] {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        let routes = self.routes.withLock { $0 }
        var methods = Set<String>()
        for route in routes where Self.matches(route.path, segments) { methods.insert(route.method) }
        return methods.sorted().compactMap { HTTPRequest.Method($0) }
    }

    static func matches(_ route: RouterPath, _ segments: [Substring]) -> Bool {
        for (index, element) in route.components.enumerated() {
            if element.description == "**" { return true }
            guard index < segments.count, element ~= segments[index] else { return false }
        }
        return route.components.count == segments.count
    }
}
