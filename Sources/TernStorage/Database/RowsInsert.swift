import SQLKit
import Synchronization

/// `INSERT INTO table (columns) VALUES (…), (…)`: the text SQLKit's insert makes, made once per dialect and row count
/// and kept by the table's `Shape`, instead of at every run (building it took 1.8% of the server's CPU on SQLite,
/// `docs/benchmarks.md`, items 39 and 45). The values are bound as SQLKit's insert binds them. The text follows
/// whatever text comes before it (a PostgreSQL batch's `WITH w0 AS (`, item 45) as long as no value is bound before
/// it, so that its placeholders are numbered from the first; after bound values (a later part of such a WITH), or for
/// more than `keptRows` rows, the text is made at the run as before.
struct RowsInsert: SQLExpression {
    /// Texts are kept for up to this many rows (a batch's); larger inserts are rare and their texts long.
    static let keptRows = 64

    /// A table and the columns its rows fill, with the texts made for it.
    final class Shape: Sendable {
        let table: String
        let columns: [String]
        private let texts = Mutex<[TextKey: String]>([:])

        private struct TextKey: Hashable {
            var dialect: String
            var rows: Int
        }

        init(table: String, columns: [String]) {
            self.table = table
            self.columns = columns
        }

        /// The statement as SQLKit's insert builds it.
        func built(_ values: [any Encodable & Sendable], _ database: any SQLDatabase) -> SQLInsert {
            var insert = SQLInsert(table: SQLIdentifier(self.table))
            insert.columns = self.columns.map { SQLIdentifier($0) }
            insert.values = stride(from: 0, to: values.count, by: self.columns.count).map { start in
                values[start..<(start + self.columns.count)].map { SQLBind($0) }
            }
            return insert
        }

        /// How many texts are kept (for tests).
        var keptTexts: Int { self.texts.withLock(\.count) }

        /// The text for `rows` rows in the serializer's dialect, made on first use.
        fileprivate func text(rows: Int, _ values: [any Encodable & Sendable], _ serializer: SQLSerializer) -> String {
            let key = TextKey(dialect: serializer.dialect.name, rows: rows)
            if let text = self.texts.withLock({ $0[key] }) { return text }
            var scratch = SQLSerializer(database: serializer.database)
            self.built(values, serializer.database).serialize(to: &scratch)
            self.texts.withLock { $0[key] = scratch.sql }
            return scratch.sql
        }
    }

    let shape: Shape
    /// The rows' values one after the other, `shape.columns.count` to a row.
    let values: [any Encodable & Sendable]

    init(_ shape: Shape, values: [any Encodable & Sendable]) {
        precondition(!values.isEmpty && values.count % shape.columns.count == 0, "whole rows of \(shape.table)")
        self.shape = shape
        self.values = values
    }

    func serialize(to serializer: inout SQLSerializer) {
        let rows = self.values.count / self.shape.columns.count
        guard serializer.binds.isEmpty, rows <= Self.keptRows else {
            self.shape.built(self.values, serializer.database).serialize(to: &serializer)
            return
        }
        serializer.write(self.shape.text(rows: rows, self.values, serializer))
        serializer.binds = self.values
    }
}
