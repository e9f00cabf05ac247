import Crypto
import Foundation
import GRDB
import PluginAPI

/// A browser's login, as every worker and node sees it. Nothing here lives in a worker's memory:
/// after a worker crash, a reload, or on another webmail node sharing the store, the next request
/// finds the same session.
struct WebSession: Sendable, Equatable {
    /// SHA-256 of the cookie's token, hex: the store never holds the token itself.
    var id: String
    var user: String
    var created: Double
    var lastSeen: Double
    /// Sent in every form and checked on every POST.
    var csrf: String
    /// The IMAP password sealed with a key derived from the cookie token (`CredentialSeal`): a
    /// copy of the store alone does not give the passwords away.
    var sealedPassword: [UInt8]
    /// The browser's address at login (shown in "sessions", logged).
    var clientAddress: String
}

/// Per-user preferences (language, page size, time zone, display name), kept beside the
/// sessions so that every device sees them.
struct WebPreferences: Sendable, Equatable, Codable {
    var language: String?
    var pageSize: Int?
    var timeZone: String?
    var displayName: String?
    /// Added below new messages and replies (after the RFC 3676 "-- " line).
    var signature: String?
    /// Other sending identities (an address the submission server lets this login send as, a
    /// name, a signature); the login's own address with `displayName`/`signature` comes first.
    var identities: [Identity]?
}

struct Identity: Sendable, Equatable, Codable {
    var address: String
    var name: String?
    var signature: String?
}

/// The shared session store: an SQLite file (WAL, busy timeout) that every worker generation
/// and webmail listener of the node opens. Nodes that share one store point `session_store`
/// at one file on shared storage, or (with the scale-out backend) at PostgreSQL.
final class WebSessionStore: Sendable {
    let pool: DatabasePool
    let idleTimeout: Double
    let absoluteTimeout: Double

