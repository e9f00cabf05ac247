/// An account store that can say which password schemes its accounts are on (`postern admin auth
/// report`): how far the migration of imported legacy hashes to SCRAM keys has come. A separate
/// protocol, so stores without legacy hashes need not implement it.
public protocol PasswordSchemeReporting: Sendable {
    func passwordSchemeReport() async throws -> PasswordSchemeReport
}

/// Per domain: accounts per scheme (`SCRAM-SHA-256`, or a `LegacyPasswordHash.Scheme` name such
/// as `SHA512-CRYPT`), and how many accounts were migrated from a legacy hash so far.
public struct PasswordSchemeReport: Sendable, Equatable, Codable {
    public struct Domain: Sendable, Equatable, Codable {
        public var accounts: [String: Int]
        public var migrated: Int

        public init(accounts: [String: Int] = [:], migrated: Int = 0) {
            self.accounts = accounts
            self.migrated = migrated
        }

        /// Accounts still on a legacy hash (anything but SCRAM keys).
        public var legacy: Int { accounts.filter { !$0.key.hasPrefix("SCRAM-") }.values.reduce(0, +) }
    }

    public var domains: [String: Domain]

    public init(domains: [String: Domain] = [:]) {
        self.domains = domains
    }

    /// One line per domain and scheme, sorted: `example.org  SHA512-CRYPT  3`, then the domain's
    /// migrated count.
    public var lines: [String] {
        var out: [String] = []
        for domain in domains.keys.sorted() {
            let d = domains[domain]!
            for scheme in d.accounts.keys.sorted() { out.append("\(domain)\t\(scheme)\t\(d.accounts[scheme]!)") }
            out.append("\(domain)\tmigrated\t\(d.migrated)")
        }
        return out
    }
}
