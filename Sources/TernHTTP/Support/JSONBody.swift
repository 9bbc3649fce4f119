import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import TernCore

/// A decoded JSON request body, with its top-level members so that handlers can tell an absent field from `null`.
struct JSONBody<Value: Decodable & Sendable>: Sendable {
    var value: Value
    /// The body as received, with where each top-level member lies.
    var envelope: JSONEnvelope

    /// True when the body names `key` (with any value, `null` included).
    func has(_ key: String) -> Bool { self.envelope.has(key) }

    /// True when the body sets `key` to `null`.
    func isNull(_ key: String) -> Bool { self.envelope.isNull(key) }

    /// A member's value, built (only when asked for).
    func member(_ key: String) -> JSONValue? {
        self.envelope.text(key).flatMap { try? JSONDecoder().decode(JSONValue.self, from: Data($0.utf8)) }
    }
}

/// The largest request body the management API reads.
let maxManagementBodyBytes = 1 << 20

extension Request {
    /// Reads a JSON object body: 415 when it is not JSON, 413 when over `limit`, 400 when malformed,
    /// 422 (with the field) when a member has the wrong type or a required one is missing.
    mutating func decodeJSON<Value: Decodable & Sendable>(_ type: Value.Type, limit: Int = maxManagementBodyBytes) async throws -> JSONBody<Value> {
        try Self.decode(type, from: try await self.jsonEnvelope(limit: limit))
    }

    /// Reads a JSON object body in one pass, without decoding it (415, 413 and 400 as `decodeJSON`).
    mutating func jsonEnvelope(limit: Int = maxManagementBodyBytes) async throws -> JSONEnvelope {
        let contentType = self.headers[.contentType]?.lowercased() ?? ""
        let mediaType = contentType.split(separator: ";").first.map { $0.trimmingHTTPWhitespace() } ?? ""
        guard mediaType == "application/json" || (mediaType.hasPrefix("application/") && mediaType.hasSuffix("+json")) else {
            throw TernError.unsupportedMediaType(
                contentType.isEmpty ? "Send a JSON body with 'Content-Type: application/json'." : "Expected application/json, got '\(contentType)'."
            )
        }
        if let length = self.headers[.contentLength].flatMap(Int.init), length > limit {
            throw TernError.payloadTooLarge(limit: limit)
        }
        let buffer: ByteBuffer
        do {
            buffer = try await self.collectBody(upTo: limit)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw TernError.payloadTooLarge(limit: limit)
        }
        guard buffer.readableBytes > 0 else { throw TernError.malformed("The request body is empty; send a JSON object.") }
        return try JSONEnvelope(Array(buffer.readableBytesView))
    }

    /// Like `decodeJSON`, but an empty body (with or without a content type) reads as `{}`: for actions whose
    /// fields are all optional.
    mutating func decodeOptionalJSON<Value: Decodable & Sendable>(_ type: Value.Type) async throws -> JSONBody<Value> {
        let buffer: ByteBuffer
        do {
            buffer = try await self.collectBody(upTo: maxManagementBodyBytes)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw TernError.payloadTooLarge(limit: maxManagementBodyBytes)
        }
        if buffer.readableBytes == 0 { return try Self.decode(type, from: try JSONEnvelope(Array("{}".utf8))) }
        self.body = .init(buffer: buffer)
        return try await self.decodeJSON(type)
    }

    static func decode<Value: Decodable & Sendable>(_ type: Value.Type, from envelope: JSONEnvelope) throws -> JSONBody<Value> {
        do {
            return JSONBody(value: try JSONDecoder().decode(Value.self, from: Data(envelope.bytes)), envelope: envelope)
        } catch let error as DecodingError {
            throw Self.fieldError(error)
        }
    }

    static func fieldError(_ error: DecodingError) -> TernError {
        func path(_ codingPath: [any CodingKey], _ last: (any CodingKey)? = nil) -> String {
            var text = ""
            for key in codingPath + (last.map { [$0] } ?? []) {
                if let index = key.intValue {
                    text += "[\(index)]"
                } else {
                    text += text.isEmpty ? key.stringValue : ".\(key.stringValue)"
                }
            }
            return text.isEmpty ? "body" : text
        }
        switch error {
        case .keyNotFound(let key, let context):
            return .invalid(path(context.codingPath, key), "is required")
        case .valueNotFound(_, let context):
            return .invalid(path(context.codingPath), "must not be null")
        case .typeMismatch(let expected, let context):
            return .invalid(path(context.codingPath), "must be \(Self.describe(expected))")
        case .dataCorrupted(let context):
            return .invalid(path(context.codingPath), context.debugDescription.isEmpty ? "is invalid" : context.debugDescription)
        @unknown default:
            return .invalid("body", "is invalid")
        }
    }

    static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type, is Int64.Type: return "a whole number"
        case is Double.Type: return "a number"
        case is Bool.Type: return "true or false"
        case is [Any].Type: return "an array"
        default:
            let name = String(describing: type)
            if name.hasPrefix("Array") { return "an array" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return "a valid \(name)"
        }
    }
}

/// Unknown enum values say which values are allowed.
extension RawRepresentable where Self: CaseIterable, RawValue == String {
    static func decodeStrictly(from decoder: any Decoder) throws -> Self {
        let container = try decoder.singleValueContainer()
        let raw = try container.decode(String.self)
        guard let value = Self(rawValue: raw) else {
            let allowed = Self.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ")
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "must be one of \(allowed)")
        }
        return value
    }
}

/// JSON responses.
enum JSONResponse {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    static func make<Value: Encodable>(_ value: Value, status: HTTPResponse.Status = .ok) throws -> Response {
        Self.raw(ByteBuffer(bytes: try Self.encoder.encode(value)), status: status, contentType: "application/json")
    }

    /// 201 with the created object; its id goes to the audit log in a header that the audit middleware removes.
    static func created<Value: Encodable>(_ value: Value, id: String) throws -> Response {
        var response = try Self.make(value, status: .created)
        response.headers[.entityID] = id
        return response
    }

    static func raw(_ body: ByteBuffer, status: HTTPResponse.Status, contentType: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        headers[.contentLength] = String(body.readableBytes)
        return Response(status: status, headers: headers, body: .init(byteBuffer: body))
    }

    static func noContent() -> Response {
        Response(status: .noContent)
    }
}
