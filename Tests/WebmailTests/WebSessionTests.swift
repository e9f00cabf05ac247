import Foundation
import PluginAPI
import PosternTestSupport
import XCTest
@testable import PosternWebmailCore

/// The shared session store (a real SQLite file, opened twice as two workers would), the
/// credential seal, message display and the page catalogues.
final class WebSessionTests: XCTestCase {
    var temp: TempDir!
    var directory: String { temp.path }

    override func setUp() {
        temp = TempDir("webmail-sessions")
    }

    func testASessionIsSeenByASecondOpenerAndTimesOut() throws {
        let path = directory + "/sessions.sqlite"
        let workerA = try WebSessionStore(path: path, idleTimeout: 1800, absoluteTimeout: 43200)
        let workerB = try WebSessionStore(path: path, idleTimeout: 1800, absoluteTimeout: 43200)
        let (token, created) = try workerA.create(user: "alice@example.org", password: "secret", clientAddress: "127.0.0.1", now: 1000)
        // The store keeps a hash of the token, never the token.
        XCTAssertNotEqual(created.id, token)
        XCTAssertEqual(created.id, WebSessionStore.id(of: token))
        let seen = try XCTUnwrap(workerB.session(token: token, now: 1100))
        XCTAssertEqual(seen.user, "alice@example.org")
        XCTAssertEqual(try CredentialSeal.open(seen.sealedPassword, token: token), "secret")
        XCTAssertNil(try workerB.session(token: token + "x", now: 1100))
        // Idle: 1800 s after the last use (1100, refreshed since more than 60 s had passed).
        XCTAssertNotNil(try workerA.session(token: token, now: 1100 + 1799))
        XCTAssertNil(try workerA.session(token: token, now: 1100 + 1799 + 1801))
        // Gone for every worker once expired.
        XCTAssertNil(try workerB.session(token: token, now: 1200))
    }

    func testTheAbsoluteTimeoutEndsABusySession() throws {
        let store = try WebSessionStore(path: directory + "/s.sqlite", idleTimeout: 1800, absoluteTimeout: 3600)
        let (token, _) = try store.create(user: "bob@example.org", password: "p", clientAddress: "::1", now: 0)
        for t in stride(from: 600.0, through: 3600, by: 600) { XCTAssertNotNil(try store.session(token: token, now: t), "\(t)") }
        XCTAssertNil(try store.session(token: token, now: 3601))
    }

    func testLogoutEverywhereEndsEverySessionOfTheUserOnly() throws {
        let store = try WebSessionStore(path: directory + "/s.sqlite", idleTimeout: 1800, absoluteTimeout: 43200)
        let now = Date().timeIntervalSince1970
        let a1 = try store.create(user: "alice@example.org", password: "p", clientAddress: "1", now: now).token
        let a2 = try store.create(user: "alice@example.org", password: "p", clientAddress: "2", now: now).token
        let b = try store.create(user: "bob@example.org", password: "p", clientAddress: "3", now: now).token
        XCTAssertEqual(try store.deleteAll(user: "alice@example.org"), 2)
        XCTAssertNil(try store.session(token: a1, now: now))
        XCTAssertNil(try store.session(token: a2, now: now))
        XCTAssertNotNil(try store.session(token: b, now: now))
    }

    func testTheSealNeedsTheCookieToken() throws {
        let sealed = try CredentialSeal.seal("pässwörd", token: "token-1")
        XCTAssertFalse(String(decoding: sealed, as: UTF8.self).contains("pässwörd"))
        XCTAssertEqual(try CredentialSeal.open(sealed, token: "token-1"), "pässwörd")
        XCTAssertThrowsError(try CredentialSeal.open(sealed, token: "token-2"))
        var tampered = sealed
        tampered[tampered.count / 2] ^= 1
        XCTAssertThrowsError(try CredentialSeal.open(tampered, token: "token-1"))
    }

