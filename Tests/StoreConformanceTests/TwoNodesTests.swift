import Foundation
import PosternHost
import PosternTestSupport
import XCTest

/// Two store nodes (separate `postern serve` processes with their own data directories and
/// ports) on one PostgreSQL database, as a scale-out site runs them: what one node commits, the
/// other serves, and an IMAP IDLE on one is woken by a delivery through the other (LISTEN/NOTIFY).
final class TwoNodesTests: XCTestCase {
    static let password = "Two-Nodes-1"

    func nodeConfig(_ db: PostgresDatabase, imap: Int, lmtp: Int) -> String {
        """
        data_dir = "./var"
        workers = 1
        [plugins]
        load = ["sasl-plain"]
        [plugin.store-postgres]
        host = "\(db.host)"
        port = \(db.port)
        user = "\(db.user)"
        database = "\(db.name)"
        password_iterations = 4096
        [plugin.imap]
        login_failure_delay = "10ms"
        [[listener]]
        name = "imap"
        address = "127.0.0.1"
        port = \(imap)
        protocol = "imap"
        [listener.options]
        allow_plaintext_on_loopback = true
        [[listener]]
        name = "lmtp"
        address = "127.0.0.1"
        port = \(lmtp)
        protocol = "lmtp"
        """
    }

    func python(_ program: String, _ settings: [String: Any]) throws -> [String: Any] {
        let json = String(decoding: try JSONSerialization.data(withJSONObject: settings), as: UTF8.self)
        let (status, stdout, stderr) = Build.runSeparately("/usr/bin/python3", ["-c", program, json])
        guard status == 0, let object = try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any] else {
            throw SystemError.message("python failed (\(status)):\n\(stderr)\n\(stdout)")
        }
        return object
    }

    func testADeliveryThroughOneNodeWakesIdleOnTheOther() throws {
        let db = try PostgresServer.shared.createDatabase("two_nodes")
        let ports = (imap1: freePort(), lmtp1: freePort(), imap2: freePort(), lmtp2: freePort())
        let dir1 = TempDir("pg-node1"), dir2 = TempDir("pg-node2")
        let node1 = try ServerProcess.start(dir1, nodeConfig(db, imap: ports.imap1, lmtp: ports.lmtp1))
        defer { node1.stop() }
        let node2 = try ServerProcess.start(dir2, nodeConfig(db, imap: ports.imap2, lmtp: ports.lmtp2))
        defer { node2.stop() }
        // Accounts made through node 1's config; node 2 sees them at once (one database).
        for args in [["domain", "add", "example.org"], ["user", "add", "carol@example.org", "--password", Self.password]] {
            let (status, output) = Build.run(Build.postern, ["admin"] + args + ["-c", node1.configFile], cwd: dir1.path)
            XCTAssertEqual(status, 0, output)
        }

        let out = try python("""
            import imaplib, json, smtplib, sys, time
            s = json.loads(sys.argv[1])
            out = {}
            idle = imaplib.IMAP4("127.0.0.1", s["imap2"])
            idle.login("carol@example.org", s["password"])
            out["before"] = int(idle.select("INBOX")[1][0])
            tag = idle._new_tag().decode()
            idle.send(("%s IDLE\\r\\n" % tag).encode())
            out["continuation"] = idle.readline().decode().strip()
            lmtp = smtplib.LMTP("127.0.0.1", s["lmtp1"])
            start = time.time()
            out["lmtp"] = str(lmtp.sendmail("x@example.net", ["carol@example.org"],
                                            b"Subject: across nodes\\r\\nFrom: x@example.net\\r\\n\\r\\ndelivered through node 1\\r\\n"))
            lmtp.quit()
            idle.sock.settimeout(5)
            lines = []
            while not any(l.endswith("EXISTS") for l in lines):
                lines.append(idle.readline().decode().strip())
            out["woken_after"] = time.time() - start
            out["untagged"] = lines
            idle.send(b"DONE\\r\\n")
            while not idle.readline().decode().startswith(tag):
                pass
            typ, data = idle.uid("FETCH", "1:*", "(BODY.PEEK[TEXT])")
            out["body"] = data[0][1].decode()
            idle.uid("STORE", "1", "+FLAGS", "(\\\\Flagged)")
            # The flag set on node 2 is seen on node 1.
            other = imaplib.IMAP4("127.0.0.1", s["imap1"])
            other.login("carol@example.org", s["password"])
            other.select("INBOX", readonly=True)
            typ, data = other.uid("SEARCH", "FLAGGED")
            out["flagged_on_node1"] = data[0].decode()
            other.logout()
            idle.logout()
            print(json.dumps(out))
            """, ["imap1": ports.imap1, "imap2": ports.imap2, "lmtp1": ports.lmtp1, "password": Self.password])
        XCTAssertEqual(out["before"] as? Int, 0)
        XCTAssertEqual(out["continuation"] as? String, "+ idling")
        XCTAssertEqual(out["lmtp"] as? String, "{}", "LMTP accepted the recipient")
        XCTAssertEqual((out["untagged"] as? [String])?.last, "* 1 EXISTS")
        // Woken at all (the socket read gives up after 5 s); how fast is measured and printed,
        // not asserted (no timing assertions in tests).
        let woken = try XCTUnwrap(out["woken_after"] as? Double)
        XCTAssertEqual(out["body"] as? String, "delivered through node 1\r\n")
        XCTAssertEqual(out["flagged_on_node1"] as? String, "1")
        print("two nodes: IDLE on node 2 woken \(String(format: "%.3f", woken)) s after LMTP to node 1")
    }
}
