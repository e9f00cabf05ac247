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

/// A queued message as one principal may see it: visible when its sender or one of its pending
/// recipients is in the principal's domains; a domain administrator sees only the recipients of
/// their domains unless the sender is theirs (then the message is theirs to manage).
extension Principal {
    func view(of entry: QueueSummary) -> QueueSummary? {
        if role == .siteAdmin { return entry }
        guard role == .domainAdmin else { return nil }
        if sees(address: entry.sender) { return entry }
        let mine = entry.pending.filter { sees(address: $0.address) }
        guard !mine.isEmpty else { return nil }
        var view = entry
        view.pending = mine
        return view
    }
}
