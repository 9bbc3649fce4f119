/// A created object's fields and, this once, its secret beside them (`secret`; an API key's is `key`).
struct ShownOnce<Item: Encodable>: Encodable {
    var item: Item
    var secret: String
    var name = "secret"

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    func encode(to encoder: any Encoder) throws {
        try self.item.encode(to: encoder)
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(self.secret, forKey: Key(stringValue: self.name))
    }
}
