import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest

/// Hashes made by `doveadm pw -s SCHEME -p 'Tr0ub4dor&3'` (Dovecot 2.3), `openssl passwd` and
/// Python's crypt over libxcrypt, as a Dovecot passwd-file holds them.
enum LegacyFixtures {
    static let password = "Tr0ub4dor&3"
    /// (user local part, password field, canonical scheme)
    static let users: [(String, String, String)] = [
        ("plain", "{PLAIN}Tr0ub4dor&3", "PLAIN"),
        ("plainmd5", "{PLAIN-MD5}4ece57a61323b52ccffdbef021956754", "PLAIN-MD5"),
        ("md5", "{MD5}$1$jgBSFHU5$ZPt/q1k9HUrTOPp812lev0", "MD5-CRYPT"),
        ("sha", "{SHA}h0Vy56WuaklGamrFeLmK26eMaqY=", "SHA"),
        ("ssha", "{SSHA}dr5oHegMjqzXG3MMM9XmkKovDc7U75C6", "SSHA"),
        ("sha256", "{SHA256}SEhuFRToQjRv9AWx5F9EBZroJhnyMG+Z0JQNyzhukfc=", "SHA256"),
        ("ssha256", "{SSHA256}3lutePtlo3KyOw6F2VIibHRbCUUF2Wdza4KttIwQIQH8kidd", "SSHA256"),
        ("sha512", "{SHA512}xyu2IccEDPS2R0BjqaeXJpDiUvNa2+fPr/Wx7iMW7+c4LnI9QeATor+8M8MAfFDFhH0hqInM6DhTbqxyeAjeQA==", "SHA512"),
        ("ssha512", "{SSHA512}ylsdMxL6juBmStY0/X8L26RNHzbMDZID9Aq8kJxfVCgi+WNMY0rfBe2OS/ObnFjzT3FUcK7MnNRIKnOyP4VKGyxVKiM=", "SSHA512"),
        ("sha256crypt", "{SHA256-CRYPT}$5$QczdotG4QlRl5//w$pghy6rkk9JWWJ2doEK3rgxToSIdyVZuqEOkWVeRkht1", "SHA256-CRYPT"),
        ("sha512crypt", "{SHA512-CRYPT}$6$v5mCIspu67RoPkko$AcXKtasR3eu7HhCgEacKzP/Mf3YInvJ4RHMGkv6D3oftLOqBGiFGFi54fST6oXaqhkJJvD35Taih20OHj89Xx0", "SHA512-CRYPT"),
        ("blf", "{BLF-CRYPT}$2y$05$j2pEYrIfEXpCUXGL6LKlw.zXwKRi5ZnHYNrjUaIdQ9CJrVauC8wCy", "BLF-CRYPT"),
        ("cram", "{CRAM-MD5}c0a49b541c47c13e0fed75e90df0510e8e19d265316dbafce5048e1f92c94232", "CRAM-MD5"),
        ("bare6", "$6$abcdefgh$4U6jebhBw.wRMvkXtOStfkrjBM/.iDeiWvfh4qpnUke7UGqEpD4aifufCgop0XRNXWgsGN1Da9is/9zY7KCTl.", "SHA512-CRYPT"),
        ("yes", "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$n.pFdveumVbvkIvhVT2m7V3vCOvHL9dASsBq3JUoRgC", "YESCRYPT"),
    ]

    /// A passwd-file with every scheme for `domain`, Dovecot's extra fields included.
    static func passwdFile(domain: String) -> String {
        "# imported from Dovecot\n\n" + users.enumerated().map { i, u in
            "\(u.0)@\(domain):\(u.1):\(1000 + i):\(1000 + i)::/home/\(u.0)::userdb_quota_rule=*:storage=1G"
        }.joined(separator: "\n") + "\n"
    }
}

/// Accounts imported from a Dovecot passwd-file with mixed legacy schemes, through the real binary:
/// each logs in once over IMAP (imaplib, LOGIN) and is migrated to SCRAM-SHA-256 at that login; the
/// report before and after shows it; the old hashes are gone from the index; a domain whose
/// `legacy_schemes_until` date has passed refuses its legacy logins.
final class LegacyMigrationTests: XCTestCase {
    func admin(_ server: ServerProcess, _ args: [String]) -> (Int32, String) {
        Build.run(Build.postern, ["admin"] + args + ["-c", server.configFile], cwd: server.dir.path)
    }

