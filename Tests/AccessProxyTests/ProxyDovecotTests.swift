import Foundation
import PosternHost
import PosternTestSupport
import XCTest

/// A Dovecot as one of the proxy's back ends beside a Postern store, as a site moving from
/// Dovecot to Postern runs it: carol's mail is on the Dovecot, alice's on Postern; the proxy logs
/// in to each with its master credential (on Dovecot, a master passdb).
final class ProxyDovecotTests: XCTestCase {
    func testADovecotBackEndBesideAPosternStore() throws {
        guard getuid() == 0 else { throw XCTSkip("Dovecot is started as root (it switches to the mail user itself)") }
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/dovecot") else {
            return XCTFail("/usr/sbin/dovecot is missing: scripts/install-deps.sh installs dovecot-imapd")
        }
        let password = "Dove-Test-1", masterPassword = "Dove-Master-1"
        let dovecot = try DovecotFixture(users: ["carol@c.example"], password: password, master: ("proxy@proxy.internal", masterPassword))
        defer { dovecot.stop() }
        let storeDir = TempDir("proxy-dovecot-store")
        let storePort = freePort()
        let store = try ServerProcess.start(storeDir, ProxyInteropTests.storeConfig(storePort, pop3: freePort(), store: try ProxyInteropTests.storeSection(0)))
        defer { store.stop() }
        for args in [["domain", "add", "a.example"], ["domain", "add", "proxy.internal"], ["user", "add", "alice@a.example", "--password", password],
                     ["user", "add", "proxy@proxy.internal", "--password", masterPassword]] {
            try ProxyInteropTests.admin(store, storeDir, args)
        }
        let dir = TempDir("proxy-dovecot-front")
        let port = freePort()
        let proxy = try ServerProcess.start(dir, """
            data_dir = "./var"
            workers = 1
            [plugin.store-sqlite]
            password_iterations = 4096
            [plugin.sasl-plain]
            [plugin.access-proxy]
            master_user = "proxy@proxy.internal"
            master_password = "\(masterPassword)"
            login_failure_delay = "10ms"
            hash_unlisted = false
            [[plugin.access-proxy.backend]]
            name = "postern"
            host = "127.0.0.1"
            port = \(storePort)
            [[plugin.access-proxy.backend]]
            name = "dovecot"
            host = "127.0.0.1"
            port = \(dovecot.port)
            [plugin.access-proxy.users]
            "@a.example" = "postern"
            "@c.example" = "dovecot"
            [[listener]]
            name = "imap"
            address = "127.0.0.1"
            port = \(port)
            protocol = "imap-proxy"
            [listener.options]
            allow_plaintext_on_loopback = true
            """)
        defer { proxy.stop() }
        for args in [["domain", "add", "a.example"], ["domain", "add", "c.example"], ["user", "add", "alice@a.example", "--password", password],
                     ["user", "add", "carol@c.example", "--password", password]] {
            try ProxyInteropTests.admin(proxy, dir, args)
        }
        let program = """
            import imaplib, json, sys
            s = json.loads(sys.argv[1])
            out = {}
            def through(user, subject):
                m = imaplib.IMAP4("127.0.0.1", s["proxy"])
                m.login(user, s["password"])
                typ, caps = m.capability()
                appended = m.append("INBOX", None, None, ("Subject: %s\\r\\n\\r\\nThrough the proxy.\\r\\n" % subject).encode())
                selected = m.select("INBOX")
                if selected[0] != "OK":
                    raise SystemExit("SELECT as %s: %s (APPEND: %s)" % (user, selected, appended))
                typ, hits = m.search(None, "SUBJECT", subject)
                m.logout()
                return {"caps": caps[0].decode(), "hits": len(hits[0].split())}
            out["carol"] = through("carol@c.example", "to-dovecot")
            out["alice"] = through("alice@a.example", "to-postern")
            m = imaplib.IMAP4("127.0.0.1", s["dovecot"])
            m.login("carol@c.example", s["password"])
            m.select("INBOX")
            typ, hits = m.search(None, "SUBJECT", "to-dovecot")
            out["on_dovecot"] = len(hits[0].split())
            m.logout()
            print(json.dumps(out))
            """
        let settings = String(decoding: try JSONSerialization.data(withJSONObject: ["proxy": port, "dovecot": dovecot.port, "password": password]), as: UTF8.self)
        let (status, stdout, stderr) = Build.runSeparately("/usr/bin/python3", ["-c", program, settings])
        XCTAssertEqual(status, 0, "\(stderr)\nproxy log:\n\(proxy.log.suffix(3000))\ndovecot log:\n\(dovecot.log.suffix(3000))")
        let out = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any], stdout)
        let carol = try XCTUnwrap(out["carol"] as? [String: Any])
        XCTAssertEqual(carol["hits"] as? Int, 1)
        XCTAssertTrue((carol["caps"] as? String ?? "").contains("IMAP4rev1"), "\(carol)")
        XCTAssertEqual(out["on_dovecot"] as? Int, 1, "the message is on the Dovecot")
        XCTAssertEqual((out["alice"] as? [String: Any])?["hits"] as? Int, 1)
        // Dovecot logged carol in by PLAIN: the proxy's master login, as carol.
        XCTAssertTrue(dovecot.log.contains("Login: user=<carol@c.example>, method=PLAIN"), dovecot.log.suffix(2000).description)
    }

    /// A site leaving Dovecot moves carol to a Postern store (PostgreSQL) behind the proxy: the
    /// move logs in to Dovecot with its master passdb, keeps Dovecot's UIDVALIDITY and UIDs, and
    /// switches her route; her mbsync then finds nothing to fetch again.
    func testMovingAnAccountFromDovecotToPostern() throws {
        guard getuid() == 0 else { throw XCTSkip("Dovecot is started as root (it switches to the mail user itself)") }
        let password = "Dove-Test-1", masterPassword = "Dove-Master-1", master = "proxy@proxy.internal"
        let dovecot = try DovecotFixture(users: ["carol@c.example"], password: password, master: (master, masterPassword))
        defer { dovecot.stop() }
        let db = try PostgresServer.shared.createDatabase("move_from_dovecot")
        let storeDir = TempDir("dovecot-move-store")
        let storePort = freePort()
        let store = try ServerProcess.start(storeDir, ProxyMoveTests.storeConfig(imap: storePort, lmtp: freePort(), store: """
            [plugin.store-postgres]
            host = "\(db.host)"
            port = \(db.port)
            user = "\(db.user)"
            database = "\(db.name)"
            password_iterations = 4096
            """).replacingOccurrences(of: "master_users = [\"\(ProxyMoveTests.master)\"]", with: "master_users = [\"\(master)\"]"))
        defer { store.stop() }
        for args in [["domain", "add", "proxy.internal"], ["user", "add", master, "--password", masterPassword]] {
            try ProxyInteropTests.admin(store, storeDir, args)
        }
        let dir = TempDir("dovecot-move-proxy")
        let routes = dir.write("routes", "carol@c.example dovecot\n")
        let port = freePort()
        let proxy = try ServerProcess.start(dir, """
            data_dir = "./var"
            workers = 1
            drain_timeout = "2s"
            [plugin.store-sqlite]
            password_iterations = 4096
            [plugin.sasl-plain]
            [plugin.table-file.tables.mailhost]
            path = "\(routes)"
            [plugin.access-proxy]
            master_user = "\(master)"
            master_password = "\(masterPassword)"
            login_failure_delay = "10ms"
            route_tables = ["mailhost"]
            hash_unlisted = false
            [[plugin.access-proxy.backend]]
            name = "postern"
            host = "127.0.0.1"
            port = \(storePort)
            [[plugin.access-proxy.backend]]
            name = "dovecot"
            host = "127.0.0.1"
            port = \(dovecot.port)
            [[listener]]
            name = "imap"
            address = "127.0.0.1"
            port = \(port)
            protocol = "imap-proxy"
            [listener.options]
            allow_plaintext_on_loopback = true
            """)
        defer { proxy.stop() }
        for args in [["domain", "add", "c.example"], ["user", "add", "carol@c.example", "--password", password]] {
            try ProxyInteropTests.admin(proxy, dir, args)
        }
        let populate = """
            import imaplib, json, sys
            s = json.loads(sys.argv[1])
            m = imaplib.IMAP4("127.0.0.1", s["proxy"])
            m.login("carol@c.example", s["password"])
            m.create("Work/2026")
            for i in range(6):
                m.append("INBOX", "(\\\\Seen)" if i % 2 else None, None, ("Subject: dove %d\\r\\nMessage-ID: <dove-%d@c.example>\\r\\n\\r\\nFrom Dovecot %d.\\r\\n" % (i, i, i)).encode())
            for i in range(2):
                m.append("Work/2026", "($Project)", None, ("Subject: work %d\\r\\nMessage-ID: <work-%d@c.example>\\r\\n\\r\\nPlan %d.\\r\\n" % (i, i, i)).encode())
            m.select("INBOX")
            m.uid("STORE", "2", "+FLAGS", "(\\\\Deleted)")
            m.expunge()
            print(json.dumps({b: sorted(m.status(b, "(MESSAGES UIDVALIDITY UIDNEXT)")[1][0].decode().split("(")[1].rstrip(")").split(" ")) for b in ("INBOX", "Work/2026")}, sort_keys=True))
            m.logout()
            """
        let settings = String(decoding: try JSONSerialization.data(withJSONObject: ["proxy": port, "password": password]), as: UTF8.self)
        let before = Build.runSeparately("/usr/bin/python3", ["-c", populate, settings])
        XCTAssertEqual(before.0, 0, before.2)
        let mbsyncDir = TempDir("dovecot-move-mbsync")
        let first = try ProxyMoveTests.mbsync(port: port, user: "carol@c.example", password: password, boxes: ["INBOX", "Work/2026"], mbsyncDir)
        XCTAssertEqual(first.status, 0, first.output)
        XCTAssertEqual(first.ids.count, 7, "5 in INBOX, 2 in Work/2026: \(first.ids)")

        let passwordFile = storeDir.write("master-password", masterPassword + "\n")
        let then = "printf 'carol@c.example postern\\n' > \(routes).new && mv \(routes).new \(routes) && \(Build.postern) ctl reload -c \(proxy.configFile) >/dev/null"
        let moved = Build.runSeparately(Build.postern, ["admin", "user", "move", "carol@c.example", "--from", "imap://127.0.0.1:\(dovecot.port)",
                                                        "--master-user", master, "--password-file", passwordFile, "--create",
                                                        "--then", then, "--settle", "3s", "-c", store.configFile])
        XCTAssertEqual(moved.0, 0, "\(moved.2)\n\(moved.1)")

        let status = """
            import imaplib, json, sys
            s = json.loads(sys.argv[1])
            m = imaplib.IMAP4("127.0.0.1", s["proxy"])
            m.login("carol@c.example", s["password"])
            print(json.dumps({b: sorted(m.status(b, "(MESSAGES UIDVALIDITY UIDNEXT)")[1][0].decode().split("(")[1].rstrip(")").split(" ")) for b in ("INBOX", "Work/2026")}, sort_keys=True))
            m.logout()
            """
        let after = Build.runSeparately("/usr/bin/python3", ["-c", status, settings])
        XCTAssertEqual(after.0, 0, after.2)
        XCTAssertEqual(after.1, before.1, "UIDVALIDITY, UIDNEXT and counts as Dovecot had them")
        XCTAssertTrue(store.log.contains("master login"), "carol's sessions now reach the Postern store")
        let second = try ProxyMoveTests.mbsync(port: port, user: "carol@c.example", password: password, boxes: ["INBOX", "Work/2026"], mbsyncDir)
        XCTAssertEqual(second.status, 0, second.output)
        XCTAssertFalse(second.output.contains("UIDVALIDITY"), second.output)
        XCTAssertEqual(second.ids, first.ids, "mbsync fetched nothing again")
    }
}
