import Foundation
import PosternHost
import PosternTestSupport
import XCTest

/// A node with low alert thresholds: mail waiting and deferring (the relayhost refuses), workers
/// killed twice, and a disk threshold no disk meets; the alerts show in the console, are mailed
/// to the postmaster through the node's own queue when they start and when they end.
final class AdminAlertsTests: XCTestCase {
    func testAlertsShowInTheConsoleAndAreMailedWhenTheyStartAndEnd() throws {
        let password = "Alert-Secret-1"
        // Every alert off until the postmaster's domain exists (else the first alert mail would go
        // to the refusing relayhost), then the thresholds by a reload, as an administrator would.
        let off = """
            alert_queue_size = 0
            alert_deferred_percent = 0
            alert_worker_restarts = 0
            alert_disk_free_percent = 0
            """
        let rig = try AdminRig("admin-alerts", adminSettings: """
            node_name = "alerting"
            alert_to = ["postmaster@a.example"]
            alert_interval = "300ms"
            alert_min_attempts = 1
            \(off)
            """)
        defer { rig.server.stop() }
        try rig.populate(domains: ["a.example"], accounts: [
            ("root@a.example", password, "site-admin"), ("boss@a.example", password, "domain-admin"),
            ("postmaster@a.example", password, "user"), ("alice@a.example", password, "user")])
        let config = try String(contentsOfFile: rig.server.configFile, encoding: .utf8)
        try config.replacingOccurrences(of: off, with: """
            alert_queue_size = 1
            alert_deferred_percent = 10
            alert_worker_restarts = 2
            alert_disk_free_percent = 100
            """).write(toFile: rig.server.configFile, atomically: true, encoding: .utf8)
        XCTAssertTrue(try rig.server.reload().ok)
        // Two worker crashes; the master restarts the worker each time.
        for _ in 0..<2 {
            let victim = try XCTUnwrap(rig.server.status().workers.first { $0.state == "ready" }?.pid)
            XCTAssertEqual(kill(victim, SIGKILL), 0)
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline, (try? rig.server.status().workers.contains { $0.pid != victim && $0.state == "ready" }) != true {
                usleep(100_000)
            }
            usleep(1_000_000)  // a check by the new worker, so each restart is counted apart
        }
        let r = try rig.script("admin_alerts.py", [], settings: [
            "port": rig.admin, "submission_port": rig.submission, "site": "root@a.example", "boss": "boss@a.example",
            "alice": "alice@a.example", "password": password,
            "expect": ["queue-size", "deferred-ratio", "worker-restarts", "disk-space"],
        ])
        let firing = try XCTUnwrap(r["firing"] as? [String: Any])
        let active = try XCTUnwrap(firing["active"] as? [[String: Any]])
        let messages = Dictionary(uniqueKeysWithValues: active.map { ($0["kind"] as! String, $0["message"] as! String) })
        XCTAssertTrue(messages["queue-size"]?.hasPrefix("alerting: 2 messages wait in the queue (the alert is over 1)") == true, "\(messages)")
        XCTAssertTrue(messages["worker-restarts"]?.contains("restarted 2 times") == true, "\(messages)")
        XCTAssertTrue(messages["disk-space"]?.contains("(the alert is under 100%)") == true, "\(messages)")
        XCTAssertNil(messages["master-down"])
        XCTAssertEqual(firing["mailedTo"] as? [String], ["postmaster@a.example"])
        XCTAssertEqual(((r["status"] as? [String: Any])?["alerts"] as? [Any])?.count, active.count, "the status carries them to a console")
        XCTAssertEqual(r["domain_admin"] as? Int, 403, "alerts are the site's")
        XCTAssertEqual((r["bulk"] as? [String: Int])?["done"], 2)
        let after = try XCTUnwrap(r["after"] as? [String: Any])
        let ended = (after["history"] as? [[String: Any]] ?? []).first { $0["kind"] as? String == "queue-size" }
        XCTAssertNotNil(ended?["ended"], "the queue alert ended: \(after)")
        XCTAssertEqual(r["csv"] as? [String], ["kind,since,ended,message"])

        // The mail: one per alert that started, one for the alert that ended, in the postmaster's INBOX.
        var subjects: [String] = []
        let deadline = Date().addingTimeInterval(30)
        repeat {
            subjects = try inboxSubjects(rig, "postmaster@a.example")
            if subjects.contains(where: { $0.hasPrefix("[Postern alert ended] queue-size on alerting") }) { break }
            usleep(200_000)
        } while Date() < deadline
        for kind in ["queue-size", "deferred-ratio", "worker-restarts", "disk-space"] {
            let prefix = ["queue-size": "[Postern alert] alerting: 2 messages wait", "deferred-ratio": "[Postern alert] alerting: ",
                          "worker-restarts": "[Postern alert] alerting: workers restarted", "disk-space": "[Postern alert] alerting: the data directory"][kind]!
            XCTAssertTrue(subjects.contains { $0.hasPrefix(prefix) }, "\(kind): \(subjects)")
        }
        XCTAssertEqual(subjects.filter { $0.hasPrefix("[Postern alert] alerting: workers restarted") }.count, 1, "mailed when it starts, not at every check")
        XCTAssertTrue(subjects.contains("[Postern alert ended] queue-size on alerting"), "\(subjects)")
    }

    /// The Subject lines of an account's INBOX, through `postern admin message`.
    func inboxSubjects(_ rig: AdminRig, _ account: String) throws -> [String] {
        let (status, list) = Build.run(Build.postern, ["admin", "message", "list", account, "-c", rig.server.configFile], cwd: rig.dir.path)
        guard status == 0 else { throw SystemError.message(list) }
        return try list.split(separator: "\n").compactMap { line -> String? in
            guard let uid = line.split(separator: "\t").first, Int(uid) != nil else { return nil }
            let (s, text) = Build.run(Build.postern, ["admin", "message", "get", account, String(uid), "-c", rig.server.configFile], cwd: rig.dir.path)
            guard s == 0 else { throw SystemError.message(text) }
            return text.split(whereSeparator: \.isNewline).first { $0.hasPrefix("Subject: ") }.map { String($0.dropFirst(9)).trimmingCharacters(in: .whitespacesAndNewlines) }
        }
    }
}
