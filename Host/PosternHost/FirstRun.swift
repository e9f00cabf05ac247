import Foundation
import PluginAPI

/// A new installation's first account, so that `postern serve` on an empty data directory is a
/// mail system somebody can log in to: a local domain and `postmaster@DOMAIN` (RFC 5321 §4.5.1
/// requires that mailbox anyway), a site administrator with a generated password written to a
/// file only its owner can read. Nothing happens when the store already has a domain.
///
/// Runs in a tool process (`postern admin init`), which the master starts before its workers:
/// the master itself never maps a plugin.
public enum FirstRun {
    public struct Account: Sendable, Codable, Equatable {
        public var domain: String
        public var login: String
        /// Where the password is: the first line `login`, the second the password.
        public var passwordFile: String
    }

    /// The file that holds the first account's login and password, in the data directory.
    public static func passwordFile(_ config: HostConfig) -> String { config.dataDirectory + "/first-account.txt" }

    /// The first domain: the host's name when it is a domain name (has a dot), else
    /// `localhost.localdomain` with the short name in front (`box.localdomain`).
    public static func defaultDomain(hostName: String = ProcessInfo.processInfo.hostName) -> String {
        let name = hostName.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "."))
        if name.contains("."), name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" }) { return name }
        let short = name.split(separator: ".").first.map(String.init) ?? ""
        let usable = !short.isEmpty && short.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "-" }
        return (usable ? short : "localhost") + ".localdomain"
    }

    /// 20 characters from a 56-letter alphabet without look-alikes (about 116 bits).
    public static func generatePassword() -> String {
        let alphabet = Array("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<20).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] })
    }

    /// Creates the first domain and account when the store has no domain; nil when it has one
    /// (or the config keeps no accounts). The password file is written (0600, fsynced) before
    /// the account exists, so an account is never created whose password nobody can read.
    public static func prepare(_ context: AdminContext, domain: String? = nil) async throws -> Account? {
        guard let accounts = context.services.accounts else { return nil }
        guard try await accounts.domains().isEmpty else { return nil }
        let domain = (domain ?? defaultDomain()).lowercased()
        let login = "postmaster@\(domain)"
        let password = generatePassword()
        let file = passwordFile(context.config)
        try writeSecret(file, "\(login)\n\(password)\n")
        try await accounts.createDomain(domain)
        _ = try await accounts.createAccount(NewAccount(name: login, password: password, adminLevel: .siteAdmin,
                                                        quotaBytes: nil, quotaMessages: nil))
        return Account(domain: domain, login: login, passwordFile: file)
    }

    /// The lines a new user reads: what was created and how to use it.
    public static func announcement(_ account: Account) -> [String] {
        ["first run: created the domain \(account.domain) and the account \(account.login) (site administrator)",
         "first run: its login and password are in \(account.passwordFile) (readable by its owner only)",
         "first run: add accounts with `postern admin user add NAME@\(account.domain)`; the README's quick start sends a first message"]
    }

    static func writeSecret(_ path: String, _ text: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SystemError.call("create \(path)", errno) }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(fd) == 0 else { throw SystemError.call("write \(path)", errno) }
    }
}
