import Foundation
import PosternHost
import PosternTestSupport
import XCTest

/// The real `postern` binary with the imap plugin, driven by Python's imaplib and raw sockets.
final class IMAPInteropTests: XCTestCase {
    /// The client flow of Scripts/imap_flow.py: every common command, IDLE woken from another
    /// connection, from LMTP and from `postern admin import mbox` in another process, STARTTLS,
    /// implicit TLS, AUTHENTICATE, a delayed failure.
    func testImaplibClientFlow() throws {
        let f = try IMAPServerFixture("imap-flow", pluginSettings: "login_failure_delay = \"1s\"")
        let user = "flow@example.org", password = "flow-password"
        try f.createAccounts([user], password: password)
        let mbox = f.dir.write("import.mbox", """
            From sender@example.net Mon Jan  2 15:04:05 2006
            From: sender@example.net
            Subject: imported one

            first imported

            From sender@example.net Mon Jan  2 15:04:06 2006
            From: sender@example.net
            Subject: imported two

            second imported

            """)
        let settings = try JSONSerialization.data(withJSONObject: [
            "user": user, "password": password, "plain": f.plainPort, "starttls": f.startTLSPort, "implicit": f.implicitPort,
            "lmtp": f.lmtpPort, "postern": Build.postern, "config": f.server.configFile, "cwd": f.dir.path, "mbox": mbox,
        ])
        let file = f.dir.write("settings.json", Array(settings))
        let out = try f.python("imap_flow.py", [file])
        print("imap_flow measurements: \(out)")
        // IDLE updates within one second, whoever made the change (another process included).
        for key in ["idle_other_connection", "idle_lmtp", "idle_admin_import", "idle_flags", "idle_expunge"] {
            let seconds = try XCTUnwrap(out[key] as? Double, key)
            XCTAssertLessThan(seconds, 1.0, "\(key): \(seconds) s")
        }
        let delay = try XCTUnwrap(out["failure_delay"] as? Double)
        XCTAssertGreaterThanOrEqual(delay, 1.0, "a failed LOGIN is answered after login_failure_delay")
        XCTAssertLessThan(delay, 5.0)
        XCTAssertFalse(f.server.log.contains("SIGILL") || f.server.log.contains("Fatal error"), f.server.log)
    }

    /// 1,000 seeded random commands, an unterminated literal, literals over the limits, 1,000
    /// nested parentheses, a 200 kB line and NUL bytes: BAD or NO each time, and another session
    /// answering NOOP promptly all along.
    func testMalformedInputIsRefusedWithoutHurtingOtherSessions() throws {
        let f = try IMAPServerFixture("imap-malformed", workers: 1,
                                      listenerOptions: "max_line_length = 65536\nmax_literal_size = \"1M\"\nmax_append_size = \"10M\"")
        try f.createAccounts(["fuzz@example.org"], password: "fuzz-password")
        let worker = try XCTUnwrap(f.server.log.split(separator: "\n").first { $0.contains("worker spawned") }?
            .split(separator: " ").first { $0.hasPrefix("pid=") }?.dropFirst(4))
        let out = try f.python("malformed.py", [String(f.plainPort), "fuzz@example.org", "fuzz-password", "20240601", String(worker)])
        print("malformed measurements: \(out)")
        let random = try XCTUnwrap(out["random"] as? [String: Int])
        XCTAssertEqual(random.values.reduce(0, +), 1000)
        XCTAssertGreaterThan(random["BAD"] ?? 0, 300, "most random commands are malformed")
        for latency in (out["noop_during_random"] as? [Double]) ?? [] { XCTAssertLessThan(latency, 1.0) }
        XCTAssertLessThan(try XCTUnwrap(out["noop_while_literal_unterminated"] as? Double), 1.0)
        // 300,000 pipelined commands (2.5 MB) with no answer read for 3 s: the worker stops reading
        // instead of buffering, and every answer arrives afterwards.
        XCTAssertEqual(out["flood_answered"] as? Int, 300_000)
        XCTAssertLessThan(try XCTUnwrap(out["flood_rss_growth_kib"] as? Int), 64 * 1024, "worker memory grew too much")
        XCTAssertLessThan(try XCTUnwrap(out["noop_during_flood"] as? Double), 1.0)
        let log = f.server.log
        XCTAssertFalse(log.contains("worker exited") || log.contains("signal"), "a worker died:\n\(log.suffix(3000))")
    }

