import ArgumentParser
import Foundation
import PluginAPI
import PosternHost
import PosternImport

struct ConfigOption: ParsableArguments {
    @Option(name: .shortAndLong, help: ArgumentHelp(configHelp)) var config: String?

    /// Started as root, a tool works as the user the workers run as (as doveadm works as the mail
    /// user), so that every file it adds to the data directory is theirs too. `outputs`:
    /// directories the tool writes outside the data directory, made and handed over first.
    func context(outputs: [String] = []) throws -> AdminContext {
        let cfg = loadConfig(try locateConfig(config).path)
        PosternLogHandler.bootstrap(level: .warning)
        if let user = cfg.workerUser {
            if let why = Privileges.unreachable(cfg.dataDirectory, user: user, group: cfg.workerGroup) { throw SystemError.message(why) }
            try Privileges.prepareDataDirectory(cfg.dataDirectory, user: user, group: cfg.workerGroup,
                                                keep: [(cfg.controlSocket as NSString).deletingLastPathComponent])
            for directory in outputs {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                Privileges.chown(directory, user: user, group: cfg.workerGroup)
            }
            do {
                try Privileges.drop(user: user, group: cfg.workerGroup)
            } catch {
                throw SystemError.message("cannot switch to the worker user \(user): \(error)")
            }
        }
        return try AdminContext(config: cfg)
    }
}