    func report(_ server: ServerProcess) throws -> [String: (accounts: [String: Int], migrated: Int)] {
        let (code, output) = admin(server, ["auth", "report", "--json"])
        guard code == 0 else { throw SystemError.message("auth report: \(output)") }
        let decoded = try JSONDecoder().decode(PasswordSchemeReport.self, from: Data(output.utf8))
        return decoded.domains.mapValues { ($0.accounts, $0.migrated) }
    }

    /// Logs each user in over IMAP with imaplib; prints one JSON object: user -> "OK" or the error.
    func imapLogins(_ server: ServerProcess, port: Int, _ logins: [(String, String)]) throws -> [String: String] {
        let script = server.dir.write("logins.py", """
            import imaplib, json, sys
            port = int(sys.argv[1]); out = {}
            pairs = sys.argv[2:]
            for i in range(0, len(pairs), 2):
                user, password = pairs[i], pairs[i + 1]
                try:
                    c = imaplib.IMAP4("127.0.0.1", port); c.login(user, password); c.select("INBOX"); c.logout(); out[user] = "OK"
                except Exception as e:
                    out[user] = str(e)
            print(json.dumps(out))
            """)
        let (code, output) = Build.run(try Build.tool("python3"), [script, "\(port)"] + logins.flatMap { [$0.0, $0.1] })
        guard code == 0, let last = output.split(separator: "\n").last,
              let object = try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: String] else {
            throw SystemError.message("logins.py failed (\(code)): \(output)")
        }
        return object
    }

    func testPasswdFileImportLoginMigratesEachSchemeOnce() throws {
        let dir = TempDir("legacy-migration")
        let port = freePort()
        let server = try ServerProcess.start(dir, """
            data_dir = "./var"
            workers = 1
            [plugin.store-sqlite]
            legacy_schemes_until = { "old.example" = "2020-01-01", "example.org" = "2999-01-01" }
            [plugin.sasl-plain]
            [plugin.imap]
            login_failure_delay = "0s"
            max_login_failures_per_ip = 0
            [[listener]]
            name = "imap"
            address = "127.0.0.1"
            port = \(port)
            protocol = "imap"
            [listener.options]
            allow_plaintext_on_loopback = true
            """)
        defer { server.stop() }
        let users = LegacyFixtures.users
        let file = dir.write("passwd", LegacyFixtures.passwdFile(domain: "example.org")
            + "old1@old.example:{SSHA}dr5oHegMjqzXG3MMM9XmkKovDc7U75C6::::::\n"
            + "broken@example.org:{SSHA}not-base64!:::\n")
        let imported = admin(server, ["user", "import", file, "--create-domains"])
        XCTAssertEqual(imported.0, 1, "one line is refused: \(imported.1)")
        XCTAssertTrue(imported.1.contains("imported \(users.count + 1), refused 1"), imported.1)
        XCTAssertTrue(imported.1.contains("line \(users.count + 4): malformed SSHA hash"), imported.1)

        // Before: every account on its legacy scheme.
        let before = try report(server)
        var expected: [String: Int] = [:]
        for u in users { expected[u.2, default: 0] += 1 }
        XCTAssertEqual(before["example.org"]?.accounts, expected)
        XCTAssertEqual(before["example.org"]?.migrated, 0)
        XCTAssertEqual(before["old.example"]?.accounts, ["SSHA": 1])

        // A wrong password neither logs in nor migrates.
        let wrong = try imapLogins(server, port: port, users.map { ("\($0.0)@example.org", "wrong-" + LegacyFixtures.password) })
        for u in users { XCTAssertNotEqual(wrong["\(u.0)@example.org"], "OK", u.0) }
        XCTAssertEqual(try report(server)["example.org"]?.migrated, 0)

        // The first login with the old password: accepted, and rehashed.
        let first = try imapLogins(server, port: port, users.map { ("\($0.0)@example.org", LegacyFixtures.password) })
        for u in users { XCTAssertEqual(first["\(u.0)@example.org"], "OK", "\(u.0) (\(u.2)): \(first)") }
        let after = try report(server)
        XCTAssertEqual(after["example.org"]?.accounts, ["SCRAM-SHA-256": users.count])
        XCTAssertEqual(after["example.org"]?.migrated, users.count)
        XCTAssertTrue(server.log.contains("legacy password hash migrated to SCRAM-SHA-256"), server.log)

        // The old hashes are gone from the index; every secret is SCRAM keys.
        let index = IndexReader(path: dir.path + "/var/store/index.sqlite")
        XCTAssertEqual(try index.rows("SELECT COUNT(*) FROM legacy_password l JOIN account a ON a.id = l.account_id WHERE a.name LIKE '%@example.org'"), [["0"]])
        XCTAssertEqual(try index.rows("SELECT COUNT(*) FROM account WHERE name LIKE '%@example.org' AND secret NOT LIKE 'SCRAM-SHA-256$%'"), [["0"]])
        XCTAssertEqual(try index.rows("SELECT COUNT(*) FROM password_migration"), [["\(users.count)"]])

        // Again, now against the SCRAM keys: the right password still works, a wrong one not.
        let second = try imapLogins(server, port: port, users.map { ("\($0.0)@example.org", LegacyFixtures.password) })
        for u in users { XCTAssertEqual(second["\(u.0)@example.org"], "OK", u.0) }
        let wrongAgain = try imapLogins(server, port: port, [("sha@example.org", "Tr0ub4dor&4")])
        XCTAssertNotEqual(wrongAgain["sha@example.org"], "OK")
        XCTAssertEqual(try report(server)["example.org"]?.migrated, users.count, "migrated once only")

        // old.example's date has passed: the right password is refused and nothing migrates.
        let late = try imapLogins(server, port: port, [("old1@old.example", LegacyFixtures.password)])
        XCTAssertNotEqual(late["old1@old.example"], "OK")
        XCTAssertEqual(try report(server)["old.example"]?.accounts, ["SSHA": 1])
        XCTAssertTrue(server.log.contains("legacy_schemes_until has passed"), server.log)

        // Text report: one line per domain and scheme.
        let text = admin(server, ["auth", "report"])
        XCTAssertEqual(text.0, 0)
        XCTAssertTrue(text.1.contains("example.org\tSCRAM-SHA-256\t\(users.count)"), text.1)
        XCTAssertTrue(text.1.contains("old.example\tSSHA\t1"), text.1)
    }

    /// The CSV import with a `hash` column, and a policy date that is not a date.
    func testCSVHashColumnAndBadPolicyDate() throws {
        let dir = TempDir("legacy-csv")
        let port = freePort()
        let server = try ServerProcess.start(dir, """
            data_dir = "./var"
            workers = 1
            [plugin.store-sqlite]
            [plugin.sasl-plain]
            [plugin.imap]
            login_failure_delay = "0s"
            max_login_failures_per_ip = 0
            [[listener]]
            name = "imap"
            address = "127.0.0.1"
            port = \(port)
            protocol = "imap"
            [listener.options]
            allow_plaintext_on_loopback = true
            """)
        defer { server.stop() }
        let csv = dir.write("users.csv", """
            email,password,hash
            new@example.org,fresh-password,
            old@example.org,,{SHA512-CRYPT}$6$v5mCIspu67RoPkko$AcXKtasR3eu7HhCgEacKzP/Mf3YInvJ4RHMGkv6D3oftLOqBGiFGFi54fST6oXaqhkJJvD35Taih20OHj89Xx0
            both@example.org,x,{PLAIN}x
            none@example.org,,

            """)
        let imported = admin(server, ["user", "import", csv, "--create-domains"])
        XCTAssertTrue(imported.1.contains("imported 2, refused 2"), imported.1)
        XCTAssertTrue(imported.1.contains("line 4: both a password and a hash"), imported.1)
        XCTAssertTrue(imported.1.contains("line 5: no password or hash"), imported.1)
        XCTAssertEqual(try report(server)["example.org"]?.accounts, ["SCRAM-SHA-256": 1, "SHA512-CRYPT": 1])
        let logins = try imapLogins(server, port: port, [("new@example.org", "fresh-password"), ("old@example.org", LegacyFixtures.password)])
        XCTAssertEqual(logins, ["new@example.org": "OK", "old@example.org": "OK"])
        XCTAssertEqual(try report(server)["example.org"]?.accounts, ["SCRAM-SHA-256": 2])

        let bad = TempDir("legacy-bad-date")
        XCTAssertThrowsError(try ServerProcess.start(bad, """
            data_dir = "./var"
            workers = 1
            [plugin.store-sqlite]
            legacy_schemes_until = { "example.org" = "2027-02-30" }
            [plugin.sasl-plain]
            [plugin.imap]
            [[listener]]
            name = "imap"
            address = "127.0.0.1"
            port = \(freePort())
            protocol = "imap"
            """)) { error in
            XCTAssertTrue("\(error)".contains("is not a date YYYY-MM-DD"), "\(error)")
        }
    }
}
