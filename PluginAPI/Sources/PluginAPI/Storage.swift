/// The message store (ARCHITECTURE.md, "Store"): accounts' mailboxes and messages. Implemented
/// by storage plugins (`store-sqlite` embedded, `store-postgres` scale-out); read by IMAP, POP3,
/// webmail and the local delivery transport. Every method may be called from any thread.
public protocol StorageBackend: Sendable {
    /// Whether `address` is a local mailbox this store would accept mail for (RCPT time). The
    /// recipient delimiter (`user+tag@`) and letter case of the domain are applied.
    func checkRecipient(_ address: String) async throws -> RecipientCheck

    /// Delivers one message (RFC 5322 bytes at `path`) to each local recipient's `mailbox`
    /// (INBOX when nil). Stored once however many recipients; each outcome is durable (fsynced)
    /// before it is reported delivered. The caller hands the file over: the store may keep it
    /// (a hard link) instead of copying it, so the caller must not change it afterwards; it may
    /// remove it.
    func deliver(messagePath path: String, to recipients: [String], mailbox: String?) async throws -> [RecipientOutcome]

    /// The same, made idempotent by `deliveryID` (the queue id): a recipient that already
    /// received this delivery is answered "delivered" without a second copy. The queue calls it
    /// this way, so a crash between the store's commit and the queue's record of it does not
    /// deliver twice.
    func deliver(messagePath path: String, to recipients: [String], mailbox: String?, deliveryID: String) async throws -> [RecipientOutcome]

    // Mailbox names: every method takes names as `user` sees them. Own mailboxes by their own
    // names (INBOX without case), another account's as `Other Users/OWNER/NAME`
    // (`MailboxNamespace`), reachable only through that mailbox's ACL. Each operation checks the
    // RFC 4314 right it needs and throws `permissionDenied` without it, or `noSuchMailbox` when
    // the user may not even see the mailbox (lookup right missing), so names do not leak.

    /// Every mailbox `user` can see: own, and other users' whose ACL gives `user` the lookup
    /// right (with `owner` set).
    func mailboxes(user: String) async throws -> [MailboxInfo]
    /// Creates the mailbox and any missing parents (`a/b/c` creates `a` and `a/b`).
    func createMailbox(user: String, name: String) async throws
    /// Refuses (`hasChildren`) while child mailboxes exist, as Dovecot does.
    func deleteMailbox(user: String, name: String) async throws
    /// Renames the mailbox and its children (`a` to `b` moves `a/x` to `b/x`).
    func renameMailbox(user: String, from: String, to: String) async throws

    /// The mailbox names `user` subscribed to (RFC 3501 SUBSCRIBE; names need not exist).
    func subscriptions(user: String) async throws -> [String]
    func setSubscribed(user: String, mailbox: String, subscribed: Bool) async throws

    /// The mailbox's ACL (RFC 4314 GETACL); needs the administer right.
    func acl(user: String, mailbox: String) async throws -> [ACLEntry]
    /// Changes one ACL entry (SETACL / DELETEACL); needs the administer right. The identifier
    /// is an account of the store, `anyone`, or either with a leading `-` (a negative entry).
    func setACL(user: String, mailbox: String, identifier: String, change: ACLChange) async throws
    /// What `user` may do in the mailbox (MYRIGHTS).
    func myRights(user: String, mailbox: String) async throws -> ACLRights

    /// The UIDs of the messages matching `query`, ascending.
    func search(user: String, mailbox: String, query: SearchQuery) async throws -> [UInt32]

