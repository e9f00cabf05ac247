import Foundation
import GRDB
import PluginAPI

// Backup and restore of the embedded store.
//
// A backup is a directory:
//   index.sqlite          the index as of one instant (rollback journal, self-contained)
//   blobs/ab/cd/<sha256>  every content file that index references, once per digest
//   MANIFEST              JSON, written last: without it the backup is incomplete
//
// Snapshot. The index is copied with SQLite's online backup API (GRDB `backup(to:)`) from a
// pooled reader: in WAL mode that read transaction sees one commit and never blocks writers, and
// the result is a plain database file we can query at once through GRDB. (`VACUUM INTO` would
// give the same snapshot, but cannot run on the connection that holds the write lock in the
// fallback round below.)
//
// The blob race. Blob files are immutable, but an expunge after the snapshot may delete a file
// the snapshot still references: the last reference's file is unlinked inside the expunge's
// write transaction. A held read transaction does not stop that (it only pins index pages), so:
//   1. take a snapshot, copy every blob it references that the backup does not have yet,
//      verifying each file's SHA-256 against its name while copying;
//   2. if every file was there, the snapshot and the copied files agree: done;
//   3. if some were gone, an expunge ran in between: take a new snapshot (which no longer
//      references them, or references them again if a delivery wrote them back) and copy only
//      what is still missing. Files already copied stay valid: a digest names one content.
//   After `lockFreeRounds` such rounds (writers that expunge faster than we copy), one last
//   round runs under the index's write lock: blob files are only ever removed under that lock,
//   and every committed blob row has its file, so nothing can go missing; only the files
//   referenced since the previous round are copied, so writers wait briefly.
// Files copied in an earlier round that the final snapshot no longer references are removed.
//
// Restore goes through the live index in one write transaction (so another process sees the old
// store or the restored one, never a mix) after the blob files are in place and fsynced (the
// store's usual order: files, then the rows that reference them). Without `force` it requires
// the store to have no accounts: then no session of a running server can hold state that the
// restore changes under it, so it is safe while the server runs. With `force` everything is
// replaced; that is for a stopped server (documented; not detectable from here).
// Blobs go to the partition they had when that partition is configured here, else to the first
// configured one, rewriting the index's partition paths: a backup restored on another machine
// or into a test directory then works without recreating the old paths, while a restore in place
// keeps accounts spread as they were.

extension SQLiteStore {
    static let backupFormat = 1
    /// Lock-free snapshot-and-copy rounds before the one under the write lock.
    static var lockFreeRounds: Int {
        #if DEBUG
        // Test builds: 0 takes the write lock at once, so the locked round is tested on purpose
        // (under a real load it runs only when expunges outpace the copy).
        if let n = ProcessInfo.processInfo.environment["POSTERN_TEST_BACKUP_LOCK_FREE_ROUNDS"].flatMap(Int.init) { return n }
        #endif
        return 3
    }

    /// The `MANIFEST` of a backup.
    struct Manifest: Codable {
        var format: Int
        /// ISO 8601, UTC.
        var created: String
        var messages: Int
        var blobs: Int
        var bytes: Int
        var accounts: Int
        /// The partition roots the backed-up index refers to.
        var partitions: [String]
    }

    enum BackupError: Error, CustomStringConvertible {
        case refused(String)

        var description: String {
            switch self { case .refused(let why): return why }
        }
    }

    func backup(to directory: String) async throws -> BackupReport {
        let started = Date()
        let dir = Self.absolute(directory)
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: dir), !entries.isEmpty {
            throw BackupError.refused("\(dir) is not empty; back up into a new directory")
        }
        let blobDir = dir + "/blobs"
        try BlobStore.makeDirectory(blobDir)
        let indexPath = dir + "/index.sqlite"
        var have = Set<String>()     // digests present under blobDir
        var copiedBytes: [String: Int] = [:]
        var snapshot: Snapshot?

