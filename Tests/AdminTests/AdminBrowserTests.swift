import Foundation
import PosternHost
import PosternTestSupport
import XCTest

/// The admin console in a real browser: the `postern` binary (submission, queue, admin) and
/// headless Chromium through WebDriver, driven by Scripts/admin_browser.py, which does each store
/// task and each queue action as a site administrator would, then looks as a domain
/// administrator. The browser runs once for the class; each test asserts on what it saw.
/// Screenshots go to $POSTERN_SCREENSHOTS (`make screenshots`).
final class AdminBrowserTests: XCTestCase {
    struct Run {
        var rig: AdminRig
        var result: [String: Any]
        var checks: [String: Any] { result["checks"] as? [String: Any] ?? [:] }
    }

    nonisolated(unsafe) static var run: Result<Run, any Error>?

    override class func setUp() {
        super.setUp()
        run = Result { try start() }
    }

    override class func tearDown() {
        if case .success(let run)? = run { run.rig.server.stop() }
        super.tearDown()
    }

    static func start() throws -> Run {
        let rig = try AdminRig("admin-browser")
        let dir = rig.dir, admin = rig.admin, submission = rig.submission
        try rig.populate(domains: ["a.example", "b.example"], accounts: [
            ("root@a.example", "Root-Secret-1", "site-admin"), ("boss@a.example", "Boss-Secret-1", "domain-admin"),
            ("alice@a.example", "Alice-Secret-1", "user"), ("someone@a.example", "Someone-Secret-1", "user"),
            ("bob@b.example", "Bob-Secret-1", "user"),
        ])
        let screenshots = ProcessInfo.processInfo.environment["POSTERN_SCREENSHOTS"] ?? dir.path + "/screenshots"
        try FileManager.default.createDirectory(atPath: screenshots, withIntermediateDirectories: true)
        let settings: [String: Any] = [
            // localhost, not 127.0.0.1: browsers keep Secure cookies on http://localhost only.
            "base": "http://localhost:\(admin)", "port": admin, "submission_port": submission, "screenshots": screenshots,
            "site": "root@a.example", "site_password": "Root-Secret-1", "a_admin": "boss@a.example", "a_admin_password": "Boss-Secret-1",
            "a_user": "alice@a.example", "a_user_password": "Alice-Secret-1",
        ]
        let result = try rig.script("admin_browser.py", [], settings: settings)
        if let error = result["error"] {
            throw SystemError.message("the browser stopped: \(error)\npage: \(result["page"] ?? "")\nso far: \(result["checks"] ?? [:])")
        }
        return Run(rig: rig, result: result)
    }

    func checks() throws -> [String: Any] { try XCTUnwrap(Self.run).get().checks }

    func testLogin() throws {
        let c = try checks()
        XCTAssertEqual(c["bad_login_error"] as? String, "the address or password is wrong")
        XCTAssertEqual(c["who"] as? String, "root@a.example (site-admin)")
        XCTAssertEqual(c["landing"] as? String, "#/users")
    }

    func testDomainsAndAliases() throws {
        let c = try checks()
        XCTAssertEqual(c["domain_added_flash"] as? String, "Domain c.example added")
        XCTAssertEqual(c["domains"] as? [String], ["a.example", "b.example", "c.example"])
        XCTAssertEqual(Set(c["aliases"] as? [String] ?? []), ["info@c.example", "@c.example"])
        XCTAssertEqual(c["alias_targets"] as? String, "someone@a.example, other@remote.example")
        XCTAssertEqual(c["aliases_after_remove"] as? [String], ["@c.example"])
        XCTAssertEqual(c["delete_domain_flash"] as? String, "Domain c.example deleted")
        XCTAssertEqual(c["domains_after_delete"] as? [String], ["a.example", "b.example", "imported.example"], "c.example gone; imported.example came with the bulk import")
    }

    func testAccountTasks() throws {
        let c = try checks()
        XCTAssertEqual(c["user_created_flash"] as? String, "Account carol@c.example created")
        XCTAssertEqual(c["search_carol"] as? [String], ["carol@c.example"])
        XCTAssertTrue((c["quota_shown"] as? String ?? "").contains("of 50.0 MiB"), "\(c["quota_shown"] ?? "")")
        XCTAssertEqual(c["suspend_flash"] as? String, "Suspended")
        XCTAssertEqual(c["state_after_suspend"] as? String, "suspended")
        XCTAssertEqual(c["state_after_enable"] as? String, "active")
        XCTAssertEqual(c["quota_flash"] as? String, "Quota set")
        XCTAssertEqual(c["password_flash"] as? String, "Password set")
        XCTAssertEqual(c["level_flash"] as? String, "Level set")
        XCTAssertEqual(c["delegated_flash"] as? String, "Domains delegated")
        XCTAssertTrue((c["mailboxes"] as? [String] ?? []).contains("Shared"))
        XCTAssertEqual(c["rename_flash"] as? String, "Renamed Shared to Team")
        let renamed = c["mailboxes_after_rename"] as? [String] ?? []
        XCTAssertTrue(renamed.contains("Team") && !renamed.contains("Shared"), "\(renamed)")
        XCTAssertEqual(c["team_subscribed_before"] as? Bool, true, "a folder made in the console is subscribed (doveadm mailbox create -s)")
        XCTAssertEqual(c["unsubscribe_flash"] as? String, "Unsubscribed from Team")
        XCTAssertEqual(c["team_subscribed_after"] as? Bool, false)
        XCTAssertEqual(c["import_dry_run"] as? String, "1198 accounts would be created, 2 rows refused. New domains: imported.example.")
        XCTAssertEqual(c["import_dry_run_lines"] as? [String], ["301", "701"])
        XCTAssertEqual(c["import_summary"] as? String, "1198 accounts created, 2 rows refused. New domains: imported.example.")
        XCTAssertEqual(c["import_lines"] as? [String], ["301", "701"])
        let statuses = c["import_statuses"] as? [String] ?? []
        XCTAssertTrue(statuses.contains { $0.hasPrefix("Created ") && $0.hasSuffix(" accounts...") }, "the progress was shown: \(statuses)")
        XCTAssertEqual(c["import_progress_full"] as? Bool, true)
        XCTAssertEqual(c["acl_rights"] as? String, "lrs")
        XCTAssertEqual(c["acl_after_remove"] as? [String], ["carol@c.example"], "the owner's own entry stays")
        XCTAssertEqual(c["forwarding_flash"] as? String, "Forwarding saved")
        XCTAssertEqual(c["delete_user_flash"] as? String, "Account deleted")
    }

