import Foundation
import HTTPTypes
import Hummingbird
import TernCore
import TernStorage

/// The operator's pages under `/admin`: sign in with the admin key, see organizations with their plan and usage
/// against its limits, change an organization's plan, see the plans, and create an organization API key.
struct AdminWebController {
    let store: Store
    let pages: WebPages
    let authenticator: Authenticator

    /// Admin sessions last this long.
    static let sessionSeconds = 8 * 3600

    func addRoutes(to router: Router<TernRequestContext>) {
        let web = router.group("admin").add(middleware: WebErrorMiddleware(pages: self.pages, signInPath: "/admin/login"))
            .add(middleware: WebSessionMiddleware(signer: self.pages.signer))
        web.get("login", use: self.loginPage)
        web.post("login", use: self.login)
        let admin = web.group(context: AdminWebContext.self)
            .add(middleware: CSRFMiddleware<AdminWebContext>(signer: self.pages.signer))
            .add(middleware: AuditMiddleware<AdminWebContext>(store: self.store))
        admin.get("", use: self.organizations)
        admin.get("organizations/:org_id", use: self.organization)
        admin.post("organizations/:org_id/plan", use: self.changePlan)
        admin.post("organizations/:org_id/api-keys", use: self.createKey)
        admin.get("plans", use: self.plans)
        admin.post("logout", use: self.logout)
    }

    func frame(title: String, section: String, csrf: String?, flash: String? = nil, page: Any) -> WebPages.Frame {
        let nav =
            csrf == nil
            ? []
            : [("", "Organizations"), ("plans", "Plans")].map {
                WebPages.NavItem(href: "/admin" + ($0.0.isEmpty ? "" : "/\($0.0)"), label: $0.1, current: $0.0 == section)
            }
        return WebPages.Frame(
            title: "\(title) · Tern admin", heading: "Tern admin", nav: nav, brandColor: nil, logoURL: nil, nonce: WebPages.nonce(),
            csrf: csrf, flash: flash, page: page
        )
    }

    func csrf(_ context: AdminWebContext) -> String { self.pages.signer.csrfToken(for: context.session.token) }

    struct LoginView { var error: String? }

    @Sendable func loginPage(_ request: Request, context: TernRequestContext) async throws -> Response {
        self.pages.render("admin_login", self.frame(title: "Sign in", section: "", csrf: nil, page: LoginView(error: nil)))
    }

    struct LoginFields: Decodable { var key: String? }

    @Sendable func login(_ request: Request, context: TernRequestContext) async throws -> Response {
        var request = request
        let fields = try await request.form(LoginFields.self)
        let key = fields.key?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        guard !key.isEmpty, (try? await self.authenticator.authenticate(key)) == .admin else {
            return self.pages.render(
                "admin_login", self.frame(title: "Sign in", section: "", csrf: nil, page: LoginView(error: "That is not the admin key.")),
                status: .unauthorized
            )
        }
        let expires = Int64(Date().timeIntervalSince1970) + Int64(Self.sessionSeconds)
        let token = self.pages.signer.sign(SessionClaims(kind: "admin", expires: expires))
        return WebPages.redirect(
            "/admin", cookie: self.pages.sessionCookie(WebPages.adminCookie, value: token, maxAge: Self.sessionSeconds, sameSite: .strict))
    }

    @Sendable func logout(_ request: Request, context: AdminWebContext) async throws -> Response {
        WebPages.redirect("/admin/login", cookie: self.pages.sessionCookie(WebPages.adminCookie, value: "", maxAge: 0, sameSite: .strict))
    }

    struct Figure {
        var used: Int
        var limit: String
        var percent: Int
        var over: Bool
    }

    static func figure(_ value: UsageFigure) -> Figure {
        let percent = value.limit.map { $0 == 0 ? 100 : min(100, value.used * 100 / $0) } ?? 0
        return Figure(
            used: value.used, limit: value.limit.map(String.init) ?? "unlimited", percent: percent,
            over: value.limit.map { value.used >= $0 } ?? false)
    }

    struct OrganizationRow {
        var id: String
        var name: String
        var plan: String
        var status: String
        var applications: Figure
        var endpoints: Figure
        var messages: Figure
    }

    func row(_ organization: Organization) async throws -> OrganizationRow {
        let usage = try await self.store.usage(organization.id)
        return OrganizationRow(
            id: organization.id, name: organization.name, plan: organization.plan, status: organization.status.rawValue,
            applications: Self.figure(usage.applications), endpoints: Self.figure(usage.endpoints), messages: Self.figure(usage.messagesThisMonth)
        )
    }

