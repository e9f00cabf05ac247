import PluginAPI
import PosternImport
import XCTest

/// `postern admin user import` of a Dovecot passwd-file and of a CSV with a `hash` column, before
/// the store is asked anything (`UserImport.plan`, pure).
final class PasswdFileImportTests: XCTestCase {
    func testPasswdFileIsRecognisedAndPlanned() throws {
        let text = LegacyFixtures.passwdFile(domain: "Example.ORG")
        XCTAssertTrue(PasswdFileImport.looksLikePasswdFile(Array(text.utf8)))
        let plan = try UserImport.plan(Array(text.utf8))
        XCTAssertEqual(plan.refused, [])
        XCTAssertEqual(plan.domains, ["example.org"])
        XCTAssertEqual(plan.rows.count, LegacyFixtures.users.count)
        for (row, user) in zip(plan.rows, LegacyFixtures.users) {
            XCTAssertEqual(row.account.legacyPasswordHash, user.1)
            XCTAssertEqual(row.account.password, "")
            XCTAssertEqual(try LegacyPasswordHash(parsing: row.account.legacyPasswordHash!).scheme.rawValue, user.2)
        }
        // Comments and blank lines skipped: the first user is on line 3.
        XCTAssertEqual(plan.rows.first?.line, 3)
    }

    func testCSVIsNotTakenForAPasswdFile() {
        XCTAssertFalse(PasswdFileImport.looksLikePasswdFile(Array("email,password\na@b.c,x:y\n".utf8)))
        XCTAssertFalse(PasswdFileImport.looksLikePasswdFile(Array("email,hash\na@b.c,{SSHA}x\n".utf8)))
        XCTAssertTrue(PasswdFileImport.looksLikePasswdFile(Array("#c\r\n\r\na@b.c:{PLAIN}x,y\r\n".utf8)))
        XCTAssertFalse(PasswdFileImport.looksLikePasswdFile([]))
    }

    /// Each bad line is refused with its number and reason; the good ones still go in.
    func testMalformedLinesAreRefusedOneByOne() throws {
        let lines = [
            "ok@example.org:{PLAIN}secret",                     // 1
            "nodomain:{PLAIN}secret",                           // 2
            "ok@example.org:{PLAIN}again",                      // 3 duplicate
            "empty@example.org:",                               // 4
            "nofield@example.org",                              // 5
            "scheme@example.org:{ROT13}frperg",                 // 6
            "short@example.org:{SHA}AAAA",                      // 7
            "cost@example.org:$2y$31$j2pEYrIfEXpCUXGL6LKlw.zXwKRi5ZnHYNrjUaIdQ9CJrVauC8wCy",   // 8
            "des@example.org:abWL7Sj501Z46:1000:1000",          // 9 bare DES crypt, Dovecot's default scheme
        ]
        var bytes = Array(lines.joined(separator: "\n").utf8)
        bytes += Array("\nbad@example.org:".utf8) + [0xFF, 0xFE] + Array("\n".utf8)   // 10: not UTF-8
        let plan = try UserImport.plan(bytes)
        XCTAssertEqual(plan.rows.map(\.line), [1, 9])
        XCTAssertEqual(plan.refused.map(\.line), [2, 3, 4, 5, 6, 7, 8, 10])
        let reasons = Dictionary(uniqueKeysWithValues: plan.refused.map { ($0.line, $0.reason) })
        XCTAssertEqual(reasons[2], "'nodomain' is not user@domain")
        XCTAssertEqual(reasons[3], "ok@example.org is also on line 1")
        XCTAssertEqual(reasons[4], "no password hash")
        XCTAssertEqual(reasons[6], "unknown password scheme 'ROT13'")
        XCTAssertTrue(reasons[7]!.hasPrefix("malformed SHA hash"), reasons[7]!)
        XCTAssertTrue(reasons[8]!.contains("cost"), reasons[8]!)
        XCTAssertEqual(reasons[10], "not UTF-8")
        for refusal in plan.refused { XCTAssertFalse(refusal.reason.contains("secret"), "a refusal shows a password") }
    }

    func testCSVWithHashColumn() throws {
        let csv = """
            email,hash,quota
            a@example.org,{SSHA}dr5oHegMjqzXG3MMM9XmkKovDc7U75C6,1G
            b@example.org,$1$abcdefgh$FErPkDeIHv781e9EexumS.,
            c@example.org,{SSHA}###,
            d@example.org,,

            """
        let plan = try UserImport.plan(Array(csv.utf8))
        XCTAssertEqual(plan.rows.map(\.account.legacyPasswordHash), ["{SSHA}dr5oHegMjqzXG3MMM9XmkKovDc7U75C6", "$1$abcdefgh$FErPkDeIHv781e9EexumS."])
        XCTAssertEqual(plan.rows.first?.account.quotaBytes, 1 << 30)
        XCTAssertEqual(plan.refused.map(\.line), [4, 5])
        XCTAssertEqual(plan.refused.last?.reason, "no password or hash")
        // Neither column: the header is refused.
        XCTAssertThrowsError(try UserImport.plan(Array("email,quota\na@example.org,1G\n".utf8)))
    }
}
