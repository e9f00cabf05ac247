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
            } else if call.principal.role == .siteAdmin {
                rows = try await accounts.accounts(domain: nil)
            } else {
                // A domain administrator's domains one by one: never the whole store's accounts.
                rows = []
                for domain in call.principal.domains.sorted() { rows += try await accounts.accounts(domain: domain) }
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

/// Bulk creation from a CSV or HR export (`UserImport`: columns email, password or hash, quota,
/// admin; or a Dovecot passwd-file), with a dry run that reports what would be refused and why,
/// line by line, and creates nothing.
extension AdminAPI {
    struct ImportReport: Encodable {
        var dryRun: Bool
        /// Rows that pass every check (and, unless a dry run, were created).
        var imported: Int
        var refused: [Refusal]
        /// Domains the file names that do not exist (created first with `createDomains=true`).
        var newDomains: [String]

        struct Refusal: Encodable {
            var line: Int
            var reason: String
        }
    }

    func addImportRoutes(_ router: Router<AdminRequestContext>) {
        route(router, .post, "/api/v1/users/import", .administrators) { call in
            let dryRun = call.query("dryRun") == "true"
            let createDomains = call.query("createDomains") == "true"
            if createDomains && call.principal.role != .siteAdmin { throw APIError.forbidden("only site administrators create domains") }
            let bytes = try await call.rawBody()
            let plan: UserImport.Plan
            do {
                plan = try UserImport.plan(Array(buffer: bytes))
            } catch let error as UserImport.FileError {
                throw APIError.badRequest(error.description)
            }
            // A long import runs in the background: the answer is the job, whose progress
            // GET /api/v1/jobs/ID tells until it holds the report.
            if call.query("background") == "true" && !dryRun {
                let job = try self.database.createJob(owner: call.principal.name, kind: "user.import", total: plan.rows.count)
                Task {
                    do {
                        let report = try await self.importAccounts(plan, call: call, dryRun: false, createDomains: createDomains) { done, total in
                            try? self.database.progressJob(job.id, done: done, total: total)
                        }
                        self.auditImport(call, report)
                        try self.database.finishJob(job.id, result: report, error: nil)
                    } catch {
                        self.logger.error("admin import failed", metadata: ["job": "\(job.id)", "error": "\(error)"])
                        try? self.database.finishJob(job.id, result: "", error: "the import failed: \(error)")
                    }
                }
                var response = Self.json(job, status: .accepted)
                response.headers[.location] = "/api/v1/jobs/\(job.id)"
                return response
            }
            let report = try await self.importAccounts(plan, call: call, dryRun: dryRun, createDomains: createDomains)
            if !dryRun { self.auditImport(call, report) }
            return Self.json(report)
        }
        route(router, .get, "/api/v1/jobs/{id}", .anyone) { call in
            let id = try call.parameter("id")
            // Someone else's job reads as one that does not exist (a site administrator sees all).
            guard let job = try self.database.job(id), job.owner == call.principal.name || call.principal.role == .siteAdmin else {
                throw APIError.notFound(kind: "job", id: id)
            }
            return Self.json(job)
        }
    }

    /// An import that created nothing changed nothing (the report said why to the caller).
    private func auditImport(_ call: Call, _ report: ImportReport) {
        guard report.imported > 0 || !report.newDomains.isEmpty else { return }
        audit(call, "user.import", target: "\(report.imported) account(s)",
              domain: call.principal.role == .siteAdmin ? nil : call.principal.domains.sorted().first,
              detail: "imported \(report.imported), refused \(report.refused.count)"
                  + (report.newDomains.isEmpty ? "" : "; new domains \(report.newDomains.joined(separator: " "))"))
    }

    private func importAccounts(_ plan: UserImport.Plan, call: Call, dryRun: Bool, createDomains: Bool,
                                progress: (@Sendable (Int, Int) async -> Void)? = nil) async throws -> ImportReport {
        let accounts = try self.accounts()
        let existing = Set(try await accounts.domains())
        var refused = plan.refused
        var rows: [UserImport.Row] = []
        var newDomains: [String] = []
        for row in plan.rows {
            let domain = Principal.domain(of: row.account.name) ?? ""
            // Another administrator's domain reads exactly as one that does not exist.
            if !call.principal.sees(domain: domain) || (!existing.contains(domain) && !createDomains) {
                refused.append(UserImport.Refusal(line: row.line, reason: AccountError.noSuchDomain(domain).description))
            } else if row.account.adminLevel == .siteAdmin && call.principal.role != .siteAdmin {
                refused.append(UserImport.Refusal(line: row.line, reason: "only site administrators make site administrators"))
            } else {
                if !existing.contains(domain) && !newDomains.contains(domain) { newDomains.append(domain) }
                rows.append(row)
            }
        }
        var imported = 0
        if dryRun {
            // What the store would refuse: accounts that exist already.
            var taken = Set<String>()
            for domain in Set(rows.compactMap { Principal.domain(of: $0.account.name) }) where existing.contains(domain) {
                taken.formUnion(try await accounts.accounts(domain: domain).map { $0.name.lowercased() })
            }
            for row in rows {
                if taken.contains(row.account.name.lowercased()) {
                    refused.append(UserImport.Refusal(line: row.line, reason: AccountError.accountExists(row.account.name).description))
                } else {
                    imported += 1
                }
            }
        } else {
            let report = try await UserImport.run(UserImport.Plan(rows: rows, refused: [], domains: newDomains), on: accounts,
                                                  createDomains: createDomains, batchSize: 500, progress: progress)
            imported = report.imported
            refused += report.refused
        }
        return ImportReport(dryRun: dryRun, imported: imported,
                            refused: refused.sorted { $0.line < $1.line }.map { ImportReport.Refusal(line: $0.line, reason: $0.reason) },
                            newDomains: newDomains)
    }
}