        for round in 1...(Self.lockFreeRounds + 1) {
            let underLock = round > Self.lockFreeRounds
            let destination = try DatabaseQueue(path: indexPath)
            let missing: [String]
            if underLock {
                // The copy is read through a connection of its own: SQLite refuses to back up from
                // a connection in a write transaction (sqlite3_backup_step answers SQLITE_BUSY
                // whenever its source holds one), and the lock below is exactly that.
                var readOnly = Configuration()
                readOnly.readonly = true
                let source = try DatabaseQueue(path: settings.directory + "/index.sqlite", configuration: readOnly)
                defer { try? source.close() }
                let result = try await pool.writeWithoutTransaction { [have, copiedBytes] db in
                    var have = have, copiedBytes = copiedBytes
                    var missing: [String] = []
                    var taken: Snapshot?
                    // IMMEDIATE: the write lock, so no blob file can be removed until we are done
                    // and no commit lands between the copy and the file check.
                    try db.inTransaction(.immediate) {
                        try source.backup(to: destination)
                        taken = try Self.snapshotContents(destination)
                        missing = try Self.copyBlobs(taken!.blobs, into: blobDir, have: &have, bytes: &copiedBytes)
                        return .commit
                    }
                    return (missing, taken!, have, copiedBytes)
                }
                missing = result.0
                snapshot = result.1
                have = result.2
                copiedBytes = result.3
            } else {
                try pool.backup(to: destination)
                snapshot = try Self.snapshotContents(destination)
                missing = try Self.copyBlobs(snapshot!.blobs, into: blobDir, have: &have, bytes: &copiedBytes)
            }
            try destination.close()
            if missing.isEmpty { break }
            if underLock {
                // A committed row without its file: the live store itself is damaged.
                throw BackupError.refused("content files missing from the live store (see `postern admin check`): \(missing.prefix(3).joined(separator: ", "))")
            }
        }
        guard let snapshot else { throw BackupError.refused("no snapshot taken") }

        let wanted = Set(snapshot.blobs.map(\.digest))
        for digest in have.subtracting(wanted) {
            unlink(BlobStore.path(root: blobDir, digest: digest))
            copiedBytes[digest] = nil
        }
        // The copied header still says WAL (the live index's mode): a backup should be one file
        // that opens without -wal/-shm companions, read-only media included.
        do {
            let index = try DatabaseQueue(path: indexPath)
            try await index.writeWithoutTransaction { try $0.execute(sql: "PRAGMA journal_mode = DELETE") }
            try index.close()
        }
        try Self.syncFile(indexPath)
        try BlobStore.syncDirectory(dir)

