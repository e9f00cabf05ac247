import Foundation
import GRDB
import PluginAPI

/// Mailboxes and messages of one account: what IMAP, POP3 and webmail read and change. Each change
/// bumps the mailbox's HIGHESTMODSEQ and stamps the changed messages with it (RFC 7162).
extension SQLiteStore {
    static func accountID(_ db: Database, _ user: String) throws -> Int64 {
        guard let id = try Int64.fetchOne(db.cachedStatement(sql: "SELECT id FROM account WHERE name = ?"), arguments: [user]) else {
            throw StorageError.noSuchUser(user)
        }
        return id
    }

    func mailboxes(user: String) async throws -> [MailboxInfo] {
        try readingInline { db in
            let id = try Self.accountID(db, user)
            let own = try Row.fetchAll(db, sql: "SELECT name, special_use FROM mailbox WHERE account_id = ? ORDER BY name = 'INBOX' DESC, name",
                                       arguments: [id]).map { row in
                MailboxInfo(name: row["name"], attributes: (row["special_use"] as String?).map { [$0] } ?? [])
            }
            // Other accounts' mailboxes with an ACL entry naming this user or anyone; shown when
            // the entries add up to the lookup right.
            var shared: [MailboxInfo] = []
            for row in try Row.fetchAll(db, sql: """
                SELECT DISTINCT m.id, m.name, a.name AS owner FROM acl x JOIN mailbox m ON m.id = x.mailbox_id JOIN account a ON a.id = m.account_id
                WHERE x.identifier IN (?, ?) AND m.account_id != ? ORDER BY a.name, m.name
                """, arguments: [user, ACLEntry.anyone, id])
            where try Self.effectiveRights(db, mailboxID: row["id"], user: user).contains("l") {
                shared.append(MailboxInfo(name: MailboxNamespace.shared(owner: row["owner"], mailbox: row["name"]), owner: row["owner"]))
            }
            return own + shared
        }
    }

    /// The account and own name where `name` (as `user` sees it) would be created, with the
    /// right to create there checked: anywhere in one's own hierarchy; under another account's
    /// mailbox with the create right on the parent (RFC 4314 `k`).
    static func creationTarget(_ db: Database, _ user: String, _ name: String) throws -> (accountID: Int64, name: String) {
        guard let (owner, mailbox) = MailboxNamespace.splitShared(name),
              owner.caseInsensitiveCompare(user) != .orderedSame else {
            let own = MailboxNamespace.splitShared(name)?.mailbox ?? name
            return (try accountID(db, user), own)
        }
        guard let slash = mailbox.lastIndex(of: MailboxNamespace.delimiter) else {
            throw StorageError.permissionDenied("only \(owner) can create top-level mailboxes there")
        }
        let parent = try resolve(db, user, MailboxNamespace.shared(owner: owner, mailbox: String(mailbox[..<slash])), needing: "k")
        return (parent.accountID, mailbox)
    }


    func createMailbox(user: String, name: String) async throws {
        try await writing { db in
            let (accountID, own) = try Self.creationTarget(db, user, name)
            guard StoreRules.validMailboxName(own) else { throw StorageError.permissionDenied("'\(name)' is not a valid mailbox name") }
            guard own.uppercased() != "INBOX",
                  try Bool.fetchOne(db, sql: "SELECT 1 FROM mailbox WHERE account_id = ? AND name = ?", arguments: [accountID, own]) != true else {
                throw StorageError.mailboxExists(name)
            }
            // Missing parents first (RFC 3501 §6.3.3: superior names are created as needed).
            let parts = own.split(separator: MailboxNamespace.delimiter).map(String.init)
            for depth in 1...parts.count {
                let path = parts[0..<depth].joined(separator: String(MailboxNamespace.delimiter))
                if depth < parts.count, try path.uppercased() == "INBOX" || (Bool.fetchOne(db, sql: "SELECT 1 FROM mailbox WHERE account_id = ? AND name = ?", arguments: [accountID, path]) == true) {
                    continue
                }
                // Above every value the account's mailboxes have or had: the deleted ones' highest is
                // kept in uidvalidity_floor, else a name deleted and created again within the same
                // second would get its old UIDVALIDITY back with UIDs starting again at 1.
                let used = max(try Int64.fetchOne(db, sql: "SELECT MAX(uidvalidity) FROM mailbox WHERE account_id = ?", arguments: [accountID]) ?? 0,
                               try Int64.fetchOne(db, sql: "SELECT uidvalidity_floor FROM account WHERE id = ?", arguments: [accountID]) ?? 0)
                let validity = max(Self.now(), used + 1)
                try db.execute(sql: "INSERT INTO mailbox (account_id, name, uidvalidity) VALUES (?, ?, ?)", arguments: [accountID, path, validity])
            }
        }
    }

