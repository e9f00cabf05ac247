@testable import PosternLDAPCore
import PluginAPI
import XCTest

/// RFC 4515 filter values, RFC 4514 DN values and the `%u`/`%n`/`%d`/`%s` templates, byte for
/// byte, with the injection table: every filter metacharacter a user name could carry.
final class LDAPEscapingTests: XCTestCase {
    func testFilterValueEscapesTheFiveCharactersOfRFC4515() {
        XCTAssertEqual(LDAPEscaping.filterValue("*"), "\\2a")
        XCTAssertEqual(LDAPEscaping.filterValue("("), "\\28")
        XCTAssertEqual(LDAPEscaping.filterValue(")"), "\\29")
        XCTAssertEqual(LDAPEscaping.filterValue("\\"), "\\5c")
        XCTAssertEqual(LDAPEscaping.filterValue([0]), "\\00")
        // RFC 4515 §4's own examples of values.
        XCTAssertEqual(LDAPEscaping.filterValue("Parens R Us (for all your parenthetical needs)"),
                       "Parens R Us \\28for all your parenthetical needs\\29")
        XCTAssertEqual(LDAPEscaping.filterValue("C:\\MyFile"), "C:\\5cMyFile")
        XCTAssertEqual(LDAPEscaping.filterValue("alice@example.org"), "alice@example.org")
    }

    func testFilterValueEscapesNonASCIIAndControlBytesAsUTF8Pairs() {
        // RFC 4515 §4: "Lučić" as \c4\8d.
        XCTAssertEqual(LDAPEscaping.filterValue("Lu\u{10D}i\u{107}"), "Lu\\c4\\8di\\c4\\87")
        XCTAssertEqual(LDAPEscaping.filterValue("a\r\nb\t\u{7F}"), "a\\0d\\0ab\\09\\7f")
        // Invalid UTF-8 bytes go through as pairs too, never as raw bytes.
        XCTAssertEqual(LDAPEscaping.filterValue([0x61, 0xFF, 0xC3]), "a\\ff\\c3")
        // The output is plain printable ASCII whatever the input.
        let all = LDAPEscaping.filterValue((0...255).map { UInt8($0) })
        XCTAssertTrue(all.utf8.allSatisfy { (0x20...0x7E).contains($0) })
        XCTAssertFalse(all.contains("*") || all.contains("(") || all.contains(")"))
    }

    /// The injection table: user names that would change an unescaped filter's meaning.
    static let injections: [(name: String, filter: String)] = [
        ("*", "(&(objectClass=inetOrgPerson)(|(mail=\\2a)(uid=\\2a)))"),
        ("al*", "(&(objectClass=inetOrgPerson)(|(mail=al\\2a)(uid=al\\2a)))"),
        ("alice)(uid=*", "(&(objectClass=inetOrgPerson)(|(mail=alice\\29\\28uid=\\2a)(uid=alice\\29\\28uid=\\2a)))"),
        ("*)(|(objectClass=*", "(&(objectClass=inetOrgPerson)(|(mail=\\2a\\29\\28|\\28objectClass=\\2a)(uid=\\2a\\29\\28|\\28objectClass=\\2a)))"),
        ("alice\\", "(&(objectClass=inetOrgPerson)(|(mail=alice\\5c)(uid=alice\\5c)))"),
        ("alice\u{0}", "(&(objectClass=inetOrgPerson)(|(mail=alice\\00)(uid=alice\\00)))"),
        ("al\u{E9}", "(&(objectClass=inetOrgPerson)(|(mail=al\\c3\\a9)(uid=al\\c3\\a9)))"),
        ("\\2a", "(&(objectClass=inetOrgPerson)(|(mail=\\5c2a)(uid=\\5c2a)))"),
    ]

    func testUserFilterTemplateWithTheInjectionTable() throws {
        let template = try LDAPTemplate("(&(objectClass=inetOrgPerson)(|(mail=%u)(uid=%u)))", kind: .filter)
        for (name, filter) in Self.injections {
            XCTAssertEqual(template.expand(name: name), filter, "user name \(name.debugDescription)")
            // Whatever the name, the expanded filter has the template's parentheses only.
            XCTAssertEqual(template.expand(name: name).filter { $0 == "(" }.count, 5)
        }
    }

    func testTemplatePlaceholders() throws {
        let t = try LDAPTemplate("(&(uid=%n)(dc=%d)(mail=%u)(cn=*%s*)(x=100%%))", kind: .filter)
        XCTAssertEqual(t.expand(name: "alice@example.org", search: "Li(d)"),
                       "(&(uid=alice)(dc=example.org)(mail=alice@example.org)(cn=*Li\\28d\\29*)(x=100%))")
        // No @: %n is the whole name, %d empty. The last @ splits (a quoted local part may hold one).
        XCTAssertEqual(t.expand(name: "alice").prefix(21), "(&(uid=alice)(dc=)(ma")
        XCTAssertEqual(try LDAPTemplate("(uid=%n)", kind: .filter).expand(name: "\"a@b\"@example.org"), "(uid=\"a@b\")")
    }

    func testTemplatesAreCheckedAtConfiguration() {
        XCTAssertThrowsError(try LDAPTemplate("(uid=%x)", kind: .filter))
        XCTAssertThrowsError(try LDAPTemplate("(uid=%", kind: .filter))
        XCTAssertThrowsError(try LDAPTemplate("(uid=%u", kind: .filter))
        XCTAssertThrowsError(try LDAPTemplate("uid=%u", kind: .filter))
        XCTAssertThrowsError(try LDAPTemplate("(uid=%u))(", kind: .filter))
        XCTAssertNoThrow(try LDAPTemplate("uid=%n,ou=people,dc=example,dc=org", kind: .dn))
    }

