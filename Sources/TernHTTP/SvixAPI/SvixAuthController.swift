import Hummingbird
import TernCore
import TernStorage

/// `POST /api/v1/auth/app-portal-access/{app_id}`: a link into Tern's portal for the tenant, valid for `expiry`
/// seconds (default 7 days).
struct SvixAuthController {
    let store: Store
    let signer: SessionSigner
    let publicBaseURL: String

    func addRoutes(to group: RouterGroup<SvixContext>) {
        group.post("auth/app-portal-access/:app_id", use: self.appPortalAccess)
    }

    struct Body: Decodable, Sendable {
        var application: SvixApplicationController.Body?
        var expiry: Int?
        var featureFlags: [String]?
    }

    @Sendable func appPortalAccess(_ request: Request, context: SvixContext) async throws -> Response {
        try context.require(.write, "endpoints")
        var request = request
        let body = try await request.decodeOptionalJSON(Body.self).value
        if let expiry = body.expiry, !(3_600...604_800).contains(expiry) {
            throw TernError.invalid("expiry", "must be between 3600 and 604800 seconds")
        }
        if (body.featureFlags ?? []).count > 25 { throw TernError.invalid("featureFlags", "at most 25 flags") }
        let tenant = try await SvixMessageController(store: self.store).tenant(context, implicit: body.application)
        let expires = Timestamp.now().adding(seconds: Int64(body.expiry ?? 604_800))
        let token = self.signer.sign(
            SessionClaims(
                kind: "portal", organizationID: context.organizationID, applicationID: context.applicationID, tenantID: tenant.tenantID,
                expires: expires.microseconds / 1_000_000))
        return try SvixJSON.response(.object(["url": .string("\(self.publicBaseURL)/portal?token=\(token)"), "token": .string(token)]))
    }
}
