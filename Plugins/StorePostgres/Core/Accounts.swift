import Foundation
import PluginAPI
import PluginPostgres

/// Domains and accounts, and the passwords checked against them (the internal credential
/// backend). Secrets are SCRAM-SHA-256 keys derived from the password (`SCRAMSecret`), which
/// verify PLAIN and LOGIN and serve SCRAM-SHA-256 as store-sqlite's do.
extension PostgresStore {
    func createDomain(_ name: String) async throws {
        let domain = name.lowercased()
        guard StoreRules.validDomain(domain) else { throw AccountError.invalidName(name) }
        try await writing { sql in
            // The unique index decides between two nodes creating the same domain at once.
            let inserted = try await sql.run("""
                INSERT INTO domain (name, created) VALUES (\(domain), \(Self.now())) ON CONFLICT DO NOTHING RETURNING id
                """)
            if inserted == 0 { throw AccountError.domainExists(domain) }
        }
    }

    func deleteDomain(_ name: String) async throws {
        let domain = name.lowercased()
        try await writing { sql in
            guard let id = try await sql.value("SELECT id FROM domain WHERE lower(name) = \(domain) FOR UPDATE", as: Int64.self) else {
                throw AccountError.noSuchDomain(domain)
            }
            let n = try await sql.value("SELECT count(*) FROM account WHERE domain_id = \(id)", as: Int.self) ?? 0
            if n > 0 { throw AccountError.domainNotEmpty(domain, accounts: n) }
            try await sql.run("DELETE FROM alias WHERE domain_id = \(id)")
            try await sql.run("DELETE FROM domain WHERE id = \(id)")
        }
    }

    func domains() async throws -> [String] {
        try await reading { sql in try await sql.values("SELECT name FROM domain ORDER BY name", as: String.self) }
    }

    func createAccount(_ new: NewAccount) async throws -> AccountInfo {
        try await createAccounts([new])[0].get()
    }