    func testQueueActions() throws {
        let c = try checks()
        XCTAssertEqual((c["queue_ids"] as? [String])?.count, 3)
        XCTAssertTrue((c["hold_flash"] as? String ?? "").hasPrefix("hold: "))
        XCTAssertEqual(c["after_hold"] as? String, "hold")
        XCTAssertNotEqual(c["after_release"] as? String, "hold")
        XCTAssertTrue((c["flush_flash"] as? String ?? "").hasPrefix("flush: "))
        XCTAssertTrue((c["requeue_flash"] as? String ?? "").hasPrefix("requeue: "))
        XCTAssertTrue((c["headers"] as? String ?? "").contains("Subject: Queued message"), "\(c["headers"] ?? "")")
        XCTAssertTrue((c["delete_flash"] as? String ?? "").hasPrefix("delete: "))
        XCTAssertEqual((c["after_delete"] as? [String])?.count, 2)
        XCTAssertEqual(c["bulk_flash"] as? String, "hold: 2 of 2")
        XCTAssertEqual((c["held_after_bulk"] as? [String])?.count, 2)
    }

    func testAuditAndStatusPages() throws {
        let c = try checks()
        let actions = c["audit_actions"] as? [String] ?? []
        for action in ["domain.create", "alias.set", "alias.delete", "user.create", "user.change", "mailbox.create", "acl.set", "acl.delete", "mailbox.rename", "mailbox.unsubscribe", "user.import",
                       "queue.hold", "queue.release", "queue.delete", "queue.bulk.hold"] {
            XCTAssertTrue(actions.contains(action), "\(action) in \(actions)")
        }
        XCTAssertEqual(c["status_rows"] as? [String], ["Domains", "Accounts", "Worker", "Listener", "Queue active", "Queue deferred", "Queue hold", "Queue incoming"])
        XCTAssertTrue((c["master_state"] as? String ?? "").hasPrefix("The master is running"), "\(c["master_state"] ?? "")")
        XCTAssertTrue((c["status_plugins"] as? [String] ?? []).contains("admin"), "\(c["status_plugins"] ?? "")")
        XCTAssertTrue((c["reload_flash"] as? String ?? "").hasPrefix("generation 2 serving"), "\(c["reload_flash"] ?? "")")
    }

    func testTheReportsPageShowsTheChartAndCounts() throws {
        let c = try checks()
        XCTAssertEqual(c["report_received"] as? String, "3", "the three queued messages")
        XCTAssertEqual(c["report_chart_width"] as? Int, 800, "the SVG chart loaded")
        XCTAssertEqual(c["report_top_sender"] as? [String], ["alice@a.example"])
    }

    func testADomainAdministratorSeesTheirDomainOnly() throws {
        let c = try checks()
        XCTAssertEqual(c["top_hidden_after_logout"] as? Bool, true)
        XCTAssertEqual(c["a_admin_who"] as? String, "boss@a.example (domain-admin)")
        XCTAssertEqual(c["a_admin_status_link_hidden"] as? Bool, true)
        XCTAssertEqual(c["a_admin_domains"] as? [String], ["a.example"])
        XCTAssertEqual(c["a_admin_users"] as? [String], ["alice@a.example", "boss@a.example", "root@a.example", "someone@a.example"])
        XCTAssertEqual(c["a_admin_other_domain_user"] as? String, "no user 'bob@b.example'")
    }

    func testScreenshotsAndNoScriptErrors() throws {
        let result = try XCTUnwrap(Self.run).get().result
        let shots = result["screenshots"] as? [String] ?? []
        XCTAssertEqual(shots.count, 22, "\(shots)")
        for path in shots {
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            XCTAssertGreaterThan(size ?? 0, 5_000, path)
        }
        XCTAssertEqual(result["console_errors"] as? [String], [], "the page's script ran without errors (the CSP blocked nothing)")
    }
}
