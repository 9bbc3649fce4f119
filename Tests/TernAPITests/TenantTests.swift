import Foundation
import TernCore
import Testing

@testable import TernTesting

/// Tenants become records: a tenant known from its endpoints or messages can be named and given metadata, shows them
/// in the list, and can be deleted with its endpoints.
@Suite struct TenantTests {
    @Test(arguments: Backend.available)
    func aTenantIsNamedListedAndDeletedWithItsEndpoints(_ backend: Backend) async throws {
        try await withTern(backend) { api in
            let (key, app) = try await api.shop()
            let base = "/v1/applications/\(app)/tenants"
            let endpoint = try #require(try await api.endpoint(key, app: app, tenant: "customer-42").string("id"))
            _ = try await api.endpoint(key, app: app, tenant: "customer-42")

            // Known from its endpoints: no name, no metadata yet.
            let implicit = try await api.get("\(base)/customer-42", key: key)
            #expect(implicit.status == 200)
            #expect(implicit["name"] is NSNull && (implicit["metadata"] as? [String: String]) == [:])
            #expect(implicit["endpoint_count"] as? Int == 2)

            let named = try await api.call(.patch, "\(base)/customer-42", key: key, json: #"{"name": "Acme Ltd", "metadata": {"plan": "gold"}}"#)
            #expect(named.status == 200)
            #expect(named.string("name") == "Acme Ltd" && (named["metadata"] as? [String: String]) == ["plan": "gold"])
            // Absent members stay; null clears the name.
            let renamed = try await api.call(.patch, "\(base)/customer-42", key: key, json: #"{"metadata": {"plan": "silver"}}"#)
            #expect(renamed.string("name") == "Acme Ltd" && (renamed["metadata"] as? [String: String]) == ["plan": "silver"])
            let cleared = try await api.call(.patch, "\(base)/customer-42", key: key, json: #"{"name": null}"#)
            #expect(cleared["name"] is NSNull && (cleared["metadata"] as? [String: String]) == ["plan": "silver"])
            _ = try await api.call(.patch, "\(base)/customer-42", key: key, json: #"{"name": "Acme Ltd"}"#)

            let list = try await api.get(base, key: key)
            let row = try #require(list.items.first { $0["tenant_id"] as? String == "customer-42" })
            #expect(row["name"] as? String == "Acme Ltd" && (row["metadata"] as? [String: String]) == ["plan": "silver"])

            // Bad input is 422 and changes nothing.
            let bad = try await api.call(.patch, "\(base)/customer-42", key: key, json: #"{"name": "  ", "metadata": {"n": 1}}"#)
            #expect(bad.status == 422)
            #expect(try await api.get("\(base)/customer-42", key: key).string("name") == "Acme Ltd")

            // A tenant known only from a message exists too; one nobody has named is 404.
            _ = try await api.publish(key, app: app, tenant: "customer-7")
            #expect(try await api.get("\(base)/customer-7", key: key)["endpoint_count"] as? Int == 0)
            #expect(try await api.get("\(base)/nobody", key: key).status == 404)
            #expect(try await api.call(.delete, "\(base)/nobody", key: key).status == 404)

            #expect(try await api.call(.delete, "\(base)/customer-42", key: key).status == 204)
            #expect(try await api.get("/v1/applications/\(app)/endpoints/\(endpoint)", key: key).status == 404)
            #expect(try await api.get("\(base)/customer-42", key: key).status == 404)
            let audit = try await api.get("/v1/audit-entries?entity_id=customer-42", key: key)
            #expect(Set(audit.items.compactMap { $0["action"] as? String }) == ["tenant.updated", "tenant.deleted"])
        }
    }
}
