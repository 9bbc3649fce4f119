/// What an API key may do: `read:<resource>` / `write:<resource>`, `read:*` / `write:*`, or `*`.
public enum Scopes {
    /// Resources that scopes name.
    public static let resources = [
        "applications", "event_types", "endpoints", "events", "deliveries", "sources", "api_keys", "audit", "operational_endpoints",
    ]

    /// The scope a key created without `scopes` gets.
    public static let all = "*"

    /// True when `scope` is one the API understands.
    public static func isValid(_ scope: String) -> Bool {
        if scope == all { return true }
        let parts = scope.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0] == "read" || parts[0] == "write" else { return false }
        return parts[1] == "*" || resources.contains(String(parts[1]))
    }

    /// True when `granted` allows `action` (`read`/`write`) on `resource`. A write scope allows reading too.
    public static func allows(_ granted: [String], action: Action, resource: String) -> Bool {
        for scope in granted {
            if scope == all { return true }
            let parts = scope.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[1] == "*" || parts[1] == resource else { continue }
            if parts[0] == "write" || (action == .read && parts[0] == "read") { return true }
        }
        return false
    }

    public enum Action: String, Sendable {
        case read, write
    }

    /// Throws 403 unless `scopes` allow `action` on `resource`.
    public static func require(_ scopes: [String], _ action: Action, _ resource: String) throws {
        guard Self.allows(scopes, action: action, resource: resource) else {
            throw TernError.forbidden("This API key lacks the scope '\(action.rawValue):\(resource)'.")
        }
    }
}
