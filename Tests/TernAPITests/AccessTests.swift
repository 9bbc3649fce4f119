import Foundation
import HTTPTypes
import Hummingbird
import Logging
import SQLKit
import TernCore
import TernHTTP
import TernStorage
import Testing

@testable import TernTesting

@Suite struct PlanLimitTests {
    @Test(arguments: Backend.available)
    func theTenthEndpointFitsTheFreePlanAndTheEleventhIsRefused(_ backend: Backend) async throws {
        try await withTern(backend) { api in
            let (orgID, key) = try await api.organization()
            let app = try await api.application(key)
            for index in 1...10 {
                #expect(try await api.endpoint(key, app: app, tenant: "t\(index)").status == 201)
            }
            let eleventh = try await api.endpoint(key, app: app, tenant: "t11")
            #expect(eleventh.status == 403)
            #expect(eleventh.problemType.hasSuffix("plan-limit-exceeded"))
            #expect(try await api.get("/v1/applications/\(app)/endpoints?limit=250", key: key).items.count == 10)
            // Moving to a bigger plan lifts the limit; a smaller one blocks new objects and deletes nothing.
            #expect(try await api.call(.patch, "/v1/admin/organizations/\(orgID)", key: testAdminKey, json: #"{"plan": "starter"}"#).status == 200)
            #expect(try await api.endpoint(key, app: app, tenant: "t11").status == 201)
            #expect(try await api.call(.patch, "/v1/admin/organizations/\(orgID)", key: testAdminKey, json: #"{"plan": "free"}"#).status == 200)
            #expect(try await api.endpoint(key, app: app, tenant: "t12").status == 403)
            #expect(try await api.get("/v1/applications/\(app)/endpoints?limit=250", key: key).items.count == 11)
        }
    }