    /// The mailbox's current state (for SELECT/STATUS).
    func status(user: String, mailbox: String) async throws -> MailboxStatus
    /// Only what tells whether the mailbox changed (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ), without
    /// counting messages: what a session asks before every answer.
    func changeStamp(user: String, mailbox: String) async throws -> MailboxStatus
    /// Appends a message and returns its UID.
    func append(user: String, mailbox: String, message: [UInt8], flags: [String], internalDate: Int64?) async throws -> UInt32
    /// The messages with UIDs in `uids`, in UID order, without their bodies.
    func messages(user: String, mailbox: String, uids: ClosedRange<UInt32>) async throws -> [StoredMessage]
    /// What opening the mailbox (IMAP SELECT) needs, read consistently: its UIDs in order, the
    /// first message without `\Seen` and the keywords in use, without each message's flags (a
    /// 100,000-message mailbox opens in milliseconds).
    func selection(user: String, mailbox: String) async throws -> MailboxSelection
    /// What changed since `modseq`, read consistently: the messages above it (new ones and
    /// ones with new flags) and how many the mailbox holds now, so that a caller that knows the
    /// rest can tell whether any were expunged without reading every message.
    func changes(user: String, mailbox: String, since modseq: UInt64) async throws -> MailboxChanges
    /// The full RFC 5322 bytes of one message.
    func content(user: String, mailbox: String, uid: UInt32) async throws -> [UInt8]
    /// The bytes of several messages at once (a FETCH of many bodies), by UID; UIDs that are
    /// gone are missing from the answer. The caller bounds how many bytes it asks for.
    func contents(user: String, mailbox: String, uids: [UInt32]) async throws -> [UInt32: [UInt8]]
    /// Adds, removes or replaces flags; returns the new MODSEQ of each changed message.
    func setFlags(user: String, mailbox: String, uids: [UInt32], flags: [String], mode: FlagChange) async throws -> [UInt32: UInt64]
    /// Copies (or moves) messages; returns the new UIDs in the target, in source order.
    func copy(user: String, from: String, uids: [UInt32], to: String, move: Bool) async throws -> [UInt32]
    /// Removes messages flagged `\Deleted` (all, or only `uids`); returns the expunged UIDs.
    func expunge(user: String, mailbox: String, uids: [UInt32]?) async throws -> [UInt32]
    /// Usage and limits (RFC 9208 STORAGE in bytes, MESSAGE in messages).
    func quota(user: String) async throws -> Quota
    /// Checks the store's own consistency (index, reference counts, content files); safe while
    /// the store is in use.
    func verifyIntegrity() async throws -> IntegrityReport
    /// Removes content files no index row refers to (left by a delivery interrupted between
    /// writing the file and committing) once they are older than `age` seconds, so that a
    /// delivery still in progress keeps its file. Returns the removed paths.
    func removeUnreferencedFiles(olderThan age: Double) async throws -> [String]

    /// Writes a consistent copy of the whole store (index and the contents it references) into
    /// `directory`, which must not exist or be empty, while the store stays in use: the copy is
    /// the store as of one instant. A `MANIFEST` file is written last; a directory without one is
    /// an incomplete backup.
    func backup(to directory: String) async throws -> BackupReport

    /// Replaces the store's contents with the backup in `directory` (made by `backup(to:)`).
    /// Refuses a directory without `MANIFEST`, and a store that has accounts unless `force`
    /// (then everything in it is replaced; stop the server first, since its sessions would still
    /// hold the old mailboxes' state).
    func restore(from directory: String, force: Bool) async throws -> BackupReport
}

extension StorageBackend {
    /// For stores without a cheaper way: from the whole listing.
    public func selection(user: String, mailbox: String) async throws -> MailboxSelection {
        let stamp = try await changeStamp(user: user, mailbox: mailbox)
        let all = try await messages(user: user, mailbox: mailbox, uids: 1...UInt32.max)
        var keywords: [String] = []
        for m in all { for f in m.flags where !f.hasPrefix("\\") && !keywords.contains(f) { keywords.append(f) } }
        return MailboxSelection(uidValidity: stamp.uidValidity, uidNext: stamp.uidNext, highestModseq: stamp.highestModseq,
                                uids: all.map(\.uid),
                                firstUnseen: all.first { m in !m.flags.contains { $0.lowercased() == "\\seen" } }?.uid,
                                keywords: keywords)
    }

