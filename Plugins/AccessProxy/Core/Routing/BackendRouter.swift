import Crypto
import Foundation
import PluginAPI

/// One back-end store an access proxy logs users in to.
struct Backend: Sendable, Equatable {
    enum TLS: String, Sendable {
        case none, implicit, starttls
    }

    var name: String
    var host: String
    /// IMAP.
    var port: Int
    var pop3Port: Int = 110
    var tls: TLS
    var verifyCertificate: Bool
    /// Whether users no entry or table names may be hashed to it. A store added with `false`
    /// takes only the accounts routed to it by name: the others stay where they are until moved.
    var hashed = true
    /// Back ends of one group share their store's database (store-postgres): any of them serves
    /// the group's accounts, so a login goes on to another when one is down. Routes may name the
    /// group instead of a back end.
    var group: String?
}

/// Which back end holds a user's mail: a static entry (the account, or `@domain`), then the
/// lookup tables (a table-file, the ldap plugin's mailHost table), then a hash over the back ends
/// (rendezvous hashing: adding a back end moves only the users that hash to it). A table's value
/// is a back end's name, or `host:port` of one. Pure but for the tables.
struct BackendRouter: Sendable {
    let backends: [Backend]
    /// `user@domain` or `@domain` (lower-cased) to a back end's name.
    let entries: [String: String]
    let tables: [String]
    let hashUnlisted: Bool

    enum Route: Equatable {
        case backend(Backend)
        /// The user's entry names no configured back end.
        case unknown(String)
        /// No entry and no hashing: the user has no store.
        case none
    }

    func route(_ user: String, directory: Directory) async throws -> Route {
        let account = user.lowercased()
        let domain = account.split(separator: "@", maxSplits: 1).count == 2 ? "@" + account.split(separator: "@", maxSplits: 1)[1] : nil
        var named = entries[account] ?? domain.flatMap { entries[$0] }
        if named == nil, !tables.isEmpty {
            named = try await directory.lookup(account, in: tables)?.first
            if named == nil, let domain { named = try await directory.lookup(domain, in: tables)?.first }
        }
        if let named { return resolve(named, user: account) }
        guard hashUnlisted, let chosen = Self.rendezvous(account, backends.filter(\.hashed)) else { return .none }
        return .backend(chosen)
    }

    /// A back end by name, a group by name (its member this user hashes to), or `host:port`
    /// among the configured ones.
    func resolve(_ value: String, user: String = "") -> Route {
        let v = value.trimmingCharacters(in: .whitespaces)
        if let b = backends.first(where: { $0.name == v }) { return .backend(b) }
        if let b = Self.rendezvous(user.lowercased(), backends.filter { $0.group == v }) { return .backend(b) }
        if let b = backends.first(where: { "\($0.host):\($0.port)" == v || $0.host == v }) { return .backend(b) }
        return .unknown(v)
    }

    /// Where a login for `user` goes, in order: `primary`, then the other members of its group
    /// (in the user's hash order, so a user's fallback is stable too).
    func candidates(_ primary: Backend, user: String) -> [Backend] {
        guard let group = primary.group else { return [primary] }
        let others = backends.filter { $0.group == group && $0.name != primary.name }
            .sorted { Self.weight(user.lowercased(), $0.name) > Self.weight(user.lowercased(), $1.name) }
        return [primary] + others
    }

    /// The back end with the highest hash of (user, back end): stable while the list changes
    /// elsewhere.
    static func rendezvous(_ user: String, _ backends: [Backend]) -> Backend? {
        backends.max { weight(user, $0.name) < weight(user, $1.name) }
    }

    static func weight(_ user: String, _ backend: String) -> UInt64 {
        let digest = SHA256.hash(data: Data((backend + "\u{0}" + user).utf8))
        return digest.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }
}
