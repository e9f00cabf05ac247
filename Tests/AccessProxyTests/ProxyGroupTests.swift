import Foundation
import PosternHost
import PosternTestSupport
import XCTest

/// Two store nodes on one PostgreSQL database are one group behind the proxy: either serves the
/// group's accounts, so when the node a user hashes to is down the proxy logs them in at the
/// other, and with both down it answers `[UNAVAILABLE]` at once until one is back.
final class ProxyGroupTests: XCTestCase {
    func testALoginGoesToAnotherNodeOfTheGroup() throws {
        let password = ProxyMoveTests.password, masterPassword = ProxyMoveTests.masterPassword, master = ProxyMoveTests.master
        let db = try PostgresServer.shared.createDatabase("proxy_group")
        let section = """
            [plugin.store-postgres]
            host = "\(db.host)"
            port = \(db.port)
            user = "\(db.user)"
            database = "\(db.name)"
            password_iterations = 4096
            """
        var nodes: [ServerProcess] = [], dirs: [TempDir] = [], configs: [String] = [], ports: [Int] = []
        for i in 0..<2 {
            let dir = TempDir("group-node\(i + 1)")
            let port = freePort()
            let config = ProxyMoveTests.storeConfig(imap: port, lmtp: freePort(), store: section)
            nodes.append(try ServerProcess.start(dir, config))
            dirs.append(dir)
            configs.append(config)
            ports.append(port)
        }
        defer { for n in nodes { n.stop() } }
        // One database: the accounts are made once, through either node.
        for args in [["domain", "add", "a.example"], ["domain", "add", "proxy.internal"], ["user", "add", master, "--password", masterPassword],
                     ["user", "add", "alice@a.example", "--password", password]] {
            try ProxyInteropTests.admin(nodes[0], dirs[0], args)
        }
        let proxyDir = TempDir("group-proxy")
        let proxyPort = freePort()
        let proxy = try ServerProcess.start(proxyDir, """
            data_dir = "./var"
            workers = 1
            [plugin.store-sqlite]
            password_iterations = 4096
            [plugin.sasl-plain]
            [plugin.access-proxy]
            master_user = "\(master)"
            master_password = "\(masterPassword)"
            login_failure_delay = "10ms"
            connect_timeout = "2s"
            health_interval = "1h"
            hash_unlisted = false
            [[plugin.access-proxy.backend]]
            name = "node1"
            host = "127.0.0.1"
            port = \(ports[0])
            group = "pg1"
            [[plugin.access-proxy.backend]]
            name = "node2"
            host = "127.0.0.1"
            port = \(ports[1])
            group = "pg1"
            [plugin.access-proxy.users]
            "@a.example" = "pg1"
            [[listener]]
            name = "imap"
            address = "127.0.0.1"
            port = \(proxyPort)
            protocol = "imap-proxy"
            [listener.options]
            allow_plaintext_on_loopback = true
            """)
        defer { proxy.stop() }
        for args in [["domain", "add", "a.example"], ["user", "add", "alice@a.example", "--password", password]] {
            try ProxyInteropTests.admin(proxy, proxyDir, args)
        }
        func session(_ append: String?) throws -> [String: Any] {
            let program = """
                import imaplib, json, sys
                s = json.loads(sys.argv[1])
                out = {}
                m = imaplib.IMAP4("127.0.0.1", s["proxy"])
                try:
                    m.login("alice@a.example", s["password"])
                    if s["append"]:
                        m.append("INBOX", None, None, ("Subject: %s\\r\\n\\r\\nBody.\\r\\n" % s["append"]).encode())
                    m.select("INBOX")
                    out["subjects"] = [x[1].decode().strip() for x in m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1] if isinstance(x, tuple)]
                    m.logout()
                    out["login"] = "OK"
                except imaplib.IMAP4.error as e:
                    out["login"] = str(e)
                print(json.dumps(out))
                """
            let settings = String(decoding: try JSONSerialization.data(withJSONObject: ["proxy": proxyPort, "password": password,
                                                                                       "append": append as Any]), as: UTF8.self)
            let (status, stdout, stderr) = Build.runSeparately("/usr/bin/python3", ["-c", program, settings])
            guard status == 0, let out = try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any] else {
                throw SystemError.message("python failed (\(status)):\n\(stderr)\n\(stdout)")
            }
            return out
        }
        func lastBackend() -> String? {
            proxy.log.split(separator: "\n").last { $0.contains("proxied") }.flatMap { line in
                ["node1", "node2"].first { line.contains("backend=\($0)") }
            }
        }

        let first = try session("first")
        XCTAssertEqual(first["login"] as? String, "OK")
        let home = try XCTUnwrap(lastBackend(), proxy.log)
        let (down, other) = home == "node1" ? (0, 1) : (1, 0)
        nodes[down].stop()
        let moved = try session("second")
        XCTAssertEqual(moved["login"] as? String, "OK", "the other node of the group took the login")
        XCTAssertEqual(lastBackend(), other == 0 ? "node1" : "node2")
        XCTAssertEqual(moved["subjects"] as? [String], ["Subject: first", "Subject: second"], "the same mailbox on either node")
        XCTAssertTrue(proxy.log.contains("back end unavailable"), "the node that was down was tried and marked")

        // The node that was down first now goes first for the node that works: logged in there,
        // with no attempt at the one seen down.
        let attemptsBefore = proxy.log.components(separatedBy: "back end unavailable").count
        let again = try session(nil)
        XCTAssertEqual(again["login"] as? String, "OK")
        XCTAssertEqual(proxy.log.components(separatedBy: "back end unavailable").count, attemptsBefore, "the node seen down was not tried first")

        nodes[other].stop()
        let none = try session(nil)
        XCTAssertTrue((none["login"] as? String ?? "").contains("[UNAVAILABLE]"), "\(none)")

        // Back: the next login finds it (the nodes seen down are still tried, after the others).
        nodes[down] = try ServerProcess.start(dirs[down], configs[down])
        let back = try session(nil)
        XCTAssertEqual(back["login"] as? String, "OK", "a node of the group is back")
        XCTAssertEqual((back["subjects"] as? [String])?.count, 2)
    }
}
