import Foundation
import GRDB
import PluginAPI

// Accounts imported with a legacy password hash (Dovecot's `{SCHEME}` forms, crypt(3) strings;
// `LegacyPasswordHash` in PluginAPI). Such an account's `secret` column holds `legacyMarker` and
// its hash sits in `legacy_password` until the first successful plaintext login, which replaces
// both with SCRAM-SHA-256 keys in one transaction and records the migration. Until then it has
// no keys, so SCRAM mechanisms find no secret (`storedSecret` answers `.unknownUser`) and only
// PLAIN and LOGIN can log it in. After a domain's `legacy_schemes_until` date the hash no longer
// verifies at all: the user must have a new password set.

extension Schema {
    /// Migrations of the `auth-legacy` work, in their own uniquely named steps (never an edit of
    /// an earlier one). `legacy_password`: the imported hash of an account not yet migrated.
    /// `password_migration`: one row per account migrated, with the scheme it came from.
    static func registerLegacyPasswordMigrations(_ m: inout DatabaseMigrator) {
        m.registerMigration("auth-legacy-v1") { db in
            try db.execute(sql: """
                CREATE TABLE legacy_password (
                    account_id INTEGER PRIMARY KEY REFERENCES account(id) ON DELETE CASCADE,
                    scheme TEXT NOT NULL,
                    hash TEXT NOT NULL,
                    imported INTEGER NOT NULL);
                CREATE TABLE password_migration (
                    id INTEGER PRIMARY KEY,
                    account_id INTEGER REFERENCES account(id) ON DELETE SET NULL,
                    scheme TEXT NOT NULL,
                    migrated INTEGER NOT NULL);
                """)
        }
    }
}

extension SQLiteStore {
    /// The `secret` of an account still on a legacy hash: no SCRAM storage string parses as it.
    static let legacyMarker = "LEGACY"

    /// Checks an imported hash before its account is created, so a malformed one is refused with
    /// the import row (and the reason) instead of locking the account out.
    static func legacyMarker(checking text: String) throws -> String {
        do {
            _ = try LegacyPasswordHash(parsing: text)
            return legacyMarker
        } catch {
            throw AccountError.invalidPassword("\(error)")
        }
    }

    static func insertLegacyHash(_ db: Database, accountID: Int64, _ text: String, now: Int64) throws {
        let hash = try LegacyPasswordHash(parsing: text)
        try db.execute(sql: "INSERT INTO legacy_password (account_id, scheme, hash, imported) VALUES (?, ?, ?, ?)",
                       arguments: [accountID, hash.scheme.rawValue, hash.encoded, now])
    }

    /// A plaintext login of an account on a legacy hash: verify it (unless the domain's date has
    /// passed), then migrate it to SCRAM keys. A wrong password, and any hash after the date, is
    /// `.wrongPassword`, as for any other account.
    func verifyLegacyPassword(_ row: (name: String, secret: String, enabled: Bool), password: String) async throws -> CredentialAnswer {
        let name = row.name
        guard let stored: String = try await reading({ db in
            try String.fetchOne(db, sql: "SELECT l.hash FROM legacy_password l JOIN account a ON a.id = l.account_id WHERE a.name = ?",
                                arguments: [name])
        }) else {
            // Migrated meanwhile by another process: its secret is SCRAM keys now. (An account
            // marked legacy with no hash left verifies nothing; it needs a new password.)
            guard let now = try await reading({ db in
                try String.fetchOne(db, sql: "SELECT secret FROM account WHERE name = ?", arguments: [name])
            }), now != Self.legacyMarker, let secret = try? SCRAMSecret(encoded: now), secret.verify(password: password) else {
                return .wrongPassword
            }
            return row.enabled ? .verified(user: name) : .suspended(user: name)
        }
        guard let hash = try? LegacyPasswordHash(parsing: stored) else { return .wrongPassword }
        if let domain = StoreRules.split(name)?.domain, let until = settings.legacySchemesUntil[domain], Self.now() >= until {
            LegacyPasswords.logger.notice("legacy password hash refused: the domain's legacy_schemes_until has passed",
                                          metadata: ["user": "\(name)", "scheme": "\(hash.scheme.rawValue)"])
            LegacyPasswords.refusedAfterDate.increment()
            return .wrongPassword
        }
        guard hash.verify(password: password) else { return .wrongPassword }
        guard row.enabled else { return .suspended(user: name) }
        // Verified: replace the hash with SCRAM keys. A password the SCRAM preparation refuses
        // cannot happen here (verify refuses NUL too), but if it did the login still succeeds.
        if let secret = try? StoreRules.secret(password, iterations: settings.passwordIterations) {
            let migrated: Bool = try await writing { db in
                guard let accountID = try Int64.fetchOne(db, sql: "SELECT id FROM account WHERE name = ? AND secret = ?",
                                                         arguments: [name, Self.legacyMarker]) else { return false }
                try db.execute(sql: "UPDATE account SET secret = ? WHERE id = ?", arguments: [secret, accountID])
                try db.execute(sql: "DELETE FROM legacy_password WHERE account_id = ?", arguments: [accountID])
                try db.execute(sql: "INSERT INTO password_migration (account_id, scheme, migrated) VALUES (?, ?, ?)",
                               arguments: [accountID, hash.scheme.rawValue, Self.now()])
                return true
            }
            if migrated {
                LegacyPasswords.logger.info("legacy password hash migrated to SCRAM-SHA-256",
                                            metadata: ["user": "\(name)", "scheme": "\(hash.scheme.rawValue)"])
                LegacyPasswords.migrated.increment()
            }
        }
        return .verified(user: name)
    }
}

