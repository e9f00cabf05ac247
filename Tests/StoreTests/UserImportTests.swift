import Foundation
import PosternTestSupport
import PluginAPI
import PosternHost
import PosternImport
import XCTest

/// `postern admin user import`: the file checks as a pure function, then the real binary on a
/// 10,000-row file.
final class UserImportTests: XCTestCase {
    private func plan(_ text: String) throws -> UserImport.Plan { try UserImport.plan(Array(text.utf8)) }

    func testHeader() throws {
        XCTAssertThrowsError(try plan("")) { XCTAssertEqual($0 as? UserImport.FileError, .noHeader) }
        XCTAssertThrowsError(try plan("\n\n")) { XCTAssertEqual($0 as? UserImport.FileError, .noHeader) }
        XCTAssertThrowsError(try plan("email,quota\n")) {
            XCTAssertEqual($0 as? UserImport.FileError, .header("no 'password' or 'hash' column (columns: email, password, quota, admin, hash; quota and admin are optional)"))
        }
        XCTAssertThrowsError(try plan("email,password,name\n")) {
            XCTAssertEqual($0 as? UserImport.FileError, .header("unknown column 'name' (columns: email, password, quota, admin, hash)"))
        }
        XCTAssertThrowsError(try plan("email,password,Email\n")) { XCTAssertEqual($0 as? UserImport.FileError, .header("column 'email' appears twice")) }
        XCTAssertThrowsError(try plan("email,\"pass\"word\n")) {
            XCTAssertEqual($0 as? UserImport.FileError, .header("text after the closing quote of a field"))
        }
        // Any order, any case, a byte order mark.
        let p = try UserImport.plan([0xEF, 0xBB, 0xBF] + Array(" Password ,ADMIN,Email\r\npw,site-admin,a@Example.org\r\n".utf8))
        XCTAssertEqual(p.rows, [UserImport.Row(line: 2, account: NewAccount(name: "a@Example.org", password: "pw", adminLevel: .siteAdmin))])
        XCTAssertEqual(p.refused, [])
        XCTAssertEqual(p.domains, ["example.org"])
    }

