import Foundation
import PosternHost
import PosternTestSupport
import XCTest

/// Three Postern nodes on loopback in one console: node1 is the console, node2 and node3 answer
/// on node API listeners (mutual TLS with certificates from `postern admin ca`). Mail goes
/// through each node; the console lists the nodes, passes queue calls on as the calling
/// administrator (a domain administrator still sees their domain only), and sums the reports;
/// node3 is stopped and shows down, the reports then sum the other two. The nodes start once for
/// the class.
final class AdminNodesTests: XCTestCase {
    struct Run {
        var nodes: [AdminRig]
        var up: [String: Any]
        var down: [String: Any]
    }

    nonisolated(unsafe) static var run: Result<Run, Error>?

    override class func setUp() {
        super.setUp()
        run = Result { try start() }
    }

    override class func tearDown() {
        if case .success(let r)? = run { for node in r.nodes { node.server.stop() } }
        run = nil
        super.tearDown()
    }

    static let password = "Node-Secret-1"

    static func start() throws -> Run {
        // The site's CA and certificates, made as an administrator would.
        let caDir = TempDir("admin-ca")
        let caConfig = caDir.write("ca.toml", "data_dir = \"./var\"\n[plugin.store-sqlite]\n")
        func ca(_ args: [String]) throws {
            let (status, output) = Build.run(Build.postern, ["admin", "ca"] + args + ["-c", caConfig], cwd: caDir.path)
            guard status == 0 else { throw SystemError.message("postern admin ca \(args): \(output)") }
        }
        try ca(["init", "--site", "test site"])
        try ca(["issue", "console", "--console"])
        for name in ["node2", "node3", "rogue"] { try ca(["issue", name, "--host", "127.0.0.1", "--host", "localhost"]) }
        let issued = caDir.path + "/var/admin/ca/issued/"
        let caFile = caDir.path + "/var/admin/ca/ca.pem"

        var nodes: [AdminRig] = []
        var nodeAPI: [String: Int] = [:]
        for name in ["node2", "node3"] {
            let port = freePort()
            nodeAPI[name] = port
            nodes.append(try AdminRig("admin-\(name)", adminSettings: "node_name = \"\(name)\"", listeners: """
                [[listener]]
                name = "node-api"
                address = "127.0.0.1"
                port = \(port)
                protocol = "admin"
                tls = "implicit"
                certificate = "\(issued)\(name).pem"
                key = "\(issued)\(name).key"
                client_certificates = "required"
                client_ca_file = "\(caFile)"
                [listener.options]
                node_api = true
                """))
        }
        let console = try AdminRig("admin-node1", adminSettings: """
            node_name = "node1"
            node_certificate = "\(issued)console.pem"
            node_key = "\(issued)console.key"
            node_ca = "\(caFile)"
            heartbeat_interval = "1s"
            node_timeout = "2s"
            [[plugin.admin.node]]
            name = "node2"
            url = "https://127.0.0.1:\(nodeAPI["node2"]!)"
            [[plugin.admin.node]]
            name = "node3"
            url = "https://localhost:\(nodeAPI["node3"]!)"
            """)
        nodes.insert(console, at: 0)
        let alice = "alice@a.example", bob = "bob@b.example"
        try console.populate(domains: ["a.example", "b.example"], accounts: [
            ("root@a.example", password, "site-admin"), ("boss@a.example", password, "domain-admin"), (alice, password, "user")])
        for node in nodes.dropFirst() {
            try node.populate(domains: ["a.example", "b.example"], accounts: [(alice, password, "user"), (bob, password, "user")])
        }
        let screenshots = ProcessInfo.processInfo.environment["POSTERN_SCREENSHOTS"] ?? console.dir.path + "/screenshots"
        try FileManager.default.createDirectory(atPath: screenshots, withIntermediateDirectories: true)
        let sitePrincipal = Data(#"{"name":"root@a.example","role":"site-admin","domains":[]}"#.utf8).base64EncodedString()
        var settings: [String: Any] = [
            "port": console.admin, "base": "http://localhost:\(console.admin)", "site": "root@a.example", "boss": "boss@a.example",
            "alice": alice, "bob": bob, "password": password, "ca": caFile, "screenshots": screenshots,
            "certs": ["console": issued + "console", "rogue": issued + "rogue"], "site_principal": sitePrincipal,
            "submission": ["node1": console.submission, "node2": nodes[1].submission, "node3": nodes[2].submission],
            "node_api": nodeAPI,
        ]
        let up = try console.script("admin_nodes.py", ["up"], settings: settings)
        nodes[2].server.stop()
        settings["stopped_at"] = Date().timeIntervalSince1970
        let down = try console.script("admin_nodes.py", ["down"], settings: settings)
        print("FIGURES admin nodes: node3 shown down \(down["seconds_to_down"] ?? "?") s after it stopped (heartbeat 1 s, timeout 2 s); "
              + "a call to it answered in \(down["queue_node3_seconds"] ?? "?") s")
        return Run(nodes: nodes, up: up, down: down)
    }

    func run() throws -> Run { try XCTUnwrap(Self.run).get() }

    func testTheConsoleListsItsNodesWithTheirStatus() throws {
        let up = try run().up
        let nodes = try XCTUnwrap(up["nodes"] as? [[String: Any]])
        XCTAssertEqual(nodes.map { $0["name"] as? String }, ["node1", "node2", "node3"])
        XCTAssertEqual(nodes.map { $0["local"] as? Bool }, [true, false, false])
        XCTAssertEqual(nodes.map { $0["up"] as? Bool }, [true, true, true])
        let node2Status = try XCTUnwrap(nodes[1]["status"] as? [String: Any])
        XCTAssertEqual(node2Status["node"] as? String, "node2", "the status came from node2 itself")
        XCTAssertEqual(node2Status["masterRunning"] as? Bool, true)
        // A domain administrator learns names and states, not addresses or sizes.
        let boss = try XCTUnwrap(up["boss_nodes"] as? [[String: Any]])
        XCTAssertEqual(boss.map { $0["name"] as? String }, ["node1", "node2", "node3"])
        XCTAssertTrue(boss.allSatisfy { $0["status"] == nil && $0["url"] == nil })
        XCTAssertEqual((up["node2_status"] as? [String: Any])?["node"] as? String, "node2")
    }

    func testReportsSumEveryNode() throws {
        let up = try run().up
        let report = try XCTUnwrap(up["report"] as? [String: Any])
        XCTAssertEqual((report["totals"] as? [String: Int])?["received"], 4, "one through node1 and node3, two through node2")
        let parts = try XCTUnwrap(report["nodes"] as? [[String: Any]])
        XCTAssertEqual(Set(parts.compactMap { $0["name"] as? String }), ["node1", "node2", "node3"])
        XCTAssertTrue(parts.allSatisfy { $0["included"] as? Bool == true })
        let listeners = try XCTUnwrap(report["listeners"] as? [String: [String: Int]])
        XCTAssertEqual(listeners["node2/submission"]?["received"], 2)
        XCTAssertEqual(listeners["node1/submission"]?["received"], 1)
        let senders = (report["topSenders"] as? [[String: Any]] ?? []).map { "\($0["name"] ?? "")=\($0["count"] ?? "")" }
        XCTAssertEqual(Set(senders), ["alice@a.example=3", "bob@b.example=1"])
        // One node asked for: that node's own report.
        XCTAssertEqual(((up["report_node2"] as? [String: Any])?["totals"] as? [String: Int])?["received"], 2)
        XCTAssertNil((up["report_node2"] as? [String: Any])?["nodes"])
        // The domain administrator's sum holds domain A's mail only, from every node.
        let boss = try XCTUnwrap(up["boss_report"] as? [String: Any])
        XCTAssertEqual((boss["totals"] as? [String: Int])?["received"], 3)
        XCTAssertEqual((boss["topSenders"] as? [[String: Any]])?.compactMap { $0["name"] as? String }, ["alice@a.example"])
    }

    func testQueueCallsGoToTheNodeForTheCallingAdministrator() throws {
        let up = try run().up
        let site = try XCTUnwrap(up["site_queue_node2"] as? [[String: Any]])
        XCTAssertEqual(Set(site.compactMap { $0["sender"] as? String }), ["alice@a.example", "bob@b.example"])
        let boss = try XCTUnwrap(up["boss_queue_node2"] as? [[String: Any]])
        XCTAssertEqual(boss.compactMap { $0["sender"] as? String }, ["alice@a.example"], "node2 applies the console's delegation")
        // Domain B's message on node2 is, for domain A's administrator, what does not exist.
        let bob = try XCTUnwrap(up["boss_bob_message"] as? [String: Any])
        let ghost = try XCTUnwrap(up["boss_ghost_message"] as? [String: Any])
        XCTAssertEqual(bob["status"] as? Int, 404)
        XCTAssertEqual(ghost["status"] as? Int, 404)
        XCTAssertEqual((bob["json"] as? [String: String])?["error"], "not-found")
        XCTAssertEqual(((bob["json"] as? [String: String])?["message"] ?? "").count, ((ghost["json"] as? [String: String])?["message"] ?? "").count,
                       "the same words, an id of the same length")
        // An action through the console happens on node2 and is in node2's audit log, by its author.
        XCTAssertEqual((up["boss_hold"] as? [String: Any])?["status"] as? Int, 200)
        XCTAssertEqual(((up["node2_after_hold"] as? [String: Any])?["entry"] as? [String: Any])?["queue"] as? String, "hold")
        let audit = try XCTUnwrap(up["node2_audit"] as? [[String: Any]])
        XCTAssertTrue(audit.contains { $0["action"] as? String == "queue.hold" && $0["actor"] as? String == "boss@a.example" }, "\(audit)")
        // The console's own queue is node1's alone.
        XCTAssertEqual((up["console_queue"] as? [[String: Any]])?.count, 1)
        XCTAssertEqual((up["unknown_node"] as? [String: Any])?["status"] as? Int, 404)
    }

    func testTheNodeAPIAnswersConsoleCertificatesOnly() throws {
        let up = try run().up
        let none = try XCTUnwrap(up["curl_no_certificate"] as? [String: Any])
        XCTAssertNotEqual(none["exit"] as? Int, 0, "no client certificate: the handshake fails (\(none))")
        XCTAssertEqual(none["http"] as? Int, 0)
        XCTAssertEqual((up["curl_node_certificate"] as? [String: Any])?["http"] as? Int, 403, "a node certificate may not call")
        XCTAssertEqual((up["curl_console_no_principal"] as? [String: Any])?["http"] as? Int, 400)
        let console = try XCTUnwrap(up["curl_console"] as? [String: Any])
        XCTAssertEqual(console["http"] as? Int, 200)
        XCTAssertTrue((console["body"] as? String ?? "").contains("\"node\":\"node2\""), "\(console)")
    }

    func testAStoppedNodeShowsDownAndTheReportsSumTheOthers() throws {
        let down = try run().down
        let node3 = try XCTUnwrap(down["node3"] as? [String: Any])
        XCTAssertEqual(node3["up"] as? Bool, false)
        XCTAssertNotNil(node3["error"] as? String)
        let report = try XCTUnwrap(down["report"] as? [String: Any])
        XCTAssertEqual((report["totals"] as? [String: Int])?["received"], 3, "node1's and node2's")
        let parts = try XCTUnwrap(report["nodes"] as? [[String: Any]])
        XCTAssertEqual(parts.first { $0["name"] as? String == "node3" }?["included"] as? Bool, false)
        let call = try XCTUnwrap(down["queue_node3"] as? [String: Any])
        XCTAssertEqual(call["status"] as? Int, 503)
        XCTAssertEqual((call["json"] as? [String: String])?["error"], "node-down")
        XCTAssertEqual(down["queue_node2"] as? Int, 200, "the other nodes answer as before")
        let browser = try XCTUnwrap(down["browser"] as? [String: Any])
        XCTAssertEqual(browser["states"] as? [String: String], ["node1": "up", "node2": "up", "node3": "down"])
        let text = try XCTUnwrap(browser["report_nodes"] as? String)
        XCTAssertTrue(text.contains("Not counted: node3"), text)
        XCTAssertTrue(FileManager.default.fileExists(atPath: browser["screenshot"] as? String ?? ""))
    }
}
