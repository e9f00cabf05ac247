import Foundation
import GRDB
import PluginAPI

// Accounts whose password a directory checks (PluginAPI ExternalAccountStore): created on first
// use by the ldap plugin, with the store's mailboxes and quota but no password of their own.

extension SQLiteStore: ExternalAccountStore {
    func provisionExternalAccount(_ name: String, source: String, enabled: Bool, quotaBytes: Int?) async throws -> Bool {
        let existing: (id: Int64, external: Bool)? = try await reading { db in
            try Row.fetchOne(db, sql: """
                SELECT a.id, EXISTS (SELECT 1 FROM external_account e WHERE e.account_id = a.id) AS external
                FROM account a WHERE a.name = ?
                """, arguments: [name]).map { ($0["id"] as Int64, $0["external"] as Bool) }
        }
        if let existing, !existing.external { return false }
        if existing == nil {
            // A password nobody knows, for the secret column; the external mark (in the same
            // process, just below) makes the credential backend ignore it anyway. A concurrent
            // provisioning of the same name loses the race with accountExists, which is fine.
            var random = SystemRandomNumberGenerator()
            let password = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &random)) }.joined()
            do {
                _ = try await createAccount(NewAccount(name: name, password: password, quotaBytes: quotaBytes))
            } catch AccountError.accountExists {}
        }
        try await writing { db in
            guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM account WHERE name = ?", arguments: [name]) else {
                throw AccountError.noSuchAccount(name)
            }
            try db.execute(sql: "INSERT OR IGNORE INTO external_account (account_id, source, provisioned) VALUES (?, ?, ?)",
                           arguments: [id, source, Int64(Date().timeIntervalSince1970)])
            try db.execute(sql: "UPDATE account SET enabled = ?, quota_bytes = ? WHERE id = ?", arguments: [enabled, quotaBytes, id])
        }
        return true
    }
}
