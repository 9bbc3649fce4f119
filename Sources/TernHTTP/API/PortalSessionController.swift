import Foundation
import HTTPTypes
import Hummingbird
import TernCore
import TernStorage

/// `POST /v1/applications/{app_id}/portal-sessions`: a signed, short-lived link into the portal for one
/// application and tenant.
struct PortalSessionController {
    let store: Store
    let signer: SessionSigner
    let publicBaseURL: String

    func addRoutes(to group: RouterGroup<ApplicationContext>) {
        group.post("portal-sessions", use: self.create)
    }

    struct Body: Decodable, Sendable {
        var tenant_id: String?
        var expires_in_seconds: Int?
    }

    struct Created: Encodable {
        var url: String
        var token: String
        var expires_at: Timestamp
    }

    @Sendable func create(_ request: Request, context: ApplicationContext) async throws -> Response {
        try context.require(.write, "endpoints")
        let applicationID = context.applicationID
        var request = request
        let body = try await request.decodeJSON(Body.self).value
        var validator = Validator()
        validator.tenantID(body.tenant_id)
        if let seconds = body.expires_in_seconds, !(1...86_400).contains(seconds) {
            validator.fail("expires_in_seconds", "must be between 1 and 86400")
        }
        try validator.check()
        _ = try await self.store.application(organizationID: context.organizationID, id: applicationID)
        let expires = Timestamp.now().adding(seconds: Int64(body.expires_in_seconds ?? 3_600))
        let token = self.signer.sign(
            SessionClaims(
                kind: "portal", organizationID: context.organizationID, applicationID: applicationID, tenantID: body.tenant_id!,
                expires: expires.microseconds / 1_000_000
            ))
        let url = "\(self.publicBaseURL)/portal?token=\(token)"
        return try JSONResponse.make(Created(url: url, token: token, expires_at: expires), status: .created)
    }
}