    /// COMPRESS=DEFLATE with Python's zlib on the client side: a 1 MB APPEND and FETCH through it.
    func testCompressDeflate() throws {
        let f = try IMAPServerFixture("imap-compress", workers: 1)
        try f.createAccounts(["zip@example.org"], password: "zip-password")
        let out = try f.python("compress.py", [String(f.plainPort), "zip@example.org", "zip-password"])
        print("compress measurements: \(out)")
        let payload = try XCTUnwrap(out["payload_bytes"] as? Int)
        XCTAssertLessThan(try XCTUnwrap(out["wire_sent"] as? Int), payload / 4, "the APPENDs went compressed")
        XCTAssertLessThan(try XCTUnwrap(out["wire_received"] as? Int), payload / 4, "the FETCH answers came compressed")
    }

    /// A worker draining (reload) says BYE to a session between commands and to one in IDLE.
    func testReloadSaysByeToIdleSessions() throws {
        let f = try IMAPServerFixture("imap-drain", workers: 1)
        try f.createAccounts(["drain@example.org"], password: "drain-password")
        let c = try RawIMAPConnection(port: f.plainPort)
        _ = try c.read(until: LinePattern("* OK …"))
        try c.write(Array("a LOGIN drain@example.org drain-password\r\nb SELECT INBOX\r\nc IDLE\r\n".utf8))
        _ = try c.read(until: LinePattern("+ idling"))
        let response = try f.server.reload()
        XCTAssertTrue(response.ok, "\(response)")
        XCTAssertEqual(try c.read(until: LinePattern("* BYE …")).last, "* BYE Server shutting down.")
        // The new generation serves.
        let d = try RawIMAPConnection(port: f.plainPort)
        XCTAssertTrue(try d.line().hasPrefix("* OK [CAPABILITY IMAP4rev1 "))
    }

    /// The session's metrics on the host's /metrics.
    func testCommandsAndLoginsAreCounted() throws {
        let metricsPort = freePort()
        let dir = TempDir("imap-metrics")
        let port = freePort()
        let server = try ServerProcess.start(dir, """
            data_dir = "./var"
            [metrics]
            listen = "127.0.0.1:\(metricsPort)"
            [plugin.store-sqlite]
            password_iterations = 4096
            [plugin.imap]
            login_failure_delay = "0s"
            [[listener]]
            name = "imap"
            address = "127.0.0.1"
            port = \(port)
            protocol = "imap"
            [listener.options]
            allow_plaintext_on_loopback = true

            """)
        defer { server.stop() }
        _ = Build.run(Build.postern, ["admin", "domain", "add", "example.org", "-c", server.configFile], cwd: dir.path)
        _ = Build.run(Build.postern, ["admin", "user", "add", "m@example.org", "--password", "metrics-pw", "-c", server.configFile], cwd: dir.path)
        let c = try RawIMAPConnection(port: port)
        _ = try c.line()
        try c.write(Array("a LOGIN m@example.org wrong\r\nb LOGIN m@example.org metrics-pw\r\nc NOOP\r\n".utf8))
        _ = try c.read(until: LinePattern("c …"))
        let metrics = try httpGet(port: metricsPort, path: "/metrics")
        XCTAssertTrue(metrics.contains("postern_imap_logins_total{"), metrics)
        XCTAssertTrue(metrics.contains("result=\"failure\""), metrics)
        XCTAssertTrue(metrics.contains("command=\"NOOP\""), metrics)
    }
}