    /// Names checked first; the slow secrets derived concurrently (one task per core) outside
    /// any transaction; rows inserted `insertChunk` accounts per transaction, each name checked
    /// again there (another node may have created it meanwhile).
    func createAccounts(_ accounts: [NewAccount]) async throws -> [Result<AccountInfo, AccountError>] {
        var results = [Result<AccountInfo, AccountError>?](repeating: nil, count: accounts.count)
        var names: [Int: (name: String, domain: String)] = [:]
        var claimed = Set<String>()
        for (i, new) in accounts.enumerated() {
            guard let (local, domain) = StoreRules.split(new.name),
                  settings.recipientDelimiter.isEmpty || !local.contains(settings.recipientDelimiter) else {
                results[i] = .failure(.invalidName(new.name))
                continue
            }
            guard new.legacyPasswordHash == nil else {
                results[i] = .failure(.invalidPassword("store-postgres does not keep imported password hashes; set a password, or import into store-sqlite"))
                continue
            }
            let name = "\(local)@\(domain)"
            guard claimed.insert(name.lowercased()).inserted else {
                results[i] = .failure(.accountExists(name))
                continue
            }
            names[i] = (name, domain)
        }
        let iterations = settings.passwordIterations
        var secrets: [Int: String] = [:]
        try await withThrowingTaskGroup(of: (Int, Result<String, AccountError>).self) { group in
            var pending = names.keys.sorted()[...]
            func startNext() {
                guard let i = pending.popFirst() else { return }
                let password = accounts[i].password
                group.addTask {
                    do { return (i, .success(try StoreRules.secret(password, iterations: iterations))) } catch let error as AccountError {
                        return (i, .failure(error))
                    }
                }
            }
            for _ in 0..<max(1, ProcessInfo.processInfo.activeProcessorCount) { startNext() }
            while let (i, outcome) = try await group.next() {
                switch outcome {
                case .success(let secret): secrets[i] = secret
                case .failure(let error): results[i] = .failure(error)
                }
                startNext()
            }
        }
        let ready = names.keys.sorted().filter { secrets[$0] != nil }
        let checkedNames = names, derived = secrets
        for start in stride(from: 0, to: ready.count, by: Self.insertChunk) {
            let chunk = Array(ready[start..<min(start + Self.insertChunk, ready.count)])
            let created: [(Int, Result<AccountInfo, AccountError>)] = try await writing { sql in
                var out: [(Int, Result<AccountInfo, AccountError>)] = []
                for i in chunk {
                    let new = accounts[i], (name, domain) = checkedNames[i]!
                    guard let domainID = try await sql.value("SELECT id FROM domain WHERE lower(name) = \(domain)", as: Int64.self) else {
                        out.append((i, .failure(.noSuchDomain(domain))))
                        continue
                    }
                    if try await sql.exists("SELECT 1 FROM alias WHERE lower(address) = lower(\(name))") {
                        out.append((i, .failure(.aliasConflict("'\(name)' is an alias; remove the alias first"))))
                        continue
                    }
                    let now = Self.now()
                    let quotaBytes = new.quotaBytes.map(Int64.init), quotaMessages = new.quotaMessages.map(Int64.init)
                    guard let accountID = try await sql.value("""
                        INSERT INTO account (name, domain_id, secret, admin_level, quota_bytes, quota_messages, created)
                        VALUES (\(name), \(domainID), \(derived[i]!), \(new.adminLevel.rawValue), \(quotaBytes), \(quotaMessages), \(now))
                        ON CONFLICT DO NOTHING RETURNING id
                        """, as: Int64.self) else {
                        out.append((i, .failure(.accountExists(name))))
                        continue
                    }
                    var validity = now
                    for mailbox in Schema.defaultMailboxes {
                        try await sql.run("""
                            INSERT INTO mailbox (account_id, name, special_use, uidvalidity) VALUES (\(accountID), \(mailbox.name), \(mailbox.specialUse), \(validity))
                            """)
                        try await sql.run("INSERT INTO subscription (account_id, name) VALUES (\(accountID), \(mailbox.name))")
                        validity += 1
                    }
                    out.append((i, .success(AccountInfo(name: name, enabled: true, adminLevel: new.adminLevel.rawValue,
                                                         quotaBytes: new.quotaBytes, quotaMessages: new.quotaMessages,
                                                         bytesUsed: 0, messagesUsed: 0, partition: Self.partitionName, created: now))))
                }
                return out
            }
            for (i, result) in created { results[i] = result }
        }
        return results.map { $0! }
    }

    /// Accounts inserted per transaction in `createAccounts`.
    static let insertChunk = 500

    /// What `AccountInfo.partition` says: contents live in the database, not on a disk of the node.
    static let partitionName = "postgresql"

    func deleteAccount(_ name: String) async throws {
        try await writing { sql in
            guard let row = try await sql.row("SELECT id, name FROM account WHERE lower(name) = lower(\(name)) FOR UPDATE") else {
                throw AccountError.noSuchAccount(name)
            }
            let (id, canonical) = try row.decode((Int64, String).self)
            let contentIDs = try await sql.values("""
                SELECT m.content_id FROM message m JOIN mailbox b ON b.id = m.mailbox_id WHERE b.account_id = \(id)
                """, as: Int64.self)
            try await sql.run("DELETE FROM account WHERE id = \(id)")
            // Grants to the account on others' mailboxes go with it: a new account under the
            // same name must not inherit them.
            try await sql.run("DELETE FROM acl WHERE lower(identifier) IN (lower(\(canonical)), lower(\("-" + canonical)))")
            try await Self.dropReferences(sql, contentIDs)
        }
    }

    func account(_ name: String) async throws -> AccountInfo? {
        try await reading { sql in try await Self.accountInfos(sql, name: name, domain: nil).first }
    }

    func accounts(domain: String?) async throws -> [AccountInfo] {
        try await reading { sql in try await Self.accountInfos(sql, name: nil, domain: domain?.lowercased()) }
    }