    /// For stores without a cheaper way: the whole listing, filtered.
    public func changes(user: String, mailbox: String, since modseq: UInt64) async throws -> MailboxChanges {
        let stamp = try await changeStamp(user: user, mailbox: mailbox)
        let all = try await messages(user: user, mailbox: mailbox, uids: 1...UInt32.max)
        return MailboxChanges(uidValidity: stamp.uidValidity, uidNext: stamp.uidNext, highestModseq: stamp.highestModseq,
                              changed: all.filter { $0.modseq > modseq }, messageCount: all.count)
    }

    /// For stores without a cheaper way: one message at a time.
    public func contents(user: String, mailbox: String, uids: [UInt32]) async throws -> [UInt32: [UInt8]] {
        var out: [UInt32: [UInt8]] = [:]
        for uid in uids {
            do {
                out[uid] = try await content(user: user, mailbox: mailbox, uid: uid)
            } catch StorageError.noSuchMailbox(let text) where text.contains("has no UID") {
                continue
            }
        }
        return out
    }

    /// For stores without a cheaper way: the full status.
    public func changeStamp(user: String, mailbox: String) async throws -> MailboxStatus {
        try await status(user: user, mailbox: mailbox)
    }

    /// For stores that cannot remember deliveries: at least once.
    public func deliver(messagePath path: String, to recipients: [String], mailbox: String?, deliveryID: String) async throws -> [RecipientOutcome] {
        try await deliver(messagePath: path, to: recipients, mailbox: mailbox)
    }
}

/// What `postern admin backup` and `restore` report.
public struct BackupReport: Sendable, Equatable, Codable {
    /// Message rows (one per mailbox a message is in).
    public var messages: Int
    /// Distinct content files.
    public var blobs: Int
    /// Bytes of content files.
    public var bytes: Int
    /// Wall-clock time taken.
    public var seconds: Double

    public init(messages: Int, blobs: Int, bytes: Int, seconds: Double) {
        self.messages = messages
        self.blobs = blobs
        self.bytes = bytes
        self.seconds = seconds
    }
}

/// What `postern admin check` reports.
public struct IntegrityReport: Sendable, Equatable, Codable {
    /// Inconsistencies: anything here means data is wrong or missing.
    public var problems: [String]
    /// Content files no index row refers to: left by a delivery interrupted before its commit;
    /// harmless, and removable once older than any delivery in progress.
    public var unreferencedFiles: [String]
    /// How much was checked.
    public var messages: Int
    public var blobs: Int

    public init(problems: [String], unreferencedFiles: [String], messages: Int, blobs: Int) {
        self.problems = problems
        self.unreferencedFiles = unreferencedFiles
        self.messages = messages
        self.blobs = blobs
    }
}

/// What a store says about a recipient before the message is sent.
public enum RecipientCheck: Sendable, Equatable {
    /// A local account: its canonical name (`user@domain`, the delimiter's tag removed).
    case local(account: String)
    /// The account exists but is suspended.
    case disabled(account: String)
    /// No such account in a domain this store serves.
    case unknownUser
    /// The domain is not served by this store.
    case notLocal
}

