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

        public init(domain: String, login: String, passwordFile: String) {
            self.domain = domain
            self.login = login
            self.passwordFile = passwordFile
        }
    }

    /// The file that holds the first account's login and password, in the data directory.
    public static func passwordFile(_ config: HostConfig) -> String { config.dataDirectory + "/first-account.txt" }

    /// The lines a new user reads: what was created and how to use it.
    public static func announcement(_ account: Account) -> [String] {
        ["first run: created the domain \(account.domain) and the account \(account.login) (site administrator)",
         "first run: its login and password are in \(account.passwordFile) (readable by its owner only)",
         "first run: add accounts with `postern admin user add NAME@\(account.domain)`; the README's quick start sends a first message"]
    }
}
