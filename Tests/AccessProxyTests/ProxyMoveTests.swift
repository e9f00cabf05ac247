import Foundation
import PosternHost
import PosternTestSupport
import XCTest

/// `postern admin user move` behind the proxy, as a site runs it: alice lives on store1 (SQLite),
/// her route is a line of a table-file table the proxy reads, and the move copies her to store2
/// (PostgreSQL), then its --then rewrites that line and reloads the proxy, whose old worker
/// drains (2 s) so her open sessions end and reconnect to store2.
final class ProxyMoveTests: XCTestCase {
    static let password = "Move-Test-1"
    static let masterPassword = "Move-Master-1"
    static let master = "proxy@proxy.internal"

    struct Rig {
        var stores: [ServerProcess]
        var storeDirs: [TempDir]
        var imapPorts: [Int]
        var lmtpPorts: [Int]
        var proxy: ServerProcess
        var proxyDir: TempDir
        var proxyPort: Int
        var routes: String
    }

    static func storeConfig(imap: Int, lmtp: Int, store: String) -> String {
        // root: `user move` runs with the store's user, and its --then rewrites the route file
        // this (root) test owns and reloads the proxy through its control socket.
        """
        data_dir = "./var"
        workers = 1
        user = "root"
        \(store)
        [plugin.sasl-plain]
        [plugin.imap]
        login_failure_delay = "10ms"
        [[listener]]
        name = "imap"
        address = "127.0.0.1"
        port = \(imap)
        protocol = "imap"
        [listener.options]
        allow_plaintext_on_loopback = true
        master_users = ["\(master)"]
        [[listener]]
        name = "lmtp"
        address = "127.0.0.1"
        port = \(lmtp)
        protocol = "lmtp"
        """
    }

    func startRig(_ name: String) throws -> Rig {
        var stores: [ServerProcess] = [], dirs: [TempDir] = [], imap: [Int] = [], lmtp: [Int] = []
        let db = try PostgresServer.shared.createDatabase("move_\(name)")
        let sections = ["[plugin.store-sqlite]\npassword_iterations = 4096", """
            [plugin.store-postgres]
            host = "\(db.host)"
            port = \(db.port)
            user = "\(db.user)"
            database = "\(db.name)"
            password_iterations = 4096
            """]
        for (i, section) in sections.enumerated() {
            let dir = TempDir("move-\(name)-store\(i + 1)")
            let ports = (freePort(), freePort())
            let server = try ServerProcess.start(dir, Self.storeConfig(imap: ports.0, lmtp: ports.1, store: section))
            for args in [["domain", "add", "a.example"], ["domain", "add", "proxy.internal"],
                         ["user", "add", Self.master, "--password", Self.masterPassword]] {
                try ProxyInteropTests.admin(server, dir, args)
            }
            stores.append(server)
            dirs.append(dir)
            imap.append(ports.0)
            lmtp.append(ports.1)
        }
        // alice starts on store1; store2 gets her account from the move (--create).
        try ProxyInteropTests.admin(stores[0], dirs[0], ["user", "add", "alice@a.example", "--password", Self.password])
        let proxyDir = TempDir("move-\(name)-proxy")
        let routes = proxyDir.write("routes", "alice@a.example store1\n")
        let proxyPort = freePort()
        let proxy = try ServerProcess.start(proxyDir, """
            data_dir = "./var"
            workers = 1
            drain_timeout = "2s"
            [plugin.store-sqlite]
            password_iterations = 4096
            [plugin.sasl-plain]
            [plugin.table-file.tables.mailhost]
            path = "\(routes)"
            [plugin.access-proxy]
            master_user = "\(Self.master)"
            master_password = "\(Self.masterPassword)"
            login_failure_delay = "10ms"
            route_tables = ["mailhost"]
            hash_unlisted = false
            [[plugin.access-proxy.backend]]
            name = "store1"
            host = "127.0.0.1"
            port = \(imap[0])
            [[plugin.access-proxy.backend]]
            name = "store2"
            host = "127.0.0.1"
            port = \(imap[1])
            [[listener]]
            name = "imap"
            address = "127.0.0.1"
            port = \(proxyPort)
            protocol = "imap-proxy"
            [listener.options]
            allow_plaintext_on_loopback = true
            """)
        for args in [["domain", "add", "a.example"], ["user", "add", "alice@a.example", "--password", Self.password]] {
            try ProxyInteropTests.admin(proxy, proxyDir, args)
        }
        return Rig(stores: stores, storeDirs: dirs, imapPorts: imap, lmtpPorts: lmtp, proxy: proxy, proxyDir: proxyDir,
                   proxyPort: proxyPort, routes: routes)
    }

    func stop(_ rig: Rig) {
        rig.proxy.stop()
        for s in rig.stores { s.stop() }
    }

