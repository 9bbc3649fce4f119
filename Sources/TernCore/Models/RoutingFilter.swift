import Foundation

/// An endpoint's filter: a JSON object matched against a message's document
/// `{"event_type", "tenant_id", "channels", "payload", "source_id", "headers"}`.
///
/// Keys are paths with `.` between members (`payload.order.total`; a number steps into an array); a value is a literal
/// (equality) or an operator object (`$eq $neq $gt $gte $lt $lte $in $nin $exists $contains $startsWith`), and
/// `$and`, `$or`, `$not` combine filters. The members of one object must all hold. A missing path never matches, except
/// under `$exists: false`; comparing values of different JSON types is false.
public struct RoutingFilter: Sendable, Equatable {
    /// The filter as it was given.
    public let source: JSONValue
    let root: Node

    /// The largest filter, as JSON text.
    public static let maxBytes = 4_096
    /// The deepest nesting of `$and`, `$or` and `$not`.
    public static let maxDepth = 10

    indirect enum Node: Sendable, Equatable {
        case all([Node])
        case any([Node])
        case not(Node)
        case condition(path: String, op: Operator, operand: JSONValue)
    }

    enum Operator: String, Sendable, CaseIterable {
        case eq = "$eq"
        case neq = "$neq"
        case gt = "$gt"
        case gte = "$gte"
        case lt = "$lt"
        case lte = "$lte"
        case `in` = "$in"
        case nin = "$nin"
        case exists = "$exists"
        case contains = "$contains"
        case startsWith = "$startsWith"
    }

    /// Parses and checks a filter; every problem is a `FieldError` named `field` plus the path, naming the operator.
    public init(_ value: JSONValue, field: String = "filter") throws(TernError) {
        var errors: [FieldError] = []
        guard case .object = value else { throw TernError.invalid(field, "must be a JSON object") }
        let root = Self.parse(value, field: field, depth: 0, errors: &errors)
        guard errors.isEmpty else { throw TernError.validation(errors) }
        self.source = value
        self.root = root
    }

    static func parse(_ value: JSONValue, field: String, depth: Int, errors: inout [FieldError]) -> Node {
        guard case .object(let members) = value else {
            errors.append(FieldError(field, "must be a filter object"))
            return .all([])
        }
        if depth > Self.maxDepth {
            errors.append(FieldError(field, "is nested more than \(Self.maxDepth) levels deep"))
            return .all([])
        }
        var nodes: [Node] = []
        for (key, operand) in members.sorted(by: { $0.key < $1.key }) {
            let here = "\(field).\(key)"
            switch key {
            case "$and", "$or":
                guard case .array(let items) = operand, !items.isEmpty else {
                    errors.append(FieldError(here, "\(key) takes a non-empty array of filters"))
                    continue
                }
                let children = items.enumerated().map { index, item in
                    Self.parse(item, field: "\(here)[\(index)]", depth: depth + 1, errors: &errors)
                }
                nodes.append(key == "$and" ? .all(children) : .any(children))
            case "$not":
                switch operand {
                case .object:
                    nodes.append(.not(Self.parse(operand, field: here, depth: depth + 1, errors: &errors)))
                case .array(let items) where !items.isEmpty:
                    let children = items.enumerated().map { index, item in
                        Self.parse(item, field: "\(here)[\(index)]", depth: depth + 1, errors: &errors)
                    }
                    nodes.append(.not(.all(children)))
                default:
                    errors.append(FieldError(here, "$not takes a filter or a non-empty array of filters"))
                }
            default:
                if key.hasPrefix("$") {
                    errors.append(FieldError(here, "\(key) is not an operator here; paths come first, then operators"))
                } else if key.isEmpty || key.split(separator: ".", omittingEmptySubsequences: false).contains(where: \.isEmpty) {
                    errors.append(FieldError(here, "is not a path: members separated by single dots"))
                } else if case .object(let operators) = operand, operators.keys.contains(where: { $0.hasPrefix("$") }) {
                    for (name, argument) in operators.sorted(by: { $0.key < $1.key }) {
                        guard let op = Operator(rawValue: name) else {
                            errors.append(
                                FieldError(
                                    "\(here).\(name)", "\(name) is not an operator; use \(Operator.allCases.map(\.rawValue).joined(separator: " "))"))
                            continue
                        }
                        if let problem = Self.problem(op, argument) {
                            errors.append(FieldError("\(here).\(name)", problem))
                            continue
                        }
                        nodes.append(.condition(path: key, op: op, operand: argument))
                    }
                } else {
                    nodes.append(.condition(path: key, op: .eq, operand: operand))
                }
            }
        }
        return nodes.count == 1 ? nodes[0] : .all(nodes)
    }

