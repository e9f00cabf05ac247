import Foundation
import PluginAPI
import PluginHTTP

/// Accounts: list and search, create, show, change (suspend, quota, password, level, delegated
/// domains), delete with all their mail. Domain administrators manage the accounts of their
/// domains, never a site administrator's, and cannot make anyone a site administrator.
extension AdminAPI {
    struct UserDetail: Encodable {
        var name: String
        var enabled: Bool
        var level: String
        var quotaBytes: Int?
        var quotaMessages: Int?
        var bytesUsed: Int
        var messagesUsed: Int
        var created: Int64
        /// Domains delegated to a domain administrator beyond their own.
        var delegatedDomains: [String]?
        var forwarding: Forwarding?
        var vacation: Bool?

        init(_ a: AccountInfo, delegated: [String]? = nil, forwarding: Forwarding? = nil, vacation: Bool? = nil) {
            name = a.name
            enabled = a.enabled
            level = a.adminLevel
            quotaBytes = a.quotaBytes
            quotaMessages = a.quotaMessages
            bytesUsed = a.bytesUsed
            messagesUsed = a.messagesUsed
            created = a.created
            delegatedDomains = delegated
            self.forwarding = forwarding
            self.vacation = vacation
        }
    }

    func addUserRoutes(_ router: Router<AdminRequestContext>) {
        route(router, .get, "/api/v1/users", .administrators) { call in
            let accounts = try self.accounts()
            var rows: [AccountInfo]
            if let domain = call.query("domain")?.lowercased() {
                guard call.principal.sees(domain: domain), try await accounts.domains().contains(domain) else {
                    throw APIError.notFound(kind: "domain", id: domain)
                }
                rows = try await accounts.accounts(domain: domain)
            } else {
                rows = try await accounts.accounts(domain: nil).filter { call.principal.sees(address: $0.name) }
            }
            if let q = call.query("q")?.lowercased() { rows = rows.filter { $0.name.lowercased().contains(q) } }
            if let level = call.query("level") { rows = rows.filter { $0.adminLevel == level } }
            if let enabled = call.query("enabled") { rows = rows.filter { $0.enabled == (enabled == "true") } }
            rows.sort { $0.name < $1.name }
            return try self.table(call, rows.map { UserDetail($0) },
                                  columns: ["name", "enabled", "level", "quota_bytes", "quota_messages", "bytes_used", "messages_used"]) {
                [$0.name, "\($0.enabled)", $0.level, $0.quotaBytes.map(String.init) ?? "", $0.quotaMessages.map(String.init) ?? "",
                 "\($0.bytesUsed)", "\($0.messagesUsed)"]
            }
        }
        route(router, .post, "/api/v1/users", .administrators) { call in
            let body = try await call.body()
            let name = try body.string("name", required: true)!.lowercased()
            guard let domain = Principal.domain(of: name) else { throw APIError.badRequest("'name' must be an address, local@domain") }
            guard call.principal.sees(domain: domain) else { throw APIError.notFound(kind: "domain", id: domain) }
            let level = try self.level(body, call.principal) ?? .user
            let account = try await self.accounts().createAccount(NewAccount(
                name: name, password: try body.string("password", required: true)!, adminLevel: level,
                quotaBytes: try body.int("quotaBytes"), quotaMessages: try body.int("quotaMessages")))
            self.audit(call, "user.create", target: account.name, domain: domain, detail: "level \(level.rawValue)")
            return Self.json(UserDetail(account), status: .created)
        }
        route(router, .get, "/api/v1/users/{user}", .administrators) { call in
            let account = try await self.visibleAccount(call)
            let accounts = try self.accounts()
            return Self.json(UserDetail(account, delegated: try self.database.delegatedDomains(account: account.name),
                                        forwarding: try await accounts.forwarding(account: account.name),
                                        vacation: try await accounts.vacation(account: account.name) != nil))
        }
        route(router, .patch, "/api/v1/users/{user}", .administrators) { call in
            try await self.changeUser(call)
        }
        route(router, .delete, "/api/v1/users/{user}", .administrators) { call in
            let account = try await self.visibleAccount(call)
            try self.mayManage(account, call.principal)
            guard account.name != call.principal.name else {
                throw APIError.conflict("you cannot delete the account you are logged in as: ask another administrator")
            }
            try await self.accounts().deleteAccount(account.name)
            try self.database.forget(account: account.name)
            self.audit(call, "user.delete", target: account.name, domain: Principal.domain(of: account.name),
                       detail: "\(account.messagesUsed) message(s), \(account.bytesUsed) bytes")
            return Self.noContent()
        }
    }

