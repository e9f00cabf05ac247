import Foundation
import PosternHost
import PosternTestSupport
import XCTest

/// The proxy in front of two Postern stores, all through the real binary: alice's mail lives on
/// store1 (the embedded SQLite store), bob's on store2 (store-postgres, on the PostgreSQL server
/// the tests start); Python's imaplib talks to the proxy only. The stores take the
/// proxy's master login (master_users) from loopback; the proxy authenticates clients against
/// its own account database. Servers start once for the class.
final class ProxyInteropTests: XCTestCase {
    struct Rig {
        var stores: [ServerProcess]
        var storeDirs: [TempDir]
        var storePorts: [Int]
        var storePOP3Ports: [Int]
        var proxy: ServerProcess
        var proxyPort: Int
        var proxyPOP3Port: Int
    }

    nonisolated(unsafe) static var rig: Result<Rig, Error>?
    static let password = "Proxy-Test-1"
    static let masterPassword = "Master-Secret-1"

    override class func setUp() {
        super.setUp()
        rig = Result { try start() }
    }

    override class func tearDown() {
        if case .success(let r)? = rig {
            r.proxy.stop()
            for s in r.stores { s.stop() }
        }
        rig = nil
        super.tearDown()
    }

    /// store2's database, made once for the class (a restart of store2 opens it again).
    nonisolated(unsafe) static var database: PostgresDatabase?

    /// Store 1 keeps its mail in SQLite, store 2 in PostgreSQL: the proxy's clients must see no
    /// difference.
    static func storeSection(_ index: Int) throws -> String {
        guard index == 1 else { return "[plugin.store-sqlite]\npassword_iterations = 4096" }
        let db = try database ?? PostgresServer.shared.createDatabase("proxy_store2")
        database = db
        return """
            [plugin.store-postgres]
            host = "\(db.host)"
            port = \(db.port)
            user = "\(db.user)"
            database = "\(db.name)"
            password_iterations = 4096
            """
    }

    static func storeConfig(_ port: Int, pop3: Int, store: String) -> String {
        """
        data_dir = "./var"
        workers = 1
        \(store)
        [plugin.sasl-plain]
        [plugin.imap]
        login_failure_delay = "10ms"
        [[listener]]
        name = "imap"
        address = "127.0.0.1"
        port = \(port)
        protocol = "imap"
        [listener.options]
        allow_plaintext_on_loopback = true
        master_users = ["proxy@proxy.internal"]
        [[listener]]
        name = "pop3"
        address = "127.0.0.1"
        port = \(pop3)
        protocol = "pop3"
        [listener.options]
        allow_plaintext_on_loopback = true
        master_users = ["proxy@proxy.internal"]
        """
    }

    static func admin(_ server: ServerProcess, _ dir: TempDir, _ args: [String]) throws {
        let (status, output) = Build.run(Build.postern, ["admin"] + args + ["-c", server.configFile], cwd: dir.path)
        guard status == 0 else { throw SystemError.message("postern admin \(args): \(output)") }
    }

