import Foundation
import PluginAPI
import PluginHTTP

/// A request from a logged-in browser: its session, and what the pages need to render.
struct SignedIn: Sendable {
    var session: WebSession
    var token: String
    var preferences: WebPreferences
    var language: String
    var brandKey: String?
}

extension Webmail {
    func addAuthRoutes(_ router: Router<WebmailRequestContext>) {
        router.get("/") { request, _ -> Response in
            (try? self.signedIn(request)) != nil ? Self.redirect("/mail?f=INBOX") : Self.redirect("/login")
        }
        router.get("/login") { request, context -> Response in
            if (try? self.signedIn(request)) != nil { return Self.redirect("/mail?f=INBOX") }
            return self.loginPage(request, context, error: nil, user: "")
        }
        router.post("/login") { request, context -> Response in
            try await self.login(request, context)
        }
        router.post("/logout") { request, context -> Response in
            try await self.logout(request, context)
        }
    }

    /// The session named by the cookie, or nil (no cookie, unknown, or timed out).
    func signedIn(_ request: Request) throws -> SignedIn? {
        guard let token = request.cookies[Self.sessionCookie]?.value, !token.isEmpty,
              let session = try sessions.session(token: token) else { return nil }
        let preferences = (try? sessions.preferences(user: session.user)) ?? WebPreferences()
        let brandKey = pages.brandKey(for: Self.domain(of: session.user)) ?? pages.brandKey(for: Self.host(request))
        let language = pages.language(preferred: preferences.language, brand: brandKey, acceptLanguage: nil)
        return SignedIn(session: session, token: token, preferences: preferences, language: language, brandKey: brandKey)
    }

    /// The session's IMAP connection (from this worker's pool, or a new login).
    func mail(_ user: SignedIn, _ context: WebmailRequestContext) async throws -> MailAccess {
        try await pool.access(sessionID: user.session.id, user: user.session.user,
                              password: { try CredentialSeal.open(user.session.sealedPassword, token: user.token) },
                              clientAddress: context.clientAddress)
    }

    private func loginPage(_ request: Request, _ context: WebmailRequestContext, error: String?, user: String,
                           status: HTTPResponse.Status = .ok) -> Response {
        // Login CSRF: the form carries the token the cookie holds (double submit); a page on
        // another site can neither read the cookie nor set it.
        let token = WebSessionStore.randomToken()
        let brandKey = pages.brandKey(for: Self.domain(of: user)) ?? pages.brandKey(for: Self.host(request))
        let language = pages.language(preferred: nil, brand: brandKey, acceptLanguage: request.headers[.acceptLanguage])
        let plaintextRefused = !isTLS && !(context.clientIsLoopback && options.allowPlaintextOnLoopback)
        let strings = pages.strings(language)
        let body = pages.render("login", brand: brandKey, language: language, [
            "csrf": token, "user": user, "error": error ?? "", "hasError": error != nil,
            "insecure": plaintextRefused, "insecureText": strings["login_insecure"] ?? "",
        ])
        var response = Self.html(body, status: status)
        response.setCookie(cookie(Self.loginCookie, token, maxAge: 3600))
        return response
    }

    private func login(_ request: Request, _ context: WebmailRequestContext) async throws -> Response {
        let form = try await Self.form(request, context: context)
        let user = (form["user"] ?? "").trimmingCharacters(in: .whitespaces)
        let password = form["password"] ?? ""
        let language = pages.language(preferred: nil, brand: pages.brandKey(for: Self.host(request)),
                                      acceptLanguage: request.headers[.acceptLanguage])
        let strings = pages.strings(language)
        guard let expected = request.cookies[Self.loginCookie]?.value, !expected.isEmpty, form["csrf"] == expected else {
            return loginPage(request, context, error: strings["login_expired"], user: user, status: .forbidden)
        }
        guard isTLS || (context.clientIsLoopback && options.allowPlaintextOnLoopback) else {
            return loginPage(request, context, error: strings["login_insecure"], user: user, status: .forbidden)
        }
        let address = context.clientAddress
        guard await plugin.throttle.allows(address) else {
            plugin.failedLogins.increment()
            return loginPage(request, context, error: strings["login_throttled"], user: user, status: .tooManyRequests)
        }
        guard !user.isEmpty, !password.isEmpty else {
            return loginPage(request, context, error: strings["login_failed"], user: user, status: .unauthorized)
        }
        let access: MailAccess
        do {
            access = try await MailAccess.login(endpoint: options.imap, group: plugin.context.eventLoopGroup,
                                                user: user, password: password, clientAddress: address)
        } catch IMAPClientError.refused(let status, let code, let text) {
            let delay = await plugin.throttle.failed(address, account: user)
            plugin.failedLogins.increment()
            plugin.context.logger.notice("webmail login failed", metadata: ["user": "\(user)", "client": "\(address)",
                                                                          "imap": "\(status.rawValue) \(code ?? "") \(text)"])
            if delay > 0 { try? await Task.sleep(nanoseconds: UInt64(delay * 1e9)) }
            return loginPage(request, context, error: strings["login_failed"], user: user, status: .unauthorized)
        } catch {
            plugin.context.logger.error("webmail cannot reach IMAP", metadata: ["error": "\(error)", "imap": "\(options.imap.host):\(options.imap.port)"])
            return loginPage(request, context, error: strings["error_imap"], user: user, status: .serviceUnavailable)
        }
        await plugin.throttle.succeeded(address, account: user)
        plugin.logins.increment()
        await loadDirectoryDefaults(user: user)
        let (token, session) = try sessions.create(user: user, password: password, clientAddress: address)
        pool.adopt(access, sessionID: session.id)
        plugin.context.logger.info("webmail login", metadata: ["user": "\(user)", "client": "\(address)"])
        var response = Self.redirect("/mail?f=INBOX")
        response.setCookie(cookie(Self.sessionCookie, token))
        response.setCookie(cookie(Self.loginCookie, "", maxAge: 0))
        return response
    }

    private func logout(_ request: Request, _ context: WebmailRequestContext) async throws -> Response {
        let form = try await Self.form(request, context: context)
        if let user = try signedIn(request) {
            guard form["csrf"] == user.session.csrf else { return Self.html("Forbidden: the form has expired.", status: .forbidden) }
            pool.close(sessionID: user.session.id)
            if form["everywhere"] == "1" {
                let n = try sessions.deleteAll(user: user.session.user)
                plugin.context.logger.info("webmail logout everywhere", metadata: ["user": "\(user.session.user)", "sessions": "\(n)"])
            } else {
                try sessions.delete(id: user.session.id)
            }
        }
        var response = Self.redirect("/login")
        response.setCookie(cookie(Self.sessionCookie, "", maxAge: 0))
        // Kiosks: nothing of the session stays in the browser.
        response.headers[HTTPField.Name("Clear-Site-Data")!] = "\"cache\", \"cookies\", \"storage\""
        return response
    }
}
