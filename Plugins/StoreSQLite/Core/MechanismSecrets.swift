import Foundation
import GRDB
import PluginAPI

// Per-mechanism stored secrets (branch auth-mech): what SASL mechanisms other than PLAIN, LOGIN
// and SCRAM-SHA-256 need to check a client without seeing its password — CRAM-MD5's HMAC-MD5
// contexts, DIGEST-MD5's H(user:realm:password), SCRAM-SHA-1 keys. Each is password-equivalent
// for its mechanism, so a row exists only for mechanisms the site loads (`AuthService.
// storedSecretDerivations`): written when a password is set, and at a successful plaintext login
// of an account that lacks it (or holds a stale one); dropped with the account and replaced
// whenever the password changes.

enum MechanismSecretSchema {
    /// A migration of its own, never an edit of an older one (other branches add theirs beside it).
    static func register(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("auth-mech-v1: mechanism_secret") { db in
            try db.execute(sql: """
                CREATE TABLE mechanism_secret (
                    account_id INTEGER NOT NULL REFERENCES account(id) ON DELETE CASCADE,
                    scheme TEXT NOT NULL,
                    fields TEXT NOT NULL,
                    updated INTEGER NOT NULL,
                    PRIMARY KEY (account_id, scheme)
                ) WITHOUT ROWID
                """)
        }
    }

    /// `StoredSecret.fields` as a JSON object of base64 strings (sorted keys: one text per secret).
    static func encode(_ fields: [String: [UInt8]]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let text = fields.mapValues { Data($0).base64EncodedString() }
        return String(decoding: try encoder.encode(text), as: UTF8.self)
    }

    static func decode(_ text: String) -> [String: [UInt8]]? {
        guard let object = try? JSONDecoder().decode([String: String].self, from: Data(text.utf8)) else { return nil }
        var fields: [String: [UInt8]] = [:]
        for (name, value) in object {
            guard let data = Data(base64Encoded: value) else { return nil }
            fields[name] = Array(data)
        }
        return fields
    }
}

extension SQLiteStore {
    /// What the loaded mechanisms need besides the SCRAM-SHA-256 keys; empty in a process that
    /// loads none of them (then nothing is written).
    var mechanismDerivations: [StoredSecretDerivation] {
        services?.auth.storedSecretDerivations ?? []
    }

    /// The extra secrets of `password` for every loaded mechanism that needs one. Derived
    /// outside any database lock (SCRAM-SHA-1's PBKDF2 is slow on purpose).
    func deriveMechanismSecrets(user: String, password: String,
                                only schemes: Set<String>? = nil) -> [(scheme: String, fields: String)] {
        mechanismDerivations.compactMap { derivation in
            if let schemes, !schemes.contains(derivation.scheme.uppercased()) { return nil }
            guard let secret = try? derivation.derive(.init(user: user, password: password, iterations: settings.passwordIterations)),
                  let fields = try? MechanismSecretSchema.encode(secret.fields) else { return nil }
            return (derivation.scheme.uppercased(), fields)
        }
    }

    /// Within a write: replaces every extra secret of the account (a new password makes all
    /// old ones wrong, including those of mechanisms no longer loaded) with `secrets`.
    static func replaceMechanismSecrets(_ db: Database, account name: String, _ secrets: [(scheme: String, fields: String)]) throws {
        guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM account WHERE name = ?", arguments: [name]) else { return }
        try db.execute(sql: "DELETE FROM mechanism_secret WHERE account_id = ?", arguments: [id])
        try upsertMechanismSecrets(db, accountID: id, secrets)
    }

    static func upsertMechanismSecrets(_ db: Database, accountID: Int64, _ secrets: [(scheme: String, fields: String)]) throws {
        for s in secrets {
            try db.execute(sql: """
                INSERT INTO mechanism_secret (account_id, scheme, fields, updated) VALUES (?, ?, ?, ?)
                ON CONFLICT (account_id, scheme) DO UPDATE SET fields = excluded.fields, updated = excluded.updated
                """, arguments: [accountID, s.scheme, s.fields, now()])
        }
    }

    /// After a verified plaintext login: fills in the secrets a loaded mechanism needs and the
    /// account lacks (or holds for another realm), so enabling CRAM-MD5 on a running site needs no
    /// password resets. Failures here never fail the login.
    func completeMechanismSecrets(user: String, password: String) async {
        let derivations = mechanismDerivations
        guard !derivations.isEmpty else { return }
        let kept: [String: String]? = try? await reading { db in
            var kept: [String: String] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT s.scheme, s.fields FROM mechanism_secret s JOIN account a ON a.id = s.account_id WHERE a.name = ?
                """, arguments: [user]) {
                let scheme: String = row["scheme"], fields: String = row["fields"]
                kept[scheme] = fields
            }
            return kept
        }
        guard let kept else { return }
        let wanted = Set(derivations.filter { derivation in
            let scheme = derivation.scheme.uppercased()
            guard let text = kept[scheme], let fields = MechanismSecretSchema.decode(text) else { return true }
            return !derivation.isCurrent(StoredSecret(scheme: scheme, fields: fields))
        }.map { $0.scheme.uppercased() })
        guard !wanted.isEmpty else { return }
        let secrets = deriveMechanismSecrets(user: user, password: password, only: wanted)
        _ = try? await writing { db in
            guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM account WHERE name = ?", arguments: [user]) else { return }
            try Self.upsertMechanismSecrets(db, accountID: id, secrets)
        }
    }

    /// An extra secret of `scheme`, or nil when the account has none.
    func mechanismSecret(user: String, scheme: String) async throws -> StoredSecret? {
        let text: String? = try await reading { db in
            try String.fetchOne(db, sql: """
                SELECT s.fields FROM mechanism_secret s JOIN account a ON a.id = s.account_id WHERE a.name = ? AND s.scheme = ?
                """, arguments: [user, scheme.uppercased()])
        }
        return text.flatMap(MechanismSecretSchema.decode).map { StoredSecret(scheme: scheme.uppercased(), fields: $0) }
    }

    /// The schemes an account holds extra secrets for (admin and tests).
    func mechanismSecretSchemes(user: String) async throws -> [String] {
        try await reading { db in
            try String.fetchAll(db, sql: """
                SELECT s.scheme FROM mechanism_secret s JOIN account a ON a.id = s.account_id WHERE a.name = ? ORDER BY s.scheme
                """, arguments: [user])
        }
    }
}