    /// What is wrong with an operator's argument, if anything.
    static func problem(_ op: Operator, _ argument: JSONValue) -> String? {
        switch op {
        case .eq, .neq: return nil
        case .gt, .gte, .lt, .lte:
            switch argument {
            case .number, .string: return nil
            default: return "\(op.rawValue) compares with a number or a string"
            }
        case .in, .nin:
            if case .array = argument { return nil }
            return "\(op.rawValue) takes an array of values"
        case .exists:
            if case .bool = argument { return nil }
            return "$exists takes true or false"
        case .contains:
            switch argument {
            case .object, .array: return "$contains takes a string (within a string) or a single value (within an array)"
            default: return nil
            }
        case .startsWith:
            if case .string = argument { return nil }
            return "$startsWith takes a string"
        }
    }

    /// Whether the document matches, and why (the first condition that failed, or "matched").
    public func evaluate(_ document: JSONValue) -> (matches: Bool, reason: String) {
        Self.evaluate(self.root, document)
    }

    static func evaluate(_ node: Node, _ document: JSONValue) -> (matches: Bool, reason: String) {
        switch node {
        case .all(let children):
            for child in children {
                let result = Self.evaluate(child, document)
                if !result.matches { return result }
            }
            return (true, "matched")
        case .any(let children):
            var reasons: [String] = []
            for child in children {
                let result = Self.evaluate(child, document)
                if result.matches { return (true, "matched") }
                reasons.append(result.reason)
            }
            return (false, "no branch of $or matched (" + reasons.joined(separator: "; ") + ")")
        case .not(let child):
            return Self.evaluate(child, document).matches ? (false, "the $not filter matched") : (true, "matched")
        case .condition(let path, let op, let operand):
            let value = Self.resolve(path, in: document)
            if Self.holds(op, value, operand) { return (true, "matched") }
            guard let value else { return (false, "\(path) is missing") }
            return (false, "\(path) is \(Self.text(value)), not \(op.rawValue) \(Self.text(operand))")
        }
    }

    /// The value at a dotted path: members of objects, and indexes of arrays.
    static func resolve(_ path: String, in document: JSONValue) -> JSONValue? {
        var current = document
        for segment in path.split(separator: ".", omittingEmptySubsequences: false) {
            switch current {
            case .object(let members):
                guard let next = members[String(segment)] else { return nil }
                current = next
            case .array(let items):
                guard let index = Int(segment), items.indices.contains(index) else { return nil }
                current = items[index]
            default:
                return nil
            }
        }
        return current
    }

    static func holds(_ op: Operator, _ value: JSONValue?, _ operand: JSONValue) -> Bool {
        if op == .exists, case .bool(let wanted) = operand { return (value != nil) == wanted }
        guard let value else { return false }
        switch op {
        case .eq: return value == operand
        case .neq: return value != operand
        case .gt, .gte, .lt, .lte:
            guard let order = Self.compare(value, operand) else { return false }
            switch op {
            case .gt: return order > 0
            case .gte: return order >= 0
            case .lt: return order < 0
            default: return order <= 0
            }
        case .in, .nin:
            guard case .array(let choices) = operand else { return false }
            let found = choices.contains(value)
            return op == .in ? found : !found
        case .exists: return false
        case .contains:
            switch (value, operand) {
            case (.string(let text), .string(let part)): return text.contains(part)
            case (.array(let items), _): return items.contains(operand)
            default: return false
            }
        case .startsWith:
            guard case .string(let text) = value, case .string(let prefix) = operand else { return false }
            return text.hasPrefix(prefix)
        }
    }

