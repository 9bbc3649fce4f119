import Foundation
import HTTPTypes
import Hummingbird
import Mustache
import NIOCore
import TernCore
import TernStorage

/// Server-rendered pages: the Mustache templates of `Templates/`, security headers, cookies and CSRF.
/// Every value reaches the HTML through `{{…}}`, which escapes it; nothing is concatenated into markup.
struct WebPages: Sendable {
    let library: MustacheLibrary
    let signer: SessionSigner
    /// Cookies get `Secure` (and the portal's `SameSite=None`, for iframes) when Tern is served over https.
    let secureCookies: Bool

    static let portalCookie = "tern_portal"
    static let adminCookie = "tern_admin"

    /// A navigation link of the page header.
    struct NavItem {
        var href: String
        var label: String
        var current: Bool
    }

    /// What the layout shows around a page: `page` is the page's own view model.
    struct Frame {
        var title: String
        var heading: String
        var nav: [NavItem]
        var brandColor: String?
        var logoURL: String?
        var nonce: String
        var csrf: String?
        var flash: String?
        var page: Any
    }

    /// Renders `template` in the layout, with the headers every page carries. `frameAncestors` is the
    /// CSP `frame-ancestors` list (the portal's allowed origins; `'none'` elsewhere).
    func render(_ template: String, _ frame: Frame, status: HTTPResponse.Status = .ok, frameAncestors: [String] = []) -> Response {
        let html = self.library.render(frame, withTemplate: template) ?? "<!doctype html><title>Tern</title><p>Template \(template) is missing."
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.cacheControl] = "no-store"
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        let ancestors = frameAncestors.isEmpty ? "'none'" : frameAncestors.joined(separator: " ")
        headers[HTTPField.Name("Content-Security-Policy")!] =
            "default-src 'none'; style-src 'self' 'nonce-\(frame.nonce)'; "
            + "script-src 'self'; img-src 'self' https: data:; form-action 'self'; base-uri 'none'; frame-ancestors \(ancestors)"
        if frameAncestors.isEmpty { headers[HTTPField.Name("X-Frame-Options")!] = "DENY" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// A page for an error: the same status a client of the API would get, in words.
    func errorPage(_ problem: Problem) -> Response {
        struct ErrorView {
            var status: Int
            var title: String
            var detail: String
            var errors: [FieldError]
        }
        let frame = Frame(
            title: problem.title, heading: "Tern", nav: [], nonce: Self.nonce(), csrf: nil, flash: nil,
            page: ErrorView(status: problem.status, title: problem.title, detail: problem.detail, errors: problem.errors ?? [])
        )
        return self.render("error", frame, status: problem.httpStatus)
    }

    /// Reads every `*.mustache` file of `directory`, named by its file name without the extension.
    static func loadTemplates(_ directory: URL) throws -> MustacheLibrary {
        var library = MustacheLibrary()
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        guard !names.isEmpty else { throw ConfigurationError("no templates in \(directory.path)") }
        for name in names.sorted() where name.hasSuffix(".mustache") {
            let text = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
            do {
                try library.register(text, named: String(name.dropLast(".mustache".count)))
            } catch {
                throw ConfigurationError("the template \(name) does not parse: \(error)")
            }
        }
        return library
    }

    static func nonce() -> String { Base64URL.encode(randomBytes(12)) }

    /// A 303 to `location` (after a form post), optionally setting or clearing a cookie.
    static func redirect(_ location: String, cookie: Cookie? = nil) -> Response {
        var response = Response(status: .seeOther, headers: [.location: location])
        if let cookie { response.setCookie(cookie) }
        return response
    }

    func sessionCookie(_ name: String, value: String, maxAge: Int, sameSite: Cookie.SameSite) -> Cookie {
        // SameSite=None needs Secure; over plain http (local use) the portal falls back to Lax.
        let site = sameSite == .none && !self.secureCookies ? .lax : sameSite
        return Cookie(name: name, value: value, maxAge: maxAge, path: "/", secure: self.secureCookies, httpOnly: true, sameSite: site)
    }
}

/// Decodes a form post (`application/x-www-form-urlencoded`).
extension Request {
    mutating func form<Value: Decodable>(_ type: Value.Type) async throws -> Value {
        let buffer = try await self.collectBody(upTo: maxManagementBodyBytes)
        do {
            return try URLEncodedFormDecoder().decode(Value.self, from: String(buffer: buffer))
        } catch {
            throw TernError.malformed("The form could not be read.")
        }
    }
}

/// Reads the portal or admin session cookie into the context, for `/portal` and `/admin` only. An invalid or
/// expired cookie is treated as no session.
struct WebSessionMiddleware: RouterMiddleware {
    typealias Context = TernRequestContext
    let signer: SessionSigner

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard path.hasPrefix("/portal/") || path.hasPrefix("/admin") else { return try await next(request, context) }
        var context = context
        let name = path.hasPrefix("/portal/") ? WebPages.portalCookie : WebPages.adminCookie
        if let token = request.cookies[name]?.value, let claims = try? self.signer.verify(token) {
            context.webSession = WebSession(token: token, claims: claims)
        }
        return try await next(request, context)
    }
}

/// A signed-in browser session.
public struct WebSession: Sendable {
    public var token: String
    public var claims: SessionClaims
}

/// Rejects a form post whose `_csrf` field is not the session's CSRF token (403), before the handler runs.
struct CSRFMiddleware<Context: WebContext>: RouterMiddleware {
    let signer: SessionSigner

    struct Token: Decodable { var _csrf: String? }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .post else { return try await next(request, context) }
        var request = request
        let token = try? await request.form(Token.self)
        guard self.signer.checkCSRF(token?._csrf, session: context.session.token) else {
            throw TernError.forbidden("This form has expired or did not come from this page. Go back, reload it and try again.")
        }
        return try await next(request, context)
    }
}

/// A context with a browser session.
protocol WebContext: RequestContext {
    var session: WebSession { get }
}

/// Portal pages: the session is a portal session for one application and tenant.
struct PortalContext: ChildRequestContext, WebContext {
    var coreContext: CoreRequestContextStorage
    var session: WebSession

    init(context: TernRequestContext) throws {
        guard let session = context.webSession, session.claims.kind == "portal",
            session.claims.organizationID != nil, session.claims.applicationID != nil, session.claims.tenantID != nil
        else {
            throw TernError.unauthorized("This portal session has ended. Open the portal again from the link you were given.")
        }
        self.coreContext = context.coreContext
        self.session = session
    }

    var organizationID: String { self.session.claims.organizationID! }
    var applicationID: String { self.session.claims.applicationID! }
    var tenantID: String { self.session.claims.tenantID! }
}

/// Admin pages: the session was opened with the admin key.
struct AdminWebContext: ChildRequestContext, WebContext {
    var coreContext: CoreRequestContextStorage
    var session: WebSession

    init(context: TernRequestContext) throws {
        guard let session = context.webSession, session.claims.kind == "admin" else {
            throw TernError.unauthorized("Sign in with the admin key.")
        }
        self.coreContext = context.coreContext
        self.session = session
    }
}
