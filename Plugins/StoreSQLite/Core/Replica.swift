import Foundation
import GRDB
import PluginAPI

/// The target side of `postern admin user move`: a mailbox written as the source holds it, UIDs,
/// flags and MODSEQs included (MailboxReplicaStore in PluginAPI). Only the owner's own mailboxes;
/// quotas are not applied (an administrator moves the account as it is).
extension SQLiteStore: MailboxReplicaStore {
    func resetReplica(user: String, mailbox: String, uidValidity: UInt32, specialUse: String?) async throws {
        guard MailboxNamespace.splitShared(mailbox) == nil else { throw StorageError.permissionDenied("only own mailboxes are moved: \(mailbox)") }
        do {
            _ = try await changeStamp(user: user, mailbox: mailbox)
        } catch StorageError.noSuchMailbox {
            try await createMailbox(user: user, name: mailbox)
        }
        let box: ResolvedMailbox = try await writing { db in
            let box = try Self.resolve(db, user, mailbox)
            let blobIDs = try Int64.fetchAll(db, sql: "SELECT blob_id FROM message WHERE mailbox_id = ?", arguments: [box.id])
            try db.execute(sql: "DELETE FROM message WHERE mailbox_id = ?", arguments: [box.id])
            try db.execute(sql: "UPDATE mailbox SET uidvalidity = ?, uidnext = 1, highest_modseq = 1, special_use = COALESCE(?, special_use) WHERE id = ?",
                           arguments: [Int64(uidValidity), specialUse, box.id])
            try Self.dropReferences(db, blobIDs)
            return box
        }
        // Sessions that had it open must start again: its UIDVALIDITY is another.
        announce(box, .mailboxDeleted)
    }

    func applyReplica(user: String, mailbox: String, _ changes: ReplicaChanges) async throws {
        guard MailboxNamespace.splitShared(mailbox) == nil else { throw StorageError.permissionDenied("only own mailboxes are moved: \(mailbox)") }
        let partition: String = try readingInline { db in
            let box = try Self.resolve(db, user, mailbox)
            return try String.fetchOne(db, sql: "SELECT partition FROM account WHERE id = ?", arguments: [box.accountID])!
        }
        // Content files first, outside the write lock, as an APPEND writes them.
        var blobs: [(digest: String, size: Int, text: SearchableText)] = []
        for message in changes.add {
            let blob = try await Self.offload { try BlobStore.store(bytes: message.content, root: partition) }
            blobs.append((blob.digest, blob.size, SearchableText(message: message.content)))
        }
        let stored = blobs
        let (box, top): (ResolvedMailbox, Int64) = try await writing { db in
            let box = try Self.resolve(db, user, mailbox)
            var top = box.highestModseq
            func next(_ modseq: UInt64?) -> Int64 {
                let value = modseq.map { Int64(clamping: $0) } ?? top + 1
                top = max(top, value)
                return value
            }
            if !changes.remove.isEmpty {
                let marks = changes.remove.map { _ in "?" }.joined(separator: ",")
                let arguments = StatementArguments([box.id] + changes.remove.map { Int64($0) })
                let blobIDs = try Int64.fetchAll(db, sql: "SELECT blob_id FROM message WHERE mailbox_id = ? AND uid IN (\(marks))", arguments: arguments)
                try db.execute(sql: "DELETE FROM message WHERE mailbox_id = ? AND uid IN (\(marks))", arguments: arguments)
                try Self.dropReferences(db, blobIDs)
                top += 1
            }
            for change in changes.flags {
                try db.execute(sql: "UPDATE message SET flags = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?",
                               arguments: [StoreRules.normalise(change.flags).joined(separator: " "), next(change.modseq), box.id, Int64(change.uid)])
            }
            var uidNext = max(box.uidNext, Int64(changes.uidNext))
            for (message, blob) in zip(changes.add, stored) {
                guard Int64(message.uid) >= box.uidNext else {
                    throw StorageError.permissionDenied("UID \(message.uid) is not above \(mailbox)'s UIDNEXT \(box.uidNext)")
                }
                // Removed meanwhile by an expunge in another process (as in `append`): stored again.
                if access(BlobStore.path(root: partition, digest: blob.digest), F_OK) != 0 {
                    _ = try BlobStore.store(bytes: message.content, root: partition)
                }
                let blobID = try Self.reference(db, digest: blob.digest, partition: partition, size: blob.size)
                try Self.recordSearchText(db, blobID: blobID, blob.text)
                try db.execute(sql: "INSERT INTO message (mailbox_id, uid, blob_id, flags, modseq, internal_date, size) VALUES (?, ?, ?, ?, ?, ?, ?)",
                               arguments: [box.id, Int64(message.uid), blobID, StoreRules.normalise(message.flags).joined(separator: " "),
                                           next(message.modseq), message.internalDate, blob.size])
                uidNext = max(uidNext, Int64(message.uid) + 1)
            }
            top = max(top, Int64(clamping: changes.highestModseq ?? 0))
            try db.execute(sql: "UPDATE mailbox SET uidnext = ?, highest_modseq = ? WHERE id = ?", arguments: [uidNext, top, box.id])
            return (box, top)
        }
        if !changes.add.isEmpty { announce(box, .messagesAdded, uids: changes.add.map(\.uid), modseq: top) }
        if !changes.flags.isEmpty { announce(box, .flagsChanged, uids: changes.flags.map(\.uid), modseq: top) }
        if !changes.remove.isEmpty { announce(box, .messagesExpunged, uids: changes.remove, modseq: top) }
    }
}
