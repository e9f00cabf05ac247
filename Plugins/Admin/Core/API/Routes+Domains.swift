import Foundation
import PluginAPI
import PluginHTTP

/// Domains and aliases (catch-alls included). A domain administrator lists their domains only,
/// and any other domain or address is answered as one that does not exist.
extension AdminAPI {
    struct DomainSummary: Encodable {
        var name: String
        var accounts: Int
        var aliases: Int
        /// The targets of the domain's catch-all alias (`@domain`), if it has one.
        var catchAll: [String]?
        /// Domain administrators of this domain (their own domain or delegated to them).
        var administrators: [String]?
    }

    func addDomainRoutes(_ router: Router<AdminRequestContext>) {
        route(router, .get, "/api/v1/domains", .administrators) { call in
            let accounts = try self.accounts()
            let visible = try await accounts.domains().filter { call.principal.sees(domain: $0) }
            let q = call.query("q")?.lowercased()
            // Site administrators: the whole store in two reads; domain administrators: their domains'.
            let whole = call.principal.role == .siteAdmin
            var all: [AccountInfo] = [], aliases: [MailAlias] = []
            for domain in whole ? [nil] : visible.map(Optional.some) {
                all += try await accounts.accounts(domain: domain)
                aliases += try await accounts.aliases(domain: domain)
            }
            var counts: [String: (Int, Int)] = [:]
            for a in all { if let d = Principal.domain(of: a.name) { counts[d, default: (0, 0)].0 += 1 } }
            for a in aliases { if let d = Principal.domain(of: a.address) { counts[d, default: (0, 0)].1 += 1 } }
            let rows = visible.filter { q == nil || $0.contains(q!) }.sorted().map { d in
                DomainSummary(name: d, accounts: counts[d]?.0 ?? 0, aliases: counts[d]?.1 ?? 0,
                              catchAll: aliases.first { $0.address == "@" + d }?.targets)
            }
            return try self.table(call, rows, columns: ["name", "accounts", "aliases"]) { [$0.name, "\($0.accounts)", "\($0.aliases)"] }
        }
        route(router, .post, "/api/v1/domains", .site) { call in
            let name = try await call.body().string("name", required: true)!.lowercased()
            try await self.accounts().createDomain(name)
            self.audit(call, "domain.create", target: name, domain: name)
            return Self.json(DomainSummary(name: name, accounts: 0, aliases: 0), status: .created)
        }
        route(router, .get, "/api/v1/domains/{domain}", .administrators) { call in
            let name = try await self.visibleDomain(call)
            let accounts = try self.accounts()
            let users = try await accounts.accounts(domain: name)
            let aliases = try await accounts.aliases(domain: name)
            var administrators = users.filter { $0.adminLevel == Principal.Role.domainAdmin.rawValue }.map(\.name)
            administrators += try self.database.delegates(domain: name)
            return Self.json(DomainSummary(name: name, accounts: users.count, aliases: aliases.count,
                                           catchAll: aliases.first { $0.address == "@" + name }?.targets,
                                           administrators: Array(Set(administrators)).sorted()))
        }
        route(router, .delete, "/api/v1/domains/{domain}", .site) { call in
            let name = try await self.visibleDomain(call)
            let accounts = try self.accounts()
            // `?accounts=delete` takes the domain's accounts, with all their mail, along.
            var removed = 0
            if call.query("accounts") == "delete" {
                for account in try await accounts.accounts(domain: name) {
                    try await accounts.deleteAccount(account.name)
                    try self.database.forget(account: account.name)
                    removed += 1
                }
                for alias in try await accounts.aliases(domain: name) { try await accounts.setAlias(alias.address, targets: []) }
            }
            try await accounts.deleteDomain(name)
            try self.database.forget(domain: name)
            self.audit(call, "domain.delete", target: name, domain: name, detail: removed > 0 ? "with \(removed) account(s)" : "")
            return Self.noContent()
        }
        route(router, .get, "/api/v1/domains/{domain}/aliases", .administrators) { call in
            let name = try await self.visibleDomain(call)
            let aliases = try await self.accounts().aliases(domain: name).sorted { $0.address < $1.address }
            return try self.table(call, aliases, columns: ["address", "targets"]) { [$0.address, $0.targets.joined(separator: " ")] }
        }
        route(router, .get, "/api/v1/aliases/{address}", .administrators) { call in
            let address = try self.visibleAddress(call, kind: "alias")
            guard let targets = try await self.accounts().alias(address) else { throw APIError.notFound(kind: "alias", id: address) }
            return Self.json(MailAlias(address: address, targets: targets))
        }
        route(router, .put, "/api/v1/aliases/{address}", .administrators) { call in
            let address = try self.visibleAddress(call, kind: "alias")
            let targets = try await call.body().strings("targets") ?? []
            guard !targets.isEmpty else { throw APIError.badRequest("'targets' must name at least one address (DELETE removes an alias)") }
            do {
                try await self.accounts().setAlias(address, targets: targets)
            } catch AccountError.noSuchDomain {
                throw APIError.notFound(kind: "alias", id: address)
            }
            self.audit(call, "alias.set", target: address, domain: Principal.domain(of: address), detail: targets.joined(separator: ", "))
            return Self.json(MailAlias(address: address, targets: targets))
        }
        route(router, .delete, "/api/v1/aliases/{address}", .administrators) { call in
            let address = try self.visibleAddress(call, kind: "alias")
            let accounts = try self.accounts()
            guard try await accounts.alias(address) != nil else { throw APIError.notFound(kind: "alias", id: address) }
            try await accounts.setAlias(address, targets: [])
            self.audit(call, "alias.delete", target: address, domain: Principal.domain(of: address))
            return Self.noContent()
        }
    }

    /// The `{domain}` of the path, when the caller may see it and it exists; otherwise the same
    /// "no domain" either way.
    func visibleDomain(_ call: Call) async throws -> String {
        let name = try call.parameter("domain").lowercased()
        guard call.principal.sees(domain: name), try await accounts().domains().contains(name) else {
            throw APIError.notFound(kind: "domain", id: name)
        }
        return name
    }

    /// The `{address}` (or `{user}`) of the path, when the caller may see its domain.
    func visibleAddress(_ call: Call, kind: String, parameter: String = "address") throws -> String {
        let address = try call.parameter(parameter).lowercased()
        guard call.principal.sees(address: address) else { throw APIError.notFound(kind: kind, id: address) }
        return address
    }
}
