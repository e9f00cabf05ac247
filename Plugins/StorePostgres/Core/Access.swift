import Foundation
import PluginAPI
import PluginPostgres

/// Who may do what to which mailbox: names as a user sees them (own, or `Other Users/OWNER/NAME`)
/// resolved to rows, with the RFC 4314 rights the user holds there.
struct ResolvedMailbox: Sendable {
    let id: Int64
    let accountID: Int64
    /// The owner's account name.
    let owner: String
    /// The owner's own name for the mailbox.
    let name: String
    let uidValidity: Int64
    let uidNext: Int64
    let highestModseq: Int64
    let rights: ACLRights
    /// Whether the mailbox belongs to another account.
    let isShared: Bool

    /// Throws `permissionDenied` naming the first missing right.
    func require(_ needed: String) throws {
        for right in needed where !rights.contains(right) {
            throw StorageError.permissionDenied("no '\(right)' right on \(visibleName)")
        }
    }

    /// The name as the user who resolved it sees it.
    var visibleName: String { isShared ? MailboxNamespace.shared(owner: owner, mailbox: name) : name }

    /// The announcement of a change to this mailbox, under its owner's name for it.
    func change(_ kind: MailboxChange.Kind, uids: [UInt32] = [], modseq: Int64 = 0) -> MailboxChange {
        MailboxChange(user: owner, mailbox: name, kind: kind, uids: uids, modseq: UInt64(max(0, modseq)))
    }
}

extension PostgresStore {
    static func accountID(_ sql: SQL, _ user: String) async throws -> Int64 {
        guard let id = try await sql.value("SELECT id FROM account WHERE lower(name) = lower(\(user))", as: Int64.self) else {
            throw StorageError.noSuchUser(user)
        }
        return id
    }

    /// The mailbox `name` as `user` sees it. Throws `noSuchUser` for an unknown user and
    /// `noSuchMailbox` when the mailbox does not exist or `user` lacks the lookup right on it
    /// (RFC 4314 §4: no hint that it exists). `locking` takes the mailbox row's lock for the rest
    /// of the transaction: every write that allocates a UID or MODSEQ there does, so two nodes
    /// never hand out the same one.
    static func resolve(_ sql: SQL, _ user: String, _ name: String, locking: Bool = false) async throws -> ResolvedMailbox {
        // One's own mailbox, the usual case (every IMAP command asks): one statement, the user's
        // account and the mailbox joined.
        if MailboxNamespace.splitShared(name) == nil {
            let own = name.uppercased() == "INBOX" ? "INBOX" : name
            let found = locking ? try await sql.rows(Prepared.OwnMailboxLocked(user: user, mailbox: own)).first
                : try await sql.rows(Prepared.OwnMailbox(user: user, mailbox: own)).first
            if let (id, accountID, owner, ownName, validity, next, modseq) = found {
                return ResolvedMailbox(id: id, accountID: accountID, owner: owner, name: ownName, uidValidity: validity, uidNext: next,
                                       highestModseq: modseq, rights: .owner, isShared: false)
            }
            _ = try await accountID(sql, user)   // throws noSuchUser for an unknown user
            throw StorageError.noSuchMailbox(name)
        }
        let userID = try await accountID(sql, user)
        var ownerID = userID, ownerName = name, shared = false
        if let (owner, mailbox) = MailboxNamespace.splitShared(name) {
            guard let id = try await sql.value("SELECT id FROM account WHERE lower(name) = lower(\(owner))", as: Int64.self) else {
                throw StorageError.noSuchMailbox(name)
            }
            ownerID = id
            ownerName = mailbox
            shared = id != userID
        }
        // INBOX is case-insensitive (RFC 3501 §5.1); other names are exact.
        if ownerName.uppercased() == "INBOX" { ownerName = "INBOX" }
        let lock = locking ? " FOR UPDATE OF m" : ""
        guard let row = try await sql.row("""
            SELECT m.id, a.name, m.name, m.uidvalidity, m.uidnext, m.highest_modseq
            FROM mailbox m JOIN account a ON a.id = m.account_id WHERE m.account_id = \(ownerID) AND m.name = \(ownerName)\(unescaped: lock)
            """) else { throw StorageError.noSuchMailbox(name) }
        let (id, owner, own, validity, next, modseq) = try row.decode((Int64, String, String, Int64, Int64, Int64).self)
        let rights = shared ? try await effectiveRights(sql, mailboxID: id, user: user) : .owner
        guard rights.contains("l") || rights.contains("r") else { throw StorageError.noSuchMailbox(name) }
        return ResolvedMailbox(id: id, accountID: ownerID, owner: owner, name: own, uidValidity: validity, uidNext: next,
                               highestModseq: modseq, rights: rights, isShared: shared)
    }