    static func start() throws -> Rig {
        var stores: [ServerProcess] = [], dirs: [TempDir] = [], ports: [Int] = [], pop3Ports: [Int] = []
        for (i, users) in [["alice@a.example"], ["bob@b.example"]].enumerated() {
            let dir = TempDir("proxy-store\(i + 1)")
            let port = freePort(), pop3 = freePort()
            let server = try ServerProcess.start(dir, storeConfig(port, pop3: pop3, store: try storeSection(i)))
            for domain in ["a.example", "b.example", "proxy.internal"] { try admin(server, dir, ["domain", "add", domain]) }
            for user in users { try admin(server, dir, ["user", "add", user, "--password", password]) }
            try admin(server, dir, ["user", "add", "proxy@proxy.internal", "--password", masterPassword])
            stores.append(server)
            dirs.append(dir)
            ports.append(port)
            pop3Ports.append(pop3)
        }
        let dir = TempDir("proxy-front")
        let port = freePort(), pop3Port = freePort()
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
            connect_timeout = "2s"
            [[plugin.access-proxy.backend]]
            name = "store1"
            host = "127.0.0.1"
            port = \(ports[0])
            pop3_port = \(pop3Ports[0])
            [[plugin.access-proxy.backend]]
            name = "store2"
            host = "127.0.0.1"
            port = \(ports[1])
            pop3_port = \(pop3Ports[1])
            [plugin.access-proxy.users]
            "alice@a.example" = "store1"
            "@b.example" = "store2"
            [[listener]]
            name = "imap"
            address = "127.0.0.1"
            port = \(port)
            protocol = "imap-proxy"
            [listener.options]
            allow_plaintext_on_loopback = true
            [[listener]]
            name = "pop3"
            address = "127.0.0.1"
            port = \(pop3Port)
            protocol = "pop3-proxy"
            [listener.options]
            allow_plaintext_on_loopback = true
            """)
        // The proxy's own account database: who may log in (a site would point it at LDAP).
        for domain in ["a.example", "b.example"] { try admin(proxy, dir, ["domain", "add", domain]) }
        for user in ["alice@a.example", "bob@b.example"] { try admin(proxy, dir, ["user", "add", user, "--password", password]) }
        return Rig(stores: stores, storeDirs: dirs, storePorts: ports, storePOP3Ports: pop3Ports, proxy: proxy, proxyPort: port,
                   proxyPOP3Port: pop3Port)
    }

    func rig() throws -> Rig { try XCTUnwrap(Self.rig).get() }

    /// Runs Python with imaplib; `script` reads `s` (the settings) and sets `out`.
    func python(_ script: String, _ settings: [String: Any]) throws -> [String: Any] {
        let program = """
            import imaplib, json, sys, base64, time
            s = json.loads(sys.argv[1])
            out = {}
            \(script)
            print(json.dumps(out))
            """
        let json = String(decoding: try JSONSerialization.data(withJSONObject: settings), as: UTF8.self)
        let (status, stdout, stderr) = Build.runSeparately("/usr/bin/python3", ["-c", program, json])
        guard status == 0, let object = try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any] else {
            throw SystemError.message("python failed (\(status)):\n\(stderr)\n\(stdout)")
        }
        return object
    }

    func testUsersReachTheirOwnStoreThroughTheProxy() throws {
        let r = try rig()
        let out = try python("""
            def session(user, subject):
                m = imaplib.IMAP4("127.0.0.1", s["proxy"])
                pre = m.capabilities
                typ, data = m.login(user, s["password"])
                # The login's OK carried the store's capabilities (imaplib keeps response codes
                # among the untagged responses); CAPABILITY now asks the store itself.
                code = [c.decode() for c in m.untagged_responses.get("CAPABILITY", [])]
                typ, caps = m.capability()
                post = caps[0].decode().split()
                m.append("INBOX", None, None, ("From: %s\\r\\nSubject: %s\\r\\n\\r\\nThrough the proxy.\\r\\n" % (user, subject)).encode())
                m.select("INBOX")
                typ, hits = m.search(None, "SUBJECT", subject)
                n = hits[0].split()[-1]
                typ, msg = m.fetch(n, "(BODY[])")
                m.logout()
                return {"login": typ, "pre": list(pre), "post": list(post), "code": code, "body": msg[0][1].decode()}
            out["alice"] = session("alice@a.example", "via-proxy-alice")
            out["bob"] = session("bob@b.example", "via-proxy-bob")
            def direct(port, user):
                m = imaplib.IMAP4("127.0.0.1", port)
                try:
                    m.login(user, s["password"])
                except imaplib.IMAP4.error as e:
                    return "login refused"
                m.select("INBOX")
                typ, hits = m.search(None, "ALL")
                subjects = []
                for n in hits[0].split():
                    typ, msg = m.fetch(n, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
                    subjects.append(msg[0][1].decode().strip())
                m.logout()
                return subjects
            out["store1_alice"] = direct(s["store1"], "alice@a.example")
            out["store2_bob"] = direct(s["store2"], "bob@b.example")
            out["store2_alice"] = direct(s["store2"], "alice@a.example")
            """, ["proxy": r.proxyPort, "store1": r.storePorts[0], "store2": r.storePorts[1], "password": Self.password])
        let alice = try XCTUnwrap(out["alice"] as? [String: Any])
        XCTAssertEqual(alice["login"] as? String, "OK")
        XCTAssertTrue((alice["body"] as? String ?? "").contains("Subject: via-proxy-alice"), "\(alice)")
        XCTAssertTrue((alice["pre"] as? [String] ?? []).contains("AUTH=PLAIN"))
        // After login the client sees the store's capabilities, not the proxy's.
        let post = alice["post"] as? [String] ?? []
        XCTAssertTrue(post.contains("MOVE") && post.contains("QRESYNC"), "\(post)")
        XCTAssertTrue((alice["code"] as? [String] ?? []).contains { $0.contains("QRESYNC") }, "the login's OK named them: \(alice)")
        // (other tests of the class may have put more mail in the same mailboxes)
        let store1 = out["store1_alice"] as? [String] ?? [], store2 = out["store2_bob"] as? [String] ?? []
        XCTAssertTrue(store1.contains("Subject: via-proxy-alice") && !store1.contains("Subject: via-proxy-bob"), "\(store1)")
        XCTAssertTrue(store2.contains("Subject: via-proxy-bob") && !store2.contains("Subject: via-proxy-alice"), "\(store2)")
        XCTAssertEqual(out["store2_alice"] as? String, "login refused", "alice has no account on store2")
        // The store saw the proxy's master login for the user.
        XCTAssertTrue(r.stores[0].log.contains("master login"), r.stores[0].log.suffix(3000).description)
    }

    func testLoginsThatMustFail() throws {
        let r = try rig()
        let out = try python("""
            def attempt(f):
                m = imaplib.IMAP4("127.0.0.1", s["proxy"])
                try:
                    f(m)
                    return "OK"
                except imaplib.IMAP4.error as e:
                    return str(e)
                finally:
                    try: m.logout()
                    except Exception: pass
            out["wrong"] = attempt(lambda m: m.login("alice@a.example", "wrong"))
            out["nobody"] = attempt(lambda m: m.login("nobody@a.example", s["password"]))
            # Acting as someone else is not offered at the proxy.
            out["authzid"] = attempt(lambda m: m.authenticate("PLAIN", lambda _: ("bob@b.example\\0alice@a.example\\0" + s["password"]).encode()))
            out["plain"] = attempt(lambda m: m.authenticate("PLAIN", lambda _: ("\\0alice@a.example\\0" + s["password"]).encode()))
            # At a store: a user who is not a master user cannot act as another (here, the master).
            m = imaplib.IMAP4("127.0.0.1", s["store1"])
            try:
                m.authenticate("PLAIN", lambda _: ("proxy@proxy.internal\\0alice@a.example\\0" + s["password"]).encode())
                out["store_wrong_master"] = "OK"
            except imaplib.IMAP4.error as e:
                out["store_wrong_master"] = str(e)
            """, ["proxy": r.proxyPort, "store1": r.storePorts[0], "password": Self.password])
        XCTAssertTrue((out["wrong"] as? String ?? "").contains("AUTHENTICATIONFAILED"), "\(out)")
        XCTAssertTrue((out["nobody"] as? String ?? "").contains("AUTHENTICATIONFAILED"), "\(out)")
        XCTAssertTrue((out["authzid"] as? String ?? "").contains("AUTHORIZATIONFAILED"), "\(out)")
        XCTAssertEqual(out["plain"] as? String, "OK")
        XCTAssertTrue((out["store_wrong_master"] as? String ?? "").contains("AUTHORIZATIONFAILED"), "alice is no master user: \(out)")
    }

    /// POP3 through the proxy: each user reads their own store's INBOX (the proxy logged in there
    /// with the master credential and named the client with XCLIENT).
    func testPOP3ThroughTheProxyReadsTheUsersOwnStore() throws {
        let r = try rig()
        let out = try python("""
            import poplib
            m = imaplib.IMAP4("127.0.0.1", s["proxy"])
            m.login("bob@b.example", s["password"])
            m.append("INBOX", None, None, b"Subject: pop-bob\\r\\n\\r\\nFor POP3.\\r\\n")
            m.logout()
            def pop(port, user, password, auth=False):
                p = poplib.POP3("127.0.0.1", port)
                try:
                    if auth:
                        p._shortcmd("AUTH PLAIN " + base64.b64encode(("\\0" + user + "\\0" + password).encode()).decode())
                    else:
                        p.user(user)
                        p.pass_(password)
                except poplib.error_proto as e:
                    return {"error": str(e)}
                count, size = p.stat()
                subjects = []
                for i in range(1, count + 1):
                    lines = p.top(i, 0)[1]
                    subjects += [l.decode() for l in lines if l.lower().startswith(b"subject:")]
                caps = sorted(p.capa().keys())
                p.quit()
                return {"count": count, "subjects": subjects, "caps": caps}
            out["bob_proxy"] = pop(s["proxy_pop3"], "bob@b.example", s["password"])
            out["bob_proxy_auth"] = pop(s["proxy_pop3"], "bob@b.example", s["password"], auth=True)
            out["bob_direct"] = pop(s["store2_pop3"], "bob@b.example", s["password"])
            out["wrong"] = pop(s["proxy_pop3"], "bob@b.example", "wrong")
            """, ["proxy": r.proxyPort, "proxy_pop3": r.proxyPOP3Port, "store2_pop3": r.storePOP3Ports[1], "password": Self.password])
        let proxied = try XCTUnwrap(out["bob_proxy"] as? [String: Any]), direct = try XCTUnwrap(out["bob_direct"] as? [String: Any])
        XCTAssertTrue((proxied["subjects"] as? [String] ?? []).contains("Subject: pop-bob"), "\(out)")
        XCTAssertEqual(proxied["subjects"] as? [String], direct["subjects"] as? [String], "the same INBOX through the proxy")
        XCTAssertEqual((out["bob_proxy_auth"] as? [String: Any])?["count"] as? Int, proxied["count"] as? Int)
        XCTAssertTrue(((out["wrong"] as? [String: Any])?["error"] as? String ?? "").contains("[AUTH]"), "\(out)")
        XCTAssertTrue(r.stores[1].log.contains("master login"), "the store took the master login")
    }

    /// fetchmail through the proxy over IMAP and over POP3, keeping the mail: each fetches what the
    /// user's own store holds and nothing of another store's.
    func testFetchmailThroughTheProxy() throws {
        let r = try rig()
        _ = try python("""
            m = imaplib.IMAP4("127.0.0.1", s["proxy"])
            m.login("bob@b.example", s["password"])
            m.append("INBOX", None, None, b"Subject: fetch-bob\\r\\nMessage-ID: <fetch-bob@b.example>\\r\\n\\r\\nFor fetchmail.\\r\\n")
            m.logout()
            """, ["proxy": r.proxyPort, "password": Self.password])
        let fetchmail = try Build.tool("fetchmail")
        for (proto, port) in [("imap", r.proxyPort), ("pop3", r.proxyPOP3Port)] {
            let dir = TempDir("proxy-fetchmail-\(proto)")
            let out = dir.path + "/fetched.mbox"
            func run() -> (Int32, String) {
                let rc = dir.write("fetchmailrc", """
                    set no syslog
                    poll 127.0.0.1 port \(port) protocol \(proto) \(proto == "pop3" ? "uidl" : "")
                      user "bob@b.example" password "\(Self.password)" is "tester" here
                      sslproto '' keep fetchall
                      mda "/bin/sh -c 'cat >> \(out)'"
                    """)
                chmod(rc, 0o600)
                return Build.run(fetchmail, ["-f", rc, "-i", dir.path + "/fetchids", "--nodetach", "--nosyslog", "-v"], cwd: dir.path,
                                 environment: ["HOME": dir.path, "FETCHMAILHOME": dir.path, "PATH": "/usr/bin:/bin"])
            }
            let first = run()
            XCTAssertEqual(first.0, 0, "\(proto): \(first.1)")
            let fetched = ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").split(separator: "\n").filter { $0.hasPrefix("Subject: ") }
            XCTAssertTrue(fetched.contains("Subject: fetch-bob"), "\(proto): \(fetched)")
            XCTAssertFalse(fetched.contains { $0.contains("alice") }, "\(proto): only bob's store: \(fetched)")
        }
    }

    /// mbsync through the proxy and straight from the store fetch the same messages, and a
    /// second sync through the proxy has nothing to do.
    func testMbsyncThroughTheProxyFetchesWhatTheStoreHolds() throws {
        let r = try rig()
        _ = try python("""
            m = imaplib.IMAP4("127.0.0.1", s["proxy"])
            m.login("alice@a.example", s["password"])
            for i in range(3):
                m.append("INBOX", "(\\\\Seen)" if i == 1 else None, None, ("Subject: mbsync-%d\\r\\nMessage-ID: <mbsync-%d@a.example>\\r\\n\\r\\nBody %d.\\r\\n" % (i, i, i)).encode())
            m.logout()
            """, ["proxy": r.proxyPort, "password": Self.password])
        let dir = TempDir("proxy-mbsync")
        let mbsync = try Build.tool("mbsync")
        func sync(_ port: Int, _ name: String) throws -> (Int32, String, [String]) {
            let local = dir.path + "/" + name
            try FileManager.default.createDirectory(atPath: local, withIntermediateDirectories: true)
            let rc = dir.write("mbsyncrc-\(name)", """
                IMAPAccount acct
                Host 127.0.0.1
                Port \(port)
                User alice@a.example
                Pass \(Self.password)
                SSLType None
                AuthMechs PLAIN LOGIN

                IMAPStore remote
                Account acct

                MaildirStore local
                Path \(local)/
                Inbox \(local)/INBOX

                Channel sync
                Far :remote:
                Near :local:
                Patterns INBOX
                Create Near
                SyncState *
                """)
            let (status, output) = Build.run(mbsync, ["-c", rc, "sync"], cwd: dir.path, environment: ["HOME": dir.path])
            var ids: [String] = []
            for sub in ["cur", "new"] {
                for file in (try? FileManager.default.contentsOfDirectory(atPath: local + "/INBOX/" + sub)) ?? [] {
                    let text = (try? String(contentsOfFile: local + "/INBOX/" + sub + "/" + file, encoding: .utf8)) ?? ""
                    ids += text.split(whereSeparator: \.isNewline).filter { $0.lowercased().hasPrefix("message-id:") }.map { String($0.dropFirst(11)).trimmingCharacters(in: .whitespaces) }
                }
            }
            return (status, output, ids.sorted())
        }
        let proxied = try sync(r.proxyPort, "proxied")
        XCTAssertEqual(proxied.0, 0, proxied.1)
        let direct = try sync(r.storePorts[0], "direct")
        XCTAssertEqual(direct.0, 0, direct.1)
        XCTAssertTrue(proxied.2.contains("<mbsync-2@a.example>"), "\(proxied.2)")
        XCTAssertEqual(proxied.2, direct.2, "the same messages through the proxy as from the store")
        let again = try sync(r.proxyPort, "proxied")
        XCTAssertEqual(again.0, 0, again.1)
        XCTAssertEqual(again.2, proxied.2, "a second sync changes nothing")
    }

    /// A store that is down: its users hear [UNAVAILABLE], the other store's users go on, and
    /// they come back when it is up again.
    func testAStoreThatIsDownAffectsOnlyItsUsers() throws {
        let r = try rig()
        r.stores[1].stop()
        let script = """
            def login(user):
                m = imaplib.IMAP4("127.0.0.1", s["proxy"])
                try:
                    m.login(user, s["password"])
                    m.select("INBOX")
                    m.logout()
                    return "OK"
                except imaplib.IMAP4.error as e:
                    return str(e)
            out["alice"] = login("alice@a.example")
            out["bob"] = login("bob@b.example")
            """
        let down = try python(script, ["proxy": r.proxyPort, "password": Self.password])
        XCTAssertEqual(down["alice"] as? String, "OK")
        XCTAssertTrue((down["bob"] as? String ?? "").contains("[UNAVAILABLE]"), "\(down)")
        let restarted = try ServerProcess.start(r.storeDirs[1], Self.storeConfig(r.storePorts[1], pop3: r.storePOP3Ports[1],
                                                                                  store: try Self.storeSection(1)))
        if case .success(var rig)? = Self.rig {
            rig.stores[1] = restarted
            Self.rig = .success(rig)
        }
        let up = try python(script, ["proxy": r.proxyPort, "password": Self.password])
        XCTAssertEqual(up["bob"] as? String, "OK", "back once the store is")
    }
}
