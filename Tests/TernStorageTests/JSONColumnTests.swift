import Foundation
import Testing

@testable import TernStorage

/// The hand-written encoding of string maps reads back as the same map, whatever the strings hold.
@Suite struct JSONColumnTests {
    @Test func stringMapsRoundTripThroughTheFastEncoder() throws {
        var generator = SystemRandomNumberGenerator()
        let alphabet: [Character] = ["a", "Z", "0", "\"", "\\", "/", "\n", "\r", "\t", "\u{01}", "\u{1F}", "é", "€", "😀", " ", ":", ",", "{"]
        for _ in 0..<2_000 {
            var map: [String: String] = [:]
            for _ in 0..<Int.random(in: 0...6, using: &generator) {
                let key = String((0..<Int.random(in: 0...8, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
                map[key] = String((0..<Int.random(in: 0...12, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
            }
            let text = JSONColumn.encode(map)
            #expect(try JSONDecoder().decode([String: String].self, from: Data(text.utf8)) == map, "\(text)")
        }
        #expect(JSONColumn.encode(["b": "2", "a": "x\"y"]) == #"{"a":"x\"y","b":"2"}"#)
    }

    @Test func retrySchedulesAndHeaderMapsReadBackWithOrWithoutTheDecoder() throws {
        for schedule in [[], [0], [5, 300, 1_800], [-1, 86_400]] {
            #expect(try JSONColumn.decode([Int].self, JSONColumn.encode(schedule)) == schedule)
        }
        #expect(try JSONColumn.decode([Int].self, " [ 1 , 2 ] ") == [1, 2], "spaced: through JSONDecoder")
        #expect(throws: (any Error).self) { try JSONColumn.decode([Int].self, "[1,x]") }
        #expect(try JSONColumn.decode([Int].self, nil) == nil)
        #expect(try JSONColumn.decode([String: String].self, "{}") == [:])
        #expect(try JSONColumn.decode([String: String].self, #"{"a":"b"}"#) == ["a": "b"])
    }
}
