import Foundation
import GRDB

/// A message being written, between two requests: what the form cannot carry back to the
/// browser (the files already uploaded, the message it answers, the draft it replaces). Kept in
/// the shared store, so a compose survives a worker crash or a reload like the session does.
struct ComposeState: Sendable, Equatable, Codable {
    var id: String
    var inReplyTo: String?
    var references: [String] = []
    /// The draft this compose continues (its UID in the Drafts folder), replaced on each save.
    var draftUID: Int?
    /// A message forwarded as an attachment: where to fetch it from when sending.
    var forwardedFolder: String?
    var forwardedUID: Int?
    /// Set on a reply: the original gets \Answered once this is sent.
    var answeredFolder: String?
    var answeredUID: Int?
    /// The text fields as last posted (to, cc, bcc, subject, body): a compose reopened after a
    /// crash, a reload, or on another node shows what was typed up to the last post.
    var fields: [String: String]?
}

struct StoredUpload: Sendable, Equatable {
    var id: Int64
    var filename: String
    var mimeType: String
    var size: Int
}

extension WebSessionStore {
    static let composeSchema = """
        CREATE TABLE IF NOT EXISTS web_compose (id TEXT PRIMARY KEY, session_id TEXT NOT NULL, json TEXT NOT NULL, updated REAL NOT NULL);
        CREATE TABLE IF NOT EXISTS web_upload (id INTEGER PRIMARY KEY AUTOINCREMENT, compose_id TEXT NOT NULL,
            filename TEXT NOT NULL, mime_type TEXT NOT NULL, data BLOB NOT NULL);
        CREATE INDEX IF NOT EXISTS web_upload_compose ON web_upload(compose_id);
        CREATE TABLE IF NOT EXISTS web_contact (user TEXT NOT NULL, address TEXT NOT NULL, last_used REAL NOT NULL, uses INTEGER NOT NULL,
            PRIMARY KEY (user, address));
        """

    func saveCompose(_ state: ComposeState, sessionID: String) throws {
        let json = String(decoding: try JSONEncoder().encode(state), as: UTF8.self)
        try pool.write { db in
            try db.execute(sql: """
                INSERT INTO web_compose (id, session_id, json, updated) VALUES (?, ?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET json = excluded.json, updated = excluded.updated
                """, arguments: [state.id, sessionID, json, Date().timeIntervalSince1970])
        }
    }

    /// A compose of this session (another session's id finds nothing).
    func compose(id: String, sessionID: String) throws -> ComposeState? {
        try pool.read { db in
            guard let json = try String.fetchOne(db, sql: "SELECT json FROM web_compose WHERE id = ? AND session_id = ?",
                                                 arguments: [id, sessionID]) else { return nil }
            return try? JSONDecoder().decode(ComposeState.self, from: Data(json.utf8))
        }
    }

    /// Ends a compose (sent or discarded) with its uploads.
    func deleteCompose(id: String) throws {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM web_upload WHERE compose_id = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM web_compose WHERE id = ?", arguments: [id])
        }
    }

    func addUpload(composeID: String, filename: String, mimeType: String, data: [UInt8]) throws {
        try pool.write { db in
            try db.execute(sql: "INSERT INTO web_upload (compose_id, filename, mime_type, data) VALUES (?, ?, ?, ?)",
                           arguments: [composeID, filename, mimeType, Data(data)])
        }
    }

    func uploads(composeID: String) throws -> [StoredUpload] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT id, filename, mime_type, length(data) AS size FROM web_upload WHERE compose_id = ? ORDER BY id",
                             arguments: [composeID]).map { row in
                StoredUpload(id: row["id"], filename: row["filename"], mimeType: row["mime_type"], size: row["size"])
            }
        }
    }

    func uploadData(composeID: String) throws -> [(filename: String, mimeType: String, data: [UInt8])] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT filename, mime_type, data FROM web_upload WHERE compose_id = ? ORDER BY id",
                             arguments: [composeID]).map { row in
                (row["filename"], row["mime_type"], [UInt8](row["data"] as Data))
            }
        }
    }

    func removeUpload(id: Int64, composeID: String) throws {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM web_upload WHERE id = ? AND compose_id = ?", arguments: [id, composeID])
        }
    }

    /// Remembers the people a user writes to, for address completion on every device.
    func noteRecipients(_ addresses: [String], user: String, now: Double = Date().timeIntervalSince1970) throws {
        try pool.write { db in
            for address in addresses {
                try db.execute(sql: """
                    INSERT INTO web_contact (user, address, last_used, uses) VALUES (?, ?, ?, 1)
                    ON CONFLICT(user, address) DO UPDATE SET last_used = excluded.last_used, uses = uses + 1
                    """, arguments: [user, address.lowercased(), now])
            }
        }
    }

    /// The user's recent correspondents, most used first.
    func contacts(user: String, limit: Int = 200) throws -> [String] {
        try pool.read { db in
            try String.fetchAll(db, sql: "SELECT address FROM web_contact WHERE user = ? ORDER BY uses DESC, last_used DESC LIMIT ?",
                                arguments: [user, limit])
        }
    }

    /// Composes (and their files) of sessions that no longer exist.
    func removeOrphanedComposes(_ db: Database) throws {
        try db.execute(sql: "DELETE FROM web_upload WHERE compose_id IN (SELECT id FROM web_compose WHERE session_id NOT IN (SELECT id FROM web_session))")
        try db.execute(sql: "DELETE FROM web_compose WHERE session_id NOT IN (SELECT id FROM web_session)")
    }
}
