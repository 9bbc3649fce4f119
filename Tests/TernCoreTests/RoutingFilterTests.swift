import Foundation
import Testing

@testable import TernCore

/// Endpoint filters: every operator, the 422 messages, and agreement with a reference evaluator on random documents.
@Suite struct RoutingFilterTests {
    static func json(_ text: String) -> JSONValue {
        try! JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }

    static let order = RoutingFilter.document(
        eventType: "order.created", tenantID: "shop-1", channels: ["eu"],
        payload: json(
            #"{"total": 120.5, "currency": "EUR", "customer": {"id": "c-7", "vip": true}, "items": [{"sku": "A1"}, {"sku": "B2"}], "note": null, "tags": ["gift", "rush"]}"#
        ),
        sourceID: "src_1", headers: ["x-shop": "berlin"])

    @Test(arguments: [
        (#"{"event_type": "order.created"}"#, true), (#"{"event_type": "order.paid"}"#, false),
        (#"{"payload.total": {"$gt": 100}}"#, true), (#"{"payload.total": {"$gt": 120.5}}"#, false),
        (#"{"payload.total": {"$gte": 120.5, "$lte": 120.5}}"#, true), (#"{"payload.total": {"$lt": "200"}}"#, false),
        (#"{"payload.currency": {"$in": ["EUR", "USD"]}}"#, true), (#"{"payload.currency": {"$nin": ["EUR"]}}"#, false),
        (#"{"payload.missing": {"$nin": ["EUR"]}}"#, false), (#"{"payload.missing": {"$neq": 1}}"#, false),
        (#"{"payload.missing": {"$exists": false}}"#, true), (#"{"payload.note": {"$exists": true}}"#, true),
        (#"{"payload.note": null}"#, true), (#"{"payload.customer.vip": true}"#, true), (#"{"payload.customer.id": {"$startsWith": "c-"}}"#, true),
        (#"{"payload.customer.id": {"$contains": "-7"}}"#, true), (#"{"payload.tags": {"$contains": "gift"}}"#, true),
        (#"{"payload.tags": {"$contains": "gif"}}"#, false), (#"{"payload.items.1.sku": "B2"}"#, true), (#"{"payload.items.2.sku": "B2"}"#, false),
        (#"{"channels": {"$contains": "eu"}}"#, true), (#"{"tenant_id": "shop-1", "source_id": "src_1"}"#, true),
        (#"{"headers.x-shop": "berlin"}"#, true), (#"{"$or": [{"payload.total": {"$lt": 10}}, {"payload.customer.vip": true}]}"#, true),
        (#"{"$and": [{"payload.total": {"$gt": 10}}, {"payload.currency": "USD"}]}"#, false), (#"{"$not": {"payload.currency": "USD"}}"#, true),
        (#"{"$not": [{"payload.currency": "EUR"}, {"payload.total": {"$gt": 100}}]}"#, false),
        (#"{"payload.customer": {"id": "c-7", "vip": true}}"#, true),
        (#"{"payload.total": "120.5"}"#, false), (#"{}"#, true),
    ])
    func operatorsMatchAsDocumented(_ filter: String, _ expected: Bool) throws {
        let parsed = try RoutingFilter(Self.json(filter))
        let result = parsed.evaluate(Self.order)
        #expect(result.matches == expected, "\(filter): \(result.reason)")
        #expect(result.matches == (result.reason == "matched"))
    }

    @Test func aFailedConditionSaysWhichPathAndOperator() throws {
        let result = try RoutingFilter(Self.json(#"{"payload.total": {"$gt": 500}}"#)).evaluate(Self.order)
        #expect(result.reason == "payload.total is 120.5, not $gt 500")
        #expect(try RoutingFilter(Self.json(#"{"payload.x": 1}"#)).evaluate(Self.order).reason == "payload.x is missing")
    }

    @Test(arguments: [
        (#"{"payload.total": {"$gt": [1]}}"#, "filter.payload.total.$gt"), (#"{"payload.total": {"$between": 1}}"#, "filter.payload.total.$between"),
        (#"{"$or": []}"#, "filter.$or"), (#"{"$nope": 1}"#, "filter.$nope"), (#"{"a..b": 1}"#, "filter.a..b"),
        (#"{"payload.a": {"$in": 3}}"#, "filter.payload.a.$in"), (#"{"payload.a": {"$exists": "yes"}}"#, "filter.payload.a.$exists"),
        (#"{"$and": [{"x": {"$startsWith": 1}}]}"#, "filter.$and[0].x.$startsWith"), (#"{"payload.a": {"$gt": 1, "b": 2}}"#, "filter.payload.a.b"),
    ])
    func anInvalidFilterNamesThePathAndTheOperator(_ filter: String, _ field: String) {
        #expect {
            try RoutingFilter(Self.json(filter))
        } throws: { error in
            guard case TernError.validation(let errors) = error else { return false }
            return errors.map(\.field) == [field]
        }
    }

    @Test func nestingDeeperThanTenLevelsIsRefused() {
        var filter = Self.json(#"{"event_type": "x"}"#)
        for _ in 0..<11 { filter = .object(["$and": .array([filter])]) }
        #expect(throws: TernError.self) { try RoutingFilter(filter) }
    }

    // MARK: A reference evaluator, written from the contract on the raw JSON, against random documents and filters.

    static func reference(_ filter: JSONValue, _ document: JSONValue) -> Bool {
        guard case .object(let members) = filter else { return false }
        return members.allSatisfy { key, value in
            switch key {
            case "$and": if case .array(let items) = value { return items.allSatisfy { reference($0, document) } } else { return false }
            case "$or": if case .array(let items) = value { return items.contains { reference($0, document) } } else { return false }
            case "$not":
                if case .array(let items) = value { return !items.allSatisfy { reference($0, document) } }
                return !reference(value, document)
            default:
                var found: JSONValue? = document
                for part in key.components(separatedBy: ".") {
                    switch found {
                    case .object(let object)?: found = object[part]
                    case .array(let array)?: found = Int(part).flatMap { array.indices.contains($0) ? array[$0] : nil }
                    default: found = nil
                    }
                }
                if case .object(let ops) = value, ops.keys.contains(where: { $0.hasPrefix("$") }) {
                    return ops.allSatisfy { referenceOperator($0.key, found, $0.value) }
                }
                return found == value
            }
        }
    }

    static func referenceOperator(_ op: String, _ found: JSONValue?, _ argument: JSONValue) -> Bool {
        if op == "$exists" { return argument == .bool(found != nil) }
        guard let found else { return false }
        switch (op, found, argument) {
        case ("$eq", _, _): return found == argument
        case ("$neq", _, _): return found != argument
        case ("$gt", .number(let a), .number(let b)): return a > b
        case ("$gt", .string(let a), .string(let b)): return a > b
        case ("$gte", .number(let a), .number(let b)): return a >= b
        case ("$gte", .string(let a), .string(let b)): return a >= b
        case ("$lt", .number(let a), .number(let b)): return a < b
        case ("$lt", .string(let a), .string(let b)): return a < b
        case ("$lte", .number(let a), .number(let b)): return a <= b
        case ("$lte", .string(let a), .string(let b)): return a <= b
        case ("$in", _, .array(let options)): return options.contains(found)
        case ("$nin", _, .array(let options)): return !options.contains(found)
        case ("$contains", .string(let text), .string(let part)): return text.contains(part)
        case ("$contains", .array(let items), _): return items.contains(argument)
        case ("$startsWith", .string(let text), .string(let prefix)): return text.hasPrefix(prefix)
        default: return false
        }
    }

    /// A small deterministic generator (SplitMix64), so that a failure repeats.
    struct Random {
        var state: UInt64
        mutating func next() -> UInt64 {
            self.state &+= 0x9E37_79B9_7F4A_7C15
            var z = self.state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ bound: Int) -> Int { Int(self.next() % UInt64(bound)) }
        mutating func pick<T>(_ items: [T]) -> T { items[self.below(items.count)] }
    }

    static func scalar(_ random: inout Random) -> JSONValue {
        random.pick([.number(-1), .number(0), .number(-0.0), .number(1), .number(2.5), .string("x"), .string("xy"), .string("y"), .bool(true), .null])
    }

    static func value(_ random: inout Random, depth: Int) -> JSONValue {
        switch random.below(depth > 1 ? 1 : 5) {
        case 3: return .array((0..<random.below(3)).map { _ in Self.scalar(&random) })
        case 4: return .object(Dictionary(uniqueKeysWithValues: ["a", "b"].map { ($0, Self.value(&random, depth: depth + 1)) }))
        default: return Self.scalar(&random)
        }
    }

    static let paths = ["payload.a", "payload.b", "payload.c.a", "payload.c.b", "payload.d.0", "event_type", "channels", "payload.e"]
    static let operators = ["$eq", "$neq", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$contains", "$startsWith"]

    static func filter(_ random: inout Random, depth: Int) -> JSONValue {
        if depth < 3, random.below(4) == 0 {
            let children = (0..<(1 + random.below(3))).map { _ in Self.filter(&random, depth: depth + 1) }
            let combinator = random.pick(["$and", "$or", "$not"])
            return .object([combinator: combinator == "$not" && random.below(2) == 0 ? children[0] : .array(children)])
        }
        var members: [String: JSONValue] = [:]
        for _ in 0..<(1 + random.below(2)) {
            let path = random.pick(Self.paths)
            let op = random.pick(Self.operators)
            let argument: JSONValue
            switch op {
            case "$gt", "$gte", "$lt", "$lte": argument = random.pick([.number(0), .number(1), .string("x"), .string("xz")])
            case "$in", "$nin": argument = .array((0..<random.below(3)).map { _ in Self.scalar(&random) })
            case "$exists": argument = .bool(random.below(2) == 0)
            case "$contains": argument = Self.scalar(&random)
            case "$startsWith": argument = random.pick([.string("x"), .string("y"), .string("")])
            default: argument = Self.scalar(&random)
            }
            members[path] = random.below(4) == 0 && op == "$eq" ? argument : .object([op: argument])
        }
        return .object(members)
    }

    @Test func agreesWithTheReferenceEvaluatorOnRandomDocuments() throws {
        var random = Random(state: 20_261_205)
        var matched = 0
        for _ in 0..<20_000 {
            let payload = JSONValue.object(
                Dictionary(
                    uniqueKeysWithValues: ["a", "b", "c", "d"].compactMap { key in random.below(5) == 0 ? nil : (key, Self.value(&random, depth: 0)) }
                ))
            let document = RoutingFilter.document(
                eventType: random.pick(["x", "xy", "order"]), tenantID: "t", channels: random.below(2) == 0 ? ["x"] : nil, payload: payload)
            let filter = Self.filter(&random, depth: 0)
            let parsed = try RoutingFilter(filter)
            let expected = Self.reference(filter, document)
            #expect(parsed.evaluate(document).matches == expected, "\(filter) on \(document)")
            if expected { matched += 1 }
        }
        // Both outcomes are well represented, so the comparison says something.
        #expect(matched > 2_000 && matched < 18_000, "\(matched) of 20000 matched")
    }

    /// The index is sound: whenever a filter with a route matches a document, the document's key on the route's path
    /// is one of the route's keys, so looking endpoints up by key never loses a match.
    @Test func aRoutedFilterIsFoundUnderTheDocumentsKeyWheneverItMatches() throws {
        var random = Random(state: 5_120_2026)
        var routed = 0
        var routedMatches = 0
        for _ in 0..<100_000 {
            let payload = JSONValue.object(
                Dictionary(
                    uniqueKeysWithValues: ["a", "b", "c", "d"].compactMap { key in random.below(5) == 0 ? nil : (key, Self.value(&random, depth: 0)) }
                ))
            let document = RoutingFilter.document(eventType: random.pick(["x", "xy", "order"]), tenantID: "t", channels: nil, payload: payload)
            let filter = try RoutingFilter(Self.filter(&random, depth: 0))
            guard let route = filter.route else { continue }
            routed += 1
            guard filter.evaluate(document).matches else { continue }
            routedMatches += 1
            let key = RoutingFilter.routeKey(route.path, in: document)
            #expect(key.map(route.keys.contains) == true, "\(filter.source) on \(document): \(String(describing: key)) not in \(route.keys)")
        }
        #expect(routed > 20_000 && routedMatches > 150, "\(routed) routed, \(routedMatches) of them matched")
    }

    @Test func theRouteIsTheNarrowestEqualityAllConditionsShare() throws {
        let filter = try RoutingFilter(
            Self.json(#"{"payload.total": {"$gt": 100}, "$and": [{"payload.region": {"$in": ["eu", "us"]}}, {"payload.currency": "EUR"}]}"#))
        #expect(filter.route?.path == "payload.currency")
        #expect(filter.route?.keys == [#"["payload.currency","EUR"]"#])
        #expect(try RoutingFilter(Self.json(#"{"$or": [{"payload.a": 1}, {"payload.a": 2}]}"#)).route == nil)
        #expect(try RoutingFilter(Self.json(#"{"payload.a": {"$gt": 1}}"#)).route == nil)
        #expect(RoutingFilter.routeKey("payload.a", .number(-0.0)) == RoutingFilter.routeKey("payload.a", .number(0)))
    }
}