        let report = BackupReport(messages: snapshot.messages, blobs: wanted.count, bytes: wanted.reduce(0) { $0 + (copiedBytes[$1] ?? 0) },
                                  seconds: Date().timeIntervalSince(started))
        let manifest = Manifest(format: Self.backupFormat, created: ISO8601DateFormatter().string(from: started),
                                messages: report.messages, blobs: report.blobs, bytes: report.bytes,
                                accounts: snapshot.accounts, partitions: snapshot.partitions)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try Self.writeDurably(try encoder.encode(manifest), to: dir + "/MANIFEST")
        return report
    }

    /// What a snapshot references: its blob rows, message and account counts, partitions.
    typealias Snapshot = (blobs: [(partition: String, digest: String)], messages: Int, accounts: Int, partitions: [String])

    private static func snapshotContents(_ db: DatabaseQueue) throws -> Snapshot {
        try db.read { db in
            let blobs = try Row.fetchAll(db, sql: "SELECT partition, digest FROM blob ORDER BY digest").map { (partition: $0["partition"] as String, digest: $0["digest"] as String) }
            let partitions = try String.fetchAll(db, sql: "SELECT partition FROM blob UNION SELECT partition FROM account ORDER BY 1")
            return (blobs, try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM message") ?? 0,
                    try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM account") ?? 0, partitions)
        }
    }

    /// Copies the blobs not in `have` from their partitions into `root`; returns the digests whose
    /// source file no longer exists.
    private static func copyBlobs(_ blobs: [(partition: String, digest: String)], into root: String,
                                  have: inout Set<String>, bytes: inout [String: Int]) throws -> [String] {
        var missing: [String] = []
        for blob in blobs where !have.contains(blob.digest) {
            if let size = try BlobStore.copyVerified(from: BlobStore.path(root: blob.partition, digest: blob.digest), root: root, digest: blob.digest) {
                have.insert(blob.digest)
                bytes[blob.digest] = size
            } else {
                missing.append(blob.digest)
            }
        }
        return missing
    }

    func restore(from directory: String, force: Bool) async throws -> BackupReport {
        let started = Date()
        let dir = Self.absolute(directory)
        guard let data = FileManager.default.contents(atPath: dir + "/MANIFEST") else {
            throw BackupError.refused("\(dir) has no MANIFEST: not a backup, or an incomplete one")
        }
        let manifest: Manifest
        do { manifest = try JSONDecoder().decode(Manifest.self, from: data) } catch {
            throw BackupError.refused("\(dir)/MANIFEST is not readable: \(error)")
        }
        guard manifest.format == Self.backupFormat else {
            throw BackupError.refused("\(dir): backup format \(manifest.format), this store reads \(Self.backupFormat)")
        }
        if !force, try await Self.accountCount(pool) > 0 {
            throw BackupError.refused("the store has accounts; restore replaces everything in it: stop the server and use --force")
        }

        // A private copy of the backed-up index, brought to this schema and with its partitions
        // mapped here: the backup itself is never modified.
        let work = settings.directory + "/restore-\(UUID().uuidString).sqlite"
        defer { for suffix in ["", "-journal", "-wal", "-shm"] { unlink(work + suffix) } }
        do {
            let source = try DatabaseQueue(path: dir + "/index.sqlite", configuration: { var c = Configuration(); c.readonly = true; return c }())
            let copy = try DatabaseQueue(path: work)
            try source.backup(to: copy)
            try source.close()
            try Schema.migrator.migrate(copy)
            try await copy.write { db in try self.mapPartitions(db) }
            try copy.close()
        }

        // Files first, fsynced: rows never point at a file that is not there.
        let restoredBlobs = try await DatabaseQueue(path: work).read { db in
            try Row.fetchAll(db, sql: "SELECT partition, digest, size FROM blob").map { (partition: $0["partition"] as String, digest: $0["digest"] as String, size: $0["size"] as Int) }
        }
        var bytes = 0
        for blob in restoredBlobs {
            let source = BlobStore.path(root: dir + "/blobs", digest: blob.digest)
            if access(BlobStore.path(root: blob.partition, digest: blob.digest), F_OK) != 0 {
                guard try BlobStore.copyVerified(from: source, root: blob.partition, digest: blob.digest) != nil else {
                    throw BackupError.refused("the backup lacks content file \(source)")
                }
            }
            bytes += blob.size
        }

        let messages: Int = try await pool.writeWithoutTransaction { db in
            try db.execute(sql: "ATTACH DATABASE ? AS restored", arguments: [work])
            defer { try? db.execute(sql: "DETACH DATABASE restored") }
            var messages = 0
            try db.inTransaction(.immediate) {
                // Checked again under the write lock: an account may have been created meanwhile.
                let accounts = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM main.account") ?? 0
                if !force && accounts > 0 { throw BackupError.refused("the store has accounts; restore replaces everything in it: stop the server and use --force") }
                let old = try Row.fetchAll(db, sql: "SELECT partition, digest FROM main.blob").map { ($0["partition"] as String, $0["digest"] as String) }
                for table in ["password_migration", "legacy_password", "delivery_log", "vacation_log", "alias", "acl", "subscription", "message", "mailbox", "blob", "account", "domain"] { try db.execute(sql: "DELETE FROM main.\(table)") }
                for table in ["domain", "account", "legacy_password", "password_migration", "mailbox", "blob", "message", "acl", "subscription", "alias", "vacation_log", "delivery_log"] {
                    let columns = try db.columns(in: table, in: "main").map { "\"\($0.name)\"" }.joined(separator: ", ")
                    try db.execute(sql: "INSERT INTO main.\(table) (\(columns)) SELECT \(columns) FROM restored.\(table)")
                }
                // Directory-owned accounts (a backup from before that migration has none).
                if try db.tableExists("external_account", in: "restored") {
                    try db.execute(sql: "INSERT INTO main.external_account SELECT * FROM restored.external_account")
                }
                // The mailbox rows brought their counters, and the message rows counted again.
                try Schema.recount(db)
                // As `deliver` does: a file seen before the lock may have been removed since.
                for blob in restoredBlobs where access(BlobStore.path(root: blob.partition, digest: blob.digest), F_OK) != 0 {
                    guard try BlobStore.copyVerified(from: BlobStore.path(root: dir + "/blobs", digest: blob.digest), root: blob.partition, digest: blob.digest) != nil else {
                        throw BackupError.refused("the backup lacks content file for \(blob.digest)")
                    }
                }
                // The search index is derived from the contents: made again for what came back.
                try SQLiteStore.indexUnindexedText(db)
                let kept = Set(restoredBlobs.map { "\($0.partition)\u{0}\($0.digest)" })
                // Like an expunge: files of rows gone for good go under the write lock.
                for (partition, digest) in old where !kept.contains("\(partition)\u{0}\(digest)") {
                    BlobStore.remove(root: partition, digest: digest)
                }
                messages = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM main.message") ?? 0
                return .commit
            }
            return messages
        }
        return BackupReport(messages: messages, blobs: restoredBlobs.count, bytes: bytes, seconds: Date().timeIntervalSince(started))
    }

    private static func accountCount(_ pool: DatabasePool) async throws -> Int {
        try await pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM account") ?? 0 }
    }

    /// Rewrites partition paths of the (private copy of the) backed-up index to configured ones,
    /// merging blob rows that land on the same (partition, digest).
    private func mapPartitions(_ db: Database) throws {
        let configured = Set(settings.partitions), first = settings.partitions[0]
        let used = try String.fetchAll(db, sql: "SELECT partition FROM blob UNION SELECT partition FROM account")
        for old in used where !configured.contains(old) {
            try db.execute(sql: "UPDATE account SET partition = ? WHERE partition = ?", arguments: [first, old])
            for row in try Row.fetchAll(db, sql: "SELECT id, digest, refs FROM blob WHERE partition = ?", arguments: [old]) {
                let id: Int64 = row["id"]
                if let target = try Int64.fetchOne(db, sql: "SELECT id FROM blob WHERE partition = ? AND digest = ?", arguments: [first, row["digest"] as String]) {
                    try db.execute(sql: "UPDATE message SET blob_id = ? WHERE blob_id = ?", arguments: [target, id])
                    try db.execute(sql: "UPDATE blob SET refs = refs + ? WHERE id = ?", arguments: [row["refs"] as Int, target])
                    try db.execute(sql: "DELETE FROM blob WHERE id = ?", arguments: [id])
                } else {
                    try db.execute(sql: "UPDATE blob SET partition = ? WHERE id = ?", arguments: [first, id])
                }
            }
        }
    }

    static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }

    static func syncFile(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw BlobStore.Failure.io("open \(path)", errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw BlobStore.Failure.io("fsync \(path)", errno) }
    }

    /// Temporary file, fsync, rename, fsync of the directory.
    static func writeDurably(_ data: Data, to path: String) throws {
        let temp = path + ".tmp"
        guard FileManager.default.createFile(atPath: temp, contents: data) else { throw BlobStore.Failure.io("create \(temp)", errno) }
        try syncFile(temp)
        guard rename(temp, path) == 0 else { throw BlobStore.Failure.io("rename \(temp)", errno) }
        try BlobStore.syncDirectory((path as NSString).deletingLastPathComponent)
    }
}