    func deleteMailbox(user: String, name: String) async throws {
        let box: ResolvedMailbox = try await writing { db in
            let box = try Self.resolve(db, user, name, needing: "x")
            guard box.name.uppercased() != "INBOX" else { throw StorageError.permissionDenied("INBOX cannot be deleted") }
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM mailbox WHERE account_id = ? AND substr(name, 1, ?) = ?",
                                 arguments: [box.accountID, box.name.utf8.count + 1, box.name + "/"]) == true {
                throw StorageError.hasChildren(name)
            }
            let blobIDs = try Int64.fetchAll(db, sql: "SELECT blob_id FROM message WHERE mailbox_id = ?", arguments: [box.id])
            try db.execute(sql: "DELETE FROM message WHERE mailbox_id = ?", arguments: [box.id])
            try db.execute(sql: "DELETE FROM mailbox WHERE id = ?", arguments: [box.id])
            try db.execute(sql: "UPDATE account SET uidvalidity_floor = MAX(uidvalidity_floor, ?) WHERE id = ?", arguments: [box.uidValidity, box.accountID])
            try Self.dropReferences(db, blobIDs)
            return box
        }
        announce(box, .mailboxDeleted)
    }

    func renameMailbox(user: String, from: String, to: String) async throws {
        let box: ResolvedMailbox = try await writing { db in
            let box = try Self.resolve(db, user, from, needing: "x")
            let (targetAccount, target) = try Self.creationTarget(db, user, to)
            guard box.name.uppercased() != "INBOX", target.uppercased() != "INBOX" else {
                throw StorageError.permissionDenied("INBOX cannot be renamed here")
            }
            guard targetAccount == box.accountID else { throw StorageError.permissionDenied("a mailbox cannot move to another account") }
            guard StoreRules.validMailboxName(target), !target.hasPrefix(box.name + "/") else {
                throw StorageError.permissionDenied("'\(to)' is not a valid new name")
            }
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM mailbox WHERE account_id = ? AND name = ?", arguments: [box.accountID, target]) == true {
                throw StorageError.mailboxExists(to)
            }
            // Children move along: `a/x` becomes `b/x`.
            let children = try Row.fetchAll(db, sql: "SELECT id, name FROM mailbox WHERE account_id = ? AND substr(name, 1, ?) = ?",
                                            arguments: [box.accountID, box.name.utf8.count + 1, box.name + "/"])
            try db.execute(sql: "UPDATE mailbox SET name = ? WHERE id = ?", arguments: [target, box.id])
            for child in children {
                let name: String = child["name"]
                try db.execute(sql: "UPDATE mailbox SET name = ? WHERE id = ?", arguments: [target + name.dropFirst(box.name.count), child["id"] as Int64])
            }
            // Missing parents of the new name, as CREATE makes them.
            let parts = target.split(separator: MailboxNamespace.delimiter).map(String.init)
            for depth in stride(from: 1, to: parts.count, by: 1) {
                let path = parts[0..<depth].joined(separator: "/")
                if try Bool.fetchOne(db, sql: "SELECT 1 FROM mailbox WHERE account_id = ? AND name = ?", arguments: [box.accountID, path]) != true {
                    let floor = max(try Int64.fetchOne(db, sql: "SELECT MAX(uidvalidity) FROM mailbox WHERE account_id = ?", arguments: [box.accountID]) ?? 0,
                                    try Int64.fetchOne(db, sql: "SELECT uidvalidity_floor FROM account WHERE id = ?", arguments: [box.accountID]) ?? 0)
                    try db.execute(sql: "INSERT INTO mailbox (account_id, name, uidvalidity) VALUES (?, ?, ?)", arguments: [box.accountID, path, max(Self.now(), floor + 1)])
                }
            }
            return box
        }
        announce(box, .mailboxRenamed)
    }

    func status(user: String, mailbox: String) async throws -> MailboxStatus {
        try readingInline { db in
            let box = try Self.resolve(db, user, mailbox, needing: "r")
            let count = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM message WHERE mailbox_id = ?", arguments: [box.id]) ?? 0
            let seen = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM message WHERE mailbox_id = ? AND (' ' || flags || ' ') LIKE '% \\Seen %'", arguments: [box.id]) ?? 0
            return MailboxStatus(messages: count, unseen: count - seen, uidValidity: UInt32(truncatingIfNeeded: box.uidValidity),
                                 uidNext: UInt32(box.uidNext), highestModseq: UInt64(box.highestModseq))
        }
    }

    /// O(1): the mailbox row only; `messages` and `unseen` are not counted (0).
    func changeStamp(user: String, mailbox: String) async throws -> MailboxStatus {
        try readingInline { db in
            let box = try Self.resolve(db, user, mailbox, needing: "r")
            return MailboxStatus(messages: 0, unseen: 0, uidValidity: UInt32(truncatingIfNeeded: box.uidValidity),
                                 uidNext: UInt32(box.uidNext), highestModseq: UInt64(box.highestModseq))
        }
    }

    /// Throws `overQuota` when adding `bytes` in `messages` messages would take the account past
    /// a limit (RFC 9208: the owner's quota, whoever appends).
    static func checkQuota(_ db: Database, accountID: Int64, adding bytes: Int, messages: Int) throws {
        guard let row = try Row.fetchOne(db, sql: "SELECT quota_bytes, quota_messages FROM account WHERE id = ?", arguments: [accountID]),
              row["quota_bytes"] as Int? != nil || row["quota_messages"] as Int? != nil else { return }
        let usage = try Schema.usage(db, accountID: accountID)
        if let limit = row["quota_bytes"] as Int?, usage.bytes + bytes > limit {
            throw StorageError.overQuota("storage limit \(limit) bytes")
        }
        if let limit = row["quota_messages"] as Int?, usage.messages + messages > limit {
            throw StorageError.overQuota("message limit \(limit)")
        }
    }

    func append(user: String, mailbox: String, message: [UInt8], flags: [String], internalDate: Int64?) async throws -> UInt32 {
        // The owner's partition: a message appended to a shared mailbox is the owner's.
        let partition: String = try readingInline { db in
            let box = try Self.resolve(db, user, mailbox, needing: "i")
            try Self.checkQuota(db, accountID: box.accountID, adding: message.count, messages: 1)
            return try String.fetchOne(db, sql: "SELECT partition FROM account WHERE id = ?", arguments: [box.accountID])!
        }
        let blob = try await Self.offload { try BlobStore.store(bytes: message, root: partition) }
        let text = SearchableText(message: message)
        let date = internalDate ?? Self.now()
        // In the next group commit with other appends and deliveries (WriteBatch.swift).
        let (box, uid, modseq): (ResolvedMailbox, Int64, Int64) = try await groupWrites.write { db in
            // Removed meanwhile by an expunge in another process (as in `deliver`): stored again.
            if access(BlobStore.path(root: partition, digest: blob.digest), F_OK) != 0 { _ = try BlobStore.store(bytes: message, root: partition) }
            let box = try Self.resolve(db, user, mailbox, needing: "i")
            try Self.checkQuota(db, accountID: box.accountID, adding: blob.size, messages: 1)
            // Flags the appender may not set are dropped (RFC 4314 §4: APPEND without `s`/`w`/`t`).
            let flagText = StoreRules.normalise(flags).filter { box.rights.mayStore($0) }.joined(separator: " ")
            let blobID = try Self.reference(db, digest: blob.digest, partition: partition, size: blob.size)
            try Self.recordSearchText(db, blobID: blobID, text)
            let uid = box.uidNext, modseq = box.highestModseq + 1
            try db.execute(sql: "INSERT INTO message (mailbox_id, uid, blob_id, flags, modseq, internal_date, size) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           arguments: [box.id, uid, blobID, flagText, modseq, date, blob.size])
            try db.execute(sql: "UPDATE mailbox SET uidnext = ?, highest_modseq = ? WHERE id = ?", arguments: [uid + 1, modseq, box.id])
            return (box, uid, modseq)
        }
        announce(box, .messagesAdded, uids: [UInt32(uid)], modseq: modseq)
        return UInt32(uid)
    }

    func messages(user: String, mailbox: String, uids: ClosedRange<UInt32>) async throws -> [StoredMessage] {
        try readingInline { db in
            let box = try Self.resolve(db, user, mailbox, needing: "r")
            return try Self.storedMessages(db, sql: "SELECT uid, flags, modseq, internal_date, size FROM message WHERE mailbox_id = ? AND uid BETWEEN ? AND ? ORDER BY uid",
                                           arguments: [box.id, Int64(uids.lowerBound), Int64(uids.upperBound)])
        }
    }

    /// One read transaction: the mailbox row, its UIDs (from the (mailbox, uid) key, no row
    /// decoded into flags), the first unseen through the system flags' index, and the distinct
    /// flag strings that hold a keyword.
    func selection(user: String, mailbox: String) async throws -> MailboxSelection {
        try readingInline { db in
            let box = try Self.resolve(db, user, mailbox, needing: "r")
            var uids: [UInt32] = []
            uids.reserveCapacity(try Int.fetchOne(db, sql: "SELECT message_count FROM mailbox WHERE id = ?", arguments: [box.id]) ?? 0)
            let cursor = try Int64.fetchCursor(db.cachedStatement(sql: "SELECT uid FROM message WHERE mailbox_id = ? ORDER BY uid"), arguments: [box.id])
            while let uid = try cursor.next() { uids.append(UInt32(truncatingIfNeeded: uid)) }
            let unseen = SearchCondition.systemFlag("\\seen", set: false)
            let firstUnseen = try Int64.fetchOne(db.cachedStatement(sql: "SELECT MIN(m.uid) FROM message m WHERE m.mailbox_id = ? AND \(unseen.sql)"),
                                                 arguments: [box.id])
            var keywords: [String] = []
            // A flag string holds a keyword where a word does not start with a backslash.
            for flags in try String.fetchAll(db.cachedStatement(sql: "SELECT DISTINCT flags FROM message WHERE mailbox_id = ? AND (' ' || flags) GLOB '* [^\\]*'"),
                                              arguments: [box.id]) {
                for f in flags.split(separator: " ") where !f.hasPrefix("\\") && !keywords.contains(String(f)) { keywords.append(String(f)) }
            }
            return MailboxSelection(uidValidity: UInt32(truncatingIfNeeded: box.uidValidity), uidNext: UInt32(box.uidNext),
                                    highestModseq: UInt64(box.highestModseq), uids: uids,
                                    firstUnseen: firstUnseen.map { UInt32(truncatingIfNeeded: $0) }, keywords: keywords)
        }
    }

    func changes(user: String, mailbox: String, since modseq: UInt64) async throws -> MailboxChanges {
        try readingInline { db in
            let box = try Self.resolve(db, user, mailbox, needing: "r")
            let changed = try Self.storedMessages(db, sql: "SELECT uid, flags, modseq, internal_date, size FROM message WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
                                                  arguments: [box.id, Int64(clamping: modseq)])
            let count = try Int.fetchOne(db, sql: "SELECT message_count FROM mailbox WHERE id = ?", arguments: [box.id]) ?? 0
            return MailboxChanges(uidValidity: UInt32(truncatingIfNeeded: box.uidValidity), uidNext: UInt32(box.uidNext),
                                  highestModseq: UInt64(box.highestModseq), changed: changed, messageCount: count)
        }
    }

    /// Index rows (uid, flags, modseq, internal_date, size) read by position: a SELECT of a large
    /// mailbox reads every one of them.
    static func storedMessages(_ db: Database, sql: String, arguments: StatementArguments) throws -> [StoredMessage] {
        var out: [StoredMessage] = []
        let cursor = try Row.fetchCursor(db.cachedStatement(sql: sql), arguments: arguments)
        while let row = try cursor.next() {
            out.append(StoredMessage(uid: UInt32(row[0] as Int64), flags: StoreRules.flagWords(row[1]), modseq: UInt64(row[2] as Int64),
                                     internalDate: row[3], size: row[4]))
        }
        return out
    }

    func content(user: String, mailbox: String, uid: UInt32) async throws -> [UInt8] {
        let (root, digest): (String, String) = try readingInline { db in
            let box = try Self.resolve(db, user, mailbox, needing: "r")
            guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT b.partition, b.digest FROM message m JOIN blob b ON b.id = m.blob_id WHERE m.mailbox_id = ? AND m.uid = ?"),
                                             arguments: [box.id, Int64(uid)]) else {
                throw StorageError.expunged(mailbox: mailbox, uid: uid)
            }
            return (row["partition"], row["digest"])
        }
        return try BlobStore.read(root: root, digest: digest)
    }

    func contents(user: String, mailbox: String, uids: [UInt32]) async throws -> [UInt32: [UInt8]] {
        // One read transaction for the whole batch: resolving the mailbox and its rights once,
        // not once per message, is most of what a FETCH of many small bodies costs.
        let located: [(UInt32, String, String)] = try readingInline { db in
            let box = try Self.resolve(db, user, mailbox, needing: "r")
            let statement = try db.cachedStatement(sql: "SELECT b.partition, b.digest FROM message m JOIN blob b ON b.id = m.blob_id WHERE m.mailbox_id = ? AND m.uid = ?")
            var out: [(UInt32, String, String)] = []
            out.reserveCapacity(uids.count)
            for uid in uids {
                guard let row = try Row.fetchOne(statement, arguments: [box.id, Int64(uid)]) else { continue }
                out.append((uid, row["partition"], row["digest"]))
            }
            return out
        }
        var out: [UInt32: [UInt8]] = [:]
        for (uid, root, digest) in located {
            do {
                out[uid] = try BlobStore.read(root: root, digest: digest)
            } catch _ where !FileManager.default.fileExists(atPath: BlobStore.path(root: root, digest: digest)) {
                // Expunged by another session since the index was read: its blob went with it.
                continue
            }
        }
        return out
    }

    func setFlags(user: String, mailbox: String, uids: [UInt32], flags: [String], mode: FlagChange) async throws -> [UInt32: UInt64] {
        let change = StoreRules.normalise(flags)
        let (box, changed, top): (ResolvedMailbox, [UInt32: UInt64], Int64) = try await writing { db in
            let box = try Self.resolve(db, user, mailbox)
            try StoreRules.checkFlagRights(change, mode: mode, rights: box.rights, mailbox: box.visibleName)
            var modseq = box.highestModseq
            var changed: [UInt32: UInt64] = [:]
            for uid in uids {
                guard let current = try String.fetchOne(db, sql: "SELECT flags FROM message WHERE mailbox_id = ? AND uid = ?", arguments: [box.id, Int64(uid)]),
                      let new = StoreRules.newFlags(old: StoreRules.flagWords(current), change: change, mode: mode, rights: box.rights) else { continue }
                modseq += 1
                try db.execute(sql: "UPDATE message SET flags = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?",
                               arguments: [new.joined(separator: " "), modseq, box.id, Int64(uid)])
                changed[uid] = UInt64(modseq)
            }
            try db.execute(sql: "UPDATE mailbox SET highest_modseq = ? WHERE id = ?", arguments: [modseq, box.id])
            return (box, changed, modseq)
        }
        if !changed.isEmpty { announce(box, .flagsChanged, uids: changed.keys.sorted(), modseq: top) }
        return changed
    }

    func copy(user: String, from: String, uids: [UInt32], to: String, move: Bool) async throws -> [UInt32] {
        let (source, target, newUIDs, moved): (ResolvedMailbox, ResolvedMailbox, [UInt32], [UInt32]) = try await writing { db in
            // RFC 6851 §4.1 / RFC 4314 §4: read the source, insert into the target; a move also
            // deletes and expunges in the source.
            let source = try Self.resolve(db, user, from, needing: move ? "rte" : "r")
            let target = try Self.resolve(db, user, to, needing: "i")
            let rows = try uids.compactMap { uid in
                try Row.fetchOne(db, sql: "SELECT * FROM message WHERE mailbox_id = ? AND uid = ?", arguments: [source.id, Int64(uid)])
            }
            // Within one account a move adds nothing to the usage; anything else does.
            if !(move && source.accountID == target.accountID) {
                try Self.checkQuota(db, accountID: target.accountID, adding: rows.reduce(0) { $0 + ($1["size"] as Int) }, messages: rows.count)
            }
            var next = target.uidNext
            let modseq = target.highestModseq + 1
            var newUIDs: [UInt32] = [], movedUIDs: [UInt32] = []
            var movedIDs: [Int64] = []
            for row in rows {
                let flags = StoreRules.flagWords(row["flags"]).filter { target.rights.mayStore($0) }.joined(separator: " ")
                try db.execute(sql: "INSERT INTO message (mailbox_id, uid, blob_id, flags, modseq, internal_date, size) VALUES (?, ?, ?, ?, ?, ?, ?)",
                               arguments: [target.id, next, row["blob_id"] as Int64, flags, modseq, row["internal_date"] as Int64, row["size"] as Int])
                try db.execute(sql: "UPDATE blob SET refs = refs + 1 WHERE id = ?", arguments: [row["blob_id"] as Int64])
                newUIDs.append(UInt32(next))
                movedIDs.append(row["id"])
                movedUIDs.append(UInt32(row["uid"] as Int64))
                next += 1
            }
            try db.execute(sql: "UPDATE mailbox SET uidnext = ?, highest_modseq = ? WHERE id = ?", arguments: [next, modseq, target.id])
            if move, !movedIDs.isEmpty {
                let marks = movedIDs.map { _ in "?" }.joined(separator: ",")
                let blobIDs = try Int64.fetchAll(db, sql: "SELECT blob_id FROM message WHERE id IN (\(marks))", arguments: StatementArguments(movedIDs))
                try db.execute(sql: "DELETE FROM message WHERE id IN (\(marks))", arguments: StatementArguments(movedIDs))
                try db.execute(sql: "UPDATE mailbox SET highest_modseq = highest_modseq + 1 WHERE id = ?", arguments: [source.id])
                try Self.dropReferences(db, blobIDs)
            }
            return (source, target, newUIDs, move ? movedUIDs : [])
        }
        if !newUIDs.isEmpty { announce(target, .messagesAdded, uids: newUIDs) }
        if !moved.isEmpty { announce(source, .messagesExpunged, uids: moved) }
        return newUIDs
    }

    func expunge(user: String, mailbox: String, uids: [UInt32]?) async throws -> [UInt32] {
        let (box, expunged): (ResolvedMailbox, [UInt32]) = try await writing { db in
            let box = try Self.resolve(db, user, mailbox, needing: "e")
            var rows = try Row.fetchAll(db, sql: "SELECT id, uid, blob_id, flags FROM message WHERE mailbox_id = ? ORDER BY uid", arguments: [box.id])
                .filter { StoreRules.flagWords($0["flags"]).contains { $0.lowercased() == "\\deleted" } }
            if let uids { let wanted = Set(uids); rows = rows.filter { wanted.contains(UInt32($0["uid"] as Int64)) } }
            guard !rows.isEmpty else { return (box, []) }
            for row in rows { try db.execute(sql: "DELETE FROM message WHERE id = ?", arguments: [row["id"] as Int64]) }
            try db.execute(sql: "UPDATE mailbox SET highest_modseq = highest_modseq + 1 WHERE id = ?", arguments: [box.id])
            try Self.dropReferences(db, rows.map { $0["blob_id"] })
            return (box, rows.map { UInt32($0["uid"] as Int64) })
        }
        if !expunged.isEmpty { announce(box, .messagesExpunged, uids: expunged) }
        return expunged
    }

    func quota(user: String) async throws -> Quota {
        guard let info = try await account(user) else { throw StorageError.noSuchUser(user) }
        return Quota(bytesUsed: info.bytesUsed, bytesLimit: info.quotaBytes, messagesUsed: info.messagesUsed, messagesLimit: info.quotaMessages)
    }


}

