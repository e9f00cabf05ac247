import Foundation
import GRDB
import PluginAPI

/// The embedded store: accounts, mailboxes and messages in one SQLite index (WAL, synchronous
/// commits), contents in content-addressed blob files on one or more partitions. Safe to share
/// between processes (worker generations, the LMTP worker, `postern admin`): SQLite locks the
/// index, blob files are written once and never changed.
// @unchecked Sendable: all stored properties are let; GRDB's DatabasePool and ChangeChannel synchronise their own access
final class SQLiteStore: StorageBackend, AccountStore, CredentialBackend, @unchecked Sendable {
    struct Settings {
        var directory: String
        var partitions: [String]
        var recipientDelimiter: String
        var quotaExceededIsPermanent: Bool
        var passwordIterations: Int
        var busyTimeout: Double
        /// Per domain: from this time (seconds since 1970) on, imported legacy hashes no longer
        /// verify (`legacy_schemes_until`).
        var legacySchemesUntil: [String: Int64] = [:]
    }

    let settings: Settings
    let pool: DatabasePool
    /// Connections for the short reads IMAP commands make on their own thread (IndexAccess.swift).
    let inlineReaders: InlineReaders
    /// Change notifications to other processes (Notify.swift).
    let changes: ChangeChannel
    /// Deliveries' and appends' index writes, committed in groups (WriteBatch.swift).
    let groupWrites: WriteBatch
    /// The process's services, for the SASL mechanisms whose stored secrets this store keeps
    /// (MechanismSecrets.swift); nil where none are wanted.
    let services: HostServices?

