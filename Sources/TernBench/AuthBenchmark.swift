import Foundation
import Logging
import TernCore
import TernHTTP
import TernStorage

/// Measures what authentication costs: a key's first verification (argon2id plus a key lookup) against a
/// verification served by the warm cache. Used by `tern bench auth`; prints one JSON object.
public enum AuthBenchmark {
    public struct Result: Encodable, Sendable {
        var database: String
        var firstVerificationMSMedian: Double
        var warmCacheVerificationUSMean: Double
        var keys: Int
        var warmIterations: Int

        enum CodingKeys: String, CodingKey {
            case database, keys
            case firstVerificationMSMedian = "first_verification_ms_median"
            case warmCacheVerificationUSMean = "warm_cache_verification_us_mean"
            case warmIterations = "warm_iterations"
        }
    }

    public static func run(resources: URL, databaseURL: String?, keys: Int, warmIterations: Int) async throws -> Result {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tern-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let location = try DatabaseLocation(url: databaseURL ?? "sqlite://\(directory.path)/bench.sqlite")
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let database = try await Database.open(location, logger: logger)
        let migrator = try Migrator(directory: resources.appendingPathComponent("Migrations"))
        return try await database.whileRunning { [logger] in
            try await migrator.migrate(database, logger: logger)
            let store = Store(database: database, secretBox: SecretBox(keyBase64: SecretBox.generateKeyBase64())!)
            let organization = try await store.createOrganization(name: "bench", plan: "free")
            var firsts: [Double] = []
            var warmMean = 0.0
            for round in 0..<keys {
                let issued = try await store.issueAPIKey(organizationID: organization.id, name: "bench", scopes: ["*"], applicationID: nil)
                let authenticator = Authenticator(store: store, adminKey: nil, logger: logger)
                let start = ContinuousClock.now
                _ = try await authenticator.authenticate(issued.token)
                firsts.append(Self.milliseconds(ContinuousClock.now - start))
                guard round == keys - 1 else { continue }
                let warmStart = ContinuousClock.now
                for _ in 0..<warmIterations { _ = try await authenticator.authenticate(issued.token) }
                warmMean = Self.milliseconds(ContinuousClock.now - warmStart) * 1000 / Double(warmIterations)
            }
            return Result(
                database: location.kind.rawValue, firstVerificationMSMedian: Self.median(firsts),
                warmCacheVerificationUSMean: (warmMean * 100).rounded() / 100, keys: keys, warmIterations: warmIterations
            )
        }
    }

    static func milliseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.isEmpty ? 0 : (sorted[sorted.count / 2] * 100).rounded() / 100
    }
}
