import Foundation
import PluginAPI
import PluginPostgres

/// The mailbox list of an account: create, delete, rename, status. Each change is announced to
/// the sessions that have the mailbox open, on every node (Notify.swift).
extension PostgresStore {
    func mailboxes(user: String) async throws -> [MailboxInfo] {
        try await reading { sql in
            let id = try await Self.accountID(sql, user)
            let own = try await sql.rows("""
                SELECT name, special_use FROM mailbox WHERE account_id = \(id) ORDER BY name = 'INBOX' DESC, name COLLATE "C"
                """).map { row in
                let (name, specialUse) = try row.decode((String, String?).self)
                return MailboxInfo(name: name, attributes: specialUse.map { [$0] } ?? [])
            }
            // Other accounts' mailboxes with an ACL entry naming this user or anyone; shown when
            // the entries add up to the lookup right.
            var shared: [MailboxInfo] = []
            for row in try await sql.rows("""
                SELECT m.id, m.name, a.name FROM mailbox m JOIN account a ON a.id = m.account_id
                WHERE m.account_id != \(id) AND m.id IN (SELECT mailbox_id FROM acl WHERE lower(identifier) IN (lower(\(user)), \(ACLEntry.anyone)))
                ORDER BY a.name COLLATE "C", m.name COLLATE "C"
                """) {
                let (mailboxID, name, owner) = try row.decode((Int64, String, String).self)
                if try await Self.effectiveRights(sql, mailboxID: mailboxID, user: user).contains("l") {
                    shared.append(MailboxInfo(name: MailboxNamespace.shared(owner: owner, mailbox: name), owner: owner))
                }
            }
            return own + shared
        }
    }

    /// The account and own name where `name` (as `user` sees it) would be created: anywhere in
    /// one's own hierarchy; under another account's mailbox with the create right on the parent
    /// (RFC 4314 `k`).
    static func creationTarget(_ sql: SQL, _ user: String, _ name: String) async throws -> (accountID: Int64, name: String) {
        guard let (owner, mailbox) = MailboxNamespace.splitShared(name), owner.caseInsensitiveCompare(user) != .orderedSame else {
            let own = MailboxNamespace.splitShared(name)?.mailbox ?? name
            return (try await accountID(sql, user), own)
        }
        guard let slash = mailbox.lastIndex(of: MailboxNamespace.delimiter) else {
            throw StorageError.permissionDenied("only \(owner) can create top-level mailboxes there")
        }
        let parent = try await resolve(sql, user, MailboxNamespace.shared(owner: owner, mailbox: String(mailbox[..<slash])), needing: "k")
        return (parent.accountID, mailbox)
    }


    /// A UIDVALIDITY above every value the account's mailboxes have or had (the deleted ones'
    /// highest is kept in `uidvalidity_floor`), so a name deleted and created again within the
    /// same second never gets its old UIDVALIDITY back with UIDs starting again at 1. Reads the
    /// account row locked: two nodes creating mailboxes for one account take turns.
    static func newUIDValidity(_ sql: SQL, accountID: Int64) async throws -> Int64 {
        let floor = try await sql.value("SELECT uidvalidity_floor FROM account WHERE id = \(accountID) FOR UPDATE", as: Int64.self) ?? 0
        let used = try await sql.value("SELECT max(uidvalidity) FROM mailbox WHERE account_id = \(accountID)", as: Int64.self) ?? 0
        return max(now(), max(floor, used) + 1)
    }

    func createMailbox(user: String, name: String) async throws {
        try await writing { sql in
            let (accountID, own) = try await Self.creationTarget(sql, user, name)
            guard StoreRules.validMailboxName(own) else { throw StorageError.permissionDenied("'\(name)' is not a valid mailbox name") }
            guard own.uppercased() != "INBOX",
                  try await !sql.exists("SELECT 1 FROM mailbox WHERE account_id = \(accountID) AND name = \(own)") else {
                throw StorageError.mailboxExists(name)
            }
            // Missing parents first (RFC 3501 §6.3.3: superior names are created as needed).
            let parts = own.split(separator: MailboxNamespace.delimiter).map(String.init)
            for depth in 1...parts.count {
                let path = parts[0..<depth].joined(separator: String(MailboxNamespace.delimiter))
                if depth < parts.count {
                    if path.uppercased() == "INBOX" { continue }
                    if try await sql.exists("SELECT 1 FROM mailbox WHERE account_id = \(accountID) AND name = \(path)") { continue }
                }
                let validity = try await Self.newUIDValidity(sql, accountID: accountID)
                let inserted = try await sql.run("""
                    INSERT INTO mailbox (account_id, name, uidvalidity) VALUES (\(accountID), \(path), \(validity)) ON CONFLICT DO NOTHING RETURNING id
                    """)
                if inserted == 0, depth == parts.count { throw StorageError.mailboxExists(name) }
            }
        }
    }

    func deleteMailbox(user: String, name: String) async throws {
        try await writing { sql in
            let box = try await Self.resolve(sql, user, name, needing: "x", locking: true)
            guard box.name != "INBOX" else { throw StorageError.permissionDenied("INBOX cannot be deleted") }
            if try await sql.exists("SELECT 1 FROM mailbox WHERE account_id = \(box.accountID) AND starts_with(name, \(box.name + "/"))") {
                throw StorageError.hasChildren(name)
            }
            let contentIDs = try await sql.values("SELECT content_id FROM message WHERE mailbox_id = \(box.id)", as: Int64.self)
            try await sql.run("DELETE FROM mailbox WHERE id = \(box.id)")
            try await sql.run("UPDATE account SET uidvalidity_floor = GREATEST(uidvalidity_floor, \(box.uidValidity)) WHERE id = \(box.accountID)")
            try await Self.dropReferences(sql, contentIDs)
            try await sql.announce(box.change(.mailboxDeleted))
        }
    }

