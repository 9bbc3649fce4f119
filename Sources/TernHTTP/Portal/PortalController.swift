import Foundation
import HTTPTypes
import Hummingbird
import TernCore
import TernStorage

/// The tenant's portal: endpoints, event catalog, delivery log, attempt detail. Every action is a form post
/// that works without JavaScript, carries the session's CSRF token, and re-renders its form with messages
/// when the input is invalid.
struct PortalController {
    let store: Store
    let pages: WebPages
    let allowPrivateEndpoints: Bool

    func addRoutes(to router: Router<TernRequestContext>) {
        let web = router.group("portal").add(middleware: WebErrorMiddleware(pages: self.pages))
            .add(middleware: WebSessionMiddleware(signer: self.pages.signer))
        web.get(use: self.open)
        let portal = web.group(context: PortalContext.self)
            .add(middleware: CSRFMiddleware<PortalContext>(signer: self.pages.signer))
            .add(middleware: AuditMiddleware<PortalContext>(store: self.store))
        portal.get("endpoints", use: self.endpoints)
        portal.get("endpoints/new", use: self.newEndpoint)
        portal.post("endpoints", use: self.createEndpoint)
        portal.get("endpoints/:endpoint_id", use: self.endpoint)
        portal.post("endpoints/:endpoint_id", use: self.updateEndpoint)
        portal.post("endpoints/:endpoint_id/status", use: self.setStatus)
        portal.post("endpoints/:endpoint_id/reenable", use: self.reenable)
        portal.post("endpoints/:endpoint_id/rotate", use: self.rotate)
        portal.post("endpoints/:endpoint_id/test", use: self.sendTest)
        portal.post("endpoints/:endpoint_id/filter-test", use: self.testFilter)
        portal.get("endpoints/:endpoint_id/delete", use: self.confirmDelete)
        portal.post("endpoints/:endpoint_id/delete", use: self.delete)
        portal.get("events", use: self.events)
        portal.get("deliveries", use: self.deliveries)
        portal.get("deliveries/:delivery_id", use: self.delivery)
        portal.post("deliveries/:delivery_id/replay", use: self.replay)
    }

    // MARK: Opening a session

    /// The magic link: checks the token, sets the session cookie and lands on the endpoints page.
    @Sendable func open(_ request: Request, context: TernRequestContext) async throws -> Response {
        guard let token = request.uri.queryParameters.get("token"), !token.isEmpty else {
            throw TernError.unauthorized("This portal link has no token. Ask for a new link.")
        }
        let claims: SessionClaims
        do {
            claims = try self.pages.signer.verify(token)
        } catch .expired {
            throw TernError.unauthorized("This portal link has expired. Ask for a new link.")
        } catch {
            throw TernError.unauthorized("This portal link is not valid. Ask for a new link.")
        }
        guard claims.kind == "portal", let organizationID = claims.organizationID, let applicationID = claims.applicationID else {
            throw TernError.forbidden("This link does not open a portal.")
        }
        do {
            _ = try await self.store.application(organizationID: organizationID, id: applicationID)
        } catch TernError.notFound {
            throw TernError.forbidden("The application of this portal link no longer exists.")
        }
        let maxAge = max(1, Int(claims.expires - Int64(Date().timeIntervalSince1970)))
        let cookie = self.pages.sessionCookie(WebPages.portalCookie, value: token, maxAge: maxAge, sameSite: .none)
        return WebPages.redirect("/portal/endpoints", cookie: cookie)
    }

    // MARK: Layout

    func frame(_ context: PortalContext, title: String, section: String, flash: String? = nil, page: Any) async throws -> (WebPages.Frame, [String]) {
        let application = try await self.store.application(organizationID: context.organizationID, id: context.applicationID)
        let nav = [("endpoints", "Endpoints"), ("events", "Event catalog"), ("deliveries", "Deliveries")].map {
            WebPages.NavItem(href: "/portal/\($0.0)", label: $0.1, current: $0.0 == section)
        }
        let frame = WebPages.Frame(
            title: "\(title) · \(application.name)", heading: application.name, nav: nav, brandColor: application.portal.brandColor,
            logoURL: application.portal.logoURL, nonce: WebPages.nonce(), csrf: self.pages.signer.csrfToken(for: context.session.token),
            flash: flash, page: page
        )
        return (frame, application.portal.allowedOrigins)
    }

    func render(
        _ template: String, _ context: PortalContext, title: String, section: String, flash: String? = nil,
        status: HTTPResponse.Status = .ok, page: Any
    ) async throws -> Response {
        let (frame, origins) = try await self.frame(context, title: title, section: section, flash: flash, page: page)
        return self.pages.render(template, frame, status: status, frameAncestors: origins)
    }

    /// Messages a redirect may show (by key, so that a link cannot put arbitrary text on the page).
    static func flash(_ key: String) -> String? {
        [
            "deleted": "The endpoint was deleted.", "paused": "The endpoint is paused; deliveries wait until you resume it.",
            "active": "The endpoint is active.", "saved": "Saved.", "test": "A test event is on its way.",
            "replayed": "The delivery will be sent again now.",
            "recovered": "The endpoint is active, and what failed since it broke is being sent again.",
        ][key]
    }

    /// The tenant's endpoint; another tenant's is not found.
    func tenantEndpoint(_ context: PortalContext) async throws -> Endpoint {
        let id = try context.parameters.require("endpoint_id")
        let endpoint = try await self.store.endpoint(organizationID: context.organizationID, applicationID: context.applicationID, id: id)
        guard endpoint.tenantID == context.tenantID else { throw TernError.notFound("No endpoint '\(id)'.") }
        return endpoint
    }
}