    func testDNValueEscapingOfRFC4514() {
        XCTAssertEqual(LDAPEscaping.dnValue("alice"), "alice")
        XCTAssertEqual(LDAPEscaping.dnValue("Sue, Grabbit and Runn"), "Sue\\, Grabbit and Runn")
        XCTAssertEqual(LDAPEscaping.dnValue("a+b\"c;d<e>f\\g=h"), "a\\+b\\\"c\\;d\\<e\\>f\\\\g\\=h")
        XCTAssertEqual(LDAPEscaping.dnValue(" lead and trail "), "\\ lead and trail\\ ")
        XCTAssertEqual(LDAPEscaping.dnValue("#hash#"), "\\#hash#")
        XCTAssertEqual(LDAPEscaping.dnValue("nul\u{0}"), "nul\\00")
        XCTAssertEqual(LDAPEscaping.dnValue("Lu\u{10D}i\u{107}"), "Lu\\c4\\8di\\c4\\87")
        let dn = try! LDAPTemplate("uid=%n,ou=people,dc=example,dc=org", kind: .dn)
        // An injected RDN stays inside the uid value.
        XCTAssertEqual(dn.expand(name: "x,ou=admins@example.org"), "uid=x\\,ou\\=admins,ou=people,dc=example,dc=org")
    }

    func testUniqueMemberLosesItsOptionalUID() {
        XCTAssertEqual(LDAPDirectory.stripUniqueIdentifier("uid=bob,dc=example,dc=org#'0101'B"), "uid=bob,dc=example,dc=org")
        XCTAssertEqual(LDAPDirectory.stripUniqueIdentifier("uid=bob,dc=example,dc=org"), "uid=bob,dc=example,dc=org")
        XCTAssertEqual(LDAPDirectory.stripUniqueIdentifier("cn=x\\#'1'B"), "cn=x\\")
    }

    func testCacheExpiresAndIsOffAtZero() {
        let cache = TTLCache<[Int]>(ttl: 10, capacity: 3)
        cache.put("a", [1], now: 100)
        XCTAssertEqual(cache.get("a", now: 105), [1])
        XCTAssertNil(cache.get("a", now: 110))
        for (i, k) in ["b", "c", "d", "e"].enumerated() { cache.put(k, [i], now: 200) }
        XCTAssertEqual(cache.get("e", now: 201), [3], "a full cache makes room")
        let off = TTLCache<[Int]>(ttl: 0)
        off.put("a", [1])
        XCTAssertNil(off.get("a"))
    }

    func testSettingsRefuseWhatCannotWork() {
        func settings(_ extra: [String: ConfigValue]) throws -> LDAPSettings {
            var values: [String: ConfigValue] = ["servers": .array([.string("ldap://127.0.0.1:389")]), "base_dn": .string("dc=example,dc=org")]
            values.merge(extra) { $1 }
            return try LDAPSettings(ConfigSection(LDAPSettings.schema.applyingDefaults(to: values)), dataDirectory: "/tmp")
        }
        XCTAssertNoThrow(try settings([:]))
        XCTAssertEqual(try settings([:]).authMode, .searchBind)
        XCTAssertTrue(try settings([:]).servers[0].verifyCertificates, "certificate checks are on by default")
        XCTAssertThrowsError(try settings(["servers": .array([.string("http://x")])]))
        XCTAssertThrowsError(try settings(["servers": .array([])]))
        XCTAssertThrowsError(try settings(["auth_mode": .string("bind")]), "bind needs a DN template")
        XCTAssertThrowsError(try settings(["user_filter": .string("(uid=%u")]))
        XCTAssertThrowsError(try settings(["bind_password_file": .string("/nonexistent/pw")]))
        XCTAssertTrue(LDAPSettings.schema.validate(["servers": .array([.string("ldap://x")]), "base_dn": .string("x"),
                                                   "auth_mode": .string("guess")]).count > 0)
    }

    func testControlCharactersAreRecognised() {
        XCTAssertTrue(LDAPEscaping.hasControlCharacters("alice\u{0}"))
        XCTAssertTrue(LDAPEscaping.hasControlCharacters("a\tb"))
        XCTAssertTrue(LDAPEscaping.hasControlCharacters("a\u{7F}"))
        XCTAssertFalse(LDAPEscaping.hasControlCharacters("Alice Liddell (x)*"))
        XCTAssertFalse(LDAPEscaping.hasControlCharacters("al\u{E9}"))
    }

    /// The `password` auth mode's check of a read `userPassword` value.
    func testStoredPasswordValues() {
        // {SSHA}: base64 of SHA-1(password + salt) + salt; here "alice-pw" with the salt "salt".
        let ssha = "{SSHA}NDE6IsjnHPszvqVxrmbZOYWXUcxzYWx0"
        XCTAssertTrue(LDAPDirectory.storedPassword(ssha, matches: "alice-pw"))
        XCTAssertFalse(LDAPDirectory.storedPassword(ssha, matches: "alice-PW"))
        XCTAssertTrue(LDAPDirectory.storedPassword("erin-pw", matches: "erin-pw"), "cleartext")
        XCTAssertFalse(LDAPDirectory.storedPassword("erin-pw", matches: "erin-pw "))
        XCTAssertFalse(LDAPDirectory.storedPassword("{NOSUCH}abc", matches: "abc"), "an unknown scheme never matches")
        XCTAssertFalse(LDAPDirectory.storedPassword("{SSHA}", matches: ""), "an empty hash")
        XCTAssertFalse(LDAPDirectory.storedPassword("{SSHA}!!!", matches: "x"), "not base64")
    }
}