/// Accounts: domains, users, secrets, quotas, admin levels. Provided by storage plugins that own
/// the user database (the embedded `store-sqlite`); used by `postern admin` and the admin console.
public protocol AccountStore: Sendable {
    func createDomain(_ name: String) async throws
    /// Refuses (`AccountError.domainNotEmpty`) while the domain has users.
    func deleteDomain(_ name: String) async throws
    func domains() async throws -> [String]
    /// Creates the account with its special-use mailboxes (Sent, Drafts, Trash, Junk, Archive).
    func createAccount(_ account: NewAccount) async throws -> AccountInfo
    /// Creates many accounts at once (bulk import): one result per input, in input order, each
    /// either the new account or why that one was refused (the others are still created). Throws
    /// only when the store itself fails. Stores derive secrets concurrently and insert in few
    /// transactions, so thousands of accounts take seconds rather than minutes.
    func createAccounts(_ accounts: [NewAccount]) async throws -> [Result<AccountInfo, AccountError>]
    func deleteAccount(_ name: String) async throws
    func account(_ name: String) async throws -> AccountInfo?
    func accounts(domain: String?) async throws -> [AccountInfo]
    /// Stores the password as a salted, slow SCRAM-SHA-256 secret (usable for PLAIN and SCRAM).
    func setPassword(account: String, password: String) async throws
    func setEnabled(account: String, enabled: Bool) async throws
    /// nil removes the limit.
    func setQuota(account: String, bytes: Int?, messages: Int?) async throws
    /// The account's administrative level (user, domain or site administrator).
    func setAdminLevel(account: String, level: UserRecord.AdminLevel) async throws

    /// Sets an alias: mail for `address` goes to `targets` (accounts, other aliases, remote
    /// addresses). `@domain` is the domain's catch-all, used for addresses with neither an
    /// account nor an alias of their own. The domain must be one of the store's; an address that
    /// is an account cannot also be an alias. No targets removes the alias.
    func setAlias(_ address: String, targets: [String]) async throws
    func aliases(domain: String?) async throws -> [MailAlias]
    /// The targets of `address`'s own alias (nil when it has none; catch-alls are not applied
    /// here: the router applies them after accounts).
    func alias(_ address: String) async throws -> [String]?

    /// Per-account forwarding (what a `.forward` file does elsewhere): mail for the account goes
    /// to `to`, and also stays in the account when `keepCopy`. Empty `to` turns it off.
    func setForwarding(account: String, to: [String], keepCopy: Bool) async throws
    func forwarding(account: String) async throws -> Forwarding?

    /// The vacation auto-reply (RFC 3834) of an account; nil turns it off.
    func setVacation(account: String, _ vacation: Vacation?) async throws
    func vacation(account: String) async throws -> Vacation?
    /// Records an auto-reply from `account` to `sender` unless one went within `period` seconds:
    /// true when this reply may go (once per sender per period, across processes).
    func claimVacationReply(account: String, sender: String, period: Double) async throws -> Bool
}

public struct Forwarding: Sendable, Equatable, Codable {
    public var to: [String]
    public var keepCopy: Bool
    public init(to: [String], keepCopy: Bool) {
        self.to = to
        self.keepCopy = keepCopy
    }
}

public struct Vacation: Sendable, Equatable, Codable {
    public var subject: String
    public var body: String
    /// Seconds between two replies to the same sender (RFC 3834 §2: at most one per period).
    public var period: Double
    /// Active from/until (seconds since 1970); nil: no bound.
    public var start: Int64?
    public var end: Int64?

    public init(subject: String, body: String, period: Double = 7 * 86_400, start: Int64? = nil, end: Int64? = nil) {
        self.subject = subject
        self.body = body
        self.period = period
        self.start = start
        self.end = end
    }

    public func isActive(at t: Int64) -> Bool { (start.map { t >= $0 } ?? true) && (end.map { t < $0 } ?? true) }
}

public struct MailAlias: Sendable, Equatable, Codable {
    public var address: String
    public var targets: [String]

    public init(address: String, targets: [String]) {
        self.address = address
        self.targets = targets
    }
}

extension AccountStore {
    /// One `createAccount` after another: correct for any store, but neither concurrent nor
    /// batched; stores that can do better implement `createAccounts` themselves.
    public func createAccounts(_ accounts: [NewAccount]) async throws -> [Result<AccountInfo, AccountError>] {
        var results: [Result<AccountInfo, AccountError>] = []
        for account in accounts {
            do { results.append(.success(try await createAccount(account))) } catch let error as AccountError {
                results.append(.failure(error))
            }
        }
        return results
    }
}