    init(settings: Settings, services: HostServices? = nil) throws {
        self.settings = settings
        self.services = services
        try BlobStore.makeDirectory(settings.directory)
        for root in settings.partitions { try BlobStore.makeDirectory(root) }
        var configuration = Configuration()
        configuration.busyMode = .timeout(settings.busyTimeout)
        configuration.prepareDatabase { db in
            // A commit is on disk before the caller is told: every 250 means fsynced.
            try db.execute(sql: "PRAGMA synchronous = FULL")
            try db.execute(sql: "PRAGMA foreign_keys = ON")
        }
        let lock = try Self.migrationLock(settings.directory + "/index.lock")
        defer { close(lock) }
        pool = try DatabasePool(path: settings.directory + "/index.sqlite", configuration: configuration)
        try Schema.migrator.migrate(pool)
        inlineReaders = InlineReaders(path: settings.directory + "/index.sqlite", busyTimeout: settings.busyTimeout)
        groupWrites = WriteBatch(pool: pool, faultFile: settings.directory + "/fault-after-group-commit")
        changes = try ChangeChannel(directory: settings.directory + "/notify")
    }

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970) }

    /// Threads for writing and fsyncing content files, off the callers' threads: LMTP and IMAP
    /// sessions run on their event loop, and an fsync there stalls every session of that loop.
    /// Many fsyncs in flight at once are also what the file system folds into one journal commit.
    private static let fileWriters: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 16)
        pool.start()
        return pool
    }()

    /// Runs blocking file work (a content file's write and fsyncs) on `fileWriters`.
    static func offload<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await fileWriters.runIfActive(work)
    }

    /// Several processes may open a new database at once (the workers of a first start): its
    /// schema is created or brought up to date by one at a time, under this flock (held until the
    /// returned descriptor is closed), or two would both find it missing and one would fail
    /// creating it.
    static func migrationLock(_ path: String) throws -> Int32 {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw BlobStore.Failure.io("open \(path)", errno) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else {
                let err = errno
                close(fd)
                throw BlobStore.Failure.io("flock \(path)", err)
            }
        }
        return fd
    }

    // MARK: AccountStore

    func createDomain(_ name: String) async throws {
        let domain = name.lowercased()
        guard StoreRules.validDomain(domain) else { throw AccountError.invalidName(name) }
        try await writing { db in
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM domain WHERE name = ?", arguments: [domain]) == true {
                throw AccountError.domainExists(domain)
            }
            try db.execute(sql: "INSERT INTO domain (name, created) VALUES (?, ?)", arguments: [domain, Self.now()])
        }
    }

    func deleteDomain(_ name: String) async throws {
        let domain = name.lowercased()
        try await writing { db in
            guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM domain WHERE name = ?", arguments: [domain]) else {
                throw AccountError.noSuchDomain(domain)
            }
            let n = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM account WHERE domain_id = ?", arguments: [id]) ?? 0
            if n > 0 { throw AccountError.domainNotEmpty(domain, accounts: n) }
            try db.execute(sql: "DELETE FROM alias WHERE domain_id = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM domain WHERE id = ?", arguments: [id])
        }
    }

    // The reads of every RCPT and every enqueue (domains, the recipient, its alias and its
    // forwarding) run on the caller's thread: a hop to a reader's queue and back costs more.
    func domains() async throws -> [String] {
        try readingInline { db in try String.fetchAll(db.cachedStatement(sql: "SELECT name FROM domain ORDER BY name")) }
    }

    func createAccount(_ new: NewAccount) async throws -> AccountInfo {
        try await createAccounts([new])[0].get()
    }

    /// Bulk creation. Names are checked first and the index is asked once which domains and
    /// accounts exist, so refused entries cost no key derivation; the slow secrets of the rest are
    /// derived concurrently (one task per core) outside any lock; rows go in by `insertChunk`
    /// accounts per transaction, checking domain and name again under the write lock (another
    /// process may have changed them meanwhile).
    func createAccounts(_ accounts: [NewAccount]) async throws -> [Result<AccountInfo, AccountError>] {
        var results = [Result<AccountInfo, AccountError>?](repeating: nil, count: accounts.count)
        var names: [Int: (name: String, domain: String)] = [:]
        for (i, new) in accounts.enumerated() {
            guard let (local, domain) = StoreRules.split(new.name),
                  settings.recipientDelimiter.isEmpty || !local.contains(settings.recipientDelimiter) else {
                results[i] = .failure(.invalidName(new.name))
                continue
            }
            names[i] = ("\(local)@\(domain)", domain)
        }
        let wantedDomains = Set(names.values.map(\.domain))
        let (knownDomains, existing): (Set<String>, Set<String>) = try await reading { db in
            let domains = Set(try String.fetchAll(db, sql: "SELECT name FROM domain"))
            // Lower-cased: account names compare without case (COLLATE NOCASE).
            var existing = Set<String>()
            for domain in wantedDomains where domains.contains(domain) {
                for name in try String.fetchAll(db, sql: "SELECT a.name FROM account a JOIN domain d ON d.id = a.domain_id WHERE d.name = ?",
                                                arguments: [domain]) {
                    existing.insert(name.lowercased())
                }
            }
            return (domains, existing)
        }
        var claimed = Set<String>()
        var toDerive: [Int] = []
        for i in accounts.indices {
            guard let (name, domain) = names[i] else { continue }
            if !knownDomains.contains(domain) {
                results[i] = .failure(.noSuchDomain(domain))
            } else if existing.contains(name.lowercased()) || !claimed.insert(name.lowercased()).inserted {
                results[i] = .failure(.accountExists(name))
            } else {
                toDerive.append(i)
            }
        }

        // Slow on purpose (PBKDF2): concurrently, at most one derivation per core at a time.
        let iterations = settings.passwordIterations
        var secrets: [Int: String] = [:]
        try await withThrowingTaskGroup(of: (Int, Result<String, AccountError>).self) { group in
            let width = max(1, ProcessInfo.processInfo.activeProcessorCount)
            var pending = toDerive[...]
            func startNext() {
                guard let i = pending.popFirst() else { return }
                let password = accounts[i].password, legacy = accounts[i].legacyPasswordHash
                group.addTask {
                    do {
                        // An imported hash is kept as it is (LegacyPasswords.swift); nothing to derive.
                        if let legacy { return (i, .success(try Self.legacyMarker(checking: legacy))) }
                        return (i, .success(try StoreRules.secret(password, iterations: iterations)))
                    } catch let error as AccountError {
                        return (i, .failure(error))
                    }
                }
            }
            for _ in 0..<width { startNext() }
            while let (i, outcome) = try await group.next() {
                switch outcome {
                case .success(let secret): secrets[i] = secret
                case .failure(let error): results[i] = .failure(error)
                }
                startNext()
            }
        }

        let ready = toDerive.filter { secrets[$0] != nil }
        let partitions = settings.partitions
        // Immutable copies for the write closure.
        let checkedNames = names, derived = secrets
        for chunk in stride(from: 0, to: ready.count, by: Self.insertChunk).map({ ready[$0..<min($0 + Self.insertChunk, ready.count)] }) {
            let created: [(Int, Result<AccountInfo, AccountError>)] = try await writing { db in
                var out: [(Int, Result<AccountInfo, AccountError>)] = []
                // The partition with the fewest accounts; a root added to the config is used at once.
                var counts: [String: Int] = [:]
                for row in try Row.fetchAll(db, sql: "SELECT partition, COUNT(*) AS n FROM account GROUP BY partition") {
                    counts[row["partition"]] = row["n"]
                }
                let findDomain = try db.cachedStatement(sql: "SELECT id FROM domain WHERE name = ?")
                let findAccount = try db.cachedStatement(sql: "SELECT 1 FROM account WHERE name = ?")
                let findAlias = try db.cachedStatement(sql: "SELECT 1 FROM alias WHERE address = ?")
                let insertAccount = try db.cachedStatement(sql: """
                    INSERT INTO account (name, domain_id, secret, admin_level, quota_bytes, quota_messages, partition, created)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """)
                let insertMailbox = try db.cachedStatement(sql: "INSERT INTO mailbox (account_id, name, special_use, uidvalidity) VALUES (?, ?, ?, ?)")
                let subscribe = try db.cachedStatement(sql: "INSERT INTO subscription (account_id, name) VALUES (?, ?)")
                var domainIDs: [String: Int64] = [:]
                for i in chunk {
                    let new = accounts[i], (name, domain) = checkedNames[i]!
                    guard let domainID = try domainIDs[domain] ?? Int64.fetchOne(findDomain, arguments: [domain]) else {
                        out.append((i, .failure(.noSuchDomain(domain))))
                        continue
                    }
                    domainIDs[domain] = domainID
                    if try Bool.fetchOne(findAccount, arguments: [name]) == true {
                        out.append((i, .failure(.accountExists(name))))
                        continue
                    }
                    if try Bool.fetchOne(findAlias, arguments: [name]) == true {
                        out.append((i, .failure(.aliasConflict("'\(name)' is an alias; remove the alias first"))))
                        continue
                    }
                    let partition = partitions.min { counts[$0, default: 0] < counts[$1, default: 0] }!
                    counts[partition, default: 0] += 1
                    let now = Self.now()
                    try insertAccount.execute(arguments: [name, domainID, derived[i]!, new.adminLevel.rawValue,
                                                          new.quotaBytes, new.quotaMessages, partition, now])
                    let accountID = db.lastInsertedRowID
                    if let legacy = new.legacyPasswordHash { try Self.insertLegacyHash(db, accountID: accountID, legacy, now: now) }
                    var validity = now
                    for mailbox in Schema.defaultMailboxes {
                        try insertMailbox.execute(arguments: [accountID, mailbox.name, mailbox.specialUse, validity])
                        try subscribe.execute(arguments: [accountID, mailbox.name])
                        validity += 1
                    }
                    out.append((i, .success(AccountInfo(name: name, enabled: true, adminLevel: new.adminLevel.rawValue,
                                                         quotaBytes: new.quotaBytes, quotaMessages: new.quotaMessages,
                                                         bytesUsed: 0, messagesUsed: 0, partition: partition, created: now))))
                }
                return out
            }
            for (i, result) in created { results[i] = result }
        }
        // The per-mechanism secrets of the loaded mechanisms (none when none is loaded).
        if !mechanismDerivations.isEmpty {
            for i in ready {
                guard case .success(let info)? = results[i] else { continue }
                let extra = deriveMechanismSecrets(user: info.name, password: accounts[i].password)
                try await writing { db in try Self.replaceMechanismSecrets(db, account: info.name, extra) }
            }
        }
        return results.map { $0! }
    }

    /// Accounts inserted per write transaction in `createAccounts`: few commits (each one fsyncs),
    /// yet the write lock is released now and then for deliveries from other processes.
    static let insertChunk = 2_000

    func deleteAccount(_ name: String) async throws {
        try await writing { db in
            guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM account WHERE name = ?", arguments: [name]) else {
                throw AccountError.noSuchAccount(name)
            }
            let blobIDs = try Int64.fetchAll(db, sql: """
                SELECT m.blob_id FROM message m JOIN mailbox b ON b.id = m.mailbox_id WHERE b.account_id = ?
                """, arguments: [id])
            try db.execute(sql: "DELETE FROM message WHERE mailbox_id IN (SELECT id FROM mailbox WHERE account_id = ?)", arguments: [id])
            try db.execute(sql: "DELETE FROM mailbox WHERE account_id = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM account WHERE id = ?", arguments: [id])
            // Grants to the account on others' mailboxes go with it: a new account under the
            // same name must not inherit them.
            try db.execute(sql: "DELETE FROM acl WHERE identifier IN (?, ?)", arguments: [name, "-" + name])
            try Self.dropReferences(db, blobIDs)
        }
    }

    func account(_ name: String) async throws -> AccountInfo? {
        try await reading { db in try Self.accountInfos(db, where: "a.name = ?", [name]).first }
    }

    func accounts(domain: String?) async throws -> [AccountInfo] {
        try await reading { db in
            if let domain { return try Self.accountInfos(db, where: "d.name = ?", [domain.lowercased()]) }
            return try Self.accountInfos(db, where: "1", [])
        }
    }

    static func accountInfos(_ db: Database, where condition: String, _ arguments: StatementArguments) throws -> [AccountInfo] {
        // Usage summed once per account: one pass over the mailboxes, grouped (two correlated
        // subqueries per account cost 0.2 s for 20,000 accounts in the admin console's lists).
        try Row.fetchAll(db, sql: """
            SELECT a.*, COALESCE(u.bytes, 0) AS bytes, COALESCE(u.messages, 0) AS messages
            FROM account a JOIN domain d ON d.id = a.domain_id
            LEFT JOIN (SELECT b.account_id, SUM(b.message_bytes) AS bytes, SUM(b.message_count) AS messages
                       FROM mailbox b \(condition == "1" ? "" : "WHERE b.account_id IN (SELECT a.id FROM account a JOIN domain d ON d.id = a.domain_id WHERE \(condition))")
                       GROUP BY b.account_id) u ON u.account_id = a.id
            WHERE \(condition) ORDER BY a.name
            """, arguments: condition == "1" ? arguments : arguments + arguments).map { row in
            AccountInfo(name: row["name"], enabled: row["enabled"], adminLevel: row["admin_level"],
                        quotaBytes: row["quota_bytes"], quotaMessages: row["quota_messages"],
                        bytesUsed: row["bytes"], messagesUsed: row["messages"], partition: row["partition"], created: row["created"])
        }
    }

    func setPassword(account name: String, password: String) async throws {
        let secret = try StoreRules.secret(password, iterations: settings.passwordIterations)
        let extra = deriveMechanismSecrets(user: name, password: password)
        try await writing { db in
            try db.execute(sql: "UPDATE account SET secret = ? WHERE name = ?", arguments: [secret, name])
            if db.changesCount == 0 { throw AccountError.noSuchAccount(name) }
            // Every per-mechanism secret of the old password goes in the same transaction.
            try Self.replaceMechanismSecrets(db, account: name, extra)
            // So is an imported hash the new password replaces (LegacyPasswords.swift).
            try db.execute(sql: "DELETE FROM legacy_password WHERE account_id = (SELECT id FROM account WHERE name = ?)", arguments: [name])
        }
    }


    func setEnabled(account name: String, enabled: Bool) async throws {
        try await updateAccount(name, "enabled = ?", [enabled])
    }

    func setQuota(account name: String, bytes: Int?, messages: Int?) async throws {
        try await updateAccount(name, "quota_bytes = ?, quota_messages = ?", [bytes, messages])
    }

    func setAdminLevel(account name: String, level: UserRecord.AdminLevel) async throws {
        try await updateAccount(name, "admin_level = ?", [level.rawValue])
    }

    private func updateAccount(_ name: String, _ assignments: String, _ values: StatementArguments) async throws {
        try await writing { db in
            try db.execute(sql: "UPDATE account SET \(assignments) WHERE name = ?", arguments: values + [name])
            if db.changesCount == 0 { throw AccountError.noSuchAccount(name) }
        }
    }

    // MARK: CredentialBackend

    /// Name, secret and whether enabled; read as plain values so the read is the asynchronous
    /// one (GRDB's `Row` is not Sendable, and returning it would pick the blocking overload).
    private func credentials(_ user: String) async throws -> (name: String, secret: String, enabled: Bool)? {
        try await reading { db in
            // Accounts a directory owns (ExternalAccounts.swift) have no password here.
            try Row.fetchOne(db, sql: "SELECT name, secret, enabled FROM account WHERE name = ? AND id NOT IN (SELECT account_id FROM external_account)",
                             arguments: [user])
                .map { ($0["name"] as String, $0["secret"] as String, $0["enabled"] as Bool) }
        }
    }

    func verifyPassword(user: String, password: String) async throws -> CredentialAnswer {
        try await verifyPassword(user: user, password: password, service: nil)
    }

    /// The account's password, else one of its app passwords whose scopes include `service`
    /// (AppPasswords.swift).
    func verifyPassword(user: String, password: String, service: String?) async throws -> CredentialAnswer {
        guard let row = try await credentials(user) else { return .unknownUser }
        if row.secret == Self.legacyMarker {
            // An imported hash (LegacyPasswords.swift), migrated to SCRAM keys by a right password.
            let answer = try await verifyLegacyPassword(row, password: password)
            switch answer {
            case .verified: await completeMechanismSecrets(user: row.name, password: password)
            case .wrongPassword:
                if try await appPasswordMatches(account: row.name, password: password, service: service) {
                    return row.enabled ? .verified(user: row.name) : .suspended(user: row.name)
                }
            default: break
            }
            return answer
        }
        guard let secret = try? SCRAMSecret(encoded: row.secret), secret.verify(password: password) else {
            // An app password never completes the mechanism secrets: they hold the account's password.
            guard try await appPasswordMatches(account: row.name, password: password, service: service) else { return .wrongPassword }
            return row.enabled ? .verified(user: row.name) : .suspended(user: row.name)
        }
        guard row.enabled else { return .suspended(user: row.name) }
        await completeMechanismSecrets(user: row.name, password: password)
        return .verified(user: row.name)
    }

    func storedSecret(user: String, scheme: String) async throws -> CredentialAnswer {
        guard let row = try await credentials(user) else { return .unknownUser }
        guard row.enabled else { return .suspended(user: row.name) }
        // Still on an imported hash: no keys until the first plaintext login (LegacyPasswords.swift).
        if row.secret == Self.legacyMarker { return .unknownUser }
        guard let secret = try? SCRAMSecret(encoded: row.secret), secret.storedSecret.scheme == scheme.uppercased() else {
            // A per-mechanism secret (MechanismSecrets.swift), when the account has one yet.
            if let extra = try await mechanismSecret(user: row.name, scheme: scheme) { return .secret(user: row.name, extra) }
            return .unavailable(reason: "no \(scheme) secret stored for this account")
        }
        return .secret(user: row.name, secret.storedSecret)
    }

    func lookupUser(_ user: String) async throws -> UserRecord? {
        guard let info = try await account(user) else { return nil }
        return UserRecord(name: info.name, enabled: info.enabled, adminLevel: UserRecord.AdminLevel(rawValue: info.adminLevel) ?? .user)
    }

    // MARK: delivery

    func checkRecipient(_ address: String) async throws -> RecipientCheck {
        guard let (local, domain) = StoreRules.split(address) else { return .notLocal }
        let account = StoreRules.baseAccount(local, domain: domain, delimiter: settings.recipientDelimiter)
        return try readingInline { db in
            guard try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM domain WHERE name = ?"), arguments: [domain]) == true else { return .notLocal }
            guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT name, enabled FROM account WHERE name = ?"), arguments: [account]) else {
                return .unknownUser
            }
            return (row["enabled"] as Bool) ? .local(account: row["name"]) : .disabled(account: row["name"])
        }
    }

    func deliver(messagePath path: String, to recipients: [String], mailbox: String?) async throws -> [RecipientOutcome] {
        try await deliver(messagePath: path, to: recipients, mailbox: mailbox, deliveryID: nil)
    }

    func deliver(messagePath path: String, to recipients: [String], mailbox: String?, deliveryID: String) async throws -> [RecipientOutcome] {
        try await deliver(messagePath: path, to: recipients, mailbox: mailbox, deliveryID: Optional(deliveryID))
    }

    /// Rows of the delivery log older than this are dropped: a queue retries for days, not months.
    static let deliveryLogAge: Int64 = 30 * 86_400

    func deliver(messagePath path: String, to recipients: [String], mailbox: String?, deliveryID: String?) async throws -> [RecipientOutcome] {
        var outcomes: [String: RecipientOutcome] = [:]
        var accounts: [String: [String]] = [:]   // account -> recipients that map to it
        for r in recipients where outcomes[r] == nil {
            let check = try await checkRecipient(r)
            if case .local(let account) = check { accounts[account, default: []].append(r) } else { outcomes[r] = StoreRules.refusal(check, recipient: r) }
        }
        guard !accounts.isEmpty else { return recipients.map { outcomes[$0]! } }
        let local = accounts   // an immutable copy for the database closures
        let partitionOf: [String: String] = try readingInline { db in
            var out: [String: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT name, partition FROM account WHERE name IN (\(local.keys.map { _ in "?" }.joined(separator: ",")))",
                                        arguments: StatementArguments(Array(local.keys))) {
                out[row["name"]] = row["partition"]
            }
            return out
        }
        // One blob per partition used: one file for every recipient on that disk.
        var blobs: [String: (digest: String, size: Int)] = [:]
        // The caller hands its file over (StorageBackend.deliver): linked, not copied, where it can be.
        var content: [UInt8]?
        for root in Set(partitionOf.values) {
            let adopted = try await Self.offload { try BlobStore.adopt(file: path, root: root) }
            blobs[root] = (adopted.digest, adopted.size)
            content = adopted.content
        }
        let stored = blobs
        // What SEARCH will compare with, parsed here from the bytes adoption read, outside the write lock.
        let text = content.map { SearchableText(message: $0) }
        let now = Self.now()
        let wanted = mailbox
        // In the next group commit with other deliveries (one fsync of the index for all).
        let (accepted, added): ([String], [(ResolvedMailbox, Int64)]) = try await groupWrites.write { db in
            // A blob file found present before this transaction may have been removed since by an
            // expunge in another process (removal happens under the write lock): store it again.
            for (root, blob) in stored where access(BlobStore.path(root: root, digest: blob.digest), F_OK) != 0 {
                _ = try BlobStore.store(file: path, root: root)
            }
            var accepted: [String] = []
            var added: [(ResolvedMailbox, Int64)] = []
            for (account, _) in local.sorted(by: { $0.key < $1.key }) {
                guard let root = partitionOf[account], let blob = stored[root],
                      let row = try Row.fetchOne(db, sql: "SELECT id, quota_bytes, quota_messages FROM account WHERE name = ?", arguments: [account]) else { continue }
                let accountID: Int64 = row["id"]
                if let deliveryID, try Bool.fetchOne(db, sql: "SELECT 1 FROM delivery_log WHERE delivery_id = ? AND account_id = ?",
                                                     arguments: [deliveryID, accountID]) == true {
                    accepted.append(account)   // delivered before a crash; not again
                    continue
                }
                if row["quota_bytes"] as Int? != nil || row["quota_messages"] as Int? != nil {
                    let usage = try Schema.usage(db, accountID: accountID)
                    let overBytes = (row["quota_bytes"] as Int?).map { usage.bytes + blob.size > $0 } ?? false
                    let overCount = (row["quota_messages"] as Int?).map { usage.messages + 1 > $0 } ?? false
                    if overBytes || overCount { continue }
                }
                let mailboxRow = try Row.fetchOne(db, sql: "SELECT * FROM mailbox WHERE account_id = ? AND name = ?",
                                                  arguments: [accountID, wanted ?? "INBOX"])
                    ?? Row.fetchOne(db, sql: "SELECT * FROM mailbox WHERE account_id = ? AND name = 'INBOX'", arguments: [accountID])
                guard let mbox = mailboxRow else { continue }
                let blobID = try Self.reference(db, digest: blob.digest, partition: root, size: blob.size)
                if let text { try Self.recordSearchText(db, blobID: blobID, text) }
                let uid: Int64 = mbox["uidnext"], modseq: Int64 = (mbox["highest_modseq"] as Int64) + 1
                try db.execute(sql: "INSERT INTO message (mailbox_id, uid, blob_id, flags, modseq, internal_date, size) VALUES (?, ?, ?, '', ?, ?, ?)",
                               arguments: [mbox["id"] as Int64, uid, blobID, modseq, now, blob.size])
                try db.execute(sql: "UPDATE mailbox SET uidnext = ?, highest_modseq = ? WHERE id = ?", arguments: [uid + 1, modseq, mbox["id"] as Int64])
                if let deliveryID {
                    try db.execute(sql: "INSERT INTO delivery_log (delivery_id, account_id, delivered) VALUES (?, ?, ?)", arguments: [deliveryID, accountID, now])
                }
                accepted.append(account)
                added.append((ResolvedMailbox(id: mbox["id"], accountID: accountID, owner: account, name: mbox["name"], uidValidity: mbox["uidvalidity"],
                                              uidNext: uid + 1, highestModseq: modseq, rights: .owner, isShared: false), uid))
            }
            if deliveryID != nil, Int.random(in: 0..<1000) == 0 {
                try db.execute(sql: "DELETE FROM delivery_log WHERE delivered < ?", arguments: [now - Self.deliveryLogAge])
            }
            return (accepted, added)
        }
        for (box, uid) in added { announce(box, .messagesAdded, uids: [UInt32(uid)], modseq: box.highestModseq) }
        for (account, rs) in accounts {
            for r in rs {
                outcomes[r] = StoreRules.outcome(recipient: r, account: account, accepted: accepted.contains(account),
                                                 quotaIsPermanent: settings.quotaExceededIsPermanent)
            }
        }
        // A blob nobody ended up referencing (every recipient on its partition over quota) is
        // removed again; a partition where someone took the message needs no look.
        let used = Set(accepted.compactMap { partitionOf[$0] })
        let unused = blobs.filter { !used.contains($0.key) }
        if !unused.isEmpty { try await removeUnreferenced(unused.map { ($0.key, $0.value.digest) }) }
        return recipients.map { outcomes[$0]! }
    }

    /// Adds one reference to the blob row (creating it), returning its id.
    static func reference(_ db: Database, digest: String, partition: String, size: Int) throws -> Int64 {
        if let id = try Int64.fetchOne(db, sql: "SELECT id FROM blob WHERE partition = ? AND digest = ?", arguments: [partition, digest]) {
            try db.execute(sql: "UPDATE blob SET refs = refs + 1 WHERE id = ?", arguments: [id])
            return id
        }
        try db.execute(sql: "INSERT INTO blob (digest, partition, size, refs) VALUES (?, ?, ?, 1)", arguments: [digest, partition, size])
        return db.lastInsertedRowID
    }

    /// Drops one reference per id. A blob left with none loses its row and its file, under the
    /// write lock, so no delivery can be referencing the file while it goes (see `deliver`).
    static func dropReferences(_ db: Database, _ ids: [Int64]) throws {
        var counts: [Int64: Int] = [:]
        for id in ids { counts[id, default: 0] += 1 }
        for (id, n) in counts {
            try db.execute(sql: "UPDATE blob SET refs = refs - ? WHERE id = ?", arguments: [n, id])
            if let row = try Row.fetchOne(db, sql: "SELECT partition, digest FROM blob WHERE id = ? AND refs <= 0", arguments: [id]) {
                try db.execute(sql: "DELETE FROM blob WHERE id = ?", arguments: [id])
                BlobStore.remove(root: row["partition"], digest: row["digest"])
            }
        }
    }

    /// Removes blob files that no row references (written for recipients that were all refused).
    private func removeUnreferenced(_ candidates: [(String, String)]) async throws {
        try await writing { db in
            for (root, digest) in candidates
            where try Bool.fetchOne(db, sql: "SELECT 1 FROM blob WHERE partition = ? AND digest = ?", arguments: [root, digest]) != true {
                BlobStore.remove(root: root, digest: digest)
            }
        }
    }
}