    /// Resolves and checks that `user` holds every right in `needed` there.
    static func resolve(_ sql: SQL, _ user: String, _ name: String, needing needed: String, locking: Bool = false) async throws -> ResolvedMailbox {
        let box = try await resolve(sql, user, name, locking: locking)
        try box.require(needed)
        return box
    }

    /// The union of the entries for `user` and `anyone`, less the union of the negative ones
    /// (RFC 4314 §2).
    static func effectiveRights(_ sql: SQL, mailboxID: Int64, user: String) async throws -> ACLRights {
        var granted = ACLRights.none, denied = ACLRights.none
        let wanted = [user, ACLEntry.anyone, "-" + user, "-" + ACLEntry.anyone].map { $0.lowercased() }
        for row in try await sql.rows("SELECT identifier, rights FROM acl WHERE mailbox_id = \(mailboxID) AND lower(identifier) = ANY(\(wanted))") {
            let (identifier, text) = try row.decode((String, String).self)
            let rights = ACLRights(text) ?? .none
            if identifier.hasPrefix("-") { denied = denied.union(rights) } else { granted = granted.union(rights) }
        }
        return granted.subtracting(denied)
    }

    func acl(user: String, mailbox: String) async throws -> [ACLEntry] {
        try await reading { sql in
            let box = try await Self.resolve(sql, user, mailbox, needing: "a")
            // The owner's implicit rights come first, as GETACL shows them.
            return [ACLEntry(identifier: box.owner, rights: .owner)]
                + (try await sql.rows("SELECT identifier, rights FROM acl WHERE mailbox_id = \(box.id) ORDER BY lower(identifier)").map { row in
                    let (identifier, rights) = try row.decode((String, String).self)
                    return ACLEntry(identifier: identifier, rights: ACLRights(rights) ?? .none)
                })
        }
    }

    func setACL(user: String, mailbox: String, identifier: String, change: ACLChange) async throws {
        try await writing { sql in
            let box = try await Self.resolve(sql, user, mailbox, needing: "a", locking: true)
            let negative = identifier.hasPrefix("-")
            let subject = negative ? String(identifier.dropFirst()) : identifier
            if subject.caseInsensitiveCompare(box.owner) == .orderedSame {
                throw StorageError.permissionDenied("the owner always holds every right on their mailboxes")
            }
            let canonical: String
            if subject.lowercased() == ACLEntry.anyone {
                canonical = ACLEntry.anyone
            } else if let name = try await sql.value("SELECT name FROM account WHERE lower(name) = lower(\(subject))", as: String.self) {
                canonical = name
            } else {
                throw StorageError.permissionDenied("no such identifier '\(subject)': use an account of this store or 'anyone'")
            }
            let key = (negative ? "-" : "") + canonical
            let current = try await sql.value("SELECT rights FROM acl WHERE mailbox_id = \(box.id) AND lower(identifier) = lower(\(key))", as: String.self)
                .flatMap { ACLRights($0) } ?? .none
            let new = StoreRules.applying(change, to: current)
            try await sql.run("DELETE FROM acl WHERE mailbox_id = \(box.id) AND lower(identifier) = lower(\(key))")
            if !new.isEmpty {
                try await sql.run("INSERT INTO acl (mailbox_id, identifier, rights) VALUES (\(box.id), \(key), \(new.description))")
            }
        }
    }

    func myRights(user: String, mailbox: String) async throws -> ACLRights {
        try await reading { sql in try await Self.resolve(sql, user, mailbox).rights }
    }

    func subscriptions(user: String) async throws -> [String] {
        try await reading { sql in
            let id = try await Self.accountID(sql, user)
            return try await sql.values("SELECT name FROM subscription WHERE account_id = \(id) ORDER BY name COLLATE \"C\"", as: String.self)
        }
    }

    func setSubscribed(user: String, mailbox: String, subscribed: Bool) async throws {
        try await writing { sql in
            let id = try await Self.accountID(sql, user)
            let name = mailbox.uppercased() == "INBOX" ? "INBOX" : mailbox
            if subscribed {
                try await sql.run("INSERT INTO subscription (account_id, name) VALUES (\(id), \(name)) ON CONFLICT DO NOTHING")
            } else {
                try await sql.run("DELETE FROM subscription WHERE account_id = \(id) AND name = \(name)")
            }
        }
    }
}

// MARK: aliases, forwarding and vacation

