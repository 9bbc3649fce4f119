import Foundation
import SQLKit
import TernCore
import Testing

@testable import TernTesting

/// `tern backup` copies a running SQLite database while events are being published, and `tern restore` puts the copy
/// in place: a server started on it delivers every message the copy holds that was still waiting.
@Suite struct BackupTests {
    @Test func aBackupTakenUnderPublishLoadRestoresToAServerThatDeliversWhatWasPending() async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        let source = try await Backend.sqlite.freshDatabaseURL()
        let directory = URL(fileURLWithPath: String(source.dropFirst("sqlite://".count))).deletingLastPathComponent()
        let backup = directory.appendingPathComponent("backup.sqlite").path
        let restored = "sqlite://\(directory.path)/restored/tern.sqlite"
        let environment = ["TERN_ENCRYPTION_KEY=\(testEncryptionKey)", "TERN_RESOURCES_DIR=\(repositoryRoot.path)"]
        let tern = WorkerProcess.executable.path
        try await withTern(.sqlite, databaseURL: source) { api in
            let (key, app) = try await api.shop()
            // Paused while the backup is taken: every delivery is pending when it is copied.
            _ = try await api.endpoint(key, app: app, url: receiver.url("/hook"), extra: #", "status": "paused""#)
            for index in 0..<50 { _ = try await api.publish(key, app: app, payload: #"{"n": \#(index)}"#) }
            // More publishes while the backup runs.
            let load = Task {
                for index in 50..<250 { _ = try await api.publish(key, app: app, payload: #"{"n": \#(index)}"#) }
            }
            let (status, output) = try await runProgram("env", environment + ["TERN_DATABASE_URL=\(source)", tern, "backup", backup])
            #expect(status == 0 && output.contains("Backed up to \(backup)"), "\(output)")
            try await load.value
            let again = try await runProgram("env", environment + ["TERN_DATABASE_URL=\(source)", tern, "backup", backup])
            #expect(again.0 == 2 && again.1.contains("already exists"), "\(again.1)")
        }
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("restored"), withIntermediateDirectories: true)
        let (status, output) = try await runProgram("env", environment + ["TERN_DATABASE_URL=\(restored)", tern, "restore", backup])
        #expect(status == 0 && output.contains("Restored"), "\(output)")

        try await withTern(.sqlite, databaseURL: restored) { api in
            let copied = try await api.withStore { store in
                try await store.database.read { sql in
                    try await sql.raw("SELECT COUNT(*) AS n FROM messages").first()?.decode(column: "n", as: Int.self) ?? 0
                }
            }
            // At least what was published before the backup began; what came during it, if its commit came first.
            #expect(copied >= 50 && copied <= 250, "\(copied) messages in the copy")
            // The restored server resumes the endpoint and sends what waited.
            try await api.withStore { store in
                let endpoints = try await store.database.read { sql in
                    try await sql.raw("SELECT id, organization_id, application_id FROM endpoints").all()
                }
                for row in endpoints {
                    _ = try await store.updateEndpoint(
                        organizationID: try row.decode(column: "organization_id", as: String.self),
                        applicationID: try row.decode(column: "application_id", as: String.self), id: try row.decode(column: "id", as: String.self)
                    ) { $0.status = .active }
                }
            }
            @Sendable func deliveredCount() async throws -> Int {
                try await api.withStore { store in
                    try await store.database.read { sql in
                        try await sql.raw("SELECT COUNT(*) AS n FROM deliveries WHERE status = 'delivered'").first()?.decode(
                            column: "n", as: Int.self)
                            ?? 0
                    }
                }
            }
            // An attempt is recorded after its receiver answers: wait for the records, not only the receipts.
            _ = await eventually(timeout: .seconds(60)) {
                guard Set(receiver.received.filter { $0.header("webhook-signature") != nil }.map(\.messageID)).count >= copied else { return false }
                return ((try? await deliveredCount()) ?? 0) >= copied
            }
            let delivered = try await deliveredCount()
            print("BACKUP: \(copied) messages in the copy, \(delivered) delivered after the restore")
            #expect(delivered == copied, "\(delivered) of \(copied) delivered")
        }
    }
}