/// A new account's settings.
public struct NewAccount: Sendable, Equatable {
    public var name: String
    public var password: String
    public var adminLevel: UserRecord.AdminLevel
    public var quotaBytes: Int?
    public var quotaMessages: Int?
    /// A hash imported from an older system (`{SHA512-CRYPT}$6$...`, `LegacyPasswordHash`), kept
    /// instead of deriving a secret from `password` (then ignored) until the first login with it.
    public var legacyPasswordHash: String?

    public init(name: String, password: String, adminLevel: UserRecord.AdminLevel = .user,
                quotaBytes: Int? = nil, quotaMessages: Int? = nil, legacyPasswordHash: String? = nil) {
        self.name = name
        self.password = password
        self.adminLevel = adminLevel
        self.quotaBytes = quotaBytes
        self.quotaMessages = quotaMessages
        self.legacyPasswordHash = legacyPasswordHash
    }
}

/// An account as `postern admin user show` prints it.
public struct AccountInfo: Sendable, Equatable, Codable {
    public var name: String
    public var enabled: Bool
    public var adminLevel: String
    public var quotaBytes: Int?
    public var quotaMessages: Int?
    public var bytesUsed: Int
    public var messagesUsed: Int
    /// The blob root (partition directory) the account's messages are stored on.
    public var partition: String
    /// Seconds since 1970.
    public var created: Int64

    public init(name: String, enabled: Bool, adminLevel: String, quotaBytes: Int?, quotaMessages: Int?,
                bytesUsed: Int, messagesUsed: Int, partition: String, created: Int64) {
        self.name = name
        self.enabled = enabled
        self.adminLevel = adminLevel
        self.quotaBytes = quotaBytes
        self.quotaMessages = quotaMessages
        self.bytesUsed = bytesUsed
        self.messagesUsed = messagesUsed
        self.partition = partition
        self.created = created
    }
}

/// Why an account operation was refused; the text is for the administrator.
public enum AccountError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidName(String)
    case noSuchDomain(String)
    case domainExists(String)
    case domainNotEmpty(String, accounts: Int)
    case noSuchAccount(String)
    case accountExists(String)
    case invalidPassword(String)
    case aliasConflict(String)
    case noSuchAppPassword(account: String, name: String)
    case appPasswordExists(account: String, name: String)

    public var description: String {
        switch self {
        case .invalidName(let n): return "'\(n)' is not a valid name"
        case .noSuchDomain(let d): return "no such domain '\(d)'"
        case .domainExists(let d): return "domain '\(d)' already exists"
        case .domainNotEmpty(let d, let n): return "domain '\(d)' still has \(n) account(s); remove them first"
        case .noSuchAccount(let a): return "no such account '\(a)'"
        case .accountExists(let a): return "account '\(a)' already exists"
        case .invalidPassword(let why): return "password refused: \(why)"
        case .aliasConflict(let why): return why
        case .noSuchAppPassword(let a, let n): return "account '\(a)' has no app password named '\(n)'"
        case .appPasswordExists(let a, let n): return "account '\(a)' already has an app password named '\(n)'; revoke it first"
        }
    }
}

public struct MailboxInfo: Sendable, Equatable {
    public var name: String
    /// `\Sent`, `\Drafts`, `\Trash`, `\Junk`, `\Archive`, and `\Noselect`-style attributes.
    public var attributes: [String]
    /// The owner when the mailbox is another user's or shared.
    public var owner: String?

    public init(name: String, attributes: [String] = [], owner: String? = nil) {
        self.name = name
        self.attributes = attributes
        self.owner = owner
    }
}

public struct MailboxStatus: Sendable, Equatable {
    public var messages: Int
    public var unseen: Int
    public var uidValidity: UInt32
    public var uidNext: UInt32
    public var highestModseq: UInt64

    public init(messages: Int, unseen: Int, uidValidity: UInt32, uidNext: UInt32, highestModseq: UInt64) {
        self.messages = messages
        self.unseen = unseen
        self.uidValidity = uidValidity
        self.uidNext = uidNext
        self.highestModseq = highestModseq
    }
}

