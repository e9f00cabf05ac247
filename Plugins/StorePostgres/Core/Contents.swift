import Foundation
import PluginAPI
import PluginPostgres

/// Message contents, stored once however many mailboxes hold them: a `content` row per distinct
/// digest (SHA-256 of the bytes) with a reference count, one reference per message row.
extension PostgresStore {
    static func digest(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    /// Adds `count` references to the content (creating its row with the bytes), returning its
    /// id. Concurrent writers of the same bytes meet on the digest's unique index.
    static func reference(_ sql: SQL, digest: String, bytes: [UInt8], count: Int = 1) async throws -> Int64 {
        let n = Int64(count)
        // The bytes go over the wire only when the row is new: most copies of a message are
        // references added to the row the first one made.
        if let id = try await sql.value("UPDATE content SET refs = refs + \(n) WHERE digest = \(digest) RETURNING id", as: Int64.self) {
            return id
        }
        guard let id = try await sql.value("""
            INSERT INTO content (digest, size, refs, bytes) VALUES (\(digest), \(Int64(bytes.count)), \(n), \(ByteBuffer(bytes: bytes)))
            ON CONFLICT (digest) DO UPDATE SET refs = content.refs + excluded.refs RETURNING id
            """, as: Int64.self) else { throw StorageError.temporary("PostgreSQL: no content row for \(digest)") }
        return id
    }

    /// Drops one reference per id; a content row left with none goes.
    static func dropReferences(_ sql: SQL, _ ids: [Int64]) async throws {
        var counts: [Int64: Int64] = [:]
        for id in ids { counts[id, default: 0] += 1 }
        for (id, n) in counts.sorted(by: { $0.key < $1.key }) {
            try await sql.run("UPDATE content SET refs = refs - \(n) WHERE id = \(id)")
        }
        if !counts.isEmpty {
            try await sql.run("DELETE FROM content WHERE id = ANY(\(Array(counts.keys))) AND refs <= 0")
        }
    }

    func content(user: String, mailbox: String, uid: UInt32) async throws -> [UInt8] {
        try await reading { sql in
            if let own = Self.ownName(mailbox) {
                // One's own mailbox: one statement; no row means the mailbox or the message is
                // not there, told apart only then.
                if let bytes = try await sql.value("""
                    SELECT c.bytes FROM account a JOIN mailbox m ON m.account_id = a.id JOIN message msg ON msg.mailbox_id = m.id
                    JOIN content c ON c.id = msg.content_id WHERE lower(a.name) = lower(\(user)) AND m.name = \(own) AND msg.uid = \(Int64(uid))
                    """, as: ByteBuffer.self) {
                    return Array(buffer: bytes)
                }
                _ = try await Self.resolve(sql, user, mailbox, needing: "r")
                throw StorageError.expunged(mailbox: mailbox, uid: uid)
            }
            let box = try await Self.resolve(sql, user, mailbox, needing: "r")
            guard let bytes = try await sql.value("""
                SELECT c.bytes FROM message m JOIN content c ON c.id = m.content_id WHERE m.mailbox_id = \(box.id) AND m.uid = \(Int64(uid))
                """, as: ByteBuffer.self) else {
                throw StorageError.expunged(mailbox: mailbox, uid: uid)
            }
            return Array(buffer: bytes)
        }
    }

    /// The owner's own name of `mailbox` when it is the caller's own (INBOX without case); nil
    /// for another account's (`Other Users/...`), which needs the ACL.
    static func ownName(_ mailbox: String) -> String? {
        guard MailboxNamespace.splitShared(mailbox) == nil else { return nil }
        return mailbox.uppercased() == "INBOX" ? "INBOX" : mailbox
    }

    /// One statement for the whole batch: resolving the mailbox and its rights once, not once
    /// per message, is most of what a FETCH of many small bodies costs.
    func contents(user: String, mailbox: String, uids: [UInt32]) async throws -> [UInt32: [UInt8]] {
        try await reading { sql in
            var out: [UInt32: [UInt8]] = [:]
            let rows: [(Int64, ByteBuffer)]
            if let own = Self.ownName(mailbox) {
                rows = try await sql.rows(Prepared.OwnContents(user: user, mailbox: own, uids: uids.map(Int64.init)))
                if rows.isEmpty { _ = try await Self.resolve(sql, user, mailbox, needing: "r") }
            } else {
                let box = try await Self.resolve(sql, user, mailbox, needing: "r")
                rows = try await sql.rows("""
                    SELECT m.uid, c.bytes FROM message m JOIN content c ON c.id = m.content_id
                    WHERE m.mailbox_id = \(box.id) AND m.uid = ANY(\(uids.map(Int64.init)))
                    """).map { try $0.decode((Int64, ByteBuffer).self) }
            }
            for (uid, bytes) in rows { out[UInt32(uid)] = Array(buffer: bytes) }
            return out
        }
    }
}