    /// -1, 0 or 1 for two numbers or two strings; nil for anything else.
    static func compare(_ lhs: JSONValue, _ rhs: JSONValue) -> Int? {
        switch (lhs, rhs) {
        case (.number(let a), .number(let b)): return a < b ? -1 : a > b ? 1 : 0
        case (.string(let a), .string(let b)): return a < b ? -1 : a > b ? 1 : 0
        default: return nil
        }
    }

    static func text(_ value: JSONValue) -> String {
        guard let data = try? JSONEncoder.sorted.encode(value) else { return "?" }
        let text = String(decoding: data, as: UTF8.self)
        return text.count > 80 ? String(text.prefix(77)) + "…" : text
    }

    /// A condition every match must meet that an index can look up: one path and the values it must equal (from a
    /// top-level `$eq`/literal or `$in`, or one inside a top-level `$and`), the fewest values first. Nil when the filter
    /// has none (only ranges, `$or`, `$not` …): such a filter is read for every message. Only scalar values of at most
    /// `maxRouteBytes` route.
    public var route: (path: String, keys: [String])? {
        var best: (path: String, keys: [String])?
        func visit(_ node: Node) {
            switch node {
            case .all(let children): children.forEach(visit)
            case .condition(let path, .eq, let operand): consider(path, [operand])
            case .condition(let path, .in, .array(let values)): consider(path, values)
            default: break
            }
        }
        func consider(_ path: String, _ values: [JSONValue]) {
            var keys: [String] = []
            for value in values {
                guard let key = Self.routeKey(path, value) else { return }
                if !keys.contains(key) { keys.append(key) }
            }
            if best == nil || keys.count < best!.keys.count { best = (path, keys) }
        }
        visit(self.root)
        return best
    }

    /// The longest route key; longer values are not indexed.
    public static let maxRouteBytes = 512

    /// The key under which a document whose `path` holds `value` finds the endpoints routed on it: the JSON array
    /// `[path, value]`, sorted and compact. Nil for objects, arrays and long values.
    public static func routeKey(_ path: String, _ value: JSONValue) -> String? {
        switch value {
        case .object, .array: return nil
        default:
            let value = value == .number(0) ? .number(0) : value  // -0 equals 0, and must read the same
            guard let data = try? JSONEncoder.sorted.encode(JSONValue.array([.string(path), value])), data.count <= Self.maxRouteBytes
            else { return nil }
            return String(decoding: data, as: UTF8.self)
        }
    }

    /// The route key of a message's document on `path`, or nil when the path is missing (no routed filter can match).
    public static func routeKey(_ path: String, in document: JSONValue) -> String? {
        Self.resolve(path, in: document).flatMap { Self.routeKey(path, $0) }
    }

    /// The document a filter reads for a message.
    public static func document(
        eventType: String, tenantID: String, channels: [String]?, payload: JSONValue, sourceID: String? = nil, headers: [String: String]? = nil
    ) -> JSONValue {
        .object([
            "event_type": .string(eventType), "tenant_id": .string(tenantID), "channels": .array((channels ?? []).map(JSONValue.string)),
            "payload": payload, "source_id": sourceID.map(JSONValue.string) ?? .null,
            "headers": .object((headers ?? [:]).mapValues(JSONValue.string)),
        ])
    }
}

extension JSONEncoder {
    /// Sorted keys, so the same value always reads the same.
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
