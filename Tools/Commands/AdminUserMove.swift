import ArgumentParser
import Foundation
import PluginAPI
import PosternHost
import PosternImport

extension Admin.UserCommand {
    /// `postern admin user move`: run on the node the account moves to (UserMove in PosternImport).
    struct Move: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy an account from another IMAP server (a Postern store, a Dovecot) into this store, UIDs kept.",
            discussion: """
                Run it on the node the account moves to. Every mailbox is copied with its UIDVALIDITY, UIDs, flags \
                and (when the source has CONDSTORE) MODSEQs, so clients resynchronise nothing; rounds repeat until \
                one finds nothing new. --then runs the switch-over (point the routing entry at this store and \
                reload the proxies; for LDAP routing, change mailHost), --settle waits for the sessions still open \
                on the source to end, and final rounds carry over what reached the source meanwhile. The source \
                keeps its copy: to roll back, switch the route back and move the account again from this store, \
                which copies only what changed.
                """)
        @OptionGroup var options: ConfigOption
        @Argument(help: "The account, as this store names it.") var account: String
        @Option(help: "The source: imap://HOST:PORT, imaps://HOST:PORT or imap+starttls://HOST:PORT.") var from: String
        @Option(help: "The account's name at the source (default: the same).") var sourceUser: String?
        @Option(help: "Log in at the source as this master user on the account's behalf (Postern's master_users, Dovecot's master passdb).") var masterUser: String?
        @Option(help: "The file whose first line is the password (the master user's with --master-user, else the account's).",
                transform: absolutePath) var passwordFile: String
        @Flag(help: "Do not check the source's TLS certificate (a self-signed one on a private network).") var insecure = false
        @Flag(help: "Create the account (and its domain) here when missing, with a random password: clients log in through the proxy, which checks theirs.") var create = false
        @Option(help: "Rounds at most per phase before giving up.") var rounds = 5
        @Option(help: "A shell command run once the copy has caught up: the switch-over (it runs as the config's `user`, like the rest of the command).") var then: String?
        @Option(help: "After --then, wait this long (e.g. 35s: a proxy's drain_timeout and a little) before the final rounds.") var settle = "0s"
        @Flag(help: "Print the rounds as JSON.") var json = false

        func validate() throws {
            guard let url = URLComponents(string: from), let scheme = url.scheme, ["imap", "imaps", "imap+starttls"].contains(scheme),
                  url.host?.isEmpty == false else {
                throw ValidationError("--from: expected imap://HOST:PORT, imaps://HOST:PORT or imap+starttls://HOST:PORT, found '\(from)'")
            }
            guard ConfigSection.parseDuration(settle) != nil else { throw ValidationError("--settle: not a duration: \(settle)") }
            guard rounds >= 1 else { throw ValidationError("--rounds: at least 1") }
        }

        func run() throws {
            let url = URLComponents(string: from)!
            let security: IMAPEndpoint.Security = url.scheme == "imaps" ? .tls : url.scheme == "imap+starttls" ? .starttls : .none
            let endpoint = IMAPEndpoint(host: url.host!, port: url.port ?? (security == .tls ? 993 : 143), security: security,
                                        verifyCertificate: !insecure, connectTimeout: 10, commandTimeout: 300)
            let source = UserMove.Source(endpoint: endpoint, user: sourceUser ?? account, masterUser: masterUser,
                                         password: try readPassword(nil, file: passwordFile))
            let (account, create, rounds, json) = (self.account, self.create, self.rounds, self.json)
            let settle = ConfigSection.parseDuration(self.settle)!
            let switchOver: (@Sendable () async throws -> Void)? = then.map { command in
                { @Sendable in
                    let process = Process()
                    process.executableURL = URL(fileURLWithPath: "/bin/sh")
                    process.arguments = ["-c", command]
                    try process.run()
                    process.waitUntilExit()
                    guard process.terminationStatus == 0 else {
                        throw ValidationError("--then exited with status \(process.terminationStatus); the account stays served by the source")
                    }
                }
            }
            let done = try runAdmin(options) { ctx -> [UserMove.Round] in
                guard let store = try ctx.store() as? any StorageBackend & MailboxReplicaStore else {
                    throw ValidationError("this node's store cannot receive a moved account (it does not keep UIDs as given)")
                }
                let accounts = try ctx.accounts()
                if try await accounts.account(account) == nil {
                    guard create else { throw AccountError.noSuchAccount("\(account) (create it first, or pass --create)") }
                    let domain = String(account.split(separator: "@").last ?? "")
                    if try await !accounts.domains().contains(domain.lowercased()) { try await accounts.createDomain(domain) }
                    let password = (0..<4).map { _ in UUID().uuidString }.joined()
                    _ = try await accounts.createAccount(NewAccount(name: account, password: password))
                }
                return try await UserMove.run(source, user: account, into: store, group: MultiThreadedEventLoopGroup.singleton,
                                              maxRounds: rounds, switchOver: switchOver, settle: settle) { line in
                    FileHandle.standardError.write(Data("\(line)\n".utf8))
                }
            }
            if json {
                let data = try JSONEncoder().encode(done)
                print(String(decoding: data, as: UTF8.self))
            } else {
                let added = done.reduce(0) { $0 + $1.added }, bytes = done.reduce(0) { $0 + $1.bytes }
                print("moved \(account): \(added) messages (\(formatSize(bytes))) in \(done.count) rounds")
            }
        }
    }
}
