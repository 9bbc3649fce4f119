import Foundation
import Testing

@testable import TernTesting

/// A SQLite database on a small disk of its own (a 4 MB tmpfs, mounted when the tests run as root): when the disk
/// fills, publishes answer 503 and `/health` says the database refuses writes; once space is back, health recovers
/// by itself and publishing works again.
@Suite struct FullDiskTests {
    /// Whether this process may mount a tmpfs (root, with the capability): tried once on a scratch directory.
    static let canMount: Bool = {
        guard getuid() == 0 else { return false }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tern-mount-probe-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        guard Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", directory]) == 0 else { return false }
        return Self.run("/bin/umount", [directory]) == 0
    }()

    static func run(_ program: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }

    @Test(.enabled(if: FullDiskTests.canMount, "needs root and permission to mount a tmpfs"))
    func aFullDiskDegradesHealthAndItRecoversWhenSpaceIsBack() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tern-full-disk-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try #require(Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", directory]) == 0)
        defer {
            _ = Self.run("/bin/umount", ["-l", directory])
            try? FileManager.default.removeItem(atPath: directory)
        }
        try await withTern(.sqlite, databaseURL: "sqlite://\(directory)/tern.sqlite") { api in
            let (key, app) = try await api.shop()
            // Healthy before the disk fills (read until so: a loaded machine can pass the write check's 2-second limit).
            #expect(await eventually { (try? await api.get("/health", key: nil).status) == 200 })
            // Fill the disk with a file of zeros until it refuses more.
            let filler = "\(directory)/filler"
            FileManager.default.createFile(atPath: filler, contents: nil)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: filler))
            let chunk = Data(count: 64 * 1024)
            while (try? handle.write(contentsOf: chunk)) != nil {}
            try? handle.close()
            var refused = 0
            for index in 0..<40 {
                let reply = try await api.publish(key, app: app, payload: #"{"n": \#(index), "pad": "\#(String(repeating: "x", count: 4_000))"}"#)
                if reply.status == 503 { refused += 1 }
            }
            #expect(refused > 0, "the full disk refused no publish")
            try await Task.sleep(for: .milliseconds(1_100))
            let degraded = try await api.get("/health", key: nil)
            let writes = (degraded["checks"] as? [String: [String: Any]])?["database_writes"]
            #expect(
                degraded.status == 503 && writes?["status"] as? String == "error" && writes?["error"] as? String == "refuses writes",
                "\(degraded.text)")

            try FileManager.default.removeItem(atPath: filler)
            let recovered = await eventually(timeout: .seconds(10)) { (try? await api.get("/health", key: nil).status) == 200 }
            #expect(recovered, "health did not recover once space was back")
            #expect(try await api.publish(key, app: app, payload: #"{"after": true}"#).status == 202)
        }
    }
}
