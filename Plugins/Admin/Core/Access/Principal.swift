import Foundation
import PluginAPI

/// Who is calling the API, and what they may see. A domain administrator's view of the system is
/// their domains and nothing else: every identifier outside them (a domain, an account, an alias,
/// a queue entry, an audit line) is answered exactly as one that does not exist, so that nothing
/// tells them another domain is there.
struct Principal: Sendable, Equatable {
    enum Role: String, Sendable, Codable {
        case siteAdmin = "site-admin"
        case domainAdmin = "domain-admin"
        case user
    }

    /// The account, `local@domain`.
    var name: String
    var role: Role
    /// The domains a domain administrator manages: their account's own and those a site
    /// administrator delegated to them. Empty for the other roles (site administrators see all).
    var domains: Set<String>
    /// How the request was authenticated: `session` (the console) or `token:ID` (a script).
    var via: String
    /// A console session's CSRF token, which every change must carry (nil for tokens).
    var csrf: String? = nil

    var isAdmin: Bool { role != .user }

    /// Whether this principal may see `domain` (and everything in it).
    func sees(domain: String) -> Bool {
        switch role {
        case .siteAdmin: return true
        case .domainAdmin: return domains.contains(domain.lowercased())
        case .user: return false
        }
    }

    /// Whether this principal may see the account or alias `address` (`@domain` is a catch-all).
    func sees(address: String) -> Bool {
        guard let domain = Self.domain(of: address) else { return role == .siteAdmin }
        return sees(domain: domain)
    }

    /// The domain part of an address, lower-cased; nil without one.
    static func domain(of address: String) -> String? {
        guard let at = address.lastIndex(of: "@") else { return nil }
        let domain = address[address.index(after: at)...]
        return domain.isEmpty ? nil : domain.lowercased()
    }

    /// The principal an account is: its level from the store, and for a domain administrator the
    /// domains they manage (their own, plus `delegated`).
    static func of(_ account: AccountInfo, delegated: [String], via: String) -> Principal {
        let role = Role(rawValue: account.adminLevel) ?? .user
        var domains = Set<String>()
        if role == .domainAdmin {
            if let own = domain(of: account.name) { domains.insert(own) }
            domains.formUnion(delegated.map { $0.lowercased() })
        }
        return Principal(name: account.name, role: role, domains: domains, via: via)
    }
}

/// A message as one principal may see it, queued or in a report: visible when its sender or one
/// of its recipients is in the principal's domains (narrowed to `domain` when given); a domain
/// administrator sees only the recipients of their domains unless the sender is theirs (then the
/// message is theirs to manage). The one rule for both the queue and the reports.
extension Principal {
    /// The recipients this principal may see of a message from `sender`; nil when it may not see
    /// the message at all.
    func visibleRecipients(sender: String?, recipients: [String], within domain: String? = nil) -> [String]? {
        func inScope(_ address: String?) -> Bool {
            guard let address, let d = Principal.domain(of: address) else { return false }
            return sees(domain: d) && (domain == nil || d == domain)
        }
        if role == .siteAdmin && domain == nil { return recipients }
        if inScope(sender) { return recipients }
        let mine = recipients.filter(inScope)
        return mine.isEmpty ? nil : mine
    }

    func view(of entry: QueueSummary) -> QueueSummary? {
        guard let mine = visibleRecipients(sender: entry.sender, recipients: entry.pending.map(\.address)) else { return nil }
        var view = entry
        if mine.count != entry.pending.count { view.pending = entry.pending.filter { mine.contains($0.address) } }
        return view
    }
}

/// A principal as a console names it to a node (`X-Postern-Principal`): base64 of a JSON object
/// with the account, its role and its domains. A node takes it only from a console certificate
/// (`AdminAPI.nodeCaller`), so the console's delegations bound what the node shows.
extension Principal {
    private struct Forwarded: Codable {
        var name: String
        var role: Role
        var domains: [String]
    }

    var forwarded: String {
        let data = (try? JSONEncoder().encode(Forwarded(name: name, role: role, domains: domains.sorted()))) ?? Data()
        return data.base64EncodedString()
    }

    init?(forwarded text: String, via: String) {
        guard text.utf8.count <= 64 * 1024, let data = Data(base64Encoded: text),
              let f = try? JSONDecoder().decode(Forwarded.self, from: data), !f.name.isEmpty else { return nil }
        self.init(name: f.name, role: f.role, domains: f.role == .domainAdmin ? Set(f.domains.map { $0.lowercased() }) : [], via: via)
    }
}