    @Test(arguments: Backend.available)
    func applicationsAreLimitedByPlanToo(_ backend: Backend) async throws {
        try await withTern(backend) { api in
            let (_, key) = try await api.organization()
            for index in 1...3 { _ = try await api.application(key, name: "a\(index)") }
            let fourth = try await api.post("/v1/applications", key: key, #"{"name": "a4"}"#)
            #expect(fourth.status == 403)
            #expect(fourth.problemType.hasSuffix("plan-limit-exceeded"))
        }
    }

    @Test(arguments: Backend.available)
    func requestsRacingForTheLastSlotCreateExactlyOne(_ backend: Backend) async throws {
        try await withTern(backend) { api in
            let plan = try await api.call(
                .put, "/v1/admin/plans/tiny", key: testAdminKey, json: #"{"name": "Tiny", "max_endpoints": 3, "max_applications": 1}"#)
            #expect(plan.status == 201)
            let (_, key) = try await api.organization(plan: "tiny")
            let app = try await api.application(key)
            _ = try await api.endpoint(key, app: app, tenant: "first")
            _ = try await api.endpoint(key, app: app, tenant: "second")
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<12 {
                    group.addTask { try await api.endpoint(key, app: app, tenant: "racer-\(index)").status }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == 201 }.count == 1)
            #expect(statuses.filter { $0 == 403 }.count == 11)
            #expect(try await api.get("/v1/applications/\(app)/endpoints", key: key).items.count == 3)
        }
    }

    @Test(arguments: Backend.available)
    func plansAreListedAndChangedByTheOperator(_ backend: Backend) async throws {
        try await withTern(backend) { api in
            let plans = try await api.get("/v1/admin/plans", key: testAdminKey)
            let byID = Dictionary(uniqueKeysWithValues: plans.items.map { ($0["id"] as! String, $0) })
            #expect(byID["free"]?["max_endpoints"] as? Int == 10)
            #expect(byID["starter"]?["max_endpoints"] as? Int == 100)
            #expect(byID["pro"]?["max_endpoints"] as? Int == 1000)
            #expect(byID["scale"]?["max_endpoints"] as? Int == 10000)
            #expect(byID["enterprise"]?["max_endpoints"] is NSNull)
            let changed = try await api.call(
                .put, "/v1/admin/plans/free", key: testAdminKey, json: #"{"max_endpoints": 2, "max_messages_per_month": null}"#)
            #expect(changed.status == 200)
            #expect(changed["max_endpoints"] as? Int == 2)
            #expect(changed["max_messages_per_month"] is NSNull)
            #expect(changed["max_applications"] as? Int == 3)
            let invalid = try await api.call(.put, "/v1/admin/plans/free", key: testAdminKey, json: #"{"max_endpoints": -1}"#)
            #expect(invalid.status == 422)
        }
    }
}

@Suite struct AuthTests {
    @Test(arguments: Backend.available)
    func keysNeedTheScopeForEachRoute(_ backend: Backend) async throws {
        try await withTern(backend) { api in
            let (orgID, key) = try await api.organization()
            let app = try await api.application(key)
            let reader = try await api.createKey(orgID: orgID, scopes: #"["read:applications", "read:endpoints"]"#)
            #expect(try await api.get("/v1/applications/\(app)", key: reader).status == 200)
            #expect(try await api.get("/v1/applications/\(app)/endpoints", key: reader).status == 200)
            #expect(try await api.post("/v1/applications", key: reader, #"{"name": "x"}"#).status == 403)
            #expect(try await api.endpoint(reader, app: app).status == 403)
            #expect(try await api.get("/v1/applications/\(app)/event-types", key: reader).status == 403)
            #expect(try await api.get("/v1/api-keys", key: reader).status == 403)
            let badScope = try await api.post("/v1/admin/organizations/\(orgID)/api-keys", key: testAdminKey, #"{"name": "k", "scopes": ["root"]}"#)
            #expect(badScope.status == 422)
            // A key cannot mint a key stronger than itself.
            let keyAdmin = try await api.createKey(orgID: orgID, scopes: #"["write:api_keys"]"#)
            #expect(try await api.post("/v1/api-keys", key: keyAdmin, #"{"name": "escalate"}"#).status == 403)
            #expect(try await api.post("/v1/api-keys", key: keyAdmin, #"{"name": "ok", "scopes": ["read:api_keys"]}"#).status == 201)
        }
    }

    @Test(arguments: Backend.available)
    func missingWrongAndForeignKeysAreRefused(_ backend: Backend) async throws {
        try await withTern(backend) { api in
            let (_, key) = try await api.organization()
            #expect(try await api.get("/v1/applications", key: nil).status == 401)
            #expect(
                try await api.get("/v1/applications", key: "tern_key_01m85kc8g1vxt7zk8c3xn62s9y_" + String(repeating: "A", count: 43)).status == 401)
            #expect(try await api.get("/v1/applications", key: String(key.dropLast()) + "x").status == 401)
            #expect(try await api.call(.get, "/v1/applications", headers: ["Authorization": "Basic abc"]).status == 401)
            #expect(try await api.get("/v1/admin/organizations", key: key).status == 403)
            #expect(try await api.get("/v1/applications", key: testAdminKey).status == 403)
        }
    }

    @Test(arguments: Backend.available)
    func revokingAKeyTakesEffectAtOnce(_ backend: Backend) async throws {
        try await withTern(backend) { api in
            let (orgID, key) = try await api.organization()
            let second = try await api.createKey(orgID: orgID)
            #expect(try await api.get("/v1/applications", key: second).status == 200)
            #expect(try await api.get("/v1/applications", key: second).status == 200)
            let listed = try await api.get("/v1/api-keys", key: key)
            #expect(!listed.text.contains(String(second.suffix(40))), "listings never show a secret")
            let secondID = try #require(listed.items.compactMap { $0["id"] as? String }.first { second.contains($0) })
            #expect(try await api.call(.delete, "/v1/api-keys/\(secondID)", key: key).status == 204)
            #expect(try await api.get("/v1/applications", key: second).status == 401)
            #expect(try await api.get("/v1/applications", key: key).status == 200)
        }
    }

    @Test(arguments: Backend.available)
    func aKeyRevokedOnAnotherNodeStopsWorkingAfterTheRecheckInterval(_ backend: Backend) async throws {
        let url = try await backend.freshDatabaseURL()
        let database = try await Database.forTest(url)
        try await database.whileRunning {
            try await Migrator(directory: repositoryRoot.appendingPathComponent("Migrations")).migrate(database, logger: Logger(label: "test"))
            let store = Store(database: database, secretBox: SecretBox(keyBase64: testEncryptionKey)!)
            let organization = try await store.createOrganization(name: "Acme", plan: "free")
            let issued = try await store.issueAPIKey(organizationID: organization.id, name: "k", scopes: ["*"], applicationID: nil)
            let (key, token) = (issued.key, issued.token)
            let nodeA = Authenticator(store: store, adminKey: nil, recheckInterval: .milliseconds(200), logger: Logger(label: "a"))
            let nodeB = Authenticator(store: store, adminKey: nil, recheckInterval: .milliseconds(200), logger: Logger(label: "b"))
            _ = try await nodeA.authenticate(token)
            _ = try await nodeB.authenticate(token)
            try await store.revokeAPIKey(organizationID: organization.id, keyID: key.id)
            nodeA.evict(keyID: key.id)
            await #expect(throws: TernError.self) { try await nodeA.authenticate(token) }
            try await Task.sleep(for: .milliseconds(300))
            await #expect(throws: TernError.self) { try await nodeB.authenticate(token) }
            // last_used_at is written in batches, not per request.
            await nodeA.flushLastUsed()
            #expect(try await store.storedKey(key.id)?.key.lastUsedAt != nil)
        }
    }

    @Test(arguments: Backend.available)
    func keysAreStoredAsArgon2idHashesAndSecretsEncrypted(_ backend: Backend) async throws {
        try await withTern(backend) { api in
            let (_, key) = try await api.organization()
            let app = try await api.application(key)
            let secret = try #require(try await api.endpoint(key, app: app).string("secret"))
            let database = try await Database.forTest(api.databaseURL)
            try await database.whileRunning {
                let hashes = try await database.read { sql in
                    try await sql.raw("SELECT secret_hash FROM api_keys").all().map { try $0.decode(column: "secret_hash", as: String.self) }
                }
                #expect(!hashes.isEmpty && hashes.allSatisfy { $0.hasPrefix("$argon2id$") })
                let stored = try await database.read { sql in
                    try await sql.raw("SELECT secret FROM endpoints").all().map { try $0.decode(column: "secret", as: String.self) }
                }
                #expect(stored.count == 1 && stored[0].hasPrefix("v1:") && !stored[0].contains(String(secret.dropFirst(6))))
            }
            if case .sqliteFile(let path) = try DatabaseLocation(url: api.databaseURL) {
                var bytes = (try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data()
                bytes += (try? Data(contentsOf: URL(fileURLWithPath: path + "-wal"))) ?? Data()
                #expect(bytes.range(of: Data(String(secret.dropFirst(6)).utf8)) == nil)
                #expect(bytes.range(of: Data(String(key.suffix(43)).utf8)) == nil)
            }
        }
    }

    @Test(arguments: Backend.available)
    func aKeyRestrictedToOneApplicationSeesOnlyThatApplication(_ backend: Backend) async throws {
        try await withTern(backend) { api in
            let (orgID, key) = try await api.organization()
            let mine = try await api.application(key, name: "mine")
            let other = try await api.application(key, name: "other")
            let restricted = try await api.createKey(orgID: orgID, applicationID: mine)
            #expect(try await api.get("/v1/applications/\(mine)", key: restricted).status == 200)
            #expect(try await api.get("/v1/applications/\(other)", key: restricted).status == 404)
            #expect(try await api.get("/v1/applications/\(other)/endpoints", key: restricted).status == 404)
            #expect(try await api.endpoint(restricted, app: other).status == 404)
            #expect(try await api.get("/v1/applications", key: restricted).items.compactMap { $0["id"] as? String } == [mine])
            #expect(try await api.post("/v1/applications", key: restricted, #"{"name": "x"}"#).status == 403)
        }
    }
}