    func testRowChecks() throws {
        let p = try plan(#"""
            email,password,quota,admin
            ok@example.org,"p,w ""x""",500M,domain-admin

            "  spaced@example.org ", pass with spaces ,,
            no-at-sign,pw,,
            two@at@example.org,pw,,
            ,pw,,
            OK@Example.ORG,pw,,
            nopass@example.org,,,
            quota@example.org,pw,lots,
            admin@example.org,pw,,boss
            short@example.org,pw
            "broken@example.org,pw,,
            """# + "\n")
        XCTAssertEqual(p.rows, [
            UserImport.Row(line: 2, account: NewAccount(name: "ok@example.org", password: #"p,w "x""#, adminLevel: .domainAdmin, quotaBytes: 500 << 20)),
            UserImport.Row(line: 4, account: NewAccount(name: "spaced@example.org", password: " pass with spaces ")),
        ])
        XCTAssertEqual(p.refused.map(\.description), [
            "line 5: 'no-at-sign' is not an email address",
            "line 6: 'two@at@example.org' is not an email address",
            "line 7: no email address",
            "line 8: OK@Example.ORG is also on line 2",
            "line 9: no password",
            "line 10: quota 'lots' is not a size (e.g. 500M, 2G)",
            "line 11: admin 'boss' is not user, domain-admin or site-admin",
            "line 12: 2 fields, the header has 4",
            "line 13: a quoted field is not closed before the end of the file",
        ])
        XCTAssertEqual(p.domains, ["example.org"])
    }

    /// The issue's scenario: 10,000 rows with bad ones at known lines, through the real binary.
    func testImportTenThousandRowsWithTheBinary() async throws {
        let f = try StoreFixture("import")
        XCTAssertEqual(postern(f, "domain", "add", "example.org").status, 0)
        XCTAssertEqual(postern(f, "domain", "add", "Example.NET").status, 0)

        var lines = ["email,password,quota,admin"]
        var expectedNames: [String] = []
        for i in 1...10_000 {
            let domain = i % 2 == 0 ? "example.org" : "example.net"
            let quota = i % 3 == 0 ? "500M" : ""
            let admin = i % 1000 == 0 ? "domain-admin" : (i % 2 == 0 ? "user" : "")
            // Every 100th password needs quoting: a comma and quotes.
            let password = i % 100 == 0 ? "\"p,w \"\"\(i)\"\"\"" : "pw-\(i)"
            lines.append("u\(i)@\(domain),\(password),\(quota),\(admin)")
            expectedNames.append("u\(i)@\(domain)")
        }
        // Bad rows, each at line i + 1 in place of row i.
        let bad: [(row: Int, text: String, report: String)] = [
            (100, "x100@nowhere.test,pw,,", "line 101: no such domain 'nowhere.test'"),
            (2001, "u2001@example.net,,,user", "line 2002: no password"),
            (3002, "u3002@example.org,pw,lots,", "line 3003: quota 'lots' is not a size (e.g. 500M, 2G)"),
            (4003, "U12@Example.ORG,pw,,", "line 4004: U12@Example.ORG is also on line 13"),
            (5004, "not-an-address,pw,,", "line 5005: 'not-an-address' is not an email address"),
            (6005, "u6005@example.net,pw,,boss", "line 6006: admin 'boss' is not user, domain-admin or site-admin"),
            (7006, "u7006@example.org,pw", "line 7007: 2 fields, the header has 4"),
        ]
        for b in bad {
            lines[b.row] = b.text
            expectedNames.removeAll { $0.hasPrefix("u\(b.row)@") }
        }
        let file = f.dir.write("users.csv", Array((lines.joined(separator: "\r\n") + "\r\n").utf8))

        let start = Date()
        let result = postern(f, "user", "import", file)
        let elapsed = Date().timeIntervalSince(start)
        print("FIGURES user-import: 10000 rows (\(bad.count) refused) in \(String(format: "%.1f", elapsed)) s, \(Int(10_000 / elapsed)) rows/s, debug build, \(ProcessInfo.processInfo.activeProcessorCount) cores")
        XCTAssertEqual(result.stdout, (bad.map(\.report) + ["imported \(10_000 - bad.count), refused \(bad.count)"]).joined(separator: "\n") + "\n")
        XCTAssertEqual(result.stderr, "")
        XCTAssertEqual(result.status, 1)
        XCTAssertLessThan(elapsed, 60)

        let list = postern(f, "user", "list")
        XCTAssertEqual(list.status, 0, list.stderr)
        let listed = list.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(listed.count, 10_000 - bad.count)
        XCTAssertEqual(Set(listed.map { String($0.split(separator: "\t")[0]) }), Set(expectedNames))
        XCTAssertTrue(listed.contains("u3000@example.org\tenabled\tdomain-admin\t0/500.0M"), "\(listed.filter { $0.hasPrefix("u3000@") })")
        XCTAssertTrue(listed.contains("u7@example.net\tenabled\tuser\t0/unlimited"))

        // The quoted passwords arrived intact, and the others work too.
        let accounts = f.accounts, backend = f.credentials
        await assertEqual(try await backend.verifyPassword(user: "u200@example.org", password: #"p,w "200""#), .verified(user: "u200@example.org"))
        await assertEqual(try await backend.verifyPassword(user: "u9999@example.net", password: "pw-9999"), .verified(user: "u9999@example.net"))
        await assertEqual(try await backend.verifyPassword(user: "u12@example.org", password: "pw"), .wrongPassword)
        await assertEqual(try await accounts.account("u3@example.net")?.quotaBytes, 500 << 20)
        await assertEqual(try await f.store.mailboxes(user: "u10000@example.org").map(\.name), ["INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"])
    }

    func testCreateDomainsAndExitStatus() throws {
        let f = try StoreFixture("import-domains")
        XCTAssertEqual(postern(f, "domain", "add", "example.org").status, 0)
        let file = f.dir.write("few.csv", Array("""
            email,password
            a@example.org,pa
            b@new.test,pb
            c@New.Test,pc
            """.utf8))
        var r = postern(f, "user", "import", file)
        XCTAssertEqual(r.stdout, "line 3: no such domain 'new.test'\nline 4: no such domain 'new.test'\nimported 1, refused 2\n")
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(postern(f, "domain", "list").stdout, "example.org\n", "domains are not created without --create-domains")

        r = postern(f, "user", "import", "--create-domains", file)
        XCTAssertEqual(r.stdout, "line 2: account 'a@example.org' already exists\nimported 2, refused 1\n")
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(postern(f, "domain", "list").stdout, "example.org\nnew.test\n")

        let clean = f.dir.write("clean.csv", Array("email,password,quota\r\nd@new.test,pd,1G\r\ne@bad_domain,pe,\r\n".utf8))
        r = postern(f, "user", "import", "--create-domains", clean)
        XCTAssertEqual(r.stdout, "line 3: 'bad_domain' is not a valid name\nimported 1, refused 1\n")
        XCTAssertEqual(r.status, 1)
        let ok = f.dir.write("ok.csv", Array("email,password\nf@new.test,pf\n".utf8))
        r = postern(f, "user", "import", ok)
        XCTAssertEqual(r.stdout, "imported 1, refused 0\n")
        XCTAssertEqual(r.stderr, "")
        XCTAssertEqual(r.status, 0)
        XCTAssertEqual(postern(f, "user", "list", "--domain", "new.test").stdout.split(separator: "\n").map { String($0.split(separator: "\t")[0]) },
                       ["b@new.test", "c@new.test", "d@new.test", "f@new.test"])

        // A file whose header is wrong imports nothing.
        let wrong = f.dir.write("wrong.csv", Array("mail,password\ng@new.test,pg\n".utf8))
        r = postern(f, "user", "import", wrong)
        XCTAssertEqual(r.stdout, "")
        XCTAssertEqual(r.stderr, "postern admin: \(wrong): header row: unknown column 'mail' (columns: email, password, quota, admin, hash)\n")
        XCTAssertEqual(r.status, 1)
        r = postern(f, "user", "import", f.dir.path + "/missing.csv")
        XCTAssertEqual(r.status, 64, "a usage error: \(r.stderr)")
    }

    private func postern(_ f: StoreFixture, _ arguments: String...) -> (status: Int32, stdout: String, stderr: String) {
        Build.runSeparately(Build.postern, ["admin"] + [arguments[0], arguments[1], "-c", f.configFile] + arguments.dropFirst(2), cwd: f.dir.path)
    }
}
