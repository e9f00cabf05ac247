import Foundation
import GRDB
import PluginAPI

/// Who may do what to which mailbox: names as a user sees them (own, or `Other Users/OWNER/NAME`)
/// resolved to rows, with the RFC 4314 rights the user holds there.
struct ResolvedMailbox {
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
}

extension SQLiteStore {
    /// The mailbox `name` as `user` sees it. Throws `noSuchUser` for an unknown user and
    /// `noSuchMailbox` when the mailbox does not exist or `user` lacks the lookup right on it
    /// (RFC 4314 §4: no hint that it exists).
    static func resolve(_ db: Database, _ user: String, _ name: String) throws -> ResolvedMailbox {
        let userID = try accountID(db, user)
        var ownerID = userID, ownerName = name, shared = false
        if let (owner, mailbox) = MailboxNamespace.splitShared(name) {
            guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM account WHERE name = ?", arguments: [owner]) else {
                throw StorageError.noSuchMailbox(name)
            }
            ownerID = id
            ownerName = mailbox
            shared = id != userID
        }
        // INBOX is case-insensitive (RFC 3501 §5.1); other names are exact.
        let row = ownerName.uppercased() == "INBOX"
            ? try Row.fetchOne(db.cachedStatement(sql: "SELECT m.*, a.name AS owner FROM mailbox m JOIN account a ON a.id = m.account_id WHERE m.account_id = ? AND m.name = 'INBOX'"),
                               arguments: [ownerID])
            : try Row.fetchOne(db.cachedStatement(sql: "SELECT m.*, a.name AS owner FROM mailbox m JOIN account a ON a.id = m.account_id WHERE m.account_id = ? AND m.name = ?"),
                               arguments: [ownerID, ownerName])
        guard let row else { throw StorageError.noSuchMailbox(name) }
        let rights = shared ? try effectiveRights(db, mailboxID: row["id"], user: user) : .owner
        guard rights.contains("l") || rights.contains("r") else { throw StorageError.noSuchMailbox(name) }
        return ResolvedMailbox(id: row["id"], accountID: ownerID, owner: row["owner"], name: row["name"],
                               uidValidity: row["uidvalidity"], uidNext: row["uidnext"], highestModseq: row["highest_modseq"],
                               rights: rights, isShared: shared)
    }

    /// Resolves and checks that `user` holds every right in `needed` there.
    static func resolve(_ db: Database, _ user: String, _ name: String, needing needed: String) throws -> ResolvedMailbox {
        let box = try resolve(db, user, name)
        try box.require(needed)
        return box
    }

    /// The rights the ACL gives `user` on a mailbox of another account: the union of the
    /// entries for `user` and `anyone`, less the union of the negative ones (RFC 4314 §2).
    static func effectiveRights(_ db: Database, mailboxID: Int64, user: String) throws -> ACLRights {
        var granted = ACLRights.none, denied = ACLRights.none
        for row in try Row.fetchAll(db, sql: "SELECT identifier, rights FROM acl WHERE mailbox_id = ? AND identifier IN (?, ?, ?, ?)",
                                    arguments: [mailboxID, user, ACLEntry.anyone, "-" + user, "-" + ACLEntry.anyone]) {
            let identifier: String = row["identifier"]
            let rights = ACLRights(row["rights"] as String) ?? .none
            if identifier.hasPrefix("-") { denied = denied.union(rights) } else { granted = granted.union(rights) }
        }
        return granted.subtracting(denied)
    }

    func acl(user: String, mailbox: String) async throws -> [ACLEntry] {
        try await reading { db in
            let box = try Self.resolve(db, user, mailbox, needing: "a")
            // The owner's implicit rights come first, as GETACL shows them.
            return [ACLEntry(identifier: box.owner, rights: .owner)]
                + (try Row.fetchAll(db, sql: "SELECT identifier, rights FROM acl WHERE mailbox_id = ? ORDER BY identifier", arguments: [box.id]).map {
                    ACLEntry(identifier: $0["identifier"], rights: ACLRights($0["rights"] as String) ?? .none)
                })
        }
    }

    func setACL(user: String, mailbox: String, identifier: String, change: ACLChange) async throws {
        let change = change
        try await writing { db in
            let box = try Self.resolve(db, user, mailbox, needing: "a")
            let subject = identifier.hasPrefix("-") ? String(identifier.dropFirst()) : identifier
            if subject.caseInsensitiveCompare(box.owner) == .orderedSame {
                throw StorageError.permissionDenied("the owner always holds every right on their mailboxes")
            }
            let canonical: String
            if subject.lowercased() == ACLEntry.anyone {
                canonical = ACLEntry.anyone
            } else if let name = try String.fetchOne(db, sql: "SELECT name FROM account WHERE name = ?", arguments: [subject]) {
                canonical = name
            } else {
                throw StorageError.permissionDenied("no such identifier '\(subject)': use an account of this store or 'anyone'")
            }
            let key = (identifier.hasPrefix("-") ? "-" : "") + canonical
            let current = try String.fetchOne(db, sql: "SELECT rights FROM acl WHERE mailbox_id = ? AND identifier = ?", arguments: [box.id, key])
                .flatMap { ACLRights($0) } ?? .none
            let new = StoreRules.applying(change, to: current)
            if new.isEmpty {
                try db.execute(sql: "DELETE FROM acl WHERE mailbox_id = ? AND identifier = ?", arguments: [box.id, key])
            } else {
                try db.execute(sql: "INSERT INTO acl (mailbox_id, identifier, rights) VALUES (?, ?, ?) ON CONFLICT(mailbox_id, identifier) DO UPDATE SET rights = excluded.rights",
                               arguments: [box.id, key, new.description])
            }
        }
    }

    func myRights(user: String, mailbox: String) async throws -> ACLRights {
        try await reading { db in try Self.resolve(db, user, mailbox).rights }
    }

    func subscriptions(user: String) async throws -> [String] {
        try await reading { db in
            try String.fetchAll(db, sql: "SELECT name FROM subscription WHERE account_id = ? ORDER BY name", arguments: [try Self.accountID(db, user)])
        }
    }

    func setSubscribed(user: String, mailbox: String, subscribed: Bool) async throws {
        try await writing { db in
            let id = try Self.accountID(db, user)
            let name = mailbox.uppercased() == "INBOX" ? "INBOX" : mailbox
            if subscribed {
                try db.execute(sql: "INSERT OR IGNORE INTO subscription (account_id, name) VALUES (?, ?)", arguments: [id, name])
            } else {
                try db.execute(sql: "DELETE FROM subscription WHERE account_id = ? AND name = ?", arguments: [id, name])
            }
        }
    }
}