extension SQLiteStore {
    func verifyIntegrity() async throws -> IntegrityReport {
        let partitions = settings.partitions
        return try await reading { db in
            var problems: [String] = []
            let sqlite = try String.fetchAll(db, sql: "PRAGMA integrity_check")
            if sqlite != ["ok"] { problems += sqlite.map { "sqlite: \($0)" } }
            for row in try Row.fetchAll(db, sql: "PRAGMA foreign_key_check") { problems.append("dangling reference in \(row[0] as String? ?? "?")") }
            let blobs = try Row.fetchAll(db, sql: """
                SELECT b.id, b.digest, b.partition, b.size, b.refs, (SELECT COUNT(*) FROM message m WHERE m.blob_id = b.id) AS used FROM blob b
                """)
            var known = Set<String>()
            for b in blobs {
                let path = BlobStore.path(root: b["partition"], digest: b["digest"])
                known.insert(path)
                if (b["refs"] as Int) != (b["used"] as Int) { problems.append("blob \(b["digest"] as String): refs \(b["refs"] as Int) but \(b["used"] as Int) messages") }
                if (b["used"] as Int) == 0 { problems.append("blob \(b["digest"] as String): kept with no message") }
                var st = stat()
                if stat(path, &st) != 0 {
                    problems.append("blob \(b["digest"] as String): file missing at \(path)")
                } else if Int(st.st_size) != (b["size"] as Int) {
                    problems.append("blob \(b["digest"] as String): file has \(st.st_size) bytes, index says \(b["size"] as Int)")
                }
            }
            for row in try Row.fetchAll(db, sql: """
                SELECT b.name, b.uidnext, MAX(m.uid) AS top FROM mailbox b JOIN message m ON m.mailbox_id = b.id GROUP BY b.id HAVING MAX(m.uid) >= b.uidnext
                """) {
                problems.append("mailbox \(row["name"] as String): UID \(row["top"] as Int64) not below UIDNEXT \(row["uidnext"] as Int64)")
            }
            for row in try Row.fetchAll(db, sql: """
                SELECT * FROM (SELECT b.name, a.name AS owner, b.message_count, b.message_bytes,
                                      (SELECT COUNT(*) FROM message m WHERE m.mailbox_id = b.id) AS n,
                                      (SELECT COALESCE(SUM(m.size), 0) FROM message m WHERE m.mailbox_id = b.id) AS bytes
                               FROM mailbox b JOIN account a ON a.id = b.account_id)
                WHERE message_count != n OR message_bytes != bytes
                """) {
                problems.append("mailbox \(row["owner"] as String)/\(row["name"] as String): counted \(row["message_count"] as Int) messages of \(row["message_bytes"] as Int) bytes, holds \(row["n"] as Int) of \(row["bytes"] as Int)")
            }
            let messages = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM message") ?? 0
            var unreferenced: [String] = []
            for root in partitions {
                guard let walker = FileManager.default.enumerator(atPath: root) else { continue }
                for case let relative as String in walker where !relative.hasPrefix("tmp") {
                    let full = root + "/" + relative
                    var isDir: ObjCBool = false
                    if FileManager.default.fileExists(atPath: full, isDirectory: &isDir), !isDir.boolValue, !known.contains(full) {
                        unreferenced.append(full)
                    }
                }
            }
            return IntegrityReport(problems: problems, unreferencedFiles: unreferenced.sorted(), messages: messages, blobs: blobs.count)
        }
    }
}

extension SQLiteStore {
    func removeUnreferencedFiles(olderThan age: Double) async throws -> [String] {
        let candidates = try await verifyIntegrity().unreferencedFiles
        let cutoff = Date().timeIntervalSince1970 - age
        let partitions = settings.partitions
        // Checked again under the write lock, which deliveries take before referencing a file
        // they wrote: a file young enough to belong to a delivery in progress is kept by age,
        // and one referenced meanwhile is seen here.
        return try await writing { db in
            var removed: [String] = []
            for path in candidates {
                var st = stat()
                guard stat(path, &st) == 0, Double(st.st_mtim.tv_sec) < cutoff else { continue }
                let digest = (path as NSString).lastPathComponent
                guard let root = partitions.first(where: { path == BlobStore.path(root: $0, digest: digest) }),
                      try Bool.fetchOne(db, sql: "SELECT 1 FROM blob WHERE partition = ? AND digest = ?", arguments: [root, digest]) != true else { continue }
                if unlink(path) == 0 { removed.append(path) }
            }
            return removed
        }
    }
}