    /// Moves alice from store `from` to store `to` (0 or 1), the route switched and the proxy
    /// reloaded by --then. Returns the rounds (JSON) and the command's output.
    func move(_ rig: Rig, from: Int, to: Int, extraThen: String = "", settle: String = "3s") throws -> (rounds: [[String: Any]], output: String) {
        let passwordFile = rig.storeDirs[to].write("master-password", Self.masterPassword + "\n")
        let then = "printf 'alice@a.example store\(to + 1)\\n' > \(rig.routes).new && mv \(rig.routes).new \(rig.routes) && "
            + "\(Build.postern) ctl reload -c \(rig.proxy.configFile) >/dev/null\(extraThen)"
        let (status, stdout, stderr) = Build.runSeparately(Build.postern, [
            "admin", "user", "move", "alice@a.example", "--from", "imap://127.0.0.1:\(rig.imapPorts[from])",
            "--master-user", Self.master, "--password-file", passwordFile, "--create", "--then", then, "--settle", settle, "--json",
            "-c", rig.stores[to].configFile], cwd: rig.storeDirs[to].path)
        guard status == 0, let rounds = try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [[String: Any]] else {
            throw SystemError.message("user move failed (\(status)):\n\(stderr)\n\(stdout)")
        }
        return (rounds, stderr)
    }