extension ResolvedMailbox {
    /// Throws `permissionDenied` naming the first missing right.
    func require(_ needed: String) throws {
        for right in needed where !rights.contains(right) {
            throw StorageError.permissionDenied("no '\(right)' right on \(isShared ? MailboxNamespace.shared(owner: owner, mailbox: name) : name)")
        }
    }

    /// The name as the user who resolved it sees it.
    var visibleName: String { isShared ? MailboxNamespace.shared(owner: owner, mailbox: name) : name }
}

// MARK: aliases

extension SQLiteStore {
    func setAlias(_ address: String, targets: [String]) async throws {
        let catchAll = address.hasPrefix("@")
        guard let (local, domain) = catchAll ? ("", String(address.dropFirst()).lowercased()) : StoreRules.split(address),
              StoreRules.validDomain(domain) else { throw AccountError.invalidName(address) }
        for target in targets where StoreRules.split(target) == nil { throw AccountError.invalidName(target) }
        let key = catchAll ? "@\(domain)" : "\(local)@\(domain)"
        try await writing { db in
            guard let domainID = try Int64.fetchOne(db, sql: "SELECT id FROM domain WHERE name = ?", arguments: [domain]) else {
                throw AccountError.noSuchDomain(domain)
            }
            if targets.isEmpty {
                try db.execute(sql: "DELETE FROM alias WHERE address = ?", arguments: [key])
                if db.changesCount == 0 { throw AccountError.noSuchAccount(key) }
                return
            }
            if !catchAll, try Bool.fetchOne(db, sql: "SELECT 1 FROM account WHERE name = ?", arguments: [key]) == true {
                throw AccountError.aliasConflict("'\(key)' is an account; an alias cannot shadow it")
            }
            try db.execute(sql: "INSERT INTO alias (address, domain_id, targets) VALUES (?, ?, ?) ON CONFLICT(address) DO UPDATE SET targets = excluded.targets",
                           arguments: [key, domainID, targets.joined(separator: " ")])
        }
    }

    func aliases(domain: String?) async throws -> [MailAlias] {
        try await reading { db in
            let rows = try domain.map { d in
                try Row.fetchAll(db, sql: "SELECT a.address, a.targets FROM alias a JOIN domain d ON d.id = a.domain_id WHERE d.name = ? ORDER BY a.address",
                                 arguments: [d.lowercased()])
            } ?? Row.fetchAll(db, sql: "SELECT address, targets FROM alias ORDER BY address")
            return rows.map { MailAlias(address: $0["address"], targets: ($0["targets"] as String).split(separator: " ").map(String.init)) }
        }
    }

    func alias(_ address: String) async throws -> [String]? {
        try readingInline { db in
            try String.fetchOne(db.cachedStatement(sql: "SELECT targets FROM alias WHERE address = ?"), arguments: [address])
                .map { $0.split(separator: " ").map(String.init) }
        }
    }
}

// MARK: forwarding and vacation

extension SQLiteStore {
    private func setJSON<T: Encodable>(_ column: String, account: String, _ value: T?) async throws {
        let text = try value.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
        try await writing { db in
            try db.execute(sql: "UPDATE account SET \(column) = ? WHERE name = ?", arguments: [text, account])
            if db.changesCount == 0 { throw AccountError.noSuchAccount(account) }
        }
    }

    private func getJSON<T: Decodable>(_ column: String, account: String, as: T.Type) async throws -> T? {
        let text: String? = try readingInline { db in
            try String.fetchOne(db.cachedStatement(sql: "SELECT \(column) FROM account WHERE name = ?"), arguments: [account])
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
        try await writing { db in
            try db.execute(sql: "DELETE FROM vacation_log WHERE account_id = (SELECT id FROM account WHERE name = ?)", arguments: [account])
        }
    }

    func vacation(account: String) async throws -> Vacation? {
        try await getJSON("vacation", account: account, as: Vacation.self)
    }

    func claimVacationReply(account: String, sender: String, period: Double) async throws -> Bool {
        let now = Self.now()
        return try await writing { db in
            guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM account WHERE name = ?", arguments: [account]) else { return false }
            if let last = try Int64.fetchOne(db, sql: "SELECT sent FROM vacation_log WHERE account_id = ? AND sender = ?", arguments: [id, sender]),
               Double(now - last) < period {
                return false
            }
            try db.execute(sql: "INSERT INTO vacation_log (account_id, sender, sent) VALUES (?, ?, ?) ON CONFLICT(account_id, sender) DO UPDATE SET sent = excluded.sent",
                           arguments: [id, sender, now])
            return true
        }
    }
}
