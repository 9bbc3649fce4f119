import Foundation
import TernStorage

/// Debian's `wrk` as the load generator, when it is installed (`make bench` installs it): it runs in a process of its
/// own, in C, so the generator's cost is neither the server's nor the benchmark's receiver's, and its figures can be
/// compared with other servers measured the same way.
enum Wrk {
    struct Result: Encodable, Sendable {
        var requests: Int
        /// Answers other than 2xx and 3xx (a publish refused, say): not counted as published.
        var non_2xx: Int
        var requests_per_second: Double
        /// wrk's own percentiles; `count` is the requests it timed.
        var latency_ms: Toolkit.Latency
    }

    static var executable: String? {
        ["/usr/bin/wrk", "/usr/local/bin/wrk"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs wrk against `url` for `seconds` from `connections` keep-alive connections on 2 threads: a GET, or a POST
    /// of `body` (JSON) with `key` as bearer token.
    static func run(url: String, seconds: Int, connections: Int, body: String? = nil, key: String? = nil) async throws -> Result {
        guard let executable = Self.executable else { throw ConfigurationError("wrk is not installed (apt-get install wrk)") }
        var arguments = ["-t2", "-c\(connections)", "-d\(seconds)s", "--latency", "--timeout", "10s"]
        var script: URL?
        if let body {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("tern-wrk-\(UUID().uuidString).lua")
            try Self.script(body: body, key: key).write(to: file, atomically: true, encoding: .utf8)
            arguments += ["-s", file.path]
            script = file
        }
        defer { script.map { try? FileManager.default.removeItem(at: $0) } }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments + [url]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            process.terminationHandler = { _ in continuation.resume() }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
            }
        }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        guard process.terminationStatus == 0, let result = Self.parse(text) else { throw ConfigurationError("wrk failed: \(text)") }
        return result
    }

    /// A Lua script making every request a POST of `body`.
    static func script(body: String, key: String?) -> String {
        func quoted(_ text: String) -> String {
            "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        var lines = ["wrk.method = \"POST\"", "wrk.body = \(quoted(body))", "wrk.headers[\"Content-Type\"] = \"application/json\""]
        if let key { lines.append("wrk.headers[\"Authorization\"] = \(quoted("Bearer " + key))") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Reads wrk's report: the latency line's max, the distribution's 50/90/99%, the request count and rate.
    static func parse(_ text: String) -> Result? {
        var figures = Toolkit.Latency(p50: 0, p90: 0, p99: 0, max: 0, count: 0)
        var requests: Int?
        var rate: Double?
        var non2xx = 0
        for line in text.split(separator: "\n") {
            let words = line.split(separator: " ")
            guard let first = words.first else { continue }
            switch first {
            case "Latency" where words.count >= 4: figures.max = Self.milliseconds(words[3]) ?? 0
            case "50%" where words.count >= 2: figures.p50 = Self.milliseconds(words[1]) ?? 0
            case "90%" where words.count >= 2: figures.p90 = Self.milliseconds(words[1]) ?? 0
            case "99%" where words.count >= 2: figures.p99 = Self.milliseconds(words[1]) ?? 0
            case "Requests/sec:" where words.count >= 2: rate = Double(words[1])
            case "Non-2xx" where words.count >= 5: non2xx = Int(words[4]) ?? 0
            default:
                if words.count >= 2, words[1] == "requests" { requests = Int(first) }
            }
        }
        guard let requests, let rate else { return nil }
        figures.count = requests
        return Result(requests: requests, non_2xx: non2xx, requests_per_second: rate.rounded(), latency_ms: figures)
    }

    /// `812.00us`, `2.63ms`, `1.02s`, `1.50m` in milliseconds.
    static func milliseconds(_ word: Substring) -> Double? {
        for (unit, scale) in [("us", 0.001), ("ms", 1.0), ("s", 1_000.0), ("m", 60_000.0)] where word.hasSuffix(unit) {
            guard let value = Double(word.dropLast(unit.count)) else { return nil }
            return (value * scale * 100).rounded() / 100
        }
        return nil
    }
}
