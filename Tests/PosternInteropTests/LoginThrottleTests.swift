import Foundation
import PosternTestSupport
import PosternHost
import XCTest

/// The failed-login table shared by every worker and every protocol of a node (the store's
/// `login-failures.sqlite`), on the real binary with two workers: failures over IMAP lock the
/// account for POP3 and SMTP AUTH too, the right password included; failures over POP3 count
/// against the address for SMTP and IMAP; the gauges on /metrics say what is blocked.
final class LoginThrottleTests: XCTestCase {
    func config(imap: Int, pop3: Int, smtp: Int, metrics: Int) -> String {
        let limits = """
            login_failure_delay = "0s"
            login_failure_window = "5m"
            max_login_failures_per_account = 3
            """
        return """
        data_dir = "./var"
        workers = 2
        [metrics]
        listen = "127.0.0.1:\(metrics)"
        [plugin.store-sqlite]
        [plugin.queue]
        [plugin.sasl-plain]
        [plugin.imap]
        \(limits)
        max_login_failures_per_ip = 6
        [plugin.pop3]
        \(limits)
        max_login_failures = 6
        [plugin.smtp]
        \(limits)
        max_login_failures = 6
        [[listener]]
        name = "imap"
        address = "127.0.0.1"
        port = \(imap)
        protocol = "imap"
        [listener.options]
        allow_plaintext_on_loopback = true
        [[listener]]
        name = "pop3"
        address = "127.0.0.1"
        port = \(pop3)
        protocol = "pop3"
        [listener.options]
        allow_plaintext_on_loopback = true
        [[listener]]
        name = "submission"
        address = "127.0.0.1"
        port = \(smtp)
        protocol = "smtp"
        [listener.options]
        mode = "submission"
        allow_plaintext_auth_on_loopback = true
        """
    }

    static let client = """
        import base64, imaplib, json, poplib, smtplib, sys
        imap_port, pop3_port, smtp_port = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
        out = {}
        def imap_login(user, password):
            c = imaplib.IMAP4("127.0.0.1", imap_port)
            try:
                return c.login(user, password)[0]
            except imaplib.IMAP4.error as e:
                return str(e)
            finally:
                c.shutdown()
        def pop3_login(user, password):
            p = poplib.POP3("127.0.0.1", pop3_port)
            try:
                p.user(user)
                return p.pass_(password).decode().split(",")[0]
            except poplib.error_proto as e:
                return e.args[0].decode()
            finally:
                p.sock.close()
        def smtp_auth(user, password):
            s = smtplib.SMTP("127.0.0.1", smtp_port)
            s.ehlo("client.example")
            blob = base64.b64encode(("\\0" + user + "\\0" + password).encode()).decode()
            code, text = s.docmd("AUTH", "PLAIN " + blob)
            s.close()
            return "%d %s" % (code, text.decode())

        # Three wrong passwords for alice over IMAP lock her account everywhere, for the window.
        out["imap_wrong"] = [imap_login("alice@example.org", "wrong-%d" % i) for i in range(3)]
        out["pop3_locked_right_password"] = pop3_login("alice@example.org", "pw-alice")
        out["smtp_locked_right_password"] = smtp_auth("alice@example.org", "pw-alice")
        out["imap_locked_right_password"] = imap_login("alice@example.org", "pw-alice")
        # Another account is not locked (and its success clears this address's count).
        out["imap_bob"] = imap_login("bob@example.org", "pw-bob")
        # Six failures from this address over POP3, each for another user: the address is refused
        # by SMTP and IMAP, even for bob's right password.
        out["pop3_spray"] = [pop3_login("nobody%d@example.org" % i, "guess") for i in range(6)]
        out["smtp_after_spray"] = smtp_auth("bob@example.org", "pw-bob")
        out["imap_after_spray"] = imap_login("bob@example.org", "pw-bob")
        print(json.dumps(out))
        """

    func testFailuresAreSharedAcrossProtocolsAndWorkers() throws {
        let dir = TempDir("throttle")
        let imap = freePort(), pop3 = freePort(), smtp = freePort(), metricsPort = freePort()
        let server = try ServerProcess.start(dir, config(imap: imap, pop3: pop3, smtp: smtp, metrics: metricsPort))
        defer { server.stop() }
        XCTAssertEqual(try server.status().workers.count, 2)
        for args in [["domain", "add", "example.org"],
                     ["user", "add", "alice@example.org", "--password", "pw-alice"],
                     ["user", "add", "bob@example.org", "--password", "pw-bob"]] {
            let (status, output) = Build.run(Build.postern, ["admin"] + args + ["-c", server.configFile], cwd: dir.path)
            XCTAssertEqual(status, 0, output)
        }
        let script = dir.write("throttle_client.py", Self.client)
        let (code, output) = Build.run(try Build.tool("python3"), [script, "\(imap)", "\(pop3)", "\(smtp)"])
        XCTAssertEqual(code, 0, output)
        guard let line = output.split(separator: "\n").last,
              let r = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            return XCTFail("client output: \(output)")
        }
        XCTAssertEqual(r["imap_wrong"] as? [String], Array(repeating: "b'[AUTHENTICATIONFAILED] Authentication failed.'", count: 3))
        // Locked: the right password gets a wrong password's answer in every protocol.
        XCTAssertEqual(r["pop3_locked_right_password"] as? String, "-ERR [AUTH] authentication failed")
        XCTAssertEqual(r["smtp_locked_right_password"] as? String, "535 5.7.8 authentication credentials invalid")
        XCTAssertEqual(r["imap_locked_right_password"] as? String, "b'[AUTHENTICATIONFAILED] Authentication failed.'")
        XCTAssertEqual(r["imap_bob"] as? String, "OK")
        XCTAssertEqual(r["pop3_spray"] as? [String], Array(repeating: "-ERR [AUTH] authentication failed", count: 6))
        XCTAssertEqual(r["smtp_after_spray"] as? String, "454 4.7.0 too many failed logins from your address, try again later")
        XCTAssertEqual(r["imap_after_spray"] as? String,
                       "b'[UNAVAILABLE] Too many failed logins from your address; try again later.'")

        // The table every worker used: one file in the store's directory.
        let table = dir.path + "/var/store/login-failures.sqlite"
        XCTAssertTrue(FileManager.default.fileExists(atPath: table))
        let rows = Build.run(try Build.tool("python3"), ["-c", """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1])
            print(db.execute("SELECT count(*) FROM login_failure WHERE address = '127.0.0.1'").fetchone()[0])
            """, table]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(rows, "6", "bob's login cleared the address's earlier failures; the spray's six remain")

        let metrics = try httpGet(port: metricsPort, path: "/metrics")
        func gaugeMax(_ name: String) -> Int {
            metrics.split(separator: "\n").filter { $0.hasPrefix(name + "{") }
                .compactMap { Double($0.split(separator: " ").last!) }.map { Int($0) }.max() ?? -1
        }
        XCTAssertEqual(gaugeMax("postern_login_blocked_addresses"), 1, metrics)
        XCTAssertEqual(gaugeMax("postern_login_locked_accounts"), 1, metrics)
    }
}
