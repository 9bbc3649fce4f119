import SQLKit
import Testing

@testable import TernStorage
@testable import TernTesting

/// Rows sent as one JSON value read back as sent, on both databases: text with quotes, backslashes, control
/// characters and non-ASCII letters, nulls, and integers past 2^53 (an ordering sequence is microseconds × 1024).
@Suite struct JSONRowsTests {
    @Test(arguments: Backend.available)
    func rowsReadBackAsSent(_ backend: Backend) async throws {
        try await backend.withFreshDatabase { database in
            let sent: [(String?, Int64?)] = [
                ("plain", 1), (#"quote " and \ backslash"#, nil), ("line\nbreak\ttab\u{1}", -7), ("Grüße, 日本", 1_790_000_000_000_000_000),
                (nil, 0),
            ]
            var built = JSONRows()
            for (index, (text, number)) in sent.enumerated() { built.append(.integer(Int64(index)), .text(text), .integer(number)) }
            let rows = built
            let read = try await database.read { sql in
                try await sql.raw(
                    "SELECT x.n, x.t, x.i FROM \(Database.jsonRows(rows, columns: [("n", "BIGINT"), ("t", "TEXT"), ("i", "BIGINT")], as: "x", sql)) ORDER BY x.n"
                ).all().map { (try $0.decode(column: "t", as: String?.self), try $0.decode(column: "i", as: Int64?.self)) }
            }
            #expect(read.count == sent.count)
            for (got, expected) in zip(read, sent) {
                #expect(got.0 == expected.0)
                #expect(got.1 == expected.1)
            }
        }
    }
}