    func python(_ script: String, _ settings: [String: Any]) throws -> [String: Any] {
        let program = """
            import imaplib, json, sys, time, smtplib, os
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

    /// mbsync of alice's INBOX and Projects through the proxy into a Maildir.
    func mbsync(_ rig: Rig, _ dir: TempDir) throws -> (status: Int32, output: String, ids: [String]) {
        try Self.mbsync(port: rig.proxyPort, user: "alice@a.example", password: Self.password, boxes: ["INBOX", "Projects"], dir)
    }

    /// mbsync of `boxes` from an IMAP server into a Maildir under `dir`; returns its exit status,
    /// its output and the Message-IDs the Maildir holds.
    static func mbsync(port: Int, user: String, password: String, boxes: [String], _ dir: TempDir) throws -> (status: Int32, output: String, ids: [String]) {
        let local = dir.path + "/maildir"
        try FileManager.default.createDirectory(atPath: local, withIntermediateDirectories: true)
        let rc = dir.write("mbsyncrc", """
            IMAPAccount acct
            Host 127.0.0.1
            Port \(port)
            User \(user)
            Pass \(password)
            SSLType None
            AuthMechs PLAIN LOGIN

            IMAPStore remote
            Account acct

            MaildirStore local
            Path \(local)/
            Inbox \(local)/INBOX
            SubFolders Verbatim

            Channel sync
            Far :remote:
            Near :local:
            Patterns \(boxes.joined(separator: " "))
            Create Near
            SyncState *
            """)
        let (status, output) = Build.run(try Build.tool("mbsync"), ["-V", "-c", rc, "sync"], cwd: dir.path, environment: ["HOME": dir.path])
        var ids: [String] = []
        for box in boxes {
            for sub in ["cur", "new"] {
                for file in (try? FileManager.default.contentsOfDirectory(atPath: "\(local)/\(box)/\(sub)")) ?? [] {
                    let text = (try? String(contentsOfFile: "\(local)/\(box)/\(sub)/\(file)", encoding: .utf8)) ?? ""
                    ids += text.split(whereSeparator: \.isNewline).filter { $0.lowercased().hasPrefix("message-id:") }
                        .map { String($0.dropFirst(11)).trimmingCharacters(in: .whitespaces) }
                }
            }
        }
        return (status, output, ids.sorted())
    }

    func testMovedAccountKeepsItsUIDsAndMovesBack() throws {
        let rig = try startRig("uids")
        defer { stop(rig) }
        let before = try python("""
            lmtp = smtplib.LMTP("127.0.0.1", s["lmtp1"])
            for i in range(12):
                lmtp.sendmail("x@example.net", ["alice@a.example"], ("Subject: inbox %d\\r\\nMessage-ID: <in-%d@a.example>\\r\\n\\r\\nBody %d.\\r\\n" % (i, i, i)).encode())
            lmtp.quit()
            m = imaplib.IMAP4("127.0.0.1", s["proxy"])
            m.login("alice@a.example", s["password"])
            m.create("Projects")
            for i in range(3):
                m.append("Projects", "(\\\\Seen $Work)", None, ("Subject: project %d\\r\\nMessage-ID: <p-%d@a.example>\\r\\n\\r\\nPlan %d.\\r\\n" % (i, i, i)).encode())
            m.select("INBOX")
            m.uid("STORE", "2,5", "+FLAGS", "(\\\\Flagged)")
            m.uid("STORE", "3", "+FLAGS", "(\\\\Deleted)")
            m.expunge()
            out["status"] = [m.status(b, "(MESSAGES UIDVALIDITY UIDNEXT)")[1][0].decode() for b in ("INBOX", "Projects")]
            out["flagged"] = m.uid("SEARCH", "FLAGGED")[1][0].decode()
            m.logout()
            """, ["lmtp1": rig.lmtpPorts[0], "proxy": rig.proxyPort, "password": Self.password])
        let dir = TempDir("move-mbsync")
        let first = try mbsync(rig, dir)
        XCTAssertEqual(first.status, 0, first.output)
        XCTAssertEqual(first.ids.count, 14, "11 in INBOX (one expunged) and 3 in Projects: \(first.ids)")

        let moved = try move(rig, from: 0, to: 1)
        XCTAssertEqual(moved.rounds.first?["added"] as? Int, 14, "\(moved.rounds)")
        XCTAssertEqual(moved.rounds.last?["added"] as? Int, 0, "the last round found nothing new")
        XCTAssertTrue(try String(contentsOfFile: rig.routes, encoding: .utf8).contains("store2"))

        let after = try python("""
            m = imaplib.IMAP4("127.0.0.1", s["proxy"])
            m.login("alice@a.example", s["password"])
            out["status"] = [m.status(b, "(MESSAGES UIDVALIDITY UIDNEXT)")[1][0].decode() for b in ("INBOX", "Projects")]
            m.select("INBOX")
            out["flagged"] = m.uid("SEARCH", "FLAGGED")[1][0].decode()
            m.select("Projects")
            out["keyword"] = m.uid("SEARCH", "KEYWORD", "$Work")[1][0].decode()
            m.logout()
            """, ["proxy": rig.proxyPort, "password": Self.password])
        XCTAssertEqual(after["status"] as? [String], before["status"] as? [String], "UIDVALIDITY, UIDNEXT and counts as on store1")
        XCTAssertEqual(after["flagged"] as? String, "2 5")
        XCTAssertEqual(after["keyword"] as? String, "1 2 3")
        // Only the proxy logs in to store2 with the master credential (the move read store1).
        XCTAssertTrue(rig.stores[1].log.contains("master login"), "alice's sessions now reach store2")

        let second = try mbsync(rig, dir)
        XCTAssertEqual(second.status, 0, second.output)
        XCTAssertEqual(second.ids, first.ids, "nothing fetched again, nothing lost")
        // A changed UIDVALIDITY would make mbsync stop with an error (and fetch every message again).
        XCTAssertFalse(second.output.contains("UIDVALIDITY"), second.output)

        // A rollback is the same move back: store1 still has her mail, so only what changed on
        // store2 meanwhile travels.
        _ = try python("""
            lmtp = smtplib.LMTP("127.0.0.1", s["lmtp2"])
            lmtp.sendmail("x@example.net", ["alice@a.example"], b"Subject: on store2\\r\\nMessage-ID: <s2@a.example>\\r\\n\\r\\nNew.\\r\\n")
            lmtp.quit()
            """, ["lmtp2": rig.lmtpPorts[1]])
        let back = try move(rig, from: 1, to: 0)
        XCTAssertEqual(back.rounds.first?["added"] as? Int, 1, "only the message delivered on store2 went back: \(back.rounds)")
        let third = try mbsync(rig, dir)
        XCTAssertEqual(third.status, 0, third.output)
        XCTAssertEqual(third.ids, (first.ids + ["<s2@a.example>"]).sorted())
    }

    /// The move while mail keeps arriving and a client sits in IDLE through the proxy: every
    /// message delivered (to store1 before the switch, to store2 after) is in alice's INBOX once,
    /// and the IDLE client, cut off when the proxy's old worker drains, reconnects to store2, finds
    /// the same UIDVALIDITY and goes on hearing new mail.
    func testMoveDuringDeliveriesAndIdle() throws {
        let rig = try startRig("live")
        defer { stop(rig) }
        let switched = rig.proxyDir.path + "/switched"
        let passwordFile = rig.storeDirs[1].write("master-password", Self.masterPassword + "\n")
        let then = "printf 'alice@a.example store2\\n' > \(rig.routes).new && mv \(rig.routes).new \(rig.routes) && touch \(switched) && "
            + "\(Build.postern) ctl reload -c \(rig.proxy.configFile) >/dev/null"
        let command = [Build.postern, "admin", "user", "move", "alice@a.example", "--from", "imap://127.0.0.1:\(rig.imapPorts[0])",
                       "--master-user", Self.master, "--password-file", passwordFile, "--create", "--then", then, "--settle", "3s",
                       "--json", "-c", rig.stores[1].configFile]
        let out = try python("""
            import subprocess, threading, socket, select
            N = 60
            done = threading.Event()
            idle = {"validities": [], "connections": 0, "exists": 0, "errors": []}
            idling = threading.Event()
            def idler():
                while not done.is_set():
                    try:
                        m = imaplib.IMAP4("127.0.0.1", s["proxy"])
                        m.login("alice@a.example", s["password"])
                        typ, data = m.select("INBOX")
                        idle["connections"] += 1
                        idle["validities"].append(int(m.untagged_responses["UIDVALIDITY"][0]))
                        idle["exists"] = max(idle["exists"], int(data[0]))
                        tag = m._new_tag().decode()
                        m.send(("%s IDLE\\r\\n" % tag).encode())
                        m.readline()
                        idling.set()
                        # Raw reads from here (imaplib's buffered reader breaks after a timeout).
                        pending = b""
                        closed = False
                        while not done.is_set() and not closed:
                            ready, _, _ = select.select([m.sock], [], [], 0.3)
                            if not ready:
                                continue
                            chunk = m.sock.recv(65536)
                            if not chunk:
                                closed = True   # the proxy's old worker ended the session
                            pending += chunk
                            while b"\\r\\n" in pending:
                                line, pending = pending.split(b"\\r\\n", 1)
                                if line.endswith(b"EXISTS"):
                                    idle["exists"] = max(idle["exists"], int(line.split()[1]))
                        m.sock.close()
                    except Exception as e:
                        idle["errors"].append(repr(e))
                        time.sleep(0.2)
            t = threading.Thread(target=idler)
            t.start()
            idling.wait(10)
            delivered = []
            def deliver():
                for i in range(N):
                    port = s["lmtp2"] if os.path.exists(s["switched"]) else s["lmtp1"]
                    l = smtplib.LMTP("127.0.0.1", port)
                    l.sendmail("x@example.net", ["alice@a.example"], ("Subject: live %d\\r\\nMessage-ID: <live-%d@a.example>\\r\\n\\r\\nBody %d.\\r\\n" % (i, i, i)).encode())
                    l.quit()
                    delivered.append(port == s["lmtp2"])
                    time.sleep(0.05)
            d = threading.Thread(target=deliver)
            d.start()
            time.sleep(0.5)
            move = subprocess.run(s["move"], capture_output=True, text=True)
            out["move_status"] = move.returncode
            out["move_output"] = move.stderr
            out["rounds"] = json.loads(move.stdout) if move.returncode == 0 else []
            d.join()
            out["to_store2"] = sum(1 for x in delivered if x)
            # One more after everything: the IDLE session (now on store2) must hear it.
            l = smtplib.LMTP("127.0.0.1", s["lmtp2"])
            l.sendmail("x@example.net", ["alice@a.example"], b"Subject: last\\r\\nMessage-ID: <live-last@a.example>\\r\\n\\r\\nLast.\\r\\n")
            l.quit()
            deadline = time.time() + 10
            while idle["exists"] < N + 1 and time.time() < deadline:
                time.sleep(0.1)
            done.set()
            t.join()
            out["idle"] = idle
            m = imaplib.IMAP4("127.0.0.1", s["proxy"])
            m.login("alice@a.example", s["password"])
            m.select("INBOX", readonly=True)
            typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
            out["ids"] = sorted(x[1].decode().split(":", 1)[1].strip() for x in data if isinstance(x, tuple))
            m.logout()
            """, ["proxy": rig.proxyPort, "password": Self.password, "lmtp1": rig.lmtpPorts[0], "lmtp2": rig.lmtpPorts[1],
                  "switched": switched, "move": command])
        XCTAssertEqual(out["move_status"] as? Int, 0, out["move_output"] as? String ?? "")
        let ids = try XCTUnwrap(out["ids"] as? [String])
        let expected = ((0..<60).map { "<live-\($0)@a.example>" } + ["<live-last@a.example>"]).sorted()
        XCTAssertEqual(ids, expected, "every delivered message once, none lost, none twice")
        let toStore2 = try XCTUnwrap(out["to_store2"] as? Int)
        XCTAssertGreaterThan(toStore2, 0, "some deliveries came after the switch")
        XCTAssertLessThan(toStore2, 60, "some came before it")
        let idle = try XCTUnwrap(out["idle"] as? [String: Any])
        let validities = try XCTUnwrap(idle["validities"] as? [Int])
        XCTAssertGreaterThanOrEqual(validities.count, 2, "the IDLE client was cut off and reconnected: \(idle)")
        XCTAssertEqual(Set(validities).count, 1, "the same UIDVALIDITY on store2 as on store1: \(validities)")
        XCTAssertEqual(idle["exists"] as? Int, 61, "the reconnected IDLE heard the last delivery: \(idle)")
        print("move during deliveries: \(60 - toStore2) delivered to store1, \(toStore2) to store2; rounds: \(out["rounds"] ?? "")")
    }
}
