import Foundation
import PosternHost
import PosternTestSupport
import XCTest

/// The webmail in a real browser: the `postern` binary (imap, lmtp and webmail listeners) and
/// headless Chromium through WebDriver (Debian's chromium, chromium-driver, python3-selenium),
/// driven by Scripts/webmail_browser.py. The browser runs once for the whole class (it is the
/// slow peer); each test asserts on what it saw.
final class WebmailBrowserTests: XCTestCase {
    struct Run {
        var server: ServerProcess
        var result: [String: Any]
        var checks: [String: Any] { result["checks"] as? [String: Any] ?? [:] }
        var corpusCount: Int
    }

    nonisolated(unsafe) static var run: Result<Run, any Error>?

    static let scripts = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Scripts").path
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("WebmailTests/Fixtures/hostile").path
    /// Debian's Python: the one python3-selenium is installed for.
    static let python = "/usr/bin/python3"
    static let bigFolderSize = 10_000

    override class func setUp() {
        super.setUp()
        run = Result { try start() }
    }

    override class func tearDown() {
        if case .success(let run)? = run { run.server.stop() }
        super.tearDown()
    }

    static func start() throws -> Run {
        let dir = TempDir("webmail-browser")
        // Two brands: example.org in its own colours, example.com in German by default.
        let brands = dir.path + "/brands"
        for (domain, json) in [("example.org", ##"{"product": "Example Org Mail", "primaryColor": "#0b6e4f", "footer": "Example Org, Postern demo"}"##),
                               ("example.com", ##"{"product": "Beispiel Mail", "primaryColor": "#8a1538", "defaultLanguage": "de"}"##)] {
            try FileManager.default.createDirectory(atPath: brands + "/" + domain, withIntermediateDirectories: true)
            try json.write(toFile: brands + "/\(domain)/brand.json", atomically: true, encoding: .utf8)
        }
        let lmtp = freePort(), imap = freePort(), web = freePort(), submission = freePort()
        let server = try ServerProcess.start(dir, """
            data_dir = "./var"
            workers = 1
            [plugin.store-sqlite]
            [plugin.sasl-plain]
            [plugin.imap]
            login_failure_delay = "100ms"
            [plugin.queue]
            [plugin.smtp]
            hostname = "mail.example.org"
            [plugin.webmail]
            login_failure_delay = "100ms"
            [[listener]]
            name = "submission"
            address = "127.0.0.1"
            port = \(submission)
            protocol = "smtp"
            [listener.options]
            mode = "submission"
            allow_plaintext_auth_on_loopback = true
            [[listener]]
            name = "lmtp"
            address = "127.0.0.1"
            port = \(lmtp)
            protocol = "lmtp"
            [[listener]]
            name = "imap"
            address = "127.0.0.1"
            port = \(imap)
            protocol = "imap"
            [listener.options]
            allow_plaintext_on_loopback = true
            [[listener]]
            name = "webmail"
            address = "127.0.0.1"
            port = \(web)
            protocol = "webmail"
            [listener.options]
            imap_port = \(imap)
            submission_port = \(submission)
            submission_security = "none"
            brands = "\(brands)"
            """)
        func admin(_ args: [String]) throws {
            let (status, output) = Build.run(Build.postern, ["admin"] + args + ["-c", server.configFile], cwd: dir.path)
            guard status == 0 else { throw SystemError.message("postern admin \(args): \(output)") }
        }
        try admin(["domain", "add", "example.org"])
        try admin(["domain", "add", "example.com"])
        try admin(["user", "add", "hans@example.com", "--password", "hans-Secret-1"])
        for user in ["alice", "big", "hostile", "bob", "carol"] {
            try admin(["user", "add", "\(user)@example.org", "--password", "\(user)-Secret-1"])
        }
        func deliver(_ user: String, _ count: Int, _ kind: String) throws {
            let (status, output) = Build.run(python, [scripts + "/webmail_browser.py", "deliver", "\(lmtp)", "\(user)@example.org",
                                                      "\(count)", kind, corpus])
            guard status == 0 else { throw SystemError.message("delivery of \(kind) mail failed: \(output)") }
        }
        try deliver("alice", 3, "sample")
        try deliver("hostile", 0, "hostile")
        try deliver("big", bigFolderSize, "big")
        let screenshots = ProcessInfo.processInfo.environment["POSTERN_SCREENSHOTS"] ?? dir.path + "/screenshots"
        try FileManager.default.createDirectory(atPath: screenshots, withIntermediateDirectories: true)
        let settings: [String: Any] = [
            "base": "http://localhost:\(web)", "user": "alice@example.org", "password": "alice-Secret-1",
            "big_user": "big@example.org", "big_password": "big-Secret-1",
            "hostile_user": "hostile@example.org", "hostile_password": "hostile-Secret-1",
            "postern": Build.postern, "config": server.configFile, "screenshots": screenshots, "imap_port": imap, "lmtp_port": lmtp, "submission_port": submission,
            "bob_password": "bob-Secret-1", "brand_user": "hans@example.com", "brand_password": "hans-Secret-1", "carol_password": "carol-Secret-1", "new_password": "alice-Changed-2",
        ]
        let json = String(decoding: try JSONSerialization.data(withJSONObject: settings), as: UTF8.self)
        let (status, stdout, stderr) = Build.runSeparately(python, [scripts + "/webmail_browser.py", "browse", json])
        guard status == 0, let data = stdout.data(using: .utf8),
              let result = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw SystemError.message("the browser run failed (\(status)):\n\(stderr)\n\(stdout)\nserver log:\n\(server.log.suffix(4000))")
        }
        let corpusCount = try FileManager.default.contentsOfDirectory(atPath: corpus).filter { $0.hasSuffix(".html") }.count
        print("FIGURES webmail browser timings: \(result["timings"] ?? [:])")
        return Run(server: server, result: result, corpusCount: corpusCount)
    }

    func browser() throws -> Run {
        try XCTUnwrap(Self.run).get()
    }

    func testLoginShowsTheInboxAndAWrongPasswordDoesNot() throws {
        let c = try browser().checks
        XCTAssertEqual(c["bad_login_error"] as? String, "The address or password is wrong.")
        XCTAssertEqual(c["bad_login_cookie"] as? Bool, false)
        XCTAssertEqual(c["after_login_url"] as? String, "/mail?f=INBOX")
        XCTAssertEqual(c["user_shown"] as? String, "alice@example.org")
        XCTAssertEqual(c["inbox_subjects"] as? [String], ["Report attached", "HTML Grüße", "Plain hello"], "newest first")
        XCTAssertEqual(c["inbox_unseen_rows"] as? Int, 3)
    }

    func testNewMailIsAnnouncedWhileTheFolderIsOpen() throws {
        let c = try browser().checks
        XCTAssertEqual(c["live_banner"] as? String, "New mail has arrived: show it")
        XCTAssertTrue((c["live_title"] as? String)?.hasPrefix("(4) ") ?? false, "\(c["live_title"] ?? "")")
    }

    func testTheSessionCookieIsSecureHttpOnlyAndSameSite() throws {
        let cookie = try XCTUnwrap(try browser().checks["cookie"] as? [String: Any])
        XCTAssertEqual(cookie["httpOnly"] as? Bool, true)
        XCTAssertEqual(cookie["secure"] as? Bool, true)
        XCTAssertEqual(cookie["sameSite"] as? String, "Lax")
        XCTAssertGreaterThanOrEqual((cookie["value"] as? String)?.count ?? 0, 43, "256 random bits")
    }

    func testPlainAndHTMLMessagesRenderSafely() throws {
        let c = try browser().checks
        XCTAssertEqual(c["plain_subject"] as? String, "Plain hello")
        XCTAssertTrue((c["plain_body"] as? String)?.contains("Hello Alice,") ?? false)
        XCTAssertEqual(c["plain_link"] as? [String], ["https://example.com/page"])
        XCTAssertEqual(c["html_subject"] as? String, "HTML Grüße")
        XCTAssertEqual(c["html_from"] as? String, "Jörg <jorg@example.de>")
        XCTAssertEqual(c["html_greeting"] as? String, "Hi there")
        XCTAssertEqual(c["html_ids_kept"] as? Int, 0, "a mail cannot name elements of the page")
        XCTAssertEqual(c["html_alert"] as? Bool, false)
        XCTAssertNotNil(c["html_remote_notice"] as? String)
        XCTAssertEqual(c["html_foreign_requests_before"] as? [String], [], "no remote load before the user asks")
        XCTAssertEqual(c["html_cid_image_loaded"] as? Bool, true)
        XCTAssertEqual(c["html_foreign_requests_after_asking"] as? [String], ["http://remote.example/track.png"])
    }

    func testAttachmentsDownloadWithTheirNameAndTheSourceIsPlainText() throws {
        let c = try browser().checks
        XCTAssertEqual(c["attachment_name"] as? String, "Bericht für Q4.pdf")
        XCTAssertEqual(c["attachment_status"] as? Int, 200)
        XCTAssertEqual(c["attachment_body"] as? String, "%PDF-1.4 report bytes")
        XCTAssertEqual(c["attachment_type"] as? String, "application/octet-stream")
        XCTAssertEqual(c["attachment_disposition"] as? String,
                       "attachment; filename=\"Bericht f_r Q4.pdf\"; filename*=UTF-8''Bericht%20f%C3%BCr%20Q4.pdf")
        XCTAssertEqual(c["source_has_header"] as? Bool, true)
        XCTAssertEqual(c["source_type"] as? String, "text/plain; charset=utf-8")
    }

    func testFormsWithoutTheCSRFTokenAreRefused() throws {
        let c = try browser().checks
        XCTAssertEqual(c["settings_without_csrf"] as? Int, 403)
        XCTAssertEqual(c["settings_forged_csrf"] as? Int, 403)
        XCTAssertEqual(c["logout_forged_csrf"] as? Int, 403)
        XCTAssertEqual(c["still_english_after_forgery"] as? Bool, true)
    }

    func testAGermanUserSeesGerman() throws {
        let c = try browser().checks
        XCTAssertEqual(c["settings_saved_text"] as? String, "Ihre Einstellungen wurden gespeichert.", "the page after saving is in the new language")
        XCTAssertTrue((c["german_inbox"] as? String)?.hasPrefix("Posteingang") ?? false, "\(c["german_inbox"] ?? "")")
        XCTAssertEqual(c["german_html_lang"] as? String, "de")
    }

    func testTheSessionSurvivesAWorkerKillAndAReload() throws {
        let c = try browser().checks
        XCTAssertEqual(c["after_kill_url"] as? String, "/mail?f=INBOX")
        XCTAssertEqual(c["after_kill_user"] as? String, "alice@example.org")
        XCTAssertEqual(c["after_reload_user"] as? String, "alice@example.org")
        let compose = try XCTUnwrap(c["after_kill_compose"] as? [Any])
        XCTAssertEqual(compose[0] as? String, "Survives a crash")
        XCTAssertEqual(compose[1] as? String, "typed before the crash")
        XCTAssertEqual(compose[2] as? [String], ["upload-notes.txt"], "the draft in progress is intact")
    }

    func testAFolderOfTenThousandMessagesPages() throws {
        let c = try browser().checks
        XCTAssertEqual(c["big_total"] as? String, "\(Self.bigFolderSize)")
        XCTAssertEqual(c["big_first_page_rows"] as? Int, 50)
        XCTAssertEqual(c["big_first_subject"] as? String, String(format: "Big folder message %05d", Self.bigFolderSize - 1))
        XCTAssertEqual(c["big_second_page_first_subject"] as? String, String(format: "Big folder message %05d", Self.bigFolderSize - 51))
    }

    func testNoHostileMessageRunsScriptOrLoadsAnythingRemote() throws {
        let run = try browser()
        let hostile = try XCTUnwrap(run.result["hostile"] as? [String: [String: Any]])
        XCTAssertEqual(hostile.count, run.corpusCount, "every corpus message was opened")
        XCTAssertGreaterThanOrEqual(hostile.count, 100)
        for (subject, seen) in hostile.sorted(by: { $0.key < $1.key }) {
            XCTAssertEqual(seen["alert"] as? Bool, false, "\(subject): an alert opened")
            XCTAssertEqual(seen["errors"] as? [String], [], "\(subject): console errors")
            XCTAssertEqual(seen["foreign"] as? [String], [], "\(subject): remote loads")
        }
    }

    func testLogoutAndLogoutEverywhere() throws {
        let c = try browser().checks
        XCTAssertEqual(c["after_logout_url"] as? String, "/login")
        XCTAssertEqual(c["after_logout_cookie"] as? Bool, false)
        XCTAssertEqual(c["mail_after_logout_url"] as? String, "/login")
        XCTAssertEqual(c["other_device_before"] as? Int, 200)
        XCTAssertEqual(c["other_device_after"] as? Int, 303, "the other device's session is gone: redirected to the login")
    }

    func testComposeSendsWithAnAttachmentAndKeepsACopyInSent() throws {
        let c = try browser().checks
        XCTAssertEqual(c["send_url"] as? String, "/mail?f=INBOX&sent=1")
        XCTAssertEqual(c["send_notice"] as? String, "Your message was sent.")
        XCTAssertNil(c["send_refused_notice"] as? String, "no recipient was refused")
        XCTAssertEqual(c["clip_icon_loaded"] as? Bool, true, "the attachment marker of \"Report attached\"")
        XCTAssertEqual(c["sent_received"] as? Bool, true, "delivered to bob through submission and the queue")
        XCTAssertEqual(c["sent_from"] as? String, "alice@example.org")
        XCTAssertEqual(c["sent_body"] as? String, "Hello Bob, from the browser. Grüße")
        let attachments = try XCTUnwrap(c["sent_attachments"] as? [[Any]])
        XCTAssertEqual(attachments.first?.first as? String, "upload-notes.txt")
        XCTAssertEqual(c["sent_copy"] as? Bool, true)
    }

    func testReplyReplyAllAndForward() throws {
        let c = try browser().checks
        XCTAssertEqual(c["reply_to"] as? String, "bob@example.org")
        XCTAssertEqual(c["reply_subject"] as? String, "Re: Plain hello")
        XCTAssertEqual(c["reply_quote"] as? Bool, true)
        XCTAssertEqual(c["reply_in_reply_to"] as? String, "<plain-1@example.net>")
        XCTAssertEqual(c["reply_body_start"] as? String, "Thanks Bob. ")
        XCTAssertEqual(c["conversation"] as? [String], ["Plain hello", "Re: Plain hello"], "the reply in Sent joins the thread")
        XCTAssertEqual(c["contacts"] as? [String], ["bob@example.org"])
        XCTAssertEqual(c["replyall_to"] as? String, "bob@example.org", "Reply-To, not ourselves")
        XCTAssertEqual(c["replyall_cc"] as? String, "carol@example.org")
        XCTAssertEqual(c["forward_subject"] as? String, "Fwd: Report attached")
        XCTAssertEqual(c["forward_uploads"] as? [String], ["Bericht für Q4.pdf"])
        let forwarded = try XCTUnwrap(c["forward_attachments"] as? [[String]])
        XCTAssertEqual(forwarded, [["Bericht für Q4.pdf", "application/pdf"]])
        XCTAssertEqual(c["forward_attach_notice"] as? Bool, true)
        XCTAssertEqual(c["forward_attach_inner_subject"] as? String, "Report attached")
    }

    func testIdentitiesAreOfferedInCompose() throws {
        let c = try browser().checks
        XCTAssertTrue((c["identities_listed"] as? String)?.contains("Alice at Sales <sales@example.org>") ?? false, "\(c["identities_listed"] ?? "")")
        XCTAssertEqual(c["compose_from_options"] as? [String], ["alice@example.org", "Alice at Sales <sales@example.org>"])
    }

    func testADraftIsSavedResumedAndSent() throws {
        let c = try browser().checks
        XCTAssertEqual(c["draft_notice"] as? String, "The draft was saved in Drafts.")
        XCTAssertEqual(c["draft_resumed_to"] as? String, "bob@example.org")
        XCTAssertEqual(c["draft_resumed_body"] as? String, "first words")
        XCTAssertEqual(c["draft_resumed_uploads"] as? [String], ["upload-notes.txt"])
        XCTAssertEqual(c["draft_sent"] as? Bool, true)
        XCTAssertEqual(c["drafts_after_send"] as? [String], [], "the draft goes once it is sent")
    }

    func testSearchDeleteAndArchive() throws {
        let c = try browser().checks
        let results = try XCTUnwrap(c["search_results"] as? [String])
        XCTAssertTrue(results.contains("Report attached"), "\(results)")
        XCTAssertTrue(results.contains("Fwd: Report attached"), "searches every folder: \(results)")
        XCTAssertFalse((c["after_delete_inbox"] as? [String] ?? []).contains("Plain hello"))
        XCTAssertEqual(c["trash"] as? [String], ["Plain hello"])
        XCTAssertEqual(c["archive"] as? [String], ["Report attached"])
    }

    func testPasswordChange() throws {
        let c = try browser().checks
        XCTAssertEqual(c["password_message"] as? String, "Ihr Passwort wurde geändert. Andere Geräte müssen sich neu anmelden.", "alice chose German earlier")
        XCTAssertEqual(c["password_session_continues"] as? String, "alice@example.org")
        XCTAssertEqual(c["old_password_error"] as? String, "The address or password is wrong.")
    }

    func testAppPasswordsAreMadeUsedWithinTheirScopeAndRevoked() throws {
        let c = try browser().checks
        let secret = try XCTUnwrap(c["app_password_shape"] as? String)
        XCTAssertTrue(secret.range(of: #"^[a-z2-9]{6}(-[a-z2-9]{6}){3}$"#, options: .regularExpression) != nil, secret)
        let rows = try XCTUnwrap(c["app_password_list"] as? [String])
        XCTAssertEqual(rows.count, 1, "\(rows)")
        XCTAssertTrue(rows.first?.hasPrefix("Phone IMAP ") ?? false, "\(rows)")
        XCTAssertTrue(rows.first?.range(of: #"\snie\s"#, options: .regularExpression) != nil, "never used yet, in German: \(rows)")
        XCTAssertEqual(c["app_password_imap"] as? String, "OK")
        XCTAssertEqual(c["app_password_smtp"] as? Int, 535, "not in its scope")
        XCTAssertEqual(c["app_password_revoked_message"] as? String, "Das App-Passwort wurde widerrufen.")
        XCTAssertEqual(c["app_password_list_after"] as? Int, 0)
        XCTAssertEqual(c["app_password_imap_after"] as? String, "b'[AUTHENTICATIONFAILED] Authentication failed.'")
    }

    func testTwoDomainsShowTheirOwnBrandAndLanguage() throws {
        let c = try browser().checks
        XCTAssertEqual(c["brand_org_product"] as? String, "Example Org Mail")
        XCTAssertEqual(c["brand_org_footer"] as? String, "Example Org, Postern demo")
        XCTAssertEqual(c["brand_org_color"] as? String, "rgb(11, 110, 79)")
        XCTAssertEqual(c["brand_com_product"] as? String, "Beispiel Mail")
        XCTAssertEqual(c["brand_com_color"] as? String, "rgb(138, 21, 56)")
        XCTAssertEqual(c["brand_com_inbox"] as? String, "Posteingang", "the domain's default language")
    }

    func testScreenshotsAreWrittenAndThePhoneLayoutFits() throws {
        let run = try browser()
        let shots = try XCTUnwrap(run.result["screenshots"] as? [String])
        XCTAssertEqual(Set(shots.map { URL(fileURLWithPath: $0).lastPathComponent }),
                       ["inbox-1280.png", "inbox-360.png", "message-1280.png", "message-360.png", "compose-1280.png", "compose-360.png",
                        "settings-app-passwords-1280.png"])
        for shot in shots {
            let data = try Data(contentsOf: URL(fileURLWithPath: shot))
            XCTAssertEqual(Array(data.prefix(4)), [0x89, 0x50, 0x4E, 0x47], shot)
            XCTAssertGreaterThan(data.count, 5000, shot)
        }
        XCTAssertEqual(run.checks["phone_no_horizontal_scroll"] as? Bool, true)
    }
}
