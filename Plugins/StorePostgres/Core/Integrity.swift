import Foundation
import PluginAPI
import PluginPostgres

/// `postern admin check`, and the file-level operations that have no meaning here: contents
/// live in the database, so there are no unreferenced files, and backups are PostgreSQL's
/// own (`pg_dump`, or continuous archiving with `pg_basebackup`).
extension PostgresStore {
    func verifyIntegrity() async throws -> IntegrityReport {
        try await writing { sql in
            try await sql.run("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            var problems: [String] = []
            for row in try await sql.rows("""
                SELECT c.digest, c.refs, (SELECT count(*) FROM message m WHERE m.content_id = c.id), c.size, octet_length(c.bytes) FROM content c
                """) {
                let (digest, refs, used, size, length) = try row.decode((String, Int, Int, Int, Int).self)
                if refs != used { problems.append("content \(digest): refs \(refs) but \(used) messages") }
                if used == 0 { problems.append("content \(digest): kept with no message") }
                if size != length { problems.append("content \(digest): holds \(length) bytes, index says \(size)") }
            }
            for row in try await sql.rows("""
                SELECT a.name, b.name, b.uidnext, max(m.uid) FROM mailbox b JOIN account a ON a.id = b.account_id JOIN message m ON m.mailbox_id = b.id
                GROUP BY a.name, b.id HAVING max(m.uid) >= b.uidnext
                """) {
                let (owner, name, next, top) = try row.decode((String, String, Int64, Int64).self)
                problems.append("mailbox \(owner)/\(name): UID \(top) not below UIDNEXT \(next)")
            }
            for row in try await sql.rows("""
                SELECT a.name, b.name, b.message_count, b.message_bytes, count(m.id), COALESCE(sum(m.size), 0)::bigint
                FROM mailbox b JOIN account a ON a.id = b.account_id LEFT JOIN message m ON m.mailbox_id = b.id
                GROUP BY a.name, b.id HAVING b.message_count != count(m.id) OR b.message_bytes != COALESCE(sum(m.size), 0)
                """) {
                let (owner, name, counted, countedBytes, n, bytes) = try row.decode((String, String, Int, Int, Int, Int).self)
                problems.append("mailbox \(owner)/\(name): counted \(counted) messages of \(countedBytes) bytes, holds \(n) of \(bytes)")
            }
            let messages = try await sql.value("SELECT count(*) FROM message", as: Int.self) ?? 0
            let contents = try await sql.value("SELECT count(*) FROM content", as: Int.self) ?? 0
            return IntegrityReport(problems: problems, unreferencedFiles: [], messages: messages, blobs: contents)
        }
    }

    func removeUnreferencedFiles(olderThan age: Double) async throws -> [String] { [] }

    func backup(to directory: String) async throws -> BackupReport {
        throw StorageError.permissionDenied("store-postgres keeps everything in PostgreSQL: back it up with pg_dump (or pg_basebackup and WAL archiving), which copies a consistent snapshot while the store runs")
    }

    func restore(from directory: String, force: Bool) async throws -> BackupReport {
        throw StorageError.permissionDenied("store-postgres keeps everything in PostgreSQL: restore with pg_restore or psql from the dump")
    }
}