    static func accountInfos(_ sql: SQL, name: String?, domain: String?) async throws -> [AccountInfo] {
        try await sql.rows("""
            SELECT a.name, a.enabled, a.admin_level, a.quota_bytes, a.quota_messages, a.created,
                   COALESCE(SUM(b.message_bytes), 0)::bigint, COALESCE(SUM(b.message_count), 0)::bigint
            FROM account a JOIN domain d ON d.id = a.domain_id LEFT JOIN mailbox b ON b.account_id = a.id
            WHERE (\(name)::text IS NULL OR lower(a.name) = lower(\(name))) AND (\(domain)::text IS NULL OR lower(d.name) = \(domain))
            GROUP BY a.id ORDER BY a.name
            """).map { row in
            let (name, enabled, level, quotaBytes, quotaMessages, created, bytes, messages) =
                try row.decode((String, Bool, String, Int?, Int?, Int64, Int, Int).self)
            return AccountInfo(name: name, enabled: enabled, adminLevel: level, quotaBytes: quotaBytes, quotaMessages: quotaMessages,
                               bytesUsed: bytes, messagesUsed: messages, partition: partitionName, created: created)
        }
    }

    func setPassword(account name: String, password: String) async throws {
        let secret = try StoreRules.secret(password, iterations: settings.passwordIterations)
        try await updateAccount(name, "UPDATE account SET secret = \(secret) WHERE lower(name) = lower(\(name)) RETURNING id")
    }


    func setEnabled(account name: String, enabled: Bool) async throws {
        try await updateAccount(name, "UPDATE account SET enabled = \(enabled) WHERE lower(name) = lower(\(name)) RETURNING id")
    }

    func setQuota(account name: String, bytes: Int?, messages: Int?) async throws {
        let b = bytes.map(Int64.init), m = messages.map(Int64.init)
        try await updateAccount(name, "UPDATE account SET quota_bytes = \(b), quota_messages = \(m) WHERE lower(name) = lower(\(name)) RETURNING id")
    }

    func setAdminLevel(account name: String, level: UserRecord.AdminLevel) async throws {
        try await updateAccount(name, "UPDATE account SET admin_level = \(level.rawValue) WHERE lower(name) = lower(\(name)) RETURNING id")
    }

    private func updateAccount(_ name: String, _ update: PostgresQuery) async throws {
        try await writing { sql in
            if try await sql.run(update) == 0 { throw AccountError.noSuchAccount(name) }
        }
    }

    // MARK: CredentialBackend

    private func credentials(_ user: String) async throws -> (name: String, secret: String, enabled: Bool)? {
        try await reading { sql in
            try await sql.row("SELECT name, secret, enabled FROM account WHERE lower(name) = lower(\(user))")
                .map { try $0.decode((String, String, Bool).self) }
        }
    }

    func verifyPassword(user: String, password: String) async throws -> CredentialAnswer {
        let row: (name: String, secret: String, enabled: Bool)?
        do { row = try await credentials(user) } catch StorageError.temporary(let why) { return .unavailable(reason: why) }
        guard let row else { return .unknownUser }
        guard let secret = try? SCRAMSecret(encoded: row.secret), secret.verify(password: password) else { return .wrongPassword }
        return row.enabled ? .verified(user: row.name) : .suspended(user: row.name)
    }

    func storedSecret(user: String, scheme: String) async throws -> CredentialAnswer {
        let row: (name: String, secret: String, enabled: Bool)?
        do { row = try await credentials(user) } catch StorageError.temporary(let why) { return .unavailable(reason: why) }
        guard let row else { return .unknownUser }
        guard row.enabled else { return .suspended(user: row.name) }
        guard let secret = try? SCRAMSecret(encoded: row.secret), secret.storedSecret.scheme == scheme.uppercased() else {
            return .unavailable(reason: "no \(scheme) secret stored for this account")
        }
        return .secret(user: row.name, secret.storedSecret)
    }

    func lookupUser(_ user: String) async throws -> UserRecord? {
        guard let info = try await account(user) else { return nil }
        return UserRecord(name: info.name, enabled: info.enabled, adminLevel: UserRecord.AdminLevel(rawValue: info.adminLevel) ?? .user)
    }
}
