import ArgumentParser
import Foundation
import PluginAPI

/// `postern admin user app-password add|list|revoke`: named passwords limited to some protocols,
/// for clients that cannot do the site's main mechanism. The secret is printed once, at `add`.
extension Admin.UserCommand {
    struct AppPassword: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "app-password", abstract: "App passwords: generated, limited to some protocols, revocable one by one.",
            subcommands: [Add.self, List.self, Revoke.self])

        static func store(_ ctx: AdminContext) throws -> any AppPasswordStore {
            guard let store = try ctx.accounts() as? any AppPasswordStore else {
                throw ValidationError("the account store of this config keeps no app passwords")
            }
            return store
        }

        static func json<T: Encodable>(_ value: T) throws -> String {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            return String(decoding: try encoder.encode(value), as: UTF8.self)
        }

        struct Add: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Make an app password and print it (shown only this once).")
            @OptionGroup var options: ConfigOption
            @Argument(help: "The account.") var account: String
            @Argument(help: "A name to tell it by (\"phone\").") var name: String
            @Option(help: "Comma-separated protocols it may log in to: imap, pop3, smtp.") var scope = "imap,pop3,smtp"
            @Flag(help: "JSON instead of text.") var json = false

            func run() throws {
                var scopes = Set<AppPasswordScope>()
                for part in scope.split(separator: ",") {
                    let word = part.trimmingCharacters(in: .whitespaces).lowercased()
                    guard let s = AppPasswordScope(rawValue: word) else {
                        throw ValidationError("unknown scope '\(word)': use imap, pop3 or smtp")
                    }
                    scopes.insert(s)
                }
                guard !scopes.isEmpty else { throw ValidationError("--scope names no protocol") }
                let (account, name, chosen) = (self.account, self.name, scopes)
                let secret = try runAdmin(options) { ctx in
                    try await AppPassword.store(ctx).createAppPassword(account: account, name: name, scopes: chosen)
                }
                if json {
                    print(try AppPassword.json(["account": account, "name": name, "password": secret,
                                                "scopes": scopes.sorted().map(\.rawValue).joined(separator: ",")]))
                } else {
                    print("app password '\(name)' of \(account) (\(scopes.sorted().map(\.rawValue).joined(separator: ", "))): \(secret)")
                    print("It is shown only now; use it in place of the account's password in the client.")
                }
            }
        }

        struct List: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "An account's app passwords: name, scopes, created, last used.")
            @OptionGroup var options: ConfigOption
            @Argument var account: String
            @Flag(help: "JSON instead of text.") var json = false

            func run() throws {
                let account = self.account
                let list = try runAdmin(options) { ctx in try await AppPassword.store(ctx).appPasswords(account: account) }
                if json { return print(try AppPassword.json(list)) }
                func date(_ t: Int64?) -> String { t.map { "\(Date(timeIntervalSince1970: TimeInterval($0)))" } ?? "never" }
                for p in list {
                    print("\(p.name)\t\(p.scopes.map(\.rawValue).joined(separator: ","))\tcreated \(date(p.created))\tlast used \(date(p.lastUsed))")
                }
                print("\(list.count) app password(s)")
            }
        }

        struct Revoke: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Revoke one app password by name.")
            @OptionGroup var options: ConfigOption
            @Argument var account: String
            @Argument var name: String

            func run() throws {
                let (account, name) = (self.account, self.name)
                try runAdmin(options) { ctx in try await AppPassword.store(ctx).revokeAppPassword(account: account, name: name) }
                print("app password '\(name)' of \(account) revoked")
            }
        }
    }
}
