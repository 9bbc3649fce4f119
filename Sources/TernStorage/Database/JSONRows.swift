import SQLKit
import TernCore

/// A table's rows as one JSON array of arrays, for a statement to read with `Database.jsonRows` in one bind.
struct JSONRows: Sendable {
    enum Cell {
        case text(String?)
        case integer(Int64?)

        /// The value bound on its own, for a statement that writes it without `jsonRows`.
        var value: any Encodable & Sendable {
            switch self {
            case .text(let value): value
            case .integer(let value): value
            }
        }
    }

    private(set) var text = "["
    private(set) var count = 0

    init(reservingRows rows: Int = 0, bytesEach: Int = 0) {
        self.text.reserveCapacity(rows * bytesEach + 2)
    }

    mutating func append(_ cells: Cell...) {
        self.append(cells)
    }

    mutating func append(_ cells: [Cell]) {
        self.text += self.count == 0 ? "[" : ",["
        for (index, cell) in cells.enumerated() {
            if index > 0 { self.text += "," }
            switch cell {
            case .text(let value?): JSONText.appendString(value, to: &self.text)
            case .integer(let value?): self.text += String(value)
            case .text(nil), .integer(nil): self.text += "null"
            }
        }
        self.text += "]"
        self.count += 1
    }

    /// The array, closed.
    var json: String { self.text + "]" }
}
