import Hummingbird
import TernCore
import TernStorage

extension Request {
    /// `?limit=&cursor=` as a page request; bad values are 422.
    func pageRequest() throws -> PageRequest {
        try PageRequest(limit: self.uri.queryParameters.get("limit"), cursor: self.uri.queryParameters.get("cursor"))
    }
}

extension Bool {
    /// A boolean query parameter: `true` or `false`, nil when absent, 422 otherwise.
    static func query(_ value: String?, _ field: String) throws -> Bool? {
        switch value {
        case nil: return nil
        case "true": return true
        case "false": return false
        default: throw TernError.invalid(field, "must be 'true' or 'false'")
        }
    }
}

extension RawRepresentable where Self: CaseIterable, RawValue == String {
    /// The one parser for enum query parameters: nil when absent, 422 naming the allowed values when unknown.
    static func query(_ value: String?, _ field: String) throws -> Self? {
        guard let value else { return nil }
        guard let parsed = Self(rawValue: value) else {
            let allowed = Self.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ")
            throw TernError.invalid(field, "must be one of \(allowed)")
        }
        return parsed
    }
}
