import Foundation

/// What an app password may be used for: the protocol whose login it passes. Clients that cannot
/// do a site's main mechanism (OAuth, Kerberos) get a password of their own, limited to the
/// protocols they need and revocable without touching the account's password.
public enum AppPasswordScope: String, Sendable, Codable, CaseIterable, Comparable {
    case imap
    case pop3
    /// SMTP AUTH (submission).
    case smtp

    /// The scope of a SASL service name (`SASLExchangeContext.service`: `imap`, `pop`, `smtp`).
    public init?(service: String) {
        switch service.lowercased() {
        case "imap": self = .imap
        case "pop", "pop3": self = .pop3
        case "smtp", "submission": self = .smtp
        default: return nil
        }
    }

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// One app password as listed: never the secret, which is shown once when it is made.
public struct AppPasswordInfo: Sendable, Codable, Equatable {
    public var name: String
    public var scopes: [AppPasswordScope]
    /// Seconds since 1970.
    public var created: Int64
    /// The last successful login with it, if any.
    public var lastUsed: Int64?

    public init(name: String, scopes: [AppPasswordScope], created: Int64, lastUsed: Int64?) {
        self.name = name
        self.scopes = scopes
        self.created = created
        self.lastUsed = lastUsed
    }
}

/// An account store that keeps app passwords (the SQLite store does).
public protocol AppPasswordStore: Sendable {
    /// Makes a new app password named `name` (unique per account) and returns its secret, the only
    /// time it is seen: the store keeps a hash.
    func createAppPassword(account: String, name: String, scopes: Set<AppPasswordScope>) async throws -> String
    func appPasswords(account: String) async throws -> [AppPasswordInfo]
    /// Revokes one by name; throws `AccountError.noSuchAppPassword` when there is none.
    func revokeAppPassword(account: String, name: String) async throws
}

/// The secrets of app passwords: generated, never chosen, so they carry enough entropy (119 bits)
/// for one SHA-256 to be the stored form, with no per-password salt or stretching to pay at each
/// login; the login looks the hash up instead of trying each password of the account.
public enum AppPasswordSecret {
    /// Lower-case letters and digits without look-alikes (no 0/o, 1/l/i): 31 symbols.
    static let alphabet = Array("abcdefghjkmnpqrstuvwxyz23456789".utf8)

    /// 24 random symbols in four groups of six (`abcdef-ghjkmn-...`), easy to type into a phone.
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let symbols = (0..<24).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] }
        return stride(from: 0, to: 24, by: 6).map { String(decoding: symbols[$0..<$0 + 6], as: UTF8.self) }.joined(separator: "-")
    }

    /// The stored form: SHA-256 of the secret with dashes and spaces removed and letters lowered,
    /// so a password typed in groups or in capitals still matches.
    public static func hash(_ secret: String) -> String {
        let canonical = secret.lowercased().filter { $0 != "-" && $0 != " " }
        return SHA256.hash(data: Array(canonical.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Whether `password` has the shape of a generated app password (cheap test before a lookup).
    public static func looksLikeAppPassword(_ password: String) -> Bool {
        let canonical = password.lowercased().filter { $0 != "-" && $0 != " " }
        return canonical.utf8.count == 24 && canonical.utf8.allSatisfy { alphabet.contains($0) }
    }
}