public struct StoredMessage: Sendable, Equatable {
    public var uid: UInt32
    public var flags: [String]
    public var modseq: UInt64
    /// Seconds since 1970 (IMAP INTERNALDATE).
    public var internalDate: Int64
    public var size: Int

    public init(uid: UInt32, flags: [String], modseq: UInt64, internalDate: Int64, size: Int) {
        self.uid = uid
        self.flags = flags
        self.modseq = modseq
        self.internalDate = internalDate
        self.size = size
    }
}

/// What `StorageBackend.changes` reports.
/// What SELECT needs of a mailbox (`StorageBackend.selection`).
public struct MailboxSelection: Sendable, Equatable {
    public var uidValidity: UInt32
    public var uidNext: UInt32
    public var highestModseq: UInt64
    /// Every message's UID, ascending.
    public var uids: [UInt32]
    /// The UID of the first message without `\Seen`, if any.
    public var firstUnseen: UInt32?
    /// The keywords (flags without a backslash) some message has, in no particular order.
    public var keywords: [String]

    public init(uidValidity: UInt32, uidNext: UInt32, highestModseq: UInt64, uids: [UInt32], firstUnseen: UInt32?, keywords: [String]) {
        self.uidValidity = uidValidity
        self.uidNext = uidNext
        self.highestModseq = highestModseq
        self.uids = uids
        self.firstUnseen = firstUnseen
        self.keywords = keywords
    }
}

public struct MailboxChanges: Sendable, Equatable {
    public var uidValidity: UInt32
    public var uidNext: UInt32
    public var highestModseq: UInt64
    /// Messages whose MODSEQ is above the one asked about, in UID order.
    public var changed: [StoredMessage]
    /// How many messages the mailbox holds.
    public var messageCount: Int

    public init(uidValidity: UInt32, uidNext: UInt32, highestModseq: UInt64, changed: [StoredMessage], messageCount: Int) {
        self.uidValidity = uidValidity
        self.uidNext = uidNext
        self.highestModseq = highestModseq
        self.changed = changed
        self.messageCount = messageCount
    }
}

public enum FlagChange: String, Sendable { case add, remove, replace }

public struct Quota: Sendable, Equatable {
    public var bytesUsed: Int
    public var bytesLimit: Int?
    public var messagesUsed: Int
    public var messagesLimit: Int?

    public init(bytesUsed: Int, bytesLimit: Int?, messagesUsed: Int, messagesLimit: Int?) {
        self.bytesUsed = bytesUsed
        self.bytesLimit = bytesLimit
        self.messagesUsed = messagesUsed
        self.messagesLimit = messagesLimit
    }
}

public enum StorageError: Error, Sendable, Equatable {
    case noSuchUser(String)
    case noSuchMailbox(String)
    case mailboxExists(String)
    case overQuota(String)
    case permissionDenied(String)
    case hasChildren(String)
    /// The message was expunged (by this or another session) since the caller learnt its UID.
    case expunged(mailbox: String, uid: UInt32)
    /// The store cannot answer now (database busy past its timeout, a backend unreachable):
    /// callers answer with a temporary failure and the client tries again.
    case temporary(String)
}

extension StorageError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .noSuchUser(let u): return "no such user '\(u)'"
        case .noSuchMailbox(let m): return "no such mailbox '\(m)'"
        case .mailboxExists(let m): return "mailbox '\(m)' already exists"
        case .overQuota(let why): return "over quota: \(why)"
        case .permissionDenied(let why): return "permission denied: \(why)"
        case .hasChildren(let m): return "mailbox '\(m)' has child mailboxes; delete them first"
        case .expunged(let m, let uid): return "\(m) has no UID \(uid) (expunged)"
        case .temporary(let why): return "store temporarily unavailable: \(why)"
        }
    }
}
