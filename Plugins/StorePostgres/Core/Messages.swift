import Foundation
import PluginAPI
import PluginPostgres

/// Messages in mailboxes: delivery, append, listing, flags with MODSEQ (RFC 7162), copy, move,
/// expunge. Each write locks the mailbox row it allocates UIDs or MODSEQs in and announces its
/// change in the same transaction (sent at commit).
extension PostgresStore {
    func checkRecipient(_ address: String) async throws -> RecipientCheck {
        guard let (local, domain) = StoreRules.split(address) else { return .notLocal }
        let account = StoreRules.baseAccount(local, domain: domain, delimiter: settings.recipientDelimiter)
        return try await reading { sql in
            guard try await sql.exists("SELECT 1 FROM domain WHERE lower(name) = \(domain)") else { return .notLocal }
            guard let row = try await sql.row("SELECT name, enabled FROM account WHERE lower(name) = lower(\(account))") else {
                return .unknownUser
            }
            let (name, enabled) = try row.decode((String, Bool).self)
            return enabled ? .local(account: name) : .disabled(account: name)
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

    /// One transaction for every recipient: the content row once, one message row per account.
    /// The commit (PostgreSQL's WAL flush) is the durable point; the caller reports delivered
    /// after it.
    func deliver(messagePath path: String, to recipients: [String], mailbox: String?, deliveryID: String?) async throws -> [RecipientOutcome] {
        var outcomes: [String: RecipientOutcome] = [:]
        var accounts: [String: [String]] = [:]   // account -> recipients that map to it
        for r in recipients where outcomes[r] == nil {
            let check = try await checkRecipient(r)
            if case .local(let account) = check { accounts[account, default: []].append(r) } else { outcomes[r] = StoreRules.refusal(check, recipient: r) }
        }
        guard !accounts.isEmpty else { return recipients.map { outcomes[$0]! } }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw StorageError.temporary("cannot read the message file \(path)")
        }
        let bytes = [UInt8](data), digest = Self.digest(bytes)
        let now = Self.now()
        let names = accounts.keys.sorted()
        let accepted: Set<String> = try await writing { sql in
            var accepted = Set<String>()
            var taken: [(ResolvedMailbox, Int64)] = []
            for account in names {
                guard let accountID = try await sql.value("SELECT id FROM account WHERE lower(name) = lower(\(account))", as: Int64.self) else { continue }
                if let deliveryID, try await sql.exists("""
                    SELECT 1 FROM delivery_log WHERE delivery_id = \(deliveryID) AND account_id = \(accountID)
                    """) {
                    accepted.insert(account)   // delivered before a crash; not again
                    continue
                }
                let wanted = mailbox ?? "INBOX"
                let box: ResolvedMailbox
                do {
                    box = try await Self.resolve(sql, account, wanted, locking: true)
                } catch StorageError.noSuchMailbox {
                    box = try await Self.resolve(sql, account, "INBOX", locking: true)
                }
                do {
                    try await Self.checkQuota(sql, accountID: accountID, adding: bytes.count, messages: 1)
                } catch StorageError.overQuota {
                    continue
                }
                taken.append((box, accountID))
                accepted.insert(account)
            }
            guard !taken.isEmpty else { return accepted }
            let contentID = try await Self.reference(sql, digest: digest, bytes: bytes, count: taken.count)
            for (box, accountID) in taken {
                let uid = box.uidNext, modseq = box.highestModseq + 1
                try await sql.run("""
                    INSERT INTO message (mailbox_id, uid, content_id, flags, modseq, internal_date, size)
                    VALUES (\(box.id), \(uid), \(contentID), '', \(modseq), \(now), \(Int64(bytes.count)))
                    """)
                try await sql.run("UPDATE mailbox SET uidnext = \(uid + 1), highest_modseq = \(modseq) WHERE id = \(box.id)")
                if let deliveryID {
                    try await sql.run("INSERT INTO delivery_log (delivery_id, account_id, delivered) VALUES (\(deliveryID), \(accountID), \(now))")
                }
                try await sql.announce(box.change(.messagesAdded, uids: [UInt32(uid)], modseq: modseq))
            }
            if deliveryID != nil, Int.random(in: 0..<1000) == 0 {
                try await sql.run("DELETE FROM delivery_log WHERE delivered < \(now - Self.deliveryLogAge)")
            }
            return accepted
        }
        for (account, rs) in accounts {
            for r in rs {
                outcomes[r] = StoreRules.outcome(recipient: r, account: account, accepted: accepted.contains(account),
                                                 quotaIsPermanent: settings.quotaExceededIsPermanent)
            }
        }
        return recipients.map { outcomes[$0]! }
    }

    func append(user: String, mailbox: String, message: [UInt8], flags: [String], internalDate: Int64?) async throws -> UInt32 {
        let digest = Self.digest(message)
        let date = internalDate ?? Self.now()
        return try await writing { sql in
            let box = try await Self.resolve(sql, user, mailbox, needing: "i", locking: true)
            try await Self.checkQuota(sql, accountID: box.accountID, adding: message.count, messages: 1)
            // Flags the appender may not set are dropped (RFC 4314 §4: APPEND without `s`/`w`/`t`).
            let flagText = StoreRules.normalise(flags).filter { box.rights.mayStore($0) }.joined(separator: " ")
            let contentID = try await Self.reference(sql, digest: digest, bytes: message)
            let uid = box.uidNext, modseq = box.highestModseq + 1
            try await sql.run("""
                INSERT INTO message (mailbox_id, uid, content_id, flags, modseq, internal_date, size)
                VALUES (\(box.id), \(uid), \(contentID), \(flagText), \(modseq), \(date), \(Int64(message.count)))
                """)
            try await sql.run("UPDATE mailbox SET uidnext = \(uid + 1), highest_modseq = \(modseq) WHERE id = \(box.id)")
            try await sql.announce(box.change(.messagesAdded, uids: [UInt32(uid)], modseq: modseq))
            return UInt32(uid)
        }
    }

    func messages(user: String, mailbox: String, uids: ClosedRange<UInt32>) async throws -> [StoredMessage] {
        try await reading { sql in
            if let own = Self.ownName(mailbox) {
                let found = try await sql.rows(Prepared.OwnMessages(user: user, mailbox: own, first: Int64(uids.lowerBound),
                                                                    last: Int64(uids.upperBound))).map { uid, flags, modseq, date, size in
                    StoredMessage(uid: UInt32(uid), flags: StoreRules.flagWords(flags), modseq: UInt64(modseq), internalDate: date, size: size)
                }
                // None: an empty range, or no such mailbox (which must throw).
                if found.isEmpty { _ = try await Self.resolve(sql, user, mailbox, needing: "r") }
                return found
            }
            let box = try await Self.resolve(sql, user, mailbox, needing: "r")
            return try await Self.storedMessages(sql, """
                SELECT uid, flags, modseq, internal_date, size FROM message
                WHERE mailbox_id = \(box.id) AND uid BETWEEN \(Int64(uids.lowerBound)) AND \(Int64(uids.upperBound)) ORDER BY uid
                """)
        }
    }

    static func storedMessages(_ sql: SQL, _ query: PostgresQuery) async throws -> [StoredMessage] {
        try await sql.rows(query).map { row in
            let (uid, flags, modseq, date, size) = try row.decode((Int64, String, Int64, Int64, Int).self)
            return StoredMessage(uid: UInt32(uid), flags: StoreRules.flagWords(flags), modseq: UInt64(modseq), internalDate: date, size: size)
        }
    }

    /// The mailbox row, its UIDs, the first message without `\Seen` and the keywords in use, in
    /// one transaction (REPEATABLE READ: one snapshot for all four).
    func selection(user: String, mailbox: String) async throws -> MailboxSelection {
        try await writing { sql in
            try await sql.run("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            let box = try await Self.resolve(sql, user, mailbox, needing: "r")
            let uids = try await sql.values("SELECT uid FROM message WHERE mailbox_id = \(box.id) ORDER BY uid", as: Int64.self)
            let firstUnseen = try await sql.value("""
                SELECT min(uid) FROM message WHERE mailbox_id = \(box.id) AND NOT \(unescaped: Self.hasFlag("\\seen"))
                """, as: Int64.self)
            var keywords: [String] = []
            // A flag string holds a keyword where a word does not start with a backslash.
            for flags in try await sql.values("""
                SELECT DISTINCT flags FROM message WHERE mailbox_id = \(box.id) AND (' ' || flags) ~ ' [^\\\\]'
                """, as: String.self) {
                for f in flags.split(separator: " ") where !f.hasPrefix("\\") && !keywords.contains(String(f)) { keywords.append(String(f)) }
            }
            return MailboxSelection(uidValidity: UInt32(truncatingIfNeeded: box.uidValidity), uidNext: UInt32(box.uidNext),
                                    highestModseq: UInt64(box.highestModseq), uids: uids.map { UInt32(truncatingIfNeeded: $0) },
                                    firstUnseen: firstUnseen.map { UInt32(truncatingIfNeeded: $0) }, keywords: keywords)
        }
    }

    func changes(user: String, mailbox: String, since modseq: UInt64) async throws -> MailboxChanges {
        try await writing { sql in
            try await sql.run("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            let box = try await Self.resolve(sql, user, mailbox, needing: "r")
            let changed = try await Self.storedMessages(sql, """
                SELECT uid, flags, modseq, internal_date, size FROM message WHERE mailbox_id = \(box.id) AND modseq > \(Int64(clamping: modseq)) ORDER BY uid
                """)
            let count = try await sql.value("SELECT message_count FROM mailbox WHERE id = \(box.id)", as: Int.self) ?? 0
            return MailboxChanges(uidValidity: UInt32(truncatingIfNeeded: box.uidValidity), uidNext: UInt32(box.uidNext),
                                  highestModseq: UInt64(box.highestModseq), changed: changed, messageCount: count)
        }
    }

    func setFlags(user: String, mailbox: String, uids: [UInt32], flags: [String], mode: FlagChange) async throws -> [UInt32: UInt64] {
        let change = StoreRules.normalise(flags)
        return try await writing { sql in
            let box = try await Self.resolve(sql, user, mailbox, locking: true)
            try StoreRules.checkFlagRights(change, mode: mode, rights: box.rights, mailbox: box.visibleName)
            var modseq = box.highestModseq
            var changed: [UInt32: UInt64] = [:]
            let current = try await sql.rows("""
                SELECT uid, flags FROM message WHERE mailbox_id = \(box.id) AND uid = ANY(\(uids.map(Int64.init))) ORDER BY uid
                """).map { try $0.decode((Int64, String).self) }
            for (uid, text) in current {
                guard let new = StoreRules.newFlags(old: StoreRules.flagWords(text), change: change, mode: mode, rights: box.rights) else { continue }
                modseq += 1
                try await sql.run("UPDATE message SET flags = \(new.joined(separator: " ")), modseq = \(modseq) WHERE mailbox_id = \(box.id) AND uid = \(uid)")
                changed[UInt32(uid)] = UInt64(modseq)
            }
            if !changed.isEmpty {
                try await sql.run("UPDATE mailbox SET highest_modseq = \(modseq) WHERE id = \(box.id)")
                try await sql.announce(box.change(.flagsChanged, uids: changed.keys.sorted(), modseq: modseq))
            }
            return changed
        }
    }

    func copy(user: String, from: String, uids: [UInt32], to: String, move: Bool) async throws -> [UInt32] {
        try await writing { sql in
            // RFC 6851 §4.1 / RFC 4314 §4: read the source, insert into the target; a move also
            // deletes and expunges in the source. Both rows locked, the lower id first.
            let first = try await Self.resolve(sql, user, from, needing: move ? "rte" : "r")
            let second = try await Self.resolve(sql, user, to, needing: "i")
            let (lower, higher) = first.id < second.id ? (from, to) : (to, from)
            _ = try await Self.resolve(sql, user, lower, locking: true)
            _ = try await Self.resolve(sql, user, higher, locking: true)
            let source = try await Self.resolve(sql, user, from, needing: move ? "rte" : "r")
            let target = try await Self.resolve(sql, user, to, needing: "i")
            let wanted = Set(uids)
            let rows = try await sql.rows("""
                SELECT id, uid, content_id, flags, internal_date, size FROM message WHERE mailbox_id = \(source.id) AND uid = ANY(\(uids.map(Int64.init)))
                """).map { try $0.decode((Int64, Int64, Int64, String, Int64, Int64).self) }
            // In the order the caller gave (COPYUID pairs the lists in that order).
            let byUID = Dictionary(rows.map { (UInt32($0.1), $0) }, uniquingKeysWith: { a, _ in a })
            let ordered = uids.filter { wanted.contains($0) }.compactMap { byUID[$0] }
            // Within one account a move adds nothing to the usage; anything else does.
            if !(move && source.accountID == target.accountID) {
                try await Self.checkQuota(sql, accountID: target.accountID, adding: Int(ordered.reduce(0) { $0 + $1.5 }), messages: ordered.count)
            }
            var next = target.uidNext
            let modseq = target.highestModseq + 1
            var newUIDs: [UInt32] = [], movedUIDs: [UInt32] = []
            for (id, uid, contentID, flags, date, size) in ordered {
                _ = id
                let kept = StoreRules.flagWords(flags).filter { target.rights.mayStore($0) }.joined(separator: " ")
                try await sql.run("""
                    INSERT INTO message (mailbox_id, uid, content_id, flags, modseq, internal_date, size)
                    VALUES (\(target.id), \(next), \(contentID), \(kept), \(modseq), \(date), \(size))
                    """)
                try await sql.run("UPDATE content SET refs = refs + 1 WHERE id = \(contentID)")
                newUIDs.append(UInt32(next))
                movedUIDs.append(UInt32(uid))
                next += 1
            }
            guard !ordered.isEmpty else { return [] }
            try await sql.run("UPDATE mailbox SET uidnext = \(next), highest_modseq = \(modseq) WHERE id = \(target.id)")
            try await sql.announce(target.change(.messagesAdded, uids: newUIDs))
            if move {
                try await sql.run("DELETE FROM message WHERE id = ANY(\(ordered.map(\.0)))")
                try await sql.run("UPDATE mailbox SET highest_modseq = highest_modseq + 1 WHERE id = \(source.id)")
                try await Self.dropReferences(sql, ordered.map(\.2))
                try await sql.announce(source.change(.messagesExpunged, uids: movedUIDs))
            }
            return newUIDs
        }
    }

    func expunge(user: String, mailbox: String, uids: [UInt32]?) async throws -> [UInt32] {
        try await writing { sql in
            let box = try await Self.resolve(sql, user, mailbox, needing: "e", locking: true)
            var rows = try await sql.rows("""
                SELECT id, uid, content_id FROM message WHERE mailbox_id = \(box.id) AND \(unescaped: Self.hasFlag("\\deleted")) ORDER BY uid
                """).map { try $0.decode((Int64, Int64, Int64).self) }
            if let uids { let wanted = Set(uids); rows = rows.filter { wanted.contains(UInt32($0.1)) } }
            guard !rows.isEmpty else { return [] }
            try await sql.run("DELETE FROM message WHERE id = ANY(\(rows.map(\.0)))")
            try await sql.run("UPDATE mailbox SET highest_modseq = highest_modseq + 1 WHERE id = \(box.id)")
            try await Self.dropReferences(sql, rows.map(\.2))
            let expunged = rows.map { UInt32($0.1) }
            try await sql.announce(box.change(.messagesExpunged, uids: expunged))
            return expunged
        }
    }
}