/// Runs an admin action and returns its result, printing a refusal as one line on stderr with
/// exit status 1.
@discardableResult
func runAdmin<T: Sendable>(_ options: ConfigOption, outputs: [String] = [], _ action: @escaping @Sendable (AdminContext) async throws -> T) throws -> T {
    do {
        let context = try options.context(outputs: outputs)
        return try runBlocking { try await action(context) }
    } catch {
        FileHandle.standardError.write(Data("postern admin: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

/// Reads a password from --password, --password-file, or one line of standard input.
func readPassword(_ given: String?, file: String?) throws -> String {
    if let given { return given }
    if let file {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw ValidationError("cannot read \(file)") }
        return String(text.split(separator: "\n", omittingEmptySubsequences: false).first ?? "")
    }
    guard let line = readLine(strippingNewline: true), !line.isEmpty else { throw ValidationError("no password given (--password, --password-file or standard input)") }
    return line
}

func formatSize(_ n: Int?) -> String {
    guard let n else { return "unlimited" }
    if n >= 1 << 30 { return String(format: "%.1fG", Double(n) / Double(1 << 30)) }
    if n >= 1 << 20 { return String(format: "%.1fM", Double(n) / Double(1 << 20)) }
    if n >= 1 << 10 { return String(format: "%.1fK", Double(n) / Double(1 << 10)) }
    return "\(n)"
}

func summary(_ r: BackupReport) -> String {
    "\(r.messages) messages, \(r.blobs) files, \(formatSize(r.bytes)) bytes in \(String(format: "%.1f", r.seconds)) s"
}

public struct Admin: ParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        abstract: "Manage domains, accounts, quotas and mailboxes (server running or not).",
        subcommands: [Init.self, DomainCommand.self, UserCommand.self, AliasCommand.self, QuotaCommand.self, MailboxCommand.self, MessageCommand.self, ImportCommand.self, Check.self, Backup.self, Restore.self,
                      AuthCommand.self, DKIMCommand.self, CACommand.self])

    struct Check: AdminAction {
        static let configuration = CommandConfiguration(abstract: "Check the store's consistency (index, reference counts, files).")
        @OptionGroup var options: ConfigOption
        @Flag(help: "Remove content files no message refers to (left by interrupted deliveries) once an hour old.") var repair = false
        func operation() -> AdminOperation {
            { [repair] ctx in
                let store = try ctx.store()
                let removed = repair ? try await store.removeUnreferencedFiles(olderThan: 3600) : []
                for f in removed { print("removed \(f)") }
                let report = try await store.verifyIntegrity()
                for p in report.problems { print("PROBLEM \(p)") }
                for f in report.unreferencedFiles { print("unreferenced \(f)") }
                print("checked \(report.messages) messages, \(report.blobs) blobs: \(report.problems.isEmpty ? "ok" : "\(report.problems.count) problem(s)")")
                if !report.problems.isEmpty { throw SystemError.message("the store has problems") }
            }
        }
    }

    struct Backup: AdminAction {
        static let configuration = CommandConfiguration(
            abstract: "Copy the whole store into a new directory, consistent while the server runs.",
            discussion: "The directory gets index.sqlite, blobs/ and, written last, MANIFEST: a directory without MANIFEST is an incomplete backup.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "A directory that does not exist yet or is empty.", transform: absolutePath) var directory: String
        var outputs: [String] { [directory] }
        func operation() -> AdminOperation {
            { [directory] ctx in
                let report = try await ctx.store().backup(to: directory)
                print("backup \(directory): \(summary(report))")
            }
        }
    }

    struct Restore: AdminAction {
        static let configuration = CommandConfiguration(
            abstract: "Replace the store's contents with a backup.",
            discussion: """
                Without --force the store must have no accounts (then this is safe with the server running). \
                --force replaces a store in use: stop the server first, its sessions would keep the old mailboxes' state.
                """)
        @OptionGroup var options: ConfigOption
        @Argument(help: "A directory written by 'postern admin backup'.", transform: absolutePath) var directory: String
        @Flag(help: "Replace a store that has accounts (everything in it is lost).") var force = false
        func operation() -> AdminOperation {
            { [directory, force] ctx in
                let report = try await ctx.store().restore(from: directory, force: force)
                print("restored \(directory): \(summary(report))")
            }
        }
    }

    struct MessageCommand: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "message", abstract: "Messages of a mailbox.", subcommands: [List.self, Get.self])

        struct List: AdminAction {
            @OptionGroup var options: ConfigOption
            @Argument var user: String
            @Option var mailbox: String = "INBOX"
            @Flag(help: "Add a fifth column: the internal date (UTC, ISO 8601).") var dates = false
            func operation() -> AdminOperation {
                { [user, mailbox, dates] ctx in
                    let store = try ctx.store()
                    let format = ISO8601DateFormatter()
                    for m in try await store.messages(user: user, mailbox: mailbox, uids: 1...UInt32.max) {
                        let header = MailHeaderBlock(parsing: try await store.content(user: user, mailbox: mailbox, uid: m.uid))
                        let id = header.fields.first(where: { $0.hasName("Message-ID") })?.text ?? "-"
                        let date = dates ? "\t" + format.string(from: Date(timeIntervalSince1970: TimeInterval(m.internalDate))) : ""
                        print("\(m.uid)\t\(m.size)\t\(m.flags.isEmpty ? "-" : m.flags.joined(separator: " "))\t\(id)\(date)")
                    }
                }
            }
        }

        struct Get: AdminAction {
            @OptionGroup var options: ConfigOption
            @Argument var user: String
            @Argument var uid: UInt32
            @Option var mailbox: String = "INBOX"
            func operation() -> AdminOperation {
                { [user, mailbox, uid] ctx in
                    try FileHandle.standardOutput.write(contentsOf: Data(try await ctx.store().content(user: user, mailbox: mailbox, uid: uid)))
                }
            }
        }
    }

    struct ImportCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import", abstract: "Migrate mail from a Maildir++ tree or an mbox file into an account.",
            discussion: """
                Prints one line per mailbox ('Sent: 12 messages') and a total; each message or folder that \
                could not be imported is reported first as 'FILE: reason' ('FILE:LINE: reason' for mbox) \
                and the import goes on. The exit status is 1 when anything was refused.
                """,
            subcommands: [MaildirImport.self, MboxImport.self])

        /// Prints a report; exit status 1 if anything was refused.
        static func finish(_ report: MailImport.Report) throws {
            for w in report.warnings { FileHandle.standardError.write(Data("warning: \(w)\n".utf8)) }
            let lines = report.refused.map { "refused \($0)" } + report.lines
            FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8))
            if !report.refused.isEmpty { throw ExitCode(1) }
        }

        struct MaildirImport: ParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "maildir",
                abstract: "Import a Maildir++ tree (as Dovecot writes it): flags, internal dates (mtime), folders, UID order.",
                discussion: "The top directory is INBOX; '.Archive.2024' becomes 'Archive/2024' ('/' separates levels).")
            @OptionGroup var options: ConfigOption
            @Argument(help: "The Maildir (the directory holding cur/, new/ and the .Folder directories).", transform: absolutePath) var directory: String
            @Option(help: "The account (user@domain).") var user: String
            @Option(help: "Put every folder under this mailbox (INBOX becomes PREFIX/INBOX).") var mailboxPrefix: String?
            func run() throws {
                let directory = self.directory, user = self.user, prefix = self.mailboxPrefix
                try ImportCommand.finish(try runAdmin(options) { ctx in
                    try await MailImport.maildir(root: directory, user: user, prefix: prefix, into: try ctx.store())
                })
            }
        }

        struct MboxImport: ParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "mbox", abstract: "Import an mbox file into one mailbox: bytes as in the file, flags from Status/X-Status, dates from the From lines.")
            @OptionGroup var options: ConfigOption
            @Argument(help: "The mbox file.", transform: absolutePath) var file: String
            @Option(help: "The account (user@domain).") var user: String
            @Option(help: "The mailbox to import into (created if missing).") var mailbox: String = "INBOX"
            @Option(help: "mboxrd ('>>From ' is '>From ') or mboxo (only '>From ' is unquoted).") var format: String = "mboxrd"
            func run() throws {
                guard let format = Mbox.Format(rawValue: format) else { throw ValidationError("--format is mboxrd or mboxo") }
                let file = self.file, user = self.user, mailbox = self.mailbox
                try ImportCommand.finish(try runAdmin(options) { ctx in
                    try await MailImport.mbox(file: file, user: user, mailbox: mailbox, format: format, into: try ctx.store())
                })
            }
        }
    }

    struct DomainCommand: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "domain", abstract: "Virtual domains.", subcommands: [Add.self, List.self, Remove.self])

        struct Add: AdminAction {
            @OptionGroup var options: ConfigOption
            @Argument var name: String
            func operation() -> AdminOperation { { [name] ctx in try await ctx.accounts().createDomain(name); print("domain \(name.lowercased()) added") } }
        }

        struct List: AdminAction {
            @OptionGroup var options: ConfigOption
            func operation() -> AdminOperation { { for d in try await $0.accounts().domains() { print(d) } } }
        }

        struct Remove: AdminAction {
            @OptionGroup var options: ConfigOption
            @Argument var name: String
            func operation() -> AdminOperation { { [name] ctx in try await ctx.accounts().deleteDomain(name); print("domain \(name.lowercased()) removed") } }
        }
    }

    struct UserCommand: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "user", abstract: "Accounts.",
                                                        subcommands: [Add.self, Import.self, List.self, Show.self, Passwd.self, Suspend.self, Enable.self, Remove.self, Move.self,
                                                                      Forward.self, VacationCommand.self, AppPassword.self])

        struct Forward: AdminAction {
            static let configuration = CommandConfiguration(
                abstract: "Forward an account's mail elsewhere (what a .forward file does), or stop (--off).")
            @OptionGroup var options: ConfigOption
            @Argument var user: String
            @Option(name: .customLong("to"), help: "A destination address (repeat for several).") var targets: [String] = []
            @Flag(help: "Keep a copy in the account too.") var keep = false
            @Flag(help: "Stop forwarding.") var off = false
            func validate() throws {
                if off == !targets.isEmpty { throw ValidationError("give --to ADDRESS (one or more), or --off") }
            }
            func operation() -> AdminOperation {
                { [user, targets, keep] ctx in
                    try await ctx.accounts().setForwarding(account: user, to: targets, keepCopy: keep)
                    print(targets.isEmpty ? "\(user): forwarding off" : "\(user): forwarding to \(targets.joined(separator: ", "))\(keep ? ", keeping a copy" : "")")
                }
            }
        }

        struct VacationCommand: AdminAction {
            static let configuration = CommandConfiguration(
                commandName: "vacation",
                abstract: "Set an account's vacation auto-reply (RFC 3834: once per sender per period, never to lists or automated mail), or stop it (--off).")
            @OptionGroup var options: ConfigOption
            @Argument var user: String
            @Option(help: "The reply's subject; default 'Auto: ' and the original subject.") var subject: String = ""
            @Option(help: "A file with the reply's text (UTF-8).", transform: absolutePath) var messageFile: String?
            @Option(help: "Between two replies to one sender, e.g. 7d, 12h.") var period: String = "7d"
            @Option(help: "Stop replying after this date (YYYY-MM-DD, UTC).") var until: String?
            @Flag(help: "Stop the auto-reply.") var off = false
            func operation() throws -> AdminOperation {
                if off { return { [user] ctx in try await ctx.accounts().setVacation(account: user, nil); print("\(user): vacation reply off") } }
                guard let file = messageFile, let body = try? String(contentsOfFile: file, encoding: .utf8) else {
                    throw ValidationError("give --message-file FILE with the reply's text, or --off")
                }
                guard let seconds = ConfigSection.parseDuration(period), seconds > 0 else { throw ValidationError("bad --period '\(period)'") }
                var end: Int64?
                if let until {
                    let parts = until.split(separator: "-").compactMap { Int($0) }
                    guard parts.count == 3 else { throw ValidationError("bad --until '\(until)': YYYY-MM-DD") }
                    end = MailDate(year: parts[0], month: parts[1], day: parts[2]).secondsSince1970 + 86_400
                }
                let vacation = Vacation(subject: subject, body: body, period: seconds, start: nil, end: end)
                return { [user] ctx in try await ctx.accounts().setVacation(account: user, vacation); print("\(user): vacation reply on") }
            }
        }

        struct Add: AdminAction {
            @OptionGroup var options: ConfigOption
            @Argument(help: "user@domain") var name: String
            @Option(help: "The password (else --password-file, else one line of standard input).") var password: String?
            @Option(help: "A file whose first line is the password.", transform: absolutePath) var passwordFile: String?
            @Option(help: "user, domain-admin or site-admin.") var admin: String = "user"
            @Option(help: "Storage quota, e.g. 1G.") var quota: String?
            @Option(help: "Message count quota.") var quotaMessages: Int?
            func operation() throws -> AdminOperation {
                guard let level = UserRecord.AdminLevel(rawValue: admin) else { throw ValidationError("--admin is user, domain-admin or site-admin") }
                let bytes = try quota.map { q -> Int in
                    guard let n = ConfigSection.parseSize(q) else { throw ValidationError("--quota: not a size: \(q)") }
                    return n
                }
                let new = NewAccount(name: name, password: try readPassword(password, file: passwordFile), adminLevel: level,
                                     quotaBytes: bytes, quotaMessages: quotaMessages)
                return { let info = try await $0.accounts().createAccount(new); print("account \(info.name) added on \(info.partition)") }
            }
        }

        struct Import: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Create accounts from a CSV file (header: email,password|hash[,quota][,admin]) or a Dovecot passwd-file.",
                discussion: """
                    Each refused row is reported as 'line N: reason', then 'imported X, refused Y'. \
                    The exit status is 0 when no row was refused, else 1.
                    """)
            @OptionGroup var options: ConfigOption
            @Argument(help: "The CSV file (RFC 4180, UTF-8); '-' reads standard input.", transform: { $0 == "-" ? $0 : absolutePath($0) }) var file: String
            @Flag(help: "Create the file's domains that do not exist yet (else their rows are refused).") var createDomains = false
            func run() throws {
                let data = file == "-" ? FileHandle.standardInput.readDataToEndOfFile() : FileManager.default.contents(atPath: file)
                guard let data else { throw ValidationError("cannot read \(file)") }
                let plan: UserImport.Plan
                do { plan = try UserImport.plan([UInt8](data)) } catch {
                    FileHandle.standardError.write(Data("postern admin: \(file): \(error)\n".utf8))
                    throw ExitCode(1)
                }
                let createDomains = self.createDomains
                // On a terminal, a counter on stderr while the accounts are created.
                let counter: (@Sendable (Int, Int) async -> Void)? = isatty(2) == 0 ? nil : { @Sendable done, total in
                    FileHandle.standardError.write(Data("\rcreated \(done) of \(total) accounts\(done == total ? "\n" : "")".utf8))
                }
                let report = try runAdmin(options) {
                    try await UserImport.run(plan, on: try $0.accounts(), createDomains: createDomains, batchSize: 1000, progress: counter)
                }
                // One write: ten thousand refusals should not mean ten thousand system calls.
                let lines = report.refused.map(\.description) + [report.summary]
                FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8))
                if !report.refused.isEmpty { throw ExitCode(1) }
            }
        }

        struct List: AdminAction {
            @OptionGroup var options: ConfigOption
            @Option(help: "Only this domain.") var domain: String?
            func operation() -> AdminOperation {
                { [domain] ctx in
                    for a in try await ctx.accounts().accounts(domain: domain) {
                        print("\(a.name)\t\(a.enabled ? "enabled" : "suspended")\t\(a.adminLevel)\t\(formatSize(a.bytesUsed))/\(formatSize(a.quotaBytes))")
                    }
                }
            }
        }

        struct Show: AdminAction {
            @OptionGroup var options: ConfigOption
            @Argument var name: String
            func operation() -> AdminOperation {
                { [name] ctx in
                    guard let a = try await ctx.accounts().account(name) else { throw AccountError.noSuchAccount(name) }
                    print("""
                        account:   \(a.name)
                        state:     \(a.enabled ? "enabled" : "suspended")
                        admin:     \(a.adminLevel)
                        storage:   \(formatSize(a.bytesUsed)) of \(formatSize(a.quotaBytes))
                        messages:  \(a.messagesUsed) of \(a.quotaMessages.map(String.init) ?? "unlimited")
                        partition: \(a.partition)
                        created:   \(Date(timeIntervalSince1970: TimeInterval(a.created)))
                        """)
                }
            }
        }

        struct Passwd: AdminAction {
            @OptionGroup var options: ConfigOption
            @Argument var name: String
            @Option var password: String?
            @Option(transform: absolutePath) var passwordFile: String?
            func operation() throws -> AdminOperation {
                let secret = try readPassword(password, file: passwordFile)
                return { [name] ctx in try await ctx.accounts().setPassword(account: name, password: secret); print("password of \(name) changed") }
            }
        }

        struct Suspend: AdminAction {
            @OptionGroup var options: ConfigOption
            @Argument var name: String
            func operation() -> AdminOperation { { [name] ctx in try await ctx.accounts().setEnabled(account: name, enabled: false); print("\(name) suspended") } }
        }

        struct Enable: AdminAction {
            @OptionGroup var options: ConfigOption
            @Argument var name: String
            func operation() -> AdminOperation { { [name] ctx in try await ctx.accounts().setEnabled(account: name, enabled: true); print("\(name) enabled") } }
        }

        struct Remove: AdminAction {
            @OptionGroup var options: ConfigOption
            @Argument var name: String
            func operation() -> AdminOperation { { [name] ctx in try await ctx.accounts().deleteAccount(name); print("account \(name) removed with its mail") } }
        }
    }

    struct QuotaCommand: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "quota", abstract: "Quotas (RFC 9208 STORAGE and MESSAGE).", subcommands: [Set.self, Show.self])

        struct Set: AdminAction {
            @OptionGroup var options: ConfigOption
            @Argument var name: String
            @Option(help: "Storage limit, e.g. 500M; 'none' removes it.") var storage: String = "none"
            @Option(help: "Message count limit; 'none' removes it.") var messages: String = "none"
            func operation() throws -> AdminOperation {
                let bytes: Int? = storage == "none" ? nil : try {
                    guard let n = ConfigSection.parseSize(storage) else { throw ValidationError("--storage: not a size: \(storage)") }
                    return n
                }()
                let count: Int? = messages == "none" ? nil : try {
                    guard let n = Int(messages), n >= 0 else { throw ValidationError("--messages: not a count: \(messages)") }
                    return n
                }()
                return { [name] ctx in
                    try await ctx.accounts().setQuota(account: name, bytes: bytes, messages: count)
                    print("quota of \(name): \(formatSize(bytes)), \(count.map(String.init) ?? "unlimited") messages")
                }
            }
        }

        struct Show: AdminAction {
            @OptionGroup var options: ConfigOption
            @Argument var name: String
            func operation() -> AdminOperation {
                { [name] ctx in
                    let q = try await ctx.store().quota(user: name)
                    print("STORAGE \(q.bytesUsed / 1024) \(q.bytesLimit.map { String($0 / 1024) } ?? "-") (KiB)")
                    print("MESSAGE \(q.messagesUsed) \(q.messagesLimit.map(String.init) ?? "-")")
                }
            }
        }
    }

    struct AliasCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "alias", abstract: "Aliases: an address that delivers to other addresses.",
            discussion: "'@example.org' is the domain's catch-all: it receives what no account or alias of the domain takes.",
            subcommands: [Add.self, List.self, Remove.self])

        struct Add: AdminAction {
            static let configuration = CommandConfiguration(abstract: "Create an alias, or replace its targets.")
            @OptionGroup var options: ConfigOption
            @Argument(help: "The alias (user@domain, or @domain for a catch-all).") var address: String
            @Argument(help: "Where its mail goes: accounts, aliases or remote addresses.") var targets: [String]
            func operation() throws -> AdminOperation {
                guard !targets.isEmpty else { throw ValidationError("give at least one target") }
                return { [address, targets] ctx in
                    try await ctx.accounts().setAlias(address, targets: targets)
                    print("alias \(address) -> \(targets.joined(separator: ", "))")
                }
            }
        }

        struct List: AdminAction {
            @OptionGroup var options: ConfigOption
            @Option var domain: String?
            func operation() -> AdminOperation {
                { [domain] ctx in
                    for alias in try await ctx.accounts().aliases(domain: domain) { print("\(alias.address)\t\(alias.targets.joined(separator: " "))") }
                }
            }
        }

        struct Remove: AdminAction {
            @OptionGroup var options: ConfigOption
            @Argument var address: String
            func operation() -> AdminOperation { { [address] ctx in try await ctx.accounts().setAlias(address, targets: []); print("alias \(address) removed") } }
        }
    }

    struct MailboxCommand: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "mailbox", abstract: "An account's mailboxes.", subcommands: [List.self, Create.self, Delete.self, Share.self, Unshare.self, ACL.self])

        struct List: AdminAction {
            @OptionGroup var options: ConfigOption
            @Argument var user: String
            func operation() -> AdminOperation {
                { [user] ctx in
                    let store = try ctx.store()
                    for m in try await store.mailboxes(user: user) {
                        // Another user's mailbox shared with lookup but not read shows no counts.
                        guard let s = try? await store.status(user: user, mailbox: m.name) else {
                            print("\(m.name)\t\(m.attributes.joined(separator: " "))\t-")
                            continue
                        }
                        print("\(m.name)\t\(m.attributes.joined(separator: " "))\tmessages=\(s.messages) unseen=\(s.unseen) uidnext=\(s.uidNext)")
                    }
                }
            }
        }

        struct Share: AdminAction {
            static let configuration = CommandConfiguration(
                abstract: "Grant another account (or 'anyone') rights on a mailbox (RFC 4314 letters).",
                discussion: """
                    Rights: l lookup, r read, s keep seen, w write flags, i insert, p post, k create children, \
                    x delete mailbox, t delete messages, e expunge, a administer. The mailbox then appears to \
                    the grantee as 'Other Users/OWNER/MAILBOX'. Rights given replace that grantee's entry.
                    """)
            @OptionGroup var options: ConfigOption
            @Argument(help: "The owner account.") var owner: String
            @Argument(help: "The owner's mailbox.") var mailbox: String
            @Argument(help: "An account of this store, or 'anyone'.") var grantee: String
            @Option(help: "Right letters.") var rights: String = "lrs"
            func operation() throws -> AdminOperation {
                guard let rights = ACLRights(self.rights), !rights.isEmpty else { throw ValidationError("'\(self.rights)' is not a set of rights (lrswipkxtea)") }
                return { [owner, mailbox, grantee] ctx in
                    try await ctx.store().setACL(user: owner, mailbox: mailbox, identifier: grantee, change: .replace(rights))
                    print("\(owner) \(mailbox): \(grantee) has \(rights)")
                }
            }
        }

        struct Unshare: AdminAction {
            static let configuration = CommandConfiguration(abstract: "Remove a grantee's entry from a mailbox's ACL.")
            @OptionGroup var options: ConfigOption
            @Argument var owner: String
            @Argument var mailbox: String
            @Argument var grantee: String
            func operation() -> AdminOperation {
                { [owner, mailbox, grantee] ctx in
                    try await ctx.store().setACL(user: owner, mailbox: mailbox, identifier: grantee, change: .delete)
                    print("\(owner) \(mailbox): \(grantee) removed")
                }
            }
        }

        struct ACL: AdminAction {
            static let configuration = CommandConfiguration(commandName: "acl", abstract: "Show a mailbox's access control list.")
            @OptionGroup var options: ConfigOption
            @Argument var owner: String
            @Argument var mailbox: String
            func operation() -> AdminOperation {
                { [owner, mailbox] ctx in
                    for entry in try await ctx.store().acl(user: owner, mailbox: mailbox) { print("\(entry.identifier)\t\(entry.rights)") }
                }
            }
        }

        struct Create: AdminAction {
            @OptionGroup var options: ConfigOption
            @Argument var user: String
            @Argument var name: String
            func operation() -> AdminOperation { { [user, name] ctx in try await ctx.store().createMailbox(user: user, name: name); print("mailbox \(name) created for \(user)") } }
        }

        struct Delete: AdminAction {
            @OptionGroup var options: ConfigOption
            @Argument var user: String
            @Argument var name: String
            func operation() -> AdminOperation { { [user, name] ctx in try await ctx.store().deleteMailbox(user: user, name: name); print("mailbox \(name) of \(user) deleted") } }
        }
    }
}