    /// The `{user}` of the path, when the caller may see it and it exists; "no user" otherwise.
    func visibleAccount(_ call: Call) async throws -> AccountInfo {
        let name = try visibleAddress(call, kind: "user", parameter: "user")
        guard let account = try await accounts().account(name) else { throw APIError.notFound(kind: "user", id: name) }
        return account
    }

    /// Domain administrators leave site administrators' accounts alone.
    func mayManage(_ account: AccountInfo, _ principal: Principal) throws {
        if principal.role != .siteAdmin && account.adminLevel == Principal.Role.siteAdmin.rawValue {
            throw APIError.forbidden("a site administrator's account is managed by site administrators only")
        }
    }

    /// The `level` a body asks for, if any, when the caller may give it.
    func level(_ body: JSONBody, _ principal: Principal) throws -> UserRecord.AdminLevel? {
        guard let text = try body.string("level") else { return nil }
        guard let level = UserRecord.AdminLevel(rawValue: text) else { throw APIError.badRequest("'level' is user, domain-admin or site-admin") }
        if level == .siteAdmin && principal.role != .siteAdmin {
            throw APIError.forbidden("only site administrators make site administrators")
        }
        return level
    }

    private func changeUser(_ call: Call) async throws -> Response {
        let account = try await visibleAccount(call)
        try mayManage(account, call.principal)
        let body = try await call.body()
        let accounts = try self.accounts()
        let domain = Principal.domain(of: account.name)
        var changed: [String] = []
        // Everything is checked before anything changes.
        let level = try level(body, call.principal)
        let password = try body.string("password")
        let enabled = try body.bool("enabled")
        let delegated = try body.strings("delegatedDomains")
        if delegated != nil && call.principal.role != .siteAdmin { throw APIError.forbidden("only site administrators delegate domains") }
        if let delegated {
            let known = Set(try await accounts.domains())
            if let unknown = delegated.first(where: { !known.contains($0.lowercased()) }) { throw APIError.notFound(kind: "domain", id: unknown) }
        }
        if account.name == call.principal.name && (enabled == false || (level != nil && level!.rawValue != account.adminLevel)) {
            throw APIError.conflict("you cannot suspend or change the level of the account you are logged in as")
        }
        let quotaGiven = body.has("quotaBytes") || body.has("quotaMessages")
        let quotaBytes = body.has("quotaBytes") ? try body.int("quotaBytes") : account.quotaBytes
        let quotaMessages = body.has("quotaMessages") ? try body.int("quotaMessages") : account.quotaMessages

        if let password {
            try await accounts.setPassword(account: account.name, password: password)
            try database.endSessions(account: account.name)
            changed.append("password")
        }
        if let enabled, enabled != account.enabled {
            try await accounts.setEnabled(account: account.name, enabled: enabled)
            if !enabled { try database.endSessions(account: account.name) }
            changed.append(enabled ? "enabled" : "suspended")
        }
        if quotaGiven {
            try await accounts.setQuota(account: account.name, bytes: quotaBytes, messages: quotaMessages)
            changed.append("quota \(quotaBytes.map(String.init) ?? "unlimited") bytes, \(quotaMessages.map(String.init) ?? "unlimited") messages")
        }
        if let level, level.rawValue != account.adminLevel {
            try await accounts.setAdminLevel(account: account.name, level: level)
            changed.append("level \(level.rawValue)")
        }
        if let delegated {
            try database.setDelegatedDomains(account: account.name, delegated)
            changed.append("delegated domains \(delegated.sorted().joined(separator: " "))")
        }
        if !changed.isEmpty { audit(call, "user.change", target: account.name, domain: domain, detail: changed.joined(separator: "; ")) }
        guard let now = try await accounts.account(account.name) else { throw APIError.notFound(kind: "user", id: account.name) }
        return Self.json(UserDetail(now, delegated: try database.delegatedDomains(account: now.name)))
    }
}
