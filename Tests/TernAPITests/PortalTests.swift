import Foundation
import HTTPTypes
import TernCore
import Testing

@testable import TernTesting

/// The portal and admin pages through HTTP: sessions, tenant isolation, CSRF, escaping, embedding.
@Suite struct PortalTests {
    /// Opens a portal session for `tenant` and returns its cookie header value.
    static func session(_ api: API, key: String, app: String, tenant: String = "tenant-1", seconds: Int? = nil) async throws -> (String, String) {
        let extra = seconds.map { #", "expires_in_seconds": \#($0)"# } ?? ""
        let created = try await api.post("/v1/applications/\(app)/portal-sessions", key: key, #"{"tenant_id": "\#(tenant)"\#(extra)}"#)
        try #require(created.status == 201, "\(created.text)")
        let url = try #require(created.string("url"))
        let token = try #require(created.string("token"))
        #expect(url.hasSuffix("/portal?token=\(token)"))
        return (token, "tern_portal=\(token)")
    }

    static func page(_ api: API, _ path: String, cookie: String?, method: HTTPRequest.Method = .get, form: String? = nil) async throws -> Reply {
        var headers: [String: String] = [:]
        if let cookie { headers["Cookie"] = cookie }
        return try await api.call(method, path, json: form, contentType: "application/x-www-form-urlencoded", headers: headers)
    }

    static func csrf(_ html: String) -> String {
        guard let range = html.range(of: #"name="_csrf" value=""#) else { return "" }
        return String(html[range.upperBound...].prefix { $0 != "\"" })
    }

    @Test(arguments: Backend.available)
    func aPortalLinkOpensOneTenantsPagesAndNothingElse(_ backend: Backend) async throws {
        try await withTern(backend) { api in
            let (key, app) = try await api.shop(##", "portal": {"allowed_origins": ["https://app.example.com"], "brand_color": "#7b2cbf"}"##)
            let (mine, _) = try await api.endpoint(key, app: app, url: "http://127.0.0.1:9/mine")
            let (theirs, _) = try await api.endpoint(key, app: app, url: "http://127.0.0.1:9/theirs", tenant: "tenant-2")
            let theirMessage = try #require(try await api.publish(key, app: app, tenant: "tenant-2").string("id"))
            let theirDelivery = try #require(try await api.deliveries(key, app: app, message: theirMessage).first?["id"] as? String)
            let (token, cookie) = try await Self.session(api, key: key, app: app)

            let opened = try await api.get("/portal?token=\(token)", key: nil)
            #expect(opened.status == 303)
            #expect(opened.headers[.location] == "/portal/endpoints")
            let setCookie = try #require(opened.headers[.setCookie])
            #expect(setCookie.contains("tern_portal=\(token)") && setCookie.contains("HttpOnly") && setCookie.contains("SameSite="))

            let endpoints = try await Self.page(api, "/portal/endpoints", cookie: cookie)
            #expect(endpoints.status == 200)
            #expect(endpoints.headers[.contentType] == "text/html; charset=utf-8")
            #expect(endpoints.text.contains(mine) && !endpoints.text.contains(theirs))
            let csp = try #require(endpoints.headers[HTTPField.Name("Content-Security-Policy")!])
            #expect(csp.contains("frame-ancestors https://app.example.com"))
            #expect(endpoints.text.contains("--brand: #7b2cbf"))
            for path in ["/portal/endpoints/new", "/portal/events", "/portal/deliveries", "/portal/endpoints/\(mine)"] {
                #expect(try await Self.page(api, path, cookie: cookie).status == 200, "\(path)")
            }
            // Another tenant's objects are not found, whatever the path says.
            #expect(try await Self.page(api, "/portal/endpoints/\(theirs)", cookie: cookie).status == 404)
            #expect(try await Self.page(api, "/portal/deliveries/\(theirDelivery)", cookie: cookie).status == 404)
            let csrf = Self.csrf(try await Self.page(api, "/portal/endpoints/\(mine)", cookie: cookie).text)
            #expect(!csrf.isEmpty)
            let replay = try await Self.page(api, "/portal/deliveries/\(theirDelivery)/replay", cookie: cookie, method: .post, form: "_csrf=\(csrf)")
            #expect(replay.status == 404)
            let deleted = try await Self.page(api, "/portal/endpoints/\(theirs)/delete", cookie: cookie, method: .post, form: "_csrf=\(csrf)")
            #expect(deleted.status == 404)
            #expect(try await api.get("/v1/applications/\(app)/endpoints/\(theirs)", key: key).status == 200)
            // Every portal route that names an object, generated from the router: tenant-2's objects are 404.
            var covered = 0
            for route in try await servedRoutes() where route.path.hasPrefix("/portal/") && route.path.contains("{") {
                let path = route.path.replacingOccurrences(of: "{endpoint_id}", with: theirs).replacingOccurrences(
                    of: "{delivery_id}", with: theirDelivery)
                #expect(!path.contains("{"), "\(route.path) has a parameter this test does not fill")
                let reply = try await Self.page(
                    api, path, cookie: cookie, method: route.method,
                    form: route.method == .post ? "_csrf=\(csrf)&status=paused&url=https%3A%2F%2Fx.example" : nil)
                #expect(reply.status == 404, "\(route.method) \(route.path) answered \(reply.status) for another tenant's object")
                covered += 1
            }
            #expect(covered >= 9)

            // Without a session, with a tampered or an expired token: a clear page, never data.
            let none = try await Self.page(api, "/portal/endpoints", cookie: nil)
            #expect(none.status == 401 && none.text.contains("session has ended"))
            let tampered = String(token.dropLast(2)) + (token.hasSuffix("AA") ? "BB" : "AA")
            #expect(try await api.get("/portal?token=\(tampered)", key: nil).status == 401)
            #expect(try await Self.page(api, "/portal/endpoints", cookie: "tern_portal=\(tampered)").status == 401)
            #expect(try await api.get("/portal", key: nil).status == 401)
            let (short, shortCookie) = try await Self.session(api, key: key, app: app, seconds: 1)
            try await Task.sleep(for: .milliseconds(2100))
            let expired = try await api.get("/portal?token=\(short)", key: nil)
            #expect(expired.status == 401 && expired.text.contains("expired"))
            #expect(try await Self.page(api, "/portal/endpoints", cookie: shortCookie).status == 401)
            let bad = try await api.post("/v1/applications/\(app)/portal-sessions", key: key, #"{"tenant_id": "t", "expires_in_seconds": 0}"#)
            #expect(bad.status == 422)
            let defaultFrame = try await api.application(key, name: "Plain")
            let (_, plainCookie) = try await Self.session(api, key: key, app: defaultFrame)
            let plain = try await Self.page(api, "/portal/endpoints", cookie: plainCookie)
            #expect(plain.headers[HTTPField.Name("Content-Security-Policy")!]?.contains("frame-ancestors 'none'") == true)
        }
    }

    @Test(arguments: Backend.available)
    func formsNeedTheCSRFTokenAndReRenderWithMessages(_ backend: Backend) async throws {
        try await withTern(backend) { api in
            let (key, app) = try await api.shop()
            let (_, cookie) = try await Self.session(api, key: key, app: app)
            let form = try await Self.page(api, "/portal/endpoints/new", cookie: cookie)
            let csrf = Self.csrf(form.text)
            #expect(!csrf.isEmpty)
            #expect(form.text.contains(#"name="url""#) && form.text.contains(#"<label for="url">"#))

            let forged = try await Self.page(api, "/portal/endpoints", cookie: cookie, method: .post, form: "url=https%3A%2F%2Fexample.com%2Fhook")
            #expect(forged.status == 403)
            let wrong = try await Self.page(
                api, "/portal/endpoints", cookie: cookie, method: .post, form: "_csrf=nope&url=https%3A%2F%2Fexample.com%2Fhook")
            #expect(wrong.status == 403)
            #expect(try await api.get("/v1/applications/\(app)/endpoints", key: key).items.isEmpty, "nothing was created")

            let invalid = try await Self.page(
                api, "/portal/endpoints", cookie: cookie, method: .post, form: "_csrf=\(csrf)&url=ftp%3A%2F%2Fx&name=Mine")
            #expect(invalid.status == 422)
            #expect(invalid.text.contains(#"aria-invalid="true""#) && invalid.text.contains("value=\"Mine\""))

            let created = try await Self.page(
                api, "/portal/endpoints", cookie: cookie, method: .post,
                form: "_csrf=\(csrf)&url=https%3A%2F%2Fexample.com%2Fhook&name=Orders&events%5B%5D=order.created"
            )
            #expect(created.status == 201)
            let endpoints = try await api.get("/v1/applications/\(app)/endpoints", key: key).items
            #expect(endpoints.count == 1)
            #expect(endpoints.first?["events"] as? [String] == ["order.created"])
            #expect(endpoints.first?["tenant_id"] as? String == "tenant-1", "the portal's tenant, whatever the form says")
            #expect(created.text.contains("whsec_"), "the secret is shown once")
            let id = try #require(endpoints.first?["id"] as? String)
            #expect(!(try await Self.page(api, "/portal/endpoints/\(id)", cookie: cookie).text.contains("whsec_")))

            let paused = try await Self.page(
                api, "/portal/endpoints/\(id)/status", cookie: cookie, method: .post, form: "_csrf=\(csrf)&status=paused")
            #expect(paused.status == 303)
            #expect(try await api.get("/v1/applications/\(app)/endpoints/\(id)", key: key).string("status") == "paused")
            let deleted = try await Self.page(api, "/portal/endpoints/\(id)/delete", cookie: cookie, method: .post, form: "_csrf=\(csrf)")
            #expect(deleted.status == 303)
            #expect(try await api.get("/v1/applications/\(app)/endpoints/\(id)", key: key).status == 404)
        }
    }

    @Test(arguments: Backend.available)
    func scriptInjectionThroughNamesURLsAndPayloadsIsEscaped(_ backend: Backend) async throws {
        try await withTern(backend) { api in
            let (key, app) = try await api.shop()
            let attack = "<script>alert(1)</script>"
            let reply = try await api.post(
                "/v1/applications/\(app)/endpoints", key: key,
                """
                {"tenant_id": "tenant-1", "url": "http://127.0.0.1:9/x?q=\\"><script>alert(2)</script>", "name": "\(attack)",
                 "description": "<img src=x onerror=alert(3)>"}
                """)
            try #require(reply.status == 201, "\(reply.text)")
            let endpointID = try #require(reply.string("id"))
            let message = try #require(try await api.publish(key, app: app, payload: #"{"note": "</pre><script>alert(4)</script>"}"#).string("id"))
            let delivery = try #require(try await api.deliveries(key, app: app, message: message).first?["id"] as? String)
            let (_, cookie) = try await Self.session(api, key: key, app: app)
            for path in ["/portal/endpoints", "/portal/endpoints/\(endpointID)", "/portal/deliveries", "/portal/deliveries/\(delivery)"] {
                let page = try await Self.page(api, path, cookie: cookie)
                #expect(page.status == 200, "\(path)")
                #expect(!page.text.contains("<script>alert") && !page.text.contains("<img src=x"), "\(path) renders markup from data")
            }
            let detail = try await Self.page(api, "/portal/deliveries/\(delivery)", cookie: cookie)
            #expect(detail.text.contains("&lt;script&gt;alert(4)&lt;/script&gt;"))
        }
    }

    @Test(arguments: Backend.available)
    func theAdminAreaSignsInWithTheAdminKeyAndChangesPlans(_ backend: Backend) async throws {
        try await withTern(backend) { api in
            let (orgID, _) = try await api.organization("Acme")
            #expect(try await api.get("/admin", key: nil).status == 303, "to the sign-in page")
            let refused = try await Self.page(api, "/admin/login", cookie: nil, method: .post, form: "key=wrong-key-000000000000")
            #expect(refused.status == 401)
            let signedIn = try await Self.page(api, "/admin/login", cookie: nil, method: .post, form: "key=\(testAdminKey)")
            #expect(signedIn.status == 303)
            let cookie = try #require(signedIn.headers[.setCookie]?.split(separator: ";").first.map(String.init))
            #expect(cookie.hasPrefix("tern_admin="))
            let organizations = try await Self.page(api, "/admin", cookie: cookie)
            #expect(organizations.status == 200 && organizations.text.contains("Acme") && organizations.text.contains("0 / 10"))
            let page = try await Self.page(api, "/admin/organizations/\(orgID)", cookie: cookie)
            let csrf = Self.csrf(page.text)
            #expect(try await Self.page(api, "/admin/organizations/\(orgID)/plan", cookie: cookie, method: .post, form: "plan=pro").status == 403)
            let changed = try await Self.page(
                api, "/admin/organizations/\(orgID)/plan", cookie: cookie, method: .post, form: "_csrf=\(csrf)&plan=pro")
            #expect(changed.status == 303)
            #expect(try await api.get("/v1/admin/organizations/\(orgID)", key: testAdminKey).string("plan") == "pro")
            let keyPage = try await Self.page(
                api, "/admin/organizations/\(orgID)/api-keys", cookie: cookie, method: .post, form: "_csrf=\(csrf)&name=backend")
            #expect(keyPage.status == 201)
            let newKey = try #require(
                keyPage.text.range(of: #"tern_key_[A-Za-z0-9_-]+"#, options: .regularExpression).map { String(keyPage.text[$0]) })
            #expect(try await api.get("/v1/applications", key: newKey).status == 200, "the key shown once works")
            #expect(try await Self.page(api, "/admin/plans", cookie: cookie).text.contains("enterprise"))
            #expect(try await Self.page(api, "/admin", cookie: "tern_admin=forged.token").status == 303)
        }
    }

    /// A broken endpoint's page: the chart of its attempts, its last error, and a banner whose one button makes it active
    /// again and resends what failed.
    @Test(arguments: Backend.available)
    func aBrokenEndpointShowsItsChartAndABannerThatReEnablesIt(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        defer { Task { await receiver.stop() } }
        receiver.script("/hook", [Receiver.Answer(status: 500)], then: Receiver.Answer())
        try await withTern(backend) { api in
            let (key, app) = try await api.shop(#", "retry_schedule": [], "circuit_breaker": {"failure_threshold": 1}"#)
            let (endpointID, _) = try await api.endpoint(key, app: app, url: receiver.url())
            _ = try await api.publish(key, app: app)
            let disabled = try await eventually {
                try await api.get("/v1/applications/\(app)/endpoints/\(endpointID)", key: key).string("status") == "disabled"
            }
            #expect(disabled)
            // The operator sees it among the organization's failing and disabled endpoints.
            let signedIn = try await Self.page(api, "/admin/login", cookie: nil, method: .post, form: "key=\(testAdminKey)")
            let admin = try #require(signedIn.headers[.setCookie]?.split(separator: ";").first.map(String.init))
            let orgID = try #require(try await api.get("/v1/applications/\(app)", key: key).string("organization_id"))
            let operatorPage = try await Self.page(api, "/admin/organizations/\(orgID)", cookie: admin)
            #expect(operatorPage.text.contains(receiver.url()) && operatorPage.text.contains(#"<span class="badge disabled">disabled</span>"#))
            let (_, cookie) = try await Self.session(api, key: key, app: app)
            let page = try await Self.page(api, "/portal/endpoints/\(endpointID)", cookie: cookie)
            #expect(page.text.contains("This endpoint is disabled") && page.text.contains("Last error: HTTP 500"), "\(page.text)")
            #expect(page.text.contains(#"<svg class="health-chart""#) && page.text.contains("Last 24 hours: 0 delivered and 1 failed attempts"))
            #expect(page.text.contains("Success, last 24 hours: <strong>0%</strong>"))
            let reenabled = try await Self.page(
                api, "/portal/endpoints/\(endpointID)/reenable", cookie: cookie, method: .post, form: "_csrf=\(Self.csrf(page.text))")
            #expect(reenabled.status == 303, "\(reenabled.text)")
            #expect(try await api.get("/v1/applications/\(app)/endpoints/\(endpointID)", key: key).string("status") == "active")
            #expect(await receiver.waitFor(2).count == 2)
            let healthy = try await eventually {
                try await Self.page(api, "/portal/endpoints/\(endpointID)", cookie: cookie).text.contains("1 delivered and 1 failed attempts")
            }
            #expect(healthy)
            #expect(!(try await Self.page(api, "/portal/endpoints/\(endpointID)", cookie: cookie).text.contains("This endpoint is disabled")))
            #expect(
                try await Self.page(api, "/admin/organizations/\(orgID)", cookie: admin).text.contains(
                    "Every endpoint of this organization is healthy."))
        }
    }

    /// A tenant chooses Ed25519 signatures, a sign-in and TLS in the endpoint form: wrong TLS comes back in words and
    /// stores nothing; the public key is shown; secrets are kept when the form says "keep" and never shown.
    @Test(arguments: Backend.available)
    func aTenantSetsSigningSignInAndTLSInTheForm(_ backend: Backend) async throws {
        try await withTern(backend) { api in
            let (key, app) = try await api.shop()
            let (_, cookie) = try await Self.session(api, key: key, app: app)
            let new = try await Self.page(api, "/portal/endpoints/new", cookie: cookie)
            #expect(
                new.text.contains(#"name="signing" value="ed25519""#) && new.text.contains(#"name="auth_type" value="oauth2_client_credentials""#))
            let csrf = Self.csrf(new.text)
            func encoded(_ text: String) -> String { text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "" }
            let base =
                "_csrf=\(csrf)&url=\(encoded("http://127.0.0.1:9/hook"))&signing=ed25519&auth_type=basic&auth_username=ops&auth_password=pa55word"
            let wrong = try await Self.page(
                api, "/portal/endpoints", cookie: cookie, method: .post,
                form: base + "&tls_ca=" + encoded("-----BEGIN CERTIFICATE-----\nno\n-----END CERTIFICATE-----"))
            #expect(wrong.status == 422 && wrong.text.contains("tls.ca_bundle_pem: holds no PEM certificate"), "\(wrong.text)")
            #expect(try await api.get("/v1/applications/\(app)/endpoints", key: key).items.isEmpty)
            let created = try await Self.page(api, "/portal/endpoints", cookie: cookie, method: .post, form: base)
            #expect(created.status == 201 && created.text.contains("whpk_") && !created.text.contains("whsk_"), "\(created.text)")
            let endpoint = try #require(try await api.get("/v1/applications/\(app)/endpoints", key: key).items.first)
            let id = try #require(endpoint["id"] as? String)
            #expect(endpoint["signing"] as? String == "ed25519" && (endpoint["auth"] as? [String: String]) == ["type": "basic", "username": "ops"])
            let page = try await Self.page(api, "/portal/endpoints/\(id)", cookie: cookie)
            #expect(page.text.contains("Now: a user name and password (ops)") && page.text.contains(endpoint["public_key"] as? String ?? "?"))
            #expect(!page.text.contains("pa55word"))
            // Saving with "keep" keeps the sign-in; "none" removes it.
            let edit = "_csrf=\(Self.csrf(page.text))&url=\(encoded("http://127.0.0.1:9/hook"))&signing=ed25519"
            #expect(try await Self.page(api, "/portal/endpoints/\(id)", cookie: cookie, method: .post, form: edit + "&auth_type=keep").status == 303)
            #expect((try await api.get("/v1/applications/\(app)/endpoints/\(id)", key: key)["auth"] as? [String: String])?["username"] == "ops")
            #expect(try await Self.page(api, "/portal/endpoints/\(id)", cookie: cookie, method: .post, form: edit + "&auth_type=none").status == 303)
            #expect(try await api.get("/v1/applications/\(app)/endpoints/\(id)", key: key)["auth"] is NSNull)
            let missing = try await Self.page(
                api, "/portal/endpoints/\(id)", cookie: cookie, method: .post, form: edit + "&auth_type=oauth2_client_credentials&auth_client_id=tern"
            )
            #expect(missing.status == 422 && missing.text.contains("auth.token_url: is required"), "\(missing.text)")
        }
    }

    /// A tenant writes a filter in plain form fields: a wrong one comes back with the path and operator, a right one is
    /// saved, and the test card tries it on the event type's example or on a pasted payload.
    @Test(arguments: Backend.available)
    func aTenantEditsAnEndpointFilterAndTestsIt(_ backend: Backend) async throws {
        try await withTern(backend) { api in
            let (key, app) = try await api.shop()
            _ = try await api.post(
                "/v1/applications/\(app)/event-types", key: key, #"{"name": "order.paid", "example": {"total": 250, "currency": "EUR"}}"#)
            let (endpointID, _) = try await api.endpoint(key, app: app, url: "http://127.0.0.1:9/hook")
            let (_, cookie) = try await Self.session(api, key: key, app: app)
            let page = try await Self.page(api, "/portal/endpoints/\(endpointID)", cookie: cookie)
            #expect(page.text.contains(#"<textarea id="filter" name="filter""#) && page.text.contains("Test a filter"))
            let csrf = Self.csrf(page.text)
            func encoded(_ text: String) -> String { text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "" }
            let base = "_csrf=\(csrf)&url=\(encoded("http://127.0.0.1:9/hook"))"

            let wrong = try await Self.page(
                api, "/portal/endpoints/\(endpointID)", cookie: cookie, method: .post,
                form: base + "&filter=" + encoded(#"{"payload.total": {"$gt": "x", "$above": 1}}"#))
            #expect(wrong.status == 422 && wrong.text.contains("filter.payload.total.$above"), "\(wrong.text)")
            #expect(try await api.get("/v1/applications/\(app)/endpoints/\(endpointID)", key: key)["filter"] is NSNull)
            let right = try await Self.page(
                api, "/portal/endpoints/\(endpointID)", cookie: cookie, method: .post,
                form: base + "&filter=" + encoded(#"{"payload.total": {"$gt": 100}}"#))
            #expect(right.status == 303, "\(right.text)")
            let saved = try await api.get("/v1/applications/\(app)/endpoints/\(endpointID)", key: key)
            #expect((saved["filter"] as? [String: Any])?["payload.total"] as? [String: Int] == ["$gt": 100], "\(saved.text)")

            // A rate limit in plain words: a whole number of deliveries a second.
            let slow = try await Self.page(api, "/portal/endpoints/\(endpointID)", cookie: cookie, method: .post, form: base + "&rate_limit=0")
            #expect(slow.status == 422 && slow.text.contains("must be a whole number of deliveries a second"), "\(slow.text)")
            let limited = try await Self.page(
                api, "/portal/endpoints/\(endpointID)", cookie: cookie, method: .post,
                form: base + "&rate_limit=5&filter=" + encoded(#"{"payload.total": {"$gt": 100}}"#))
            #expect(limited.status == 303, "\(limited.text)")
            let withRate = try await api.get("/v1/applications/\(app)/endpoints/\(endpointID)", key: key)
            #expect(withRate["rate_limit"] as? [String: Int] == ["per_second": 5, "burst": 5], "\(withRate.text)")
            #expect(try await Self.page(api, "/portal/endpoints/\(endpointID)", cookie: cookie).text.contains(#"name="rate_limit" type="number""#))

            // The order of deliveries in words: in order per value of a payload field, written with dots.
            let unnamed = try await Self.page(
                api, "/portal/endpoints/\(endpointID)", cookie: cookie, method: .post, form: base + "&rate_limit=5&ordering=keyed&ordering_key=")
            #expect(unnamed.status == 422 && unnamed.text.contains("name the payload field that keeps the order"), "\(unnamed.text)")
            #expect(try await api.get("/v1/applications/\(app)/endpoints/\(endpointID)", key: key).string("ordering") == "none")
            let keyed = try await Self.page(
                api, "/portal/endpoints/\(endpointID)", cookie: cookie, method: .post,
                form: base + "&rate_limit=5&ordering=keyed&ordering_key=" + encoded("order.customer_id"))
            #expect(keyed.status == 303, "\(keyed.text)")
            let ordered = try await api.get("/v1/applications/\(app)/endpoints/\(endpointID)", key: key)
            #expect(ordered.string("ordering") == "fifo" && ordered.string("ordering_key") == "/order/customer_id", "\(ordered.text)")
            let shown = try await Self.page(api, "/portal/endpoints/\(endpointID)", cookie: cookie).text
            #expect(shown.contains(#"value="keyed" checked"#) && shown.contains(#"value="order.customer_id""#))
            #expect(
                try await Self.page(api, "/portal/endpoints/\(endpointID)", cookie: cookie, method: .post, form: base + "&ordering=fifo").status
                    == 303)
            #expect(try await api.get("/v1/applications/\(app)/endpoints/\(endpointID)", key: key)["ordering_key"] is NSNull)

            // The saved filter on the example of order.paid (total 250), then on a pasted payload (total 50).
            let example = try await Self.page(
                api, "/portal/endpoints/\(endpointID)/filter-test", cookie: cookie, method: .post,
                form: "_csrf=\(csrf)&event_type=order.paid&payload=&filter=" + encoded(#"{"payload.total": {"$gt": 100}}"#))
            #expect(example.status == 200 && example.text.contains("Matches: this message would be delivered."), "\(example.text)")
            let pasted = try await Self.page(
                api, "/portal/endpoints/\(endpointID)/filter-test", cookie: cookie, method: .post,
                form: "_csrf=\(csrf)&event_type=order.paid&payload=\(encoded(#"{"total": 50}"#))&filter="
                    + encoded(#"{"payload.total": {"$gt": 100}}"#))
            #expect(pasted.text.contains("Does not match: payload.total is 50, not $gt 100."), "\(pasted.text)")
            let broken = try await Self.page(
                api, "/portal/endpoints/\(endpointID)/filter-test", cookie: cookie, method: .post, form: "_csrf=\(csrf)&payload=%7B%7D&filter=%5B1%5D"
            )
            #expect(broken.text.contains("filter: must be a JSON object"), "\(broken.text)")
        }
    }
}