    @Sendable func organizations(_ request: Request, context: AdminWebContext) async throws -> Response {
        struct View {
            var organizations: [OrganizationRow]
            var empty: Bool
            var nextURL: String?
        }
        let page = try PageRequest(limit: "100", cursor: request.uri.queryParameters.get("cursor"))
        let organizations = try await self.store.listOrganizations(page)
        var rows: [OrganizationRow] = []
        for organization in organizations.data { rows.append(try await self.row(organization)) }
        let view = View(organizations: rows, empty: rows.isEmpty, nextURL: organizations.nextCursor.map { "/admin?cursor=\($0)" })
        return self.pages.render("admin_organizations", self.frame(title: "Organizations", section: "", csrf: self.csrf(context), page: view))
    }

    struct PlanChoice {
        var id: String
        var name: String
        var selected: Bool
    }

    func renderOrganization(
        _ context: AdminWebContext, _ id: String, flash: String? = nil, newKey: String? = nil, status: HTTPResponse.Status = .ok
    ) async throws -> Response {
        struct Troubled {
            var applicationID: String
            var tenantID: String
            var url: String
            var status: String
            var reason: String
            var failures: Int
        }
        struct View {
            var organization: OrganizationRow
            var plans: [PlanChoice]
            var newKey: String?
            var troubled: [Troubled]
        }
        let organization = try await self.store.organization(id)
        let plans = try await self.store.listPlans().map { PlanChoice(id: $0.id, name: $0.name, selected: $0.id == organization.plan) }
        let troubled = try await self.store.troubledEndpoints(organizationID: id).map { item in
            Troubled(
                applicationID: item.endpoint.applicationID, tenantID: item.endpoint.tenantID, url: item.endpoint.url,
                status: item.endpoint.status == .disabled ? "disabled" : "failing", reason: item.endpoint.disabledReason ?? "",
                failures: item.consecutiveFailures)
        }
        let view = View(organization: try await self.row(organization), plans: plans, newKey: newKey, troubled: troubled)
        return self.pages.render(
            "admin_organization", self.frame(title: organization.name, section: "", csrf: self.csrf(context), flash: flash, page: view),
            status: status
        )
    }

    @Sendable func organization(_ request: Request, context: AdminWebContext) async throws -> Response {
        let flash = request.uri.queryParameters.get("flash") == "plan" ? "The plan was changed." : nil
        return try await self.renderOrganization(context, try context.parameters.require("org_id"), flash: flash)
    }

    struct PlanField: Decodable { var plan: String? }

    @Sendable func changePlan(_ request: Request, context: AdminWebContext) async throws -> Response {
        let id = try context.parameters.require("org_id")
        var request = request
        let field = try await request.form(PlanField.self)
        guard let plan = field.plan, !plan.isEmpty else { throw TernError.invalid("plan", "choose a plan") }
        _ = try await self.store.updateOrganization(id, OrganizationChange(plan: plan))
        return WebPages.redirect("/admin/organizations/\(id)?flash=plan")
    }

    struct KeyFields: Decodable { var name: String? }

    @Sendable func createKey(_ request: Request, context: AdminWebContext) async throws -> Response {
        let id = try context.parameters.require("org_id")
        var request = request
        let fields = try await request.form(KeyFields.self)
        var validator = Validator()
        validator.name(fields.name, required: true)
        try validator.check()
        _ = try await self.store.organization(id)
        let issued = try await self.store.issueAPIKey(organizationID: id, name: fields.name!, scopes: [Scopes.all], applicationID: nil)
        var response = try await self.renderOrganization(
            context, id, flash: "API key created. Copy it now: it is not shown again.", newKey: issued.token, status: .created
        )
        response.headers[.entityID] = issued.key.id
        return response
    }

    @Sendable func plans(_ request: Request, context: AdminWebContext) async throws -> Response {
        struct Row {
            var id: String
            var name: String
            var applications: String
            var endpoints: String
            var messages: String
            var rate: String
            var burst: String
            var payload: String
        }
        func text(_ value: Int?) -> String { value.map(String.init) ?? "unlimited" }
        let rows = try await self.store.listPlans().map {
            Row(
                id: $0.id, name: $0.name, applications: text($0.maxApplications), endpoints: text($0.maxEndpoints),
                messages: text($0.maxMessagesPerMonth), rate: text($0.rateLimitPerMinute), burst: text($0.rateLimitBurst),
                payload: $0.maxPayloadBytes.map { "\($0 / 1024) KB" } ?? "unlimited"
            )
        }
        struct View { var plans: [Row] }
        return self.pages.render("admin_plans", self.frame(title: "Plans", section: "plans", csrf: self.csrf(context), page: View(plans: rows)))
    }
}
