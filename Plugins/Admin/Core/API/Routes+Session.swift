import Foundation
import PluginAPI
import PluginHTTP

/// Logging in and out, the caller's own account (password, forwarding, vacation, quota) and
/// their API tokens: what every role may do.
extension AdminAPI {
    struct Me: Encodable {
        var user: String
        var role: String
        var domains: [String]
        var via: String
        var csrf: String?
        var quotaBytes: Int?
        var quotaMessages: Int?
        var bytesUsed: Int
        var messagesUsed: Int
    }

    func addSessionRoutes(_ router: Router<AdminRequestContext>) {
        route(router, .post, "/api/v1/session", .open) { call in try await self.login(call) }
        route(router, .delete, "/api/v1/session", .anyone) { call in
            if call.principal.via.hasPrefix("session:") { try self.database.deleteSession(id: String(call.principal.via.dropFirst(8))) }
            var response = Self.noContent()
            response.setCookie(self.cookie(Self.sessionCookie, "", maxAge: 0))
            return response
        }
        route(router, .get, "/api/v1/me", .anyone) { call in
            Self.json(try await self.me(call.principal, csrf: call.principal.csrf))
        }
        route(router, .put, "/api/v1/me/password", .anyone) { call in
            let body = try await call.body()
            let current = try body.string("current", required: true)!
            let password = try body.string("password", required: true)!
            guard case .verified = await AuthService.ask(self.services.auth.backends, .password(user: call.principal.name, password: current),
                                                         service: "admin") else {
                throw APIError.forbidden("the current password is wrong")
            }
            try await self.accounts().setPassword(account: call.principal.name, password: password)
            // Other logins of this account end; this one goes on.
            let keep = call.principal.via.hasPrefix("session:") ? String(call.principal.via.dropFirst(8)) : nil
            try self.database.endSessions(account: call.principal.name, keepSession: keep)
            self.audit(call, "me.password", target: call.principal.name, domain: Principal.domain(of: call.principal.name))
            return Self.noContent()
        }
        route(router, .get, "/api/v1/me/forwarding", .anyone) { call in
            Self.json(try await self.accounts().forwarding(account: call.principal.name) ?? Forwarding(to: [], keepCopy: true))
        }
        route(router, .put, "/api/v1/me/forwarding", .anyone) { call in
            let body = try await call.body()
            let to = try body.strings("to") ?? []
            for address in to where Principal.domain(of: address) == nil {
                throw APIError.badRequest("'\(address)' is not an address (local@domain)")
            }
            let keepCopy = try body.bool("keepCopy") ?? true
            try await self.accounts().setForwarding(account: call.principal.name, to: to, keepCopy: keepCopy)
            self.audit(call, "me.forwarding", target: call.principal.name, domain: Principal.domain(of: call.principal.name),
                       detail: to.isEmpty ? "off" : to.joined(separator: ", "))
            return Self.json(Forwarding(to: to, keepCopy: keepCopy))
        }
        route(router, .get, "/api/v1/me/vacation", .anyone) { call in
            guard let vacation = try await self.accounts().vacation(account: call.principal.name) else {
                throw APIError.notFound(kind: "vacation reply", id: call.principal.name)
            }
            return Self.json(vacation)
        }
        route(router, .put, "/api/v1/me/vacation", .anyone) { call in
            let body = try await call.body()
            let days = try body.int("periodDays") ?? 7
            guard (1...365).contains(days) else { throw APIError.badRequest("'periodDays' must be from 1 to 365") }
            let vacation = Vacation(subject: try body.string("subject", required: true)!, body: try body.string("body", required: true)!,
                                    period: Double(days) * 86_400, start: try body.int("start").map(Int64.init),
                                    end: try body.int("end").map(Int64.init))
            try await self.accounts().setVacation(account: call.principal.name, vacation)
            self.audit(call, "me.vacation", target: call.principal.name, domain: Principal.domain(of: call.principal.name), detail: "on")
            return Self.json(vacation)
        }
        route(router, .delete, "/api/v1/me/vacation", .anyone) { call in
            try await self.accounts().setVacation(account: call.principal.name, nil)
            self.audit(call, "me.vacation", target: call.principal.name, domain: Principal.domain(of: call.principal.name), detail: "off")
            return Self.noContent()
        }
        route(router, .get, "/api/v1/tokens", .anyone) { call in
            Self.json(try self.database.tokens(user: call.principal.name))
        }
        route(router, .post, "/api/v1/tokens", .anyone) { call in
            let body = try await call.body()
            let name = try body.string("name", required: true)!
            guard !name.isEmpty, name.count <= 100 else { throw APIError.badRequest("'name' must have 1 to 100 characters") }
            let days = try body.int("expiresDays")
            if let days, !(1...3650).contains(days) { throw APIError.badRequest("'expiresDays' must be from 1 to 3650") }
            let (secret, token) = try self.database.createToken(user: call.principal.name, name: name, lifetime: days.map { Double($0) * 86_400 })
            self.audit(call, "token.create", target: token.id, domain: Principal.domain(of: call.principal.name), detail: name)
            struct Created: Encodable { var token: APIToken; var secret: String }
            return Self.json(Created(token: token, secret: secret), status: .created)
        }
        route(router, .delete, "/api/v1/tokens/{id}", .anyone) { call in
            let id = try call.parameter("id")
            guard try self.database.deleteToken(id: id, user: call.principal.name) else { throw APIError.notFound(kind: "token", id: id) }
            self.audit(call, "token.delete", target: id, domain: Principal.domain(of: call.principal.name))
            return Self.noContent()
        }
    }

