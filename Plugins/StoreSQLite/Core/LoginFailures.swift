import Foundation
import GRDB
import PluginAPI

/// The failed-login counts of the node, in their own SQLite file beside the index
/// (`DIRECTORY/login-failures.sqlite`), shared by every worker process and every protocol: the
/// `LoginFailureTable` behind `LoginThrottle` when this plugin is loaded. A separate file because
/// these writes must never queue behind deliveries for the index's one writer, and because losing
/// them in a crash costs nothing: they are written without fsync (`synchronous = OFF`).
///
/// Rows older than a day are dropped as new failures come in, so the file stays small under a
/// spray of addresses.
// @unchecked Sendable: its only stored property is a let DatabasePool, which synchronises its own access
final class SQLiteLoginFailures: LoginFailureTable, @unchecked Sendable {
    let pool: DatabasePool
    /// Failures older than this are forgotten, whatever a throttle's window.
    static let horizon: Double = 86_400

    init(path: String, busyTimeout: Double) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(busyTimeout)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = OFF")
        }
        let lock = try SQLiteStore.migrationLock(path + ".lock")
        defer { close(lock) }
        pool = try DatabasePool(path: path, configuration: configuration)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE login_failure (
                    address TEXT,
                    account TEXT,
                    at REAL NOT NULL
                );
                CREATE INDEX login_failure_address ON login_failure(address, at) WHERE address IS NOT NULL;
                CREATE INDEX login_failure_account ON login_failure(account, at) WHERE account IS NOT NULL;
                CREATE INDEX login_failure_at ON login_failure(at);
                """)
        }
        try migrator.migrate(pool)
    }

    func record(address: String, account: String?, at time: Double) async {
        do {
            try await pool.write { db in
                try db.execute(sql: "INSERT INTO login_failure(address, account, at) VALUES (?, ?, ?)",
                               arguments: [address, account, time])
                try db.execute(sql: "DELETE FROM login_failure WHERE at < ?", arguments: [time - Self.horizon])
            }
        } catch {
            // A lost count weakens the throttle a little; it must not fail the login reply.
        }
    }

    func counts(address: String, account: String?, since: Double) async -> LoginFailureCounts {
        (try? await pool.read { db in
            let byAddress = try Int.fetchOne(db, sql: "SELECT count(*) FROM login_failure WHERE address = ? AND at >= ?",
                                             arguments: [address, since]) ?? 0
            let byAccount = try account.map {
                try Int.fetchOne(db, sql: "SELECT count(*) FROM login_failure WHERE account = ? AND at >= ?",
                                 arguments: [$0, since]) ?? 0
            } ?? 0
            return LoginFailureCounts(address: byAddress, account: byAccount)
        }) ?? LoginFailureCounts(address: 0, account: 0)
    }

    func clear(address: String, account: String?) async {
        // A row counts for its address and for its account: a success from the address stops it
        // counting there, not against the account it guessed at (logging in to one account must
        // not unlock another), and the other way round.
        _ = try? await pool.write { db in
            try db.execute(sql: "UPDATE login_failure SET address = NULL WHERE address = ?", arguments: [address])
            if let account {
                try db.execute(sql: "UPDATE login_failure SET account = NULL WHERE account = ?", arguments: [account])
            }
            try db.execute(sql: "DELETE FROM login_failure WHERE address IS NULL AND account IS NULL")
        }
    }

    func blocked(addressLimit: Int, accountLimit: Int, since: Double) async -> LoginFailureCounts {
        (try? await pool.read { db in
            func count(_ column: String, _ limit: Int) throws -> Int {
                guard limit > 0 else { return 0 }
                return try Int.fetchOne(db, sql: """
                    SELECT count(*) FROM (SELECT \(column) FROM login_failure
                    WHERE at >= ? AND \(column) IS NOT NULL GROUP BY \(column) HAVING count(*) >= ?)
                    """, arguments: [since, limit]) ?? 0
            }
            return LoginFailureCounts(address: try count("address", addressLimit), account: try count("account", accountLimit))
        }) ?? LoginFailureCounts(address: 0, account: 0)
    }
}