    func testPreferencesAreSharedAndSurviveSessions() throws {
        let path = directory + "/s.sqlite"
        let a = try WebSessionStore(path: path, idleTimeout: 60, absoluteTimeout: 60)
        XCTAssertEqual(try a.preferences(user: "u@example.org"), WebPreferences())
        try a.setPreferences(WebPreferences(language: "de", pageSize: 25), user: "u@example.org")
        let b = try WebSessionStore(path: path, idleTimeout: 60, absoluteTimeout: 60)
        XCTAssertEqual(try b.preferences(user: "u@example.org").language, "de")
        XCTAssertEqual(try b.preferences(user: "u@example.org").pageSize, 25)
    }

    /// A directory's defaults fill the fields the user has not set, and are replaced at each login.
    func testDirectoryDefaultsUnderTheUsersOwnSettings() throws {
        let store = try WebSessionStore(path: directory + "/s.sqlite", idleTimeout: 60, absoluteTimeout: 60)
        let user = "u@example.org"
        let defaults = Webmail.preferences(from: DirectoryProfile(displayName: "  Ulla U.  ", language: "fr-CA", timeZone: "Europe/Paris"))
        XCTAssertEqual(defaults, WebPreferences(language: "fr", timeZone: "Europe/Paris", displayName: "Ulla U."))
        try store.setDirectoryDefaults(defaults, user: user)
        XCTAssertEqual(try store.preferences(user: user), defaults)
        try store.setPreferences(WebPreferences(language: "ja", pageSize: 30), user: user)
        let merged = try store.preferences(user: user)
        XCTAssertEqual(merged.language, "ja", "the user's own choice wins")
        XCTAssertEqual(merged.pageSize, 30)
        XCTAssertEqual(merged.timeZone, "Europe/Paris")
        XCTAssertEqual(merged.displayName, "Ulla U.")
        try store.setDirectoryDefaults(WebPreferences(), user: user)
        XCTAssertNil(try store.preferences(user: user).displayName, "a value gone from the directory is gone at the next login")
        // What the webmail cannot use is dropped: a language it lacks, an unknown zone, blanks.
        XCTAssertEqual(Webmail.preferences(from: DirectoryProfile(displayName: " ", language: "tlh", timeZone: "Mars/Olympus")), WebPreferences())
        XCTAssertEqual(Webmail.preferences(from: DirectoryProfile(language: "de_CH")).language, "de")
    }

    /// Directory suggestions as an address field takes them (RFC 5322 quoting of the name).
    func testSuggestionsAreMailboxes() {
        XCTAssertEqual(Webmail.mailbox(name: "Erin Smith", address: "erin@example.org"), "Erin Smith <erin@example.org>")
        XCTAssertEqual(Webmail.mailbox(name: "Smith, Erin", address: "erin@example.org"), "\"Smith, Erin\" <erin@example.org>")
        XCTAssertEqual(Webmail.mailbox(name: "Dr. \"E\" Smith", address: "e@example.org"), "\"Dr. \\\"E\\\" Smith\" <e@example.org>")
        XCTAssertEqual(Webmail.mailbox(name: "", address: "e@example.org"), "e@example.org")
        XCTAssertEqual(Webmail.mailbox(name: "E@Example.org", address: "e@example.org"), "e@example.org", "a name that is the address")
    }