    func me(_ principal: Principal, csrf: String?) async throws -> Me {
        guard let account = try await accounts().account(principal.name) else { throw APIError.unauthorized("the account is gone") }
        return Me(user: principal.name, role: principal.role.rawValue, domains: principal.domains.sorted(),
                  via: principal.via.hasPrefix("session:") ? "session" : principal.via, csrf: csrf,
                  quotaBytes: account.quotaBytes, quotaMessages: account.quotaMessages, bytesUsed: account.bytesUsed,
                  messagesUsed: account.messagesUsed)
    }

    /// `POST /api/v1/session`: a password login through the host's credential backends, throttled
    /// per address and per account. Always a new session token (never one the browser brought).
    private func login(_ call: Call) async throws -> Response {
        let body = try await call.body()
        let user = (try body.string("user") ?? "").trimmingCharacters(in: .whitespaces)
        let password = try body.string("password") ?? ""
        let address = call.client
        guard await plugin.throttle.allows(address), await !plugin.throttle.isLocked(account: user) else {
            plugin.failedLogins.increment()
            throw APIError.tooManyRequests("too many failed logins: wait a few minutes before trying again")
        }
        guard !user.isEmpty, !password.isEmpty else { throw APIError.badRequest("'user' and 'password' are required") }
        let answer = await AuthService.ask(services.auth.backends, .password(user: user, password: password), service: "admin")
        guard case .verified(let name) = answer, let account = try await accounts().account(name), account.enabled else {
            if case .unavailable(let why) = answer { throw APIError.unavailable("the account database cannot answer now: \(why)") }
            let delay = await plugin.throttle.failed(address, account: user)
            plugin.failedLogins.increment()
            logger.notice("admin login failed", metadata: ["user": "\(user)", "client": "\(address)"])
            if delay > 0 { try? await Task.sleep(nanoseconds: UInt64(delay * 1e9)) }
            throw APIError.unauthorized("the address or password is wrong")
        }
        await plugin.throttle.succeeded(address, account: user)
        plugin.logins.increment()
        let (token, session) = try database.createSession(user: account.name, clientAddress: address)
        let principal = Principal.of(account, delegated: try database.delegatedDomains(account: account.name), via: "session:\(session.id)")
        logger.info("admin login", metadata: ["user": "\(account.name)", "role": "\(principal.role.rawValue)", "client": "\(address)"])
        var response = Self.json(try await me(principal, csrf: session.csrf), status: .created)
        response.setCookie(cookie(Self.sessionCookie, token))
        return response
    }
}
