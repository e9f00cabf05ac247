import Crypto
import Foundation
import GRDB
import PluginAPI

/// A console login, as every worker and node sees it.
struct AdminSession: Sendable, Equatable {
    /// SHA-256 of the cookie's token, hex: the database never holds the token itself.
    var id: String
    var user: String
    /// Sent by the console in `X-CSRF-Token` with every change.
    var csrf: String
    var created: Double
    var lastSeen: Double
    var clientAddress: String
}

/// An API token for scripts (`Authorization: Bearer ...`), shown once when created.
struct APIToken: Sendable, Equatable, Codable {
    /// The public id (in listings and to revoke it); the secret is never stored, only its hash.
    var id: String
    var user: String
    var name: String
    var created: Int64
    var expires: Int64?
    var lastUsed: Int64?
}

/// One change made through the API: who, what, when, from where.
struct AuditEntry: Sendable, Equatable, Codable {
    var id: Int64
    var time: Int64
    var actor: String
    var role: String
    /// `user.create`, `queue.hold`, ...
    var action: String
    var target: String
    /// The domain the change is in (what a domain administrator's view is filtered on); nil for
    /// changes outside any domain, which only site administrators see.
    var domain: String?
    var client: String
    var detail: String
}

/// Sessions, tokens, delegated domains and the audit log: an SQLite file (WAL) shared by every
/// worker of the node, so that a session survives a reload and a worker crash.
final class AdminDatabase: Sendable {
    let pool: DatabasePool
    let idleTimeout: Double
    let absoluteTimeout: Double
    /// How stale a session's last use or a token's may get before a request records it again.
    static let touchInterval = 60.0

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
                CREATE TABLE IF NOT EXISTS admin_session (
                    id TEXT PRIMARY KEY, user TEXT NOT NULL, csrf TEXT NOT NULL, created REAL NOT NULL,
                    last_seen REAL NOT NULL, client TEXT NOT NULL);
                CREATE INDEX IF NOT EXISTS admin_session_user ON admin_session(user);
                CREATE TABLE IF NOT EXISTS admin_token (
                    id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, user TEXT NOT NULL, name TEXT NOT NULL,
                    created INTEGER NOT NULL, expires INTEGER, last_used INTEGER);
                CREATE INDEX IF NOT EXISTS admin_token_user ON admin_token(user);
                CREATE TABLE IF NOT EXISTS admin_grant (
                    account TEXT NOT NULL, domain TEXT NOT NULL, PRIMARY KEY (account, domain));
                CREATE INDEX IF NOT EXISTS admin_grant_domain ON admin_grant(domain);
                CREATE TABLE IF NOT EXISTS audit (
                    id INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL, actor TEXT NOT NULL, role TEXT NOT NULL,
                    action TEXT NOT NULL, target TEXT NOT NULL, domain TEXT, client TEXT NOT NULL, detail TEXT NOT NULL);
                CREATE INDEX IF NOT EXISTS audit_domain ON audit(domain, id);
                CREATE TABLE IF NOT EXISTS admin_job (
                    id TEXT PRIMARY KEY, owner TEXT NOT NULL, kind TEXT NOT NULL, state TEXT NOT NULL, done INTEGER NOT NULL,
                    total INTEGER NOT NULL, result TEXT, created INTEGER NOT NULL, updated INTEGER NOT NULL);
                """)
        }
        chmod(path, 0o600)
    }

    static func randomToken(bytes: Int = 32) -> String {
        var generator = SystemRandomNumberGenerator()
        let raw = (0..<bytes).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Data(raw).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func hash(_ token: String) -> String {
        SHA256.hash(data: Array(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    // MARK: Sessions

    /// A new session with a fresh token: a login never adopts a token the browser brought
    /// (session fixation).
    func createSession(user: String, clientAddress: String, now: Double = Date().timeIntervalSince1970) throws -> (token: String, session: AdminSession) {
        let token = Self.randomToken()
        let session = AdminSession(id: Self.hash(token), user: user, csrf: Self.randomToken(bytes: 24), created: now,
                                   lastSeen: now, clientAddress: clientAddress)
        try pool.write { db in
            try db.execute(sql: "DELETE FROM admin_session WHERE last_seen < ? OR created < ?",
                           arguments: [now - idleTimeout, now - absoluteTimeout])
            try db.execute(sql: "INSERT INTO admin_session (id, user, csrf, created, last_seen, client) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [session.id, user, session.csrf, now, now, clientAddress])
        }
        return (token, session)
    }

    /// The session a cookie names, if it has not timed out; refreshes its idle clock. A read;
    /// a write only to end a session that timed out or to move its clock (at most once a minute).
    func session(token: String, now: Double = Date().timeIntervalSince1970) throws -> AdminSession? {
        let id = Self.hash(token)
        let found = try pool.read { db -> AdminSession? in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM admin_session WHERE id = ?", arguments: [id]) else { return nil }
            return AdminSession(id: row["id"], user: row["user"], csrf: row["csrf"], created: row["created"],
                                lastSeen: row["last_seen"], clientAddress: row["client"])
        }
        guard let session = found else { return nil }
        if now - session.lastSeen > idleTimeout || now - session.created > absoluteTimeout {
            try deleteSession(id: id)
            return nil
        }
        if now - session.lastSeen >= Self.touchInterval {
            try pool.write { db in try db.execute(sql: "UPDATE admin_session SET last_seen = ? WHERE id = ?", arguments: [now, id]) }
        }
        return session
    }

    func deleteSession(id: String) throws {
        try pool.write { db in try db.execute(sql: "DELETE FROM admin_session WHERE id = ?", arguments: [id]) }
    }

    // MARK: Tokens

    /// A new token for `user`: returns the secret, which is shown once and never stored.
    func createToken(user: String, name: String, lifetime: Double?, now: Double = Date().timeIntervalSince1970) throws -> (secret: String, token: APIToken) {
        let id = String(Self.randomToken(bytes: 9))
        let secret = "pat_" + id + "_" + Self.randomToken()
        let token = APIToken(id: id, user: user, name: name, created: Int64(now), expires: lifetime.map { Int64(now + $0) }, lastUsed: nil)
        try pool.write { db in
            try db.execute(sql: "INSERT INTO admin_token (id, hash, user, name, created, expires) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [id, Self.hash(secret), user, name, token.created, token.expires])
        }
        return (secret, token)
    }

    /// The token a bearer secret is, unless unknown or expired. A read; its last use is written
    /// at most once a minute.
    func token(secret: String, now: Double = Date().timeIntervalSince1970) throws -> APIToken? {
        let found = try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM admin_token WHERE hash = ?", arguments: [Self.hash(secret)]).map(Self.token)
        }
        guard let token = found else { return nil }
        if let expires = token.expires, Int64(now) >= expires { return nil }
        if Int64(now) - (token.lastUsed ?? 0) >= Int64(Self.touchInterval) {
            try pool.write { db in try db.execute(sql: "UPDATE admin_token SET last_used = ? WHERE id = ?", arguments: [Int64(now), token.id]) }
        }
        return token
    }

    func tokens(user: String) throws -> [APIToken] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM admin_token WHERE user = ? ORDER BY created, id", arguments: [user]).map(Self.token)
        }
    }

    /// Revokes one of `user`'s tokens; false when they have none with this id.
    func deleteToken(id: String, user: String) throws -> Bool {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM admin_token WHERE id = ? AND user = ?", arguments: [id, user])
            return db.changesCount > 0
        }
    }

    private static func token(_ row: Row) -> APIToken {
        APIToken(id: row["id"], user: row["user"], name: row["name"], created: row["created"], expires: row["expires"], lastUsed: row["last_used"])
    }

    /// Everything an account had here goes with it (when it is deleted or renamed away).
    func forget(account: String) throws {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM admin_session WHERE user = ?", arguments: [account])
            try db.execute(sql: "DELETE FROM admin_token WHERE user = ?", arguments: [account])
            try db.execute(sql: "DELETE FROM admin_grant WHERE account = ?", arguments: [account])
        }
    }

    /// Ends every session and token of `account` (suspended, demoted, password changed by an admin).
    func endSessions(account: String, keepSession: String? = nil) throws {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM admin_session WHERE user = ? AND id IS NOT ?", arguments: [account, keepSession])
        }
    }

    // MARK: Delegated domains

    func delegatedDomains(account: String) throws -> [String] {
        try pool.read { db in
            try String.fetchAll(db, sql: "SELECT domain FROM admin_grant WHERE account = ? ORDER BY domain", arguments: [account])
        }
    }

    func setDelegatedDomains(account: String, _ domains: [String]) throws {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM admin_grant WHERE account = ?", arguments: [account])
            for d in Set(domains.map { $0.lowercased() }) {
                try db.execute(sql: "INSERT INTO admin_grant (account, domain) VALUES (?, ?)", arguments: [account, d])
            }
        }
    }

    /// The accounts `domain` is delegated to.
    func delegates(domain: String) throws -> [String] {
        try pool.read { db in
            try String.fetchAll(db, sql: "SELECT account FROM admin_grant WHERE domain = ? ORDER BY account", arguments: [domain.lowercased()])
        }
    }

    /// A domain that goes takes its delegations with it.
    func forget(domain: String) throws {
        try pool.write { db in try db.execute(sql: "DELETE FROM admin_grant WHERE domain = ?", arguments: [domain.lowercased()]) }
    }

    // MARK: Audit log

    func audit(actor: Principal, action: String, target: String, domain: String?, client: String, detail: String = "",
               now: Double = Date().timeIntervalSince1970) throws {
        try pool.write { db in
            try db.execute(sql: "INSERT INTO audit (time, actor, role, action, target, domain, client, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           arguments: [Int64(now), actor.name, actor.role.rawValue, action, target, domain?.lowercased(), client, detail])
        }
    }

    /// The newest entries first, before `before` (an id, for paging); `domains` nil: all of them,
    /// else only those in these domains.
    func auditLog(domains: Set<String>?, before: Int64?, limit: Int) throws -> [AuditEntry] {
        try pool.read { db in
            var sql = "SELECT * FROM audit WHERE id < ?"
            var arguments: StatementArguments = [before ?? Int64.max]
            if let domains {
                guard !domains.isEmpty else { return [] }
                sql += " AND domain IN (\(domains.map { _ in "?" }.joined(separator: ",")))"
                arguments += StatementArguments(domains.sorted())
            }
            sql += " ORDER BY id DESC LIMIT ?"
            arguments += [limit]
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
                AuditEntry(id: row["id"], time: row["time"], actor: row["actor"], role: row["role"], action: row["action"],
                           target: row["target"], domain: row["domain"], client: row["client"], detail: row["detail"])
            }
        }
    }
}
