import Foundation
import GRDB
import PluginAPI

/// App passwords: named, generated secrets an account holds beside its password, each limited to
/// some protocols (`AppPasswordScope`) and revocable alone. The table keeps SHA-256 of each secret
/// (`AppPasswordSecret`), so a login looks up one row by hash instead of trying every password.
extension SQLiteStore: AppPasswordStore {
    /// Names are for people (`phone`, `Thunderbird at home`): printable, at most 64 characters.
    static func validAppPasswordName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 64 && !name.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }

    func createAppPassword(account: String, name: String, scopes: Set<AppPasswordScope>) async throws -> String {
        guard Self.validAppPasswordName(name) else { throw AccountError.invalidName(name) }
        guard !scopes.isEmpty else { throw AccountError.invalidPassword("an app password needs at least one scope") }
        let secret = AppPasswordSecret.generate()
        let hash = AppPasswordSecret.hash(secret)
        let scopeText = scopes.sorted().map(\.rawValue).joined(separator: ",")
        let now = Self.now()
        try await writing { db in
            guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM account WHERE name = ?", arguments: [account]) else {
                throw AccountError.noSuchAccount(account)
            }
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM app_password WHERE account_id = ? AND name = ?", arguments: [id, name]) == true {
                throw AccountError.appPasswordExists(account: account, name: name)
            }
            try db.execute(sql: "INSERT INTO app_password(account_id, name, scopes, hash, created) VALUES (?, ?, ?, ?, ?)",
                           arguments: [id, name, scopeText, hash, now])
        }
        return secret
    }

    func appPasswords(account: String) async throws -> [AppPasswordInfo] {
        try await reading { db in
            guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM account WHERE name = ?", arguments: [account]) else {
                throw AccountError.noSuchAccount(account)
            }
            return try Row.fetchAll(db, sql: "SELECT name, scopes, created, last_used FROM app_password WHERE account_id = ? ORDER BY name",
                                    arguments: [id]).map { row in
                AppPasswordInfo(name: row["name"], scopes: Self.scopes(row["scopes"]), created: row["created"], lastUsed: row["last_used"])
            }
        }
    }

    func revokeAppPassword(account: String, name: String) async throws {
        try await writing { db in
            guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM account WHERE name = ?", arguments: [account]) else {
                throw AccountError.noSuchAccount(account)
            }
            try db.execute(sql: "DELETE FROM app_password WHERE account_id = ? AND name = ?", arguments: [id, name])
            if db.changesCount == 0 { throw AccountError.noSuchAppPassword(account: account, name: name) }
        }
    }

    /// Whether `password` is one of `account`'s app passwords allowed for `service`. A check
    /// without a service (an admin tool, a backend that does not say) never passes an app
    /// password: its scope cannot be known. Marks the password used.
    func appPasswordMatches(account: String, password: String, service: String?) async throws -> Bool {
        guard let service, let scope = AppPasswordScope(service: service),
              AppPasswordSecret.looksLikeAppPassword(password) else { return false }
        let hash = AppPasswordSecret.hash(password)
        let found = try await reading { db in
            try Row.fetchOne(db, sql: """
                SELECT p.scopes FROM app_password p JOIN account a ON a.id = p.account_id
                WHERE p.hash = ? AND a.name = ?
                """, arguments: [hash, account]).map { Self.scopes($0["scopes"]) }
        }
        guard let scopes = found, scopes.contains(scope) else { return false }
        let now = Self.now()
        _ = try? await writing { db in
            try db.execute(sql: "UPDATE app_password SET last_used = ? WHERE hash = ?", arguments: [now, hash])
        }
        return true
    }

    static func scopes(_ text: String) -> [AppPasswordScope] {
        text.split(separator: ",").compactMap { AppPasswordScope(rawValue: String($0)) }
    }
}