    func renameMailbox(user: String, from: String, to: String) async throws {
        try await writing { sql in
            let box = try await Self.resolve(sql, user, from, needing: "x", locking: true)
            let (targetAccount, target) = try await Self.creationTarget(sql, user, to)
            guard box.name != "INBOX", target.uppercased() != "INBOX" else {
                throw StorageError.permissionDenied("INBOX cannot be renamed here")
            }
            guard targetAccount == box.accountID else { throw StorageError.permissionDenied("a mailbox cannot move to another account") }
            guard StoreRules.validMailboxName(target), !target.hasPrefix(box.name + "/") else {
                throw StorageError.permissionDenied("'\(to)' is not a valid new name")
            }
            if try await sql.exists("SELECT 1 FROM mailbox WHERE account_id = \(box.accountID) AND name = \(target)") {
                throw StorageError.mailboxExists(to)
            }
            // Children move along: `a/x` becomes `b/x`.
            let children = try await sql.rows("""
                SELECT id, name FROM mailbox WHERE account_id = \(box.accountID) AND starts_with(name, \(box.name + "/"))
                """).map { try $0.decode((Int64, String).self) }
            try await sql.run("UPDATE mailbox SET name = \(target) WHERE id = \(box.id)")
            for (id, name) in children {
                try await sql.run("UPDATE mailbox SET name = \(target + name.dropFirst(box.name.count)) WHERE id = \(id)")
            }
            // Missing parents of the new name, as CREATE makes them.
            let parts = target.split(separator: MailboxNamespace.delimiter).map(String.init)
            for depth in stride(from: 1, to: parts.count, by: 1) {
                let path = parts[0..<depth].joined(separator: "/")
                if try await !sql.exists("SELECT 1 FROM mailbox WHERE account_id = \(box.accountID) AND name = \(path)") {
                    let validity = try await Self.newUIDValidity(sql, accountID: box.accountID)
                    try await sql.run("INSERT INTO mailbox (account_id, name, uidvalidity) VALUES (\(box.accountID), \(path), \(validity))")
                }
            }
            try await sql.announce(box.change(.mailboxRenamed))
        }
    }

    func status(user: String, mailbox: String) async throws -> MailboxStatus {
        try await reading { sql in
            let box = try await Self.resolve(sql, user, mailbox, needing: "r")
            let row = try await sql.row("""
                SELECT count(*), count(*) FILTER (WHERE \(unescaped: Self.hasFlag("\\seen"))) FROM message WHERE mailbox_id = \(box.id)
                """)
            let (count, seen) = try row?.decode((Int, Int).self) ?? (0, 0)
            return MailboxStatus(messages: count, unseen: count - seen, uidValidity: UInt32(truncatingIfNeeded: box.uidValidity),
                                 uidNext: UInt32(box.uidNext), highestModseq: UInt64(box.highestModseq))
        }
    }

    /// The mailbox row only; `messages` and `unseen` are not counted (0).
    func changeStamp(user: String, mailbox: String) async throws -> MailboxStatus {
        try await reading { sql in
            let box = try await Self.resolve(sql, user, mailbox, needing: "r")
            return MailboxStatus(messages: 0, unseen: 0, uidValidity: UInt32(truncatingIfNeeded: box.uidValidity),
                                 uidNext: UInt32(box.uidNext), highestModseq: UInt64(box.highestModseq))
        }
    }

    /// SQL that is true where a message's flags hold `flag` (lower-case, a system flag: no
    /// quote or space in it), compared without case.
    static func hasFlag(_ flag: String) -> String {
        "strpos(' ' || lower(flags) || ' ', ' \(flag) ') > 0"
    }

    /// Throws `overQuota` when adding `bytes` in `messages` messages would take the account past
    /// a limit (RFC 9208: the owner's quota, whoever appends). Locks the account row, so two
    /// nodes delivering to one account cannot both take the last of its space.
    static func checkQuota(_ sql: SQL, accountID: Int64, adding bytes: Int, messages: Int) async throws {
        guard let row = try await sql.row("SELECT quota_bytes, quota_messages FROM account WHERE id = \(accountID) FOR UPDATE") else { return }
        let (quotaBytes, quotaMessages) = try row.decode((Int?, Int?).self)
        guard quotaBytes != nil || quotaMessages != nil else { return }
        let usage = try await Schema.usage(sql, accountID: accountID)
        if let limit = quotaBytes, usage.bytes + bytes > limit { throw StorageError.overQuota("storage limit \(limit) bytes") }
        if let limit = quotaMessages, usage.messages + messages > limit { throw StorageError.overQuota("message limit \(limit)") }
    }

    func quota(user: String) async throws -> Quota {
        guard let info = try await account(user) else { throw StorageError.noSuchUser(user) }
        return Quota(bytesUsed: info.bytesUsed, bytesLimit: info.quotaBytes, messagesUsed: info.messagesUsed, messagesLimit: info.quotaMessages)
    }
}
