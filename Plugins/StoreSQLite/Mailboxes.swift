import Foundation
import GRDB
import PluginAPI

/// Mailboxes and messages of one account: what IMAP, POP3 and webmail read and change. Each change
/// bumps the mailbox's HIGHESTMODSEQ and stamps the changed messages with it (RFC 7162).
extension SQLiteStore {
    static func accountID(_ db: Database, _ user: String) throws -> Int64 {
        guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM account WHERE name = ?", arguments: [user]) else {
            throw StorageError.noSuchUser(user)
        }
        return id
    }

    static func mailbox(_ db: Database, _ user: String, _ name: String) throws -> Row {
        let accountID = try accountID(db, user)
        // INBOX is case-insensitive (RFC 3501 §5.1); other names are exact.
        let row = name.uppercased() == "INBOX"
            ? try Row.fetchOne(db, sql: "SELECT * FROM mailbox WHERE account_id = ? AND name = 'INBOX'", arguments: [accountID])
            : try Row.fetchOne(db, sql: "SELECT * FROM mailbox WHERE account_id = ? AND name = ?", arguments: [accountID, name])
        guard let row else { throw StorageError.noSuchMailbox(name) }
        return row
    }

    func mailboxes(user: String) async throws -> [MailboxInfo] {
        try await pool.read { db in
            let id = try Self.accountID(db, user)
            return try Row.fetchAll(db, sql: "SELECT name, special_use FROM mailbox WHERE account_id = ? ORDER BY name = 'INBOX' DESC, name",
                                    arguments: [id]).map { row in
                MailboxInfo(name: row["name"], attributes: (row["special_use"] as String?).map { [$0] } ?? [])
            }
        }
    }

    func createMailbox(user: String, name: String) async throws {
        guard !name.isEmpty, name.uppercased() != "INBOX" else { throw StorageError.mailboxExists(name) }
        try await pool.write { db in
            let id = try Self.accountID(db, user)
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM mailbox WHERE account_id = ? AND name = ?", arguments: [id, name]) == true {
                throw StorageError.mailboxExists(name)
            }
            // Above every value the account's mailboxes have or had: the deleted ones' highest is
            // kept in uidvalidity_floor, else a name deleted and created again within the same
            // second would get its old UIDVALIDITY back with UIDs starting again at 1.
            let used = max(try Int64.fetchOne(db, sql: "SELECT MAX(uidvalidity) FROM mailbox WHERE account_id = ?", arguments: [id]) ?? 0,
                           try Int64.fetchOne(db, sql: "SELECT uidvalidity_floor FROM account WHERE id = ?", arguments: [id]) ?? 0)
            let validity = max(Self.now(), used + 1)
            try db.execute(sql: "INSERT INTO mailbox (account_id, name, uidvalidity) VALUES (?, ?, ?)", arguments: [id, name, validity])
        }
    }

    func deleteMailbox(user: String, name: String) async throws {
        guard name.uppercased() != "INBOX" else { throw StorageError.permissionDenied("INBOX cannot be deleted") }
        try await pool.write { db in
            let box = try Self.mailbox(db, user, name)
            let blobIDs = try Int64.fetchAll(db, sql: "SELECT blob_id FROM message WHERE mailbox_id = ?", arguments: [box["id"] as Int64])
            try db.execute(sql: "DELETE FROM message WHERE mailbox_id = ?", arguments: [box["id"] as Int64])
            try db.execute(sql: "DELETE FROM mailbox WHERE id = ?", arguments: [box["id"] as Int64])
            try db.execute(sql: "UPDATE account SET uidvalidity_floor = MAX(uidvalidity_floor, ?) WHERE id = ?",
                           arguments: [box["uidvalidity"] as Int64, box["account_id"] as Int64])
            try Self.dropReferences(db, blobIDs)
        }
    }

    func renameMailbox(user: String, from: String, to: String) async throws {
        guard from.uppercased() != "INBOX", to.uppercased() != "INBOX", !to.isEmpty else {
            throw StorageError.permissionDenied("INBOX cannot be renamed here")
        }
        try await pool.write { db in
            let box = try Self.mailbox(db, user, from)
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM mailbox WHERE account_id = ? AND name = ?", arguments: [box["account_id"] as Int64, to]) == true {
                throw StorageError.mailboxExists(to)
            }
            try db.execute(sql: "UPDATE mailbox SET name = ? WHERE id = ?", arguments: [to, box["id"] as Int64])
        }
    }

    func status(user: String, mailbox: String) async throws -> MailboxStatus {
        try await pool.read { db in
            let box = try Self.mailbox(db, user, mailbox)
            let id: Int64 = box["id"]
            let count = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM message WHERE mailbox_id = ?", arguments: [id]) ?? 0
            let seen = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM message WHERE mailbox_id = ? AND (' ' || flags || ' ') LIKE '% \\Seen %'", arguments: [id]) ?? 0
            return MailboxStatus(messages: count, unseen: count - seen, uidValidity: UInt32(truncatingIfNeeded: box["uidvalidity"] as Int64),
                                 uidNext: UInt32(box["uidnext"] as Int64), highestModseq: UInt64(box["highest_modseq"] as Int64))
        }
    }

    func append(user: String, mailbox: String, message: [UInt8], flags: [String], internalDate: Int64?) async throws -> UInt32 {
        // Through a temporary file so the blob path is the same as for deliveries.
        let tmpDir = settings.directory + "/tmp"
        try BlobStore.makeDirectory(tmpDir)
        let tmp = "\(tmpDir)/append-\(UUID().uuidString)"
        guard FileManager.default.createFile(atPath: tmp, contents: Data(message)) else { throw StorageError.permissionDenied("cannot write \(tmp)") }
        defer { unlink(tmp) }
        let partition: String = try await pool.read { db in
            _ = try Self.mailbox(db, user, mailbox)
            return try String.fetchOne(db, sql: "SELECT partition FROM account WHERE name = ?", arguments: [user])!
        }
        let blob = try BlobStore.store(file: tmp, root: partition)
        let flagText = Self.normalise(flags).joined(separator: " ")
        let date = internalDate ?? Self.now()
        return try await pool.write { db in
            if access(BlobStore.path(root: partition, digest: blob.digest), F_OK) != 0 { _ = try BlobStore.store(file: tmp, root: partition) }
            let box = try Self.mailbox(db, user, mailbox)
            let blobID = try Self.reference(db, digest: blob.digest, partition: partition, size: blob.size)
            let uid: Int64 = box["uidnext"], modseq: Int64 = (box["highest_modseq"] as Int64) + 1
            try db.execute(sql: "INSERT INTO message (mailbox_id, uid, blob_id, flags, modseq, internal_date, size) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           arguments: [box["id"] as Int64, uid, blobID, flagText, modseq, date, blob.size])
            try db.execute(sql: "UPDATE mailbox SET uidnext = ?, highest_modseq = ? WHERE id = ?", arguments: [uid + 1, modseq, box["id"] as Int64])
            return UInt32(uid)
        }
    }

    func messages(user: String, mailbox: String, uids: ClosedRange<UInt32>) async throws -> [StoredMessage] {
        try await pool.read { db in
            let box = try Self.mailbox(db, user, mailbox)
            return try Row.fetchAll(db, sql: "SELECT uid, flags, modseq, internal_date, size FROM message WHERE mailbox_id = ? AND uid BETWEEN ? AND ? ORDER BY uid",
                                    arguments: [box["id"] as Int64, Int64(uids.lowerBound), Int64(uids.upperBound)]).map { row in
                StoredMessage(uid: UInt32(row["uid"] as Int64), flags: Self.flags(row["flags"]), modseq: UInt64(row["modseq"] as Int64),
                              internalDate: row["internal_date"], size: row["size"])
            }
        }
    }

    func content(user: String, mailbox: String, uid: UInt32) async throws -> [UInt8] {
        let (root, digest): (String, String) = try await pool.read { db in
            let box = try Self.mailbox(db, user, mailbox)
            guard let row = try Row.fetchOne(db, sql: "SELECT b.partition, b.digest FROM message m JOIN blob b ON b.id = m.blob_id WHERE m.mailbox_id = ? AND m.uid = ?",
                                             arguments: [box["id"] as Int64, Int64(uid)]) else {
                throw StorageError.noSuchMailbox("\(mailbox) has no UID \(uid)")
            }
            return (row["partition"], row["digest"])
        }
        return try BlobStore.read(root: root, digest: digest)
    }

    func setFlags(user: String, mailbox: String, uids: [UInt32], flags: [String], mode: FlagChange) async throws -> [UInt32: UInt64] {
        let change = Self.normalise(flags)
        return try await pool.write { db in
            let box = try Self.mailbox(db, user, mailbox)
            let boxID: Int64 = box["id"]
            var modseq: Int64 = box["highest_modseq"]
            var changed: [UInt32: UInt64] = [:]
            for uid in uids {
                guard let current = try String.fetchOne(db, sql: "SELECT flags FROM message WHERE mailbox_id = ? AND uid = ?", arguments: [boxID, Int64(uid)]) else { continue }
                let old = Self.flags(current)
                let new: [String]
                switch mode {
                case .add: new = Self.normalise(old + change)
                case .remove: new = old.filter { f in !change.contains { $0.lowercased() == f.lowercased() } }
                case .replace: new = change
                }
                // A set compared without case: the same flags in another order or case are no
                // change, so no new MODSEQ (a replace gives them in the client's order).
                guard Set(new.map { $0.lowercased() }) != Set(old.map { $0.lowercased() }) else { continue }
                modseq += 1
                try db.execute(sql: "UPDATE message SET flags = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?",
                               arguments: [new.joined(separator: " "), modseq, boxID, Int64(uid)])
                changed[uid] = UInt64(modseq)
            }
            try db.execute(sql: "UPDATE mailbox SET highest_modseq = ? WHERE id = ?", arguments: [modseq, boxID])
            return changed
        }
    }

    func copy(user: String, from: String, uids: [UInt32], to: String, move: Bool) async throws -> [UInt32] {
        try await pool.write { db in
            let source = try Self.mailbox(db, user, from), target = try Self.mailbox(db, user, to)
            var next: Int64 = target["uidnext"], modseq: Int64 = (target["highest_modseq"] as Int64) + 1
            var newUIDs: [UInt32] = []
            var moved: [Int64] = []
            for uid in uids {
                guard let row = try Row.fetchOne(db, sql: "SELECT * FROM message WHERE mailbox_id = ? AND uid = ?", arguments: [source["id"] as Int64, Int64(uid)]) else { continue }
                try db.execute(sql: "INSERT INTO message (mailbox_id, uid, blob_id, flags, modseq, internal_date, size) VALUES (?, ?, ?, ?, ?, ?, ?)",
                               arguments: [target["id"] as Int64, next, row["blob_id"] as Int64, row["flags"] as String, modseq, row["internal_date"] as Int64, row["size"] as Int])
                try db.execute(sql: "UPDATE blob SET refs = refs + 1 WHERE id = ?", arguments: [row["blob_id"] as Int64])
                newUIDs.append(UInt32(next))
                moved.append(row["id"])
                next += 1
            }
            try db.execute(sql: "UPDATE mailbox SET uidnext = ?, highest_modseq = ? WHERE id = ?", arguments: [next, modseq, target["id"] as Int64])
            if move, !moved.isEmpty {
                let blobIDs = try Int64.fetchAll(db, sql: "SELECT blob_id FROM message WHERE id IN (\(moved.map { _ in "?" }.joined(separator: ",")))", arguments: StatementArguments(moved))
                try db.execute(sql: "DELETE FROM message WHERE id IN (\(moved.map { _ in "?" }.joined(separator: ",")))", arguments: StatementArguments(moved))
                try db.execute(sql: "UPDATE mailbox SET highest_modseq = highest_modseq + 1 WHERE id = ?", arguments: [source["id"] as Int64])
                try Self.dropReferences(db, blobIDs)
            }
            return newUIDs
        }
    }

    func expunge(user: String, mailbox: String, uids: [UInt32]?) async throws -> [UInt32] {
        try await pool.write { db in
            let box = try Self.mailbox(db, user, mailbox)
            let boxID: Int64 = box["id"]
            var rows = try Row.fetchAll(db, sql: "SELECT id, uid, blob_id, flags FROM message WHERE mailbox_id = ? ORDER BY uid", arguments: [boxID])
                .filter { Self.flags($0["flags"]).contains { $0.lowercased() == "\\deleted" } }
            if let uids { rows = rows.filter { uids.contains(UInt32($0["uid"] as Int64)) } }
            guard !rows.isEmpty else { return [] }
            for row in rows { try db.execute(sql: "DELETE FROM message WHERE id = ?", arguments: [row["id"] as Int64]) }
            try db.execute(sql: "UPDATE mailbox SET highest_modseq = highest_modseq + 1 WHERE id = ?", arguments: [boxID])
            try Self.dropReferences(db, rows.map { $0["blob_id"] })
            return rows.map { UInt32($0["uid"] as Int64) }
        }
    }

    func quota(user: String) async throws -> Quota {
        guard let info = try await account(user) else { throw StorageError.noSuchUser(user) }
        return Quota(bytesUsed: info.bytesUsed, bytesLimit: info.quotaBytes, messagesUsed: info.messagesUsed, messagesLimit: info.quotaMessages)
    }

    static func flags(_ text: String) -> [String] { text.split(separator: " ").map(String.init) }

    /// Flags without duplicates (system flags compared without case), in first-seen order.
    static func normalise(_ flags: [String]) -> [String] {
        var seen = Set<String>()
        return flags.filter { !$0.isEmpty && seen.insert($0.lowercased()).inserted }
    }
}

extension SQLiteStore {
    func verifyIntegrity() async throws -> IntegrityReport {
        let partitions = settings.partitions
        return try await pool.read { db in
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