    init(path: String, idleTimeout: Double, absoluteTimeout: Double) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var config = Configuration()
        config.busyMode = .timeout(5)
        pool = try DatabasePool(path: path, configuration: config)
        self.idleTimeout = idleTimeout
        self.absoluteTimeout = absoluteTimeout
        try pool.write { db in
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS web_session (
                    id TEXT PRIMARY KEY, user TEXT NOT NULL, created REAL NOT NULL, last_seen REAL NOT NULL,
                    csrf TEXT NOT NULL, sealed_password BLOB NOT NULL, client_address TEXT NOT NULL);
                CREATE INDEX IF NOT EXISTS web_session_user ON web_session(user);
                CREATE TABLE IF NOT EXISTS web_preferences (user TEXT PRIMARY KEY, json TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS web_directory_defaults (user TEXT PRIMARY KEY, json TEXT NOT NULL);
                """)
            try db.execute(sql: Self.composeSchema)
        }
        chmod(path, 0o600)
    }

    /// The session a cookie token names, if it exists and has not timed out; refreshes its
    /// idle clock. An expired session is deleted on sight.
    func session(token: String, now: Double = Date().timeIntervalSince1970) throws -> WebSession? {
        let id = Self.id(of: token)
        return try pool.write { db -> WebSession? in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM web_session WHERE id = ?", arguments: [id]) else { return nil }
            let session = WebSession(id: row["id"], user: row["user"], created: row["created"], lastSeen: row["last_seen"],
                                     csrf: row["csrf"], sealedPassword: [UInt8](row["sealed_password"] as Data),
                                     clientAddress: row["client_address"])
            if now - session.lastSeen > idleTimeout || now - session.created > absoluteTimeout {
                try db.execute(sql: "DELETE FROM web_session WHERE id = ?", arguments: [id])
                return nil
            }
            // Written at most once a minute: a page view should not always cost a commit.
            if now - session.lastSeen > 60 {
                try db.execute(sql: "UPDATE web_session SET last_seen = ? WHERE id = ?", arguments: [now, id])
            }
            return session
        }
    }

    /// Creates a session; returns the cookie token (random, 256 bits) and the session.
    func create(user: String, password: String, clientAddress: String,
                now: Double = Date().timeIntervalSince1970) throws -> (token: String, session: WebSession) {
        let token = Self.randomToken()
        let session = WebSession(id: Self.id(of: token), user: user, created: now, lastSeen: now, csrf: Self.randomToken(),
                                 sealedPassword: try CredentialSeal.seal(password, token: token), clientAddress: clientAddress)
        try pool.write { db in
            try db.execute(sql: "DELETE FROM web_session WHERE last_seen < ? OR created < ?",
                           arguments: [now - idleTimeout, now - absoluteTimeout])
            try removeOrphanedComposes(db)
            try db.execute(sql: """
                INSERT INTO web_session (id, user, created, last_seen, csrf, sealed_password, client_address)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [session.id, user, now, now, session.csrf, Data(session.sealedPassword), clientAddress])
        }
        return (token, session)
    }

    func delete(id: String) throws {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM web_session WHERE id = ?", arguments: [id])
            try removeOrphanedComposes(db)
        }
    }

    /// "Log out everywhere": every session of the user, on every device.
    func deleteAll(user: String) throws -> Int {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM web_session WHERE user = ?", arguments: [user])
            let n = db.changesCount
            try removeOrphanedComposes(db)
            return n
        }
    }

    /// Seals the new password into the session after the user changed it.
    func reseal(id: String, password: String, token: String) throws {
        let sealed = try CredentialSeal.seal(password, token: token)
        try pool.write { db in
            try db.execute(sql: "UPDATE web_session SET sealed_password = ? WHERE id = ?", arguments: [Data(sealed), id])
        }
    }

    /// The user's settings: what they saved, over the directory's defaults for them (set at
    /// login by `setDirectoryDefaults`), field by field.
    func preferences(user: String) throws -> WebPreferences {
        try pool.read { db in
            func decode(_ table: String) throws -> WebPreferences? {
                guard let json = try String.fetchOne(db, sql: "SELECT json FROM \(table) WHERE user = ?", arguments: [user]) else { return nil }
                return try? JSONDecoder().decode(WebPreferences.self, from: Data(json.utf8))
            }
            var prefs = try decode("web_preferences") ?? WebPreferences()
            if let defaults = try decode("web_directory_defaults") {
                prefs.language = prefs.language ?? defaults.language
                prefs.timeZone = prefs.timeZone ?? defaults.timeZone
                prefs.displayName = prefs.displayName ?? defaults.displayName
            }
            return prefs
        }
    }

    /// What a directory says about the user (display name, language, time zone), replaced at
    /// each login so that a change in the directory shows at the next one.
    func setDirectoryDefaults(_ defaults: WebPreferences, user: String) throws {
        let json = String(decoding: try JSONEncoder().encode(defaults), as: UTF8.self)
        try pool.write { db in
            try db.execute(sql: "INSERT INTO web_directory_defaults (user, json) VALUES (?, ?) ON CONFLICT(user) DO UPDATE SET json = excluded.json",
                           arguments: [user, json])
        }
    }

    func setPreferences(_ prefs: WebPreferences, user: String) throws {
        let json = String(decoding: try JSONEncoder().encode(prefs), as: UTF8.self)
        try pool.write { db in
            try db.execute(sql: "INSERT INTO web_preferences (user, json) VALUES (?, ?) ON CONFLICT(user) DO UPDATE SET json = excluded.json",
                           arguments: [user, json])
        }
    }

    static func id(of token: String) -> String {
        SHA256.hash(data: Array(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    static func randomToken() -> String {
        var bytes = [UInt8](repeating: 0, count: 32)
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255) }
        return Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}

/// Seals the IMAP password with AES-GCM under a key derived from the cookie token. The worker
/// that serves a request has the token (from the cookie) and the sealed box (from the store),
/// so it can log in to IMAP again after a crash; neither half alone opens it.
enum CredentialSeal {
    static func key(token: String) -> SymmetricKey {
        let derived = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: Array(token.utf8)),
                                             info: Array("postern webmail credential".utf8), outputByteCount: 32)
        return derived
    }

    static func seal(_ password: String, token: String) throws -> [UInt8] {
        let box = try AES.GCM.seal(Array(password.utf8), using: key(token: token))
        guard let combined = box.combined else { throw CryptoKitError.incorrectParameterSize }
        return [UInt8](combined)
    }

    static func open(_ sealed: [UInt8], token: String) throws -> String {
        let box = try AES.GCM.SealedBox(combined: sealed)
        return String(decoding: try AES.GCM.open(box, using: key(token: token)), as: UTF8.self)
    }
}
