// Kerberos principals to mail accounts and back, without I/O (Tests/KerberosTests).

/// Maps `name@REALM` to `name@domain` by a configured realm -> domain table, and a login name
/// (`name@domain`) back to the principal whose password the KDC checks.
struct PrincipalMap: Sendable, Equatable {
    /// REALM (as written in the config, compared exactly: realms are case-sensitive) -> mail domain.
    let realms: [String: String]

    init(realms: [String: String]) {
        self.realms = realms.mapValues { $0.lowercased() }
    }

    /// The account a principal maps to, or nil when its realm is not mapped or it is not a plain
    /// user principal. Principals with an instance (`alice/admin@REALM`, `imap/host@REALM`) never
    /// map: a service key or an admin key is not a mail login.
    func account(forPrincipal principal: String) -> String? {
        guard let at = principal.lastIndex(of: "@") else { return nil }
        let name = principal[..<at]
        let realm = String(principal[principal.index(after: at)...])
        guard !name.isEmpty, !name.contains("/"), !name.contains("@"), !name.contains("\\"),
              let domain = realms[realm] else { return nil }
        return "\(name.lowercased())@\(domain)"
    }

    /// The principal a login name's password is checked against: `alice@example.org` ->
    /// `alice@EXAMPLE.ORG` when that realm maps to the domain (the first realm in sorted order
    /// when several do). Nil for a domain no realm maps to.
    func principal(forUser user: String) -> String? {
        guard let at = user.lastIndex(of: "@") else { return nil }
        let name = user[..<at]
        let domain = user[user.index(after: at)...].lowercased()
        guard !name.isEmpty, !name.contains("/"), !name.contains("@"), !name.contains("\\"),
              let realm = realms.filter({ $0.value == domain }).keys.sorted().first else { return nil }
        return "\(name)@\(realm)"
    }
}