extension PostgresStore {
    func setAlias(_ address: String, targets: [String]) async throws {
        let catchAll = address.hasPrefix("@")
        guard let (local, domain) = catchAll ? ("", String(address.dropFirst()).lowercased()) : StoreRules.split(address),
              StoreRules.validDomain(domain) else { throw AccountError.invalidName(address) }
        for target in targets where StoreRules.split(target) == nil { throw AccountError.invalidName(target) }
        let key = catchAll ? "@\(domain)" : "\(local)@\(domain)"
        try await writing { sql in
            guard let domainID = try await sql.value("SELECT id FROM domain WHERE lower(name) = \(domain)", as: Int64.self) else {
                throw AccountError.noSuchDomain(domain)
            }
            if targets.isEmpty {
                if try await sql.run("DELETE FROM alias WHERE lower(address) = lower(\(key)) RETURNING 1") == 0 { throw AccountError.noSuchAccount(key) }
                return
            }
            if !catchAll, try await sql.exists("SELECT 1 FROM account WHERE lower(name) = lower(\(key))") {
                throw AccountError.aliasConflict("'\(key)' is an account; an alias cannot shadow it")
            }
            try await sql.run("""
                INSERT INTO alias (address, domain_id, targets) VALUES (\(key), \(domainID), \(targets.joined(separator: " ")))
                ON CONFLICT (lower(address)) DO UPDATE SET targets = excluded.targets
                """)
        }
    }

    func aliases(domain: String?) async throws -> [MailAlias] {
        try await reading { sql in
            try await sql.rows("""
                SELECT a.address, a.targets FROM alias a JOIN domain d ON d.id = a.domain_id
                WHERE \(domain?.lowercased())::text IS NULL OR lower(d.name) = \(domain?.lowercased()) ORDER BY lower(a.address)
                """).map { row in
                let (address, targets) = try row.decode((String, String).self)
                return MailAlias(address: address, targets: targets.split(separator: " ").map(String.init))
            }
        }
    }

    func alias(_ address: String) async throws -> [String]? {
        try await reading { sql in
            try await sql.value("SELECT targets FROM alias WHERE lower(address) = lower(\(address))", as: String.self)
                .map { $0.split(separator: " ").map(String.init) }
        }
    }

    private func setJSON<T: Encodable>(_ column: String, account: String, _ value: T?) async throws {
        let text = try value.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
        try await writing { sql in
            if try await sql.run("UPDATE account SET \(unescaped: column) = \(text) WHERE lower(name) = lower(\(account)) RETURNING id") == 0 {
                throw AccountError.noSuchAccount(account)
            }
        }
    }

    private func getJSON<T: Decodable>(_ column: String, account: String, as: T.Type) async throws -> T? {
        let text: String? = try await reading { sql in
            try await sql.value("SELECT \(unescaped: column) FROM account WHERE lower(name) = lower(\(account))", as: String.self)
        }
        return try text.map { try JSONDecoder().decode(T.self, from: Data($0.utf8)) }
    }

    func setForwarding(account: String, to: [String], keepCopy: Bool) async throws {
        for target in to where StoreRules.split(target) == nil { throw AccountError.invalidName(target) }
        try await setJSON("forwarding", account: account, to.isEmpty ? nil : Forwarding(to: to, keepCopy: keepCopy))
    }

    func forwarding(account: String) async throws -> Forwarding? {
        try await getJSON("forwarding", account: account, as: Forwarding.self)
    }

    func setVacation(account: String, _ vacation: Vacation?) async throws {
        try await setJSON("vacation", account: account, vacation)
        // A new message starts a new period for everyone.
        try await writing { sql in
            try await sql.run("DELETE FROM vacation_log WHERE account_id = (SELECT id FROM account WHERE lower(name) = lower(\(account)))")
        }
    }

    func vacation(account: String) async throws -> Vacation? {
        try await getJSON("vacation", account: account, as: Vacation.self)
    }

    func claimVacationReply(account: String, sender: String, period: Double) async throws -> Bool {
        let now = Self.now(), who = sender.lowercased()
        return try await writing { sql in
            guard let id = try await sql.value("SELECT id FROM account WHERE lower(name) = lower(\(account)) FOR UPDATE", as: Int64.self) else { return false }
            if let last = try await sql.value("SELECT sent FROM vacation_log WHERE account_id = \(id) AND sender = \(who)", as: Int64.self),
               Double(now - last) < period {
                return false
            }
            try await sql.run("""
                INSERT INTO vacation_log (account_id, sender, sent) VALUES (\(id), \(who), \(now))
                ON CONFLICT (account_id, sender) DO UPDATE SET sent = excluded.sent
                """)
            return true
        }
    }
}
