import PluginAPI
import PluginPostgres

/// The target side of `postern admin user move`: a mailbox written as the source holds it, UIDs,
/// flags and MODSEQs included (MailboxReplicaStore in PluginAPI). Only the owner's own mailboxes;
/// quotas are not applied (an administrator moves the account as it is).
extension PostgresStore: MailboxReplicaStore {
    func resetReplica(user: String, mailbox: String, uidValidity: UInt32, specialUse: String?) async throws {
        guard MailboxNamespace.splitShared(mailbox) == nil else { throw StorageError.permissionDenied("only own mailboxes are moved: \(mailbox)") }
        do {
            _ = try await changeStamp(user: user, mailbox: mailbox)
        } catch StorageError.noSuchMailbox {
            try await createMailbox(user: user, name: mailbox)
        }
        try await writing { sql in
            let box = try await Self.resolve(sql, user, mailbox, locking: true)
            let contentIDs = try await sql.values("SELECT content_id FROM message WHERE mailbox_id = \(box.id)", as: Int64.self)
            try await sql.run("DELETE FROM message WHERE mailbox_id = \(box.id)")
            try await sql.run("""
                UPDATE mailbox SET uidvalidity = \(Int64(uidValidity)), uidnext = 1, highest_modseq = 1,
                                   special_use = COALESCE(\(specialUse), special_use) WHERE id = \(box.id)
                """)
            try await Self.dropReferences(sql, contentIDs)
            // Sessions that had it open must start again: its UIDVALIDITY is another.
            try await sql.announce(box.change(.mailboxDeleted))
        }
    }

    func applyReplica(user: String, mailbox: String, _ changes: ReplicaChanges) async throws {
        guard MailboxNamespace.splitShared(mailbox) == nil else { throw StorageError.permissionDenied("only own mailboxes are moved: \(mailbox)") }
        let digests = changes.add.map { Self.digest($0.content) }
        try await writing { sql in
            let box = try await Self.resolve(sql, user, mailbox, locking: true)
            var top = box.highestModseq
            func next(_ modseq: UInt64?) -> Int64 {
                let value = modseq.map { Int64(clamping: $0) } ?? top + 1
                top = max(top, value)
                return value
            }
            if !changes.remove.isEmpty {
                let removed = try await sql.values("""
                    DELETE FROM message WHERE mailbox_id = \(box.id) AND uid = ANY(\(changes.remove.map(Int64.init))) RETURNING content_id
                    """, as: Int64.self)
                try await Self.dropReferences(sql, removed)
                top += 1
            }
            for change in changes.flags {
                let modseq = next(change.modseq)
                try await sql.run("""
                    UPDATE message SET flags = \(StoreRules.normalise(change.flags).joined(separator: " ")), modseq = \(modseq)
                    WHERE mailbox_id = \(box.id) AND uid = \(Int64(change.uid))
                    """)
            }
            var uidNext = max(box.uidNext, Int64(changes.uidNext))
            for (message, digest) in zip(changes.add, digests) {
                guard Int64(message.uid) >= box.uidNext else {
                    throw StorageError.permissionDenied("UID \(message.uid) is not above \(mailbox)'s UIDNEXT \(box.uidNext)")
                }
                let contentID = try await Self.reference(sql, digest: digest, bytes: message.content)
                let modseq = next(message.modseq)
                try await sql.run("""
                    INSERT INTO message (mailbox_id, uid, content_id, flags, modseq, internal_date, size)
                    VALUES (\(box.id), \(Int64(message.uid)), \(contentID), \(StoreRules.normalise(message.flags).joined(separator: " ")),
                            \(modseq), \(message.internalDate), \(Int64(message.content.count)))
                    """)
                uidNext = max(uidNext, Int64(message.uid) + 1)
            }
            top = max(top, Int64(clamping: changes.highestModseq ?? 0))
            try await sql.run("UPDATE mailbox SET uidnext = \(uidNext), highest_modseq = \(top) WHERE id = \(box.id)")
            if !changes.add.isEmpty { try await sql.announce(box.change(.messagesAdded, uids: changes.add.map(\.uid), modseq: top)) }
            if !changes.flags.isEmpty { try await sql.announce(box.change(.flagsChanged, uids: changes.flags.map(\.uid), modseq: top)) }
            if !changes.remove.isEmpty { try await sql.announce(box.change(.messagesExpunged, uids: changes.remove, modseq: top)) }
        }
    }
}