    func testEveryLanguageHasEveryStringOfEnglish() throws {
        let resources = try XCTUnwrap(Bundle.module(forCore: ()))
        let english = try JSONDecoder().decode([String: String].self, from: Data(contentsOf: resources.appendingPathComponent("locales/en.json")))
        XCTAssertGreaterThan(english.count, 40)
        for language in PageRenderer.languages where language != "en" {
            let strings = try JSONDecoder().decode([String: String].self,
                                                   from: Data(contentsOf: resources.appendingPathComponent("locales/\(language).json")))
            XCTAssertEqual(Set(strings.keys), Set(english.keys), language)
            XCTAssertTrue(strings.values.allSatisfy { !$0.isEmpty }, language)
        }
        // Every string a template uses exists.
        let templates = resources.appendingPathComponent("templates")
        for file in try FileManager.default.contentsOfDirectory(atPath: templates.path) {
            let text = try String(contentsOf: templates.appendingPathComponent(file), encoding: .utf8)
            let regex = try NSRegularExpression(pattern: "\\{\\{t\\.([a-z_]+)\\}\\}")
            for match in regex.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                let key = String(text[Range(match.range(at: 1), in: text)!])
                XCTAssertNotNil(english[key], "\(file) uses t.\(key)")
            }
        }
    }

    func testBrandsAndLanguagesAreChosen() throws {
        let brands = directory + "/brands"
        try FileManager.default.createDirectory(atPath: brands + "/example.de/templates", withIntermediateDirectories: true)
        try ##"{"product": "Beispiel Post", "primaryColor": "#aa0000", "accentColor": "red; background:url(x)", "defaultLanguage": "de"}"##
            .write(toFile: brands + "/example.de/brand.json", atomically: true, encoding: .utf8)
        try "{{> head}}<body><p id=own>{{brand.product}} {{t.login_submit}}</p></body>"
            .write(toFile: brands + "/example.de/templates/login.mustache", atomically: true, encoding: .utf8)
        let pages = try PageRenderer(brandsDirectory: brands, defaultLanguage: "en")
        XCTAssertEqual(pages.brandKey(for: "mail.example.de"), "example.de")
        XCTAssertNil(pages.brandKey(for: "example.org"))
        let brand = pages.brand("example.de")
        XCTAssertEqual(brand.primaryColor, "#aa0000")
        XCTAssertEqual(brand.accentColor, Brand.standard.accentColor, "a colour that is not #hex is ignored")
        XCTAssertEqual(pages.language(preferred: nil, brand: "example.de", acceptLanguage: nil), "de")
        XCTAssertEqual(pages.language(preferred: "ja", brand: "example.de", acceptLanguage: "fr"), "ja")
        XCTAssertEqual(pages.language(preferred: nil, brand: nil, acceptLanguage: "fr-CH, fr;q=0.9, en;q=0.8"), "fr")
        let own = pages.render("login", brand: "example.de", language: "de", [:])
        XCTAssertTrue(own.contains("<p id=own>Beispiel Post Anmelden</p>"), own)
        let standard = pages.render("login", brand: nil, language: "en", ["csrf": "c<"])
        XCTAssertTrue(standard.contains("Postern Mail"))
        XCTAssertTrue(standard.contains("value=\"c&lt;\""), "values are HTML-escaped")
    }

    func testMessageViewDecodesHeadersBodiesAndAttachments() {
        let lines: [String] = [
            "From: =?iso-8859-1?q?J=F6rg?= <jorg@example.de>", "To: a@example.org", "Subject: =?utf-8?b?w5xiZXI=?=",
            "Message-ID: <m1@example.de>", "MIME-Version: 1.0", "Content-Type: multipart/mixed; boundary=b", "",
            "--b", "Content-Type: text/plain; charset=iso-8859-1", "Content-Transfer-Encoding: quoted-printable", "",
            "Gr=FC=DFe", "--b", "Content-Type: application/pdf",
            "Content-Disposition: attachment; filename*=utf-8''..%2F..%2Fb%C3%A9r.pdf", "Content-Transfer-Encoding: base64", "",
            "UERG", "--b--", "",
        ]
        let raw = Array(lines.joined(separator: "\r\n").utf8)
        let view = MessageView(raw: raw)
        XCTAssertEqual(view.subject, "Über")
        XCTAssertEqual(view.from, "Jörg <jorg@example.de>")
        XCTAssertEqual(view.body, MessageView.Body.plain("Grüße"))
        XCTAssertEqual(view.attachments.count, 1)
        XCTAssertEqual(view.attachments.first?.filename, "bér.pdf", "never a path")
        XCTAssertEqual(view.attachments.first?.size, 3)
        XCTAssertEqual(Webmail.dispositionFilename("a\"b\r\nc ü.pdf"), "filename=\"a_b__c _.pdf\"; filename*=UTF-8''a%22b%0D%0Ac%20%C3%BC.pdf")
    }
}

extension Bundle {
    /// The webmail core's resource folder, as the plugin finds it.
    static func module(forCore: Void) -> URL? {
        try? PageRenderer(brandsDirectory: nil, defaultLanguage: "en").resources
    }
}