extension SQLiteStore: PasswordSchemeReporting {
    /// Per domain, how many accounts are on each scheme: their legacy hash's, or the SCRAM
    /// algorithm of their keys; plus how many were migrated so far.
    func passwordSchemeReport() async throws -> PasswordSchemeReport {
        try await reading { db in
            var report = PasswordSchemeReport()
            for domain in try String.fetchAll(db, sql: "SELECT name FROM domain ORDER BY name") {
                report.domains[domain] = PasswordSchemeReport.Domain()
            }
            for row in try Row.fetchAll(db, sql: """
                SELECT d.name AS domain, COALESCE(CASE WHEN a.secret = 'LEGACY' THEN COALESCE(l.scheme, 'NONE') END,
                                                  CASE WHEN a.secret LIKE 'SCRAM-SHA-1$%' THEN 'SCRAM-SHA-1'
                                                                 WHEN a.secret LIKE 'SCRAM-SHA-256$%' THEN 'SCRAM-SHA-256'
                                                                 ELSE 'UNKNOWN' END) AS scheme,
                       COUNT(*) AS n
                FROM account a JOIN domain d ON d.id = a.domain_id LEFT JOIN legacy_password l ON l.account_id = a.id
                GROUP BY 1, 2
                """) {
                report.domains[row["domain"], default: .init()].accounts[row["scheme"]] = row["n"]
            }
            for row in try Row.fetchAll(db, sql: """
                SELECT d.name AS domain, COUNT(*) AS n FROM password_migration m
                JOIN account a ON a.id = m.account_id JOIN domain d ON d.id = a.domain_id GROUP BY 1
                """) {
                report.domains[row["domain"], default: .init()].migrated = row["n"]
            }
            return report
        }
    }
}

/// The migration's log label and counters (on `/metrics` as `postern_legacy_password_*`).
enum LegacyPasswords {
    struct ConfigError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    static let logger = Logger(label: "plugin.store-sqlite.legacy-passwords")
    static let migrated = Counter(label: "postern_legacy_password_migrated_total")
    static let refusedAfterDate = Counter(label: "postern_legacy_password_refused_after_date_total")

    /// `legacy_schemes_until` values: `YYYY-MM-DD` (midnight UTC) per domain, lower-cased.
    static func parseDates(_ table: [String: String]) throws -> [String: Int64] {
        var out: [String: Int64] = [:]
        for (domain, text) in table {
            let parts = text.split(separator: "-", omittingEmptySubsequences: false)
            var components = DateComponents()
            components.timeZone = TimeZone(identifier: "UTC")
            guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
                  let y = Int(parts[0]), let mo = Int(parts[1]), let d = Int(parts[2]),
                  (1...12).contains(mo), (1...31).contains(d) else {
                throw LegacyPasswords.ConfigError("legacy_schemes_until: '\(text)' for \(domain) is not a date YYYY-MM-DD")
            }
            components.year = y; components.month = mo; components.day = d
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(identifier: "UTC")!
            guard let date = calendar.date(from: components), calendar.component(.day, from: date) == d else {
                throw LegacyPasswords.ConfigError("legacy_schemes_until: '\(text)' for \(domain) is not a date YYYY-MM-DD")
            }
            out[domain.lowercased()] = Int64(date.timeIntervalSince1970)
        }
        return out
    }
}
