import Foundation
import PosternTestSupport
import PosternHost
import XCTest

/// POP3 on the real binary, driven by Python's poplib (and raw sockets where poplib hides the
/// protocol): login, STAT/LIST/UIDL/RETR/TOP/DELE/RSET, the UPDATE state, one session per
/// maildrop, STLS, AUTH, delayed failures, UIDL values that match IMAP's UIDs.
final class POP3InteropTests: XCTestCase {
    func admin(_ server: ServerProcess, _ args: [String]) -> (Int32, String) {
        Build.run(Build.postern, ["admin"] + args + ["-c", server.configFile], cwd: server.dir.path)
    }

    func config(port: Int, tlsPort: Int, lmtpPort: Int, cert: (cert: String, key: String)) -> String {
        """
        data_dir = "./var"
        workers = 1
        [plugin.store-sqlite]
        [plugin.sasl-plain]
        [plugin.pop3]
        hostname = "pop.example.org"
        login_failure_delay = "500ms"
        max_login_failures = 5
        [[listener]]
        name = "pop3"
        address = "127.0.0.1"
        port = \(port)
        protocol = "pop3"
        tls = "starttls"
        certificate = "\(cert.cert)"
        key = "\(cert.key)"
        [listener.options]
        allow_plaintext_on_loopback = true
        [[listener]]
        name = "pop3s"
        address = "127.0.0.1"
        port = \(tlsPort)
        protocol = "pop3"
        tls = "implicit"
        certificate = "\(cert.cert)"
        key = "\(cert.key)"
        [[listener]]
        name = "lmtp"
        address = "127.0.0.1"
        port = \(lmtpPort)
        protocol = "lmtp"
        """
    }

    static let client = """
        import json, poplib, socket, ssl, sys, time
        port, tls_port, lmtp_port = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
        out = {}
        def lmtp(to, body):
            s = socket.create_connection(("127.0.0.1", lmtp_port)); f = s.makefile("rwb")
            def cmd(line):
                if line is not None:
                    f.write(line + b"\\r\\n"); f.flush()
                while True:
                    l = f.readline()
                    if l[3:4] == b" ": return l
            cmd(None); cmd(b"LHLO t"); cmd(b"MAIL FROM:<s@remote.example>"); cmd(b"RCPT TO:<" + to + b">"); cmd(b"DATA")
            f.write(body + b".\\r\\n"); f.flush(); r = cmd(None); cmd(b"QUIT"); return r.decode().strip()
        for i in range(1, 4):
            # Dot-stuffed for LMTP: stored as ".dot line".
            out.setdefault("lmtp", []).append(lmtp(b"alice@example.org", b"Subject: m%d\\r\\n\\r\\nline one\\r\\n..dot line\\r\\nline three\\r\\n" % i))

        p = poplib.POP3("127.0.0.1", port)
        out["welcome"] = p.getwelcome().decode()
        out["capa"] = sorted(p.capa().keys())
        out["user"] = p.user("alice@example.org").decode()
        out["pass"] = p.pass_("pw-alice").decode()
        out["stat"] = list(p.stat())
        out["list"] = [l.decode() for l in p.list()[1]]
        out["uidl"] = [l.decode() for l in p.uidl()[1]]
        out["uidl2"] = p.uidl(2).decode()
        out["retr1"] = [l.decode() for l in p.retr(1)[1]]
        out["top2"] = [l.decode() for l in p.top(2, 1)[1]]
        out["dele1"] = p.dele(1).decode()
        try:
            p.retr(1)
        except poplib.error_proto as e:
            out["retr_deleted"] = str(e)
        out["stat_after_dele"] = list(p.stat())
        out["rset"] = p.rset().decode()
        out["stat_after_rset"] = list(p.stat())
        out["dele3"] = p.dele(3).decode()
        # A second session on the same maildrop is refused while this one is open.
        q = poplib.POP3("127.0.0.1", port)
        q.user("alice@example.org")
        try:
            q.pass_("pw-alice")
            out["second"] = "accepted"
        except poplib.error_proto as e:
            out["second"] = str(e)
        q.quit()
        out["quit"] = p.quit().decode()

        # After UPDATE: message 3 gone, the others keep their UIDL.
        p = poplib.POP3("127.0.0.1", port)
        p.user("alice@example.org"); p.pass_("pw-alice")
        out["uidl_after"] = [l.decode() for l in p.uidl()[1]]
        # No QUIT: nothing is deleted.
        p.dele(1)
        p.sock.close()
        time.sleep(0.3)
        p = poplib.POP3("127.0.0.1", port)
        p.user("alice@example.org"); p.pass_("pw-alice")
        out["stat_after_drop"] = list(p.stat())
        p.quit()

        # STLS, then AUTH PLAIN with an initial response; implicit TLS.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
        p = poplib.POP3("127.0.0.1", port)
        out["stls"] = p.stls(ctx).decode()
        out["capa_tls"] = sorted(p.capa().keys())
        import base64
        out["auth"] = p._shortcmd("AUTH PLAIN " + base64.b64encode(b"\\0alice@example.org\\0pw-alice").decode()).decode()
        out["stat_tls"] = list(p.stat())
        p.quit()
        p = poplib.POP3_SSL("127.0.0.1", tls_port, context=ctx)
        out["implicit_capa"] = sorted(p.capa().keys())
        p.user("alice@example.org"); out["implicit_pass"] = p.pass_("pw-alice").decode()
        p.quit()

        # A wrong password waits, then says so; the connection stays usable.
        p = poplib.POP3("127.0.0.1", port)
        p.user("alice@example.org")
        t = time.time()
        try:
            p.pass_("wrong")
        except poplib.error_proto as e:
            out["wrong"] = str(e)
        out["wrong_delay"] = time.time() - t
        out["after_wrong"] = p._shortcmd("CAPA").decode()
        p.sock.close()
        # Five failures from this address within the window: the next login is refused at once.
        out["throttle"] = []
        for i in range(5):
            p = poplib.POP3("127.0.0.1", port)
            p.user("alice@example.org")
            try:
                p.pass_("wrong")
            except poplib.error_proto as e:
                out["throttle"].append(str(e))
            p.sock.close()
        print(json.dumps(out))
        """

    func testPoplibSessionUpdateStateLockingAndTLS() throws {
        let dir = TempDir("pop3")
        let cert = try makeCertificate(dir, "pop.example.org")
        let port = freePort(), tlsPort = freePort(), lmtpPort = freePort()
        let server = try ServerProcess.start(dir, config(port: port, tlsPort: tlsPort, lmtpPort: lmtpPort, cert: cert))
        defer { server.stop() }
        XCTAssertEqual(admin(server, ["domain", "add", "example.org"]).0, 0)
        XCTAssertEqual(admin(server, ["user", "add", "alice@example.org", "--password", "pw-alice"]).0, 0)
        let script = dir.write("pop3_client.py", Self.client)
        let (code, output) = Build.run(try Build.tool("python3"), [script, "\(port)", "\(tlsPort)", "\(lmtpPort)"])
        XCTAssertEqual(code, 0, output)
        guard let line = output.split(separator: "\n").last,
              let r = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            return XCTFail("client output: \(output)")
        }
        XCTAssertEqual(r["welcome"] as? String, "+OK pop.example.org POP3 Postern ready")
        XCTAssertEqual(r["capa"] as? [String], ["AUTH-RESP-CODE", "EXPIRE", "IMPLEMENTATION", "LOGIN-DELAY", "PIPELINING", "RESP-CODES",
                                                "SASL", "STLS", "TOP", "UIDL", "USER"])
        XCTAssertEqual(r["pass"] as? String, "+OK logged in, 3 messages")
        // Sizes as stored (the LMTP session stored CRLF text).
        let size = "Subject: m1\r\n\r\nline one\r\n.dot line\r\nline three\r\n".utf8.count
        XCTAssertEqual(r["stat"] as? [Int], [3, 3 * size])
        XCTAssertEqual(r["list"] as? [String], ["1 \(size)", "2 \(size)", "3 \(size)"])
        // UIDL = IMAP UID and UIDVALIDITY in hex: the same identity in both protocols.
        let validity = try XCTUnwrap(admin(server, ["mailbox", "list", "alice@example.org"]).1
            .split(separator: "\n").first { $0.hasPrefix("INBOX") })
        _ = validity
        let uidls = try XCTUnwrap(r["uidl"] as? [String])
        XCTAssertEqual(uidls.count, 3)
        for (i, u) in uidls.enumerated() {
            let parts = u.split(separator: " ")
            XCTAssertEqual(parts.first.map(String.init), "\(i + 1)")
            XCTAssertEqual(parts.last?.prefix(8).lowercased(), String(format: "%08x", i + 1), u)
            XCTAssertEqual(parts.last?.count, 16)
        }
        XCTAssertEqual(r["uidl2"] as? String, "+OK \(uidls[1])")
        XCTAssertEqual(r["retr1"] as? [String], ["Subject: m1", "", "line one", ".dot line", "line three"])
        XCTAssertEqual(r["top2"] as? [String], ["Subject: m2", "", "line one"])
        XCTAssertEqual(r["dele1"] as? String, "+OK message 1 deleted")
        XCTAssertEqual(r["retr_deleted"] as? String, "b'-ERR no such message'")
        XCTAssertEqual(r["stat_after_dele"] as? [Int], [2, 2 * size])
        XCTAssertEqual(r["stat_after_rset"] as? [Int], [3, 3 * size])
        XCTAssertEqual(r["second"] as? String, "b'-ERR [IN-USE] the maildrop is in use by another POP3 session'")
        XCTAssertEqual(r["quit"] as? String, "+OK pop.example.org POP3 bye (1 messages deleted)")
        XCTAssertEqual(r["uidl_after"] as? [String], [uidls[0], uidls[1]])
        XCTAssertEqual(r["stat_after_drop"] as? [Int], [2, 2 * size])
        XCTAssertEqual(r["stls"] as? String, "+OK begin TLS negotiation")
        XCTAssertEqual(r["capa_tls"] as? [String], ["AUTH-RESP-CODE", "EXPIRE", "IMPLEMENTATION", "LOGIN-DELAY", "PIPELINING", "RESP-CODES",
                                                    "SASL", "TOP", "UIDL", "USER"])
        XCTAssertEqual(r["auth"] as? String, "+OK logged in, 2 messages")
        XCTAssertEqual(r["stat_tls"] as? [Int], [2, 2 * size])
        XCTAssertFalse((r["implicit_capa"] as? [String] ?? ["STLS"]).contains("STLS"))
        XCTAssertEqual(r["implicit_pass"] as? String, "+OK logged in, 2 messages")
        XCTAssertEqual(r["wrong"] as? String, "b'-ERR [AUTH] authentication failed'")
        XCTAssertGreaterThanOrEqual(r["wrong_delay"] as? Double ?? 0, 0.45)
        XCTAssertEqual(r["after_wrong"] as? String, "+OK capability list follows")
        XCTAssertEqual(r["throttle"] as? [String], Array(repeating: "b'-ERR [AUTH] authentication failed'", count: 4)
                       + ["b'-ERR [SYS/TEMP] too many failed logins, try later'"])
        // Retrieved messages were marked \Seen at QUIT (message 2 was only read with TOP).
        let listed = admin(server, ["message", "list", "alice@example.org"]).1
        XCTAssertTrue(listed.hasPrefix("1\t\(size)\t\\Seen\t"), listed)
        XCTAssertTrue(listed.contains("\n2\t\(size)\t-\t"), listed)
    }

    /// Without TLS and not allowed on loopback: no USER, no plaintext SASL; bad input is answered
    /// and the server stays up.
    func testPlaintextRefusedAndMalformedInputAndThrottle() throws {
        let dir = TempDir("pop3-plain")
        let port = freePort()
        let server = try ServerProcess.start(dir, """
            data_dir = "./var"
            workers = 1
            [plugin.store-sqlite]
            [plugin.sasl-plain]
            [plugin.pop3]
            login_failure_delay = "50ms"
            max_login_failures = 3
            [[listener]]
            name = "pop3"
            address = "127.0.0.1"
            port = \(port)
            protocol = "pop3"
            [listener.options]
            max_line_length = 300
            max_errors = 1000
            """)
        defer { server.stop() }
        let c = try LineClient(port: port)
        XCTAssertTrue(try c.readLine().hasPrefix("+OK "))
        XCTAssertEqual(try c.command("USER alice@example.org"), "-ERR [AUTH] plaintext authentication disallowed without TLS")
        XCTAssertEqual(try c.command("AUTH PLAIN"), "-ERR [AUTH] mechanism PLAIN not available here")
        XCTAssertEqual(try c.command("STLS"), "-ERR STLS not available")
        XCTAssertEqual(try c.command("STAT"), "-ERR command not valid in this state")
        XCTAssertEqual(try c.command("RETR 1"), "-ERR command not valid in this state")
        XCTAssertEqual(try c.command("XYZZY"), "-ERR unknown command XYZZY")
        XCTAssertEqual(try c.command(String(repeating: "A", count: 400)), "-ERR line too long")
        XCTAssertEqual(try c.command("CAPA"), "+OK capability list follows")
        var caps: [String] = []
        while let l = try? c.readLine(), l != "." { caps.append(l) }
        XCTAssertFalse(caps.contains("USER"), "\(caps)")
        XCTAssertFalse(caps.contains { $0.hasPrefix("SASL") }, "\(caps)")
        XCTAssertEqual(try c.command("QUIT"), "+OK \(ProcessInfo.processInfo.hostName) POP3 bye")

        // 1,000 random lines: every one answered with -ERR (or +OK for CAPA/NOOP), then still alive.
        let d = try LineClient(port: port)
        _ = try d.readLine()
        var rng = SystemRandomNumberGenerator()
        // Not a bare AUTH: its reply is a list, which this line client would misread.
        let words = ["RETR", "TOP", "LIST", "UIDL", "DELE", "USER", "PASS", "APOP", "STAT", "\u{1}", "9", "*", "=", "  "]
        for _ in 0..<1000 {
            let line = (0..<Int.random(in: 1...4, using: &rng)).map { _ in words.randomElement(using: &rng)! }.joined(separator: " ")
            let reply = try d.command(line)
            XCTAssertTrue(reply.hasPrefix("-ERR") || reply.hasPrefix("+"), "\(line.debugDescription) -> \(reply)")
            if reply.hasPrefix("-ERR too many errors") { break }
        }
        let e = try LineClient(port: port)
        XCTAssertTrue(try e.readLine().hasPrefix("+OK "))
    }

    /// fetchmail (Debian package) over POP3: with UIDL and `keep` it fetches each message once
    /// across runs; with `no keep` it fetches the rest and deletes them from the server.
    func testFetchmailKeepAndNoKeep() throws {
        let dir = TempDir("pop3-fetchmail")
        let port = freePort(), lmtpPort = freePort()
        let server = try ServerProcess.start(dir, """
            data_dir = "./var"
            workers = 1
            [plugin.store-sqlite]
            [plugin.pop3]
            [[listener]]
            name = "pop3"
            address = "127.0.0.1"
            port = \(port)
            protocol = "pop3"
            [listener.options]
            allow_plaintext_on_loopback = true
            [[listener]]
            name = "lmtp"
            address = "127.0.0.1"
            port = \(lmtpPort)
            protocol = "lmtp"
            """)
        defer { server.stop() }
        XCTAssertEqual(admin(server, ["domain", "add", "example.org"]).0, 0)
        XCTAssertEqual(admin(server, ["user", "add", "alice@example.org", "--password", "pw-alice"]).0, 0)
        let deliver = dir.write("deliver.py", """
            import socket, sys
            s = socket.create_connection(("127.0.0.1", int(sys.argv[1]))); f = s.makefile("rwb")
            def cmd(line):
                if line is not None:
                    f.write(line + b"\\r\\n"); f.flush()
                while True:
                    l = f.readline()
                    if l[3:4] == b" ": return l
            cmd(None); cmd(b"LHLO t")
            for subject in sys.argv[2:]:
                cmd(b"MAIL FROM:<s@remote.example>"); cmd(b"RCPT TO:<alice@example.org>"); cmd(b"DATA")
                f.write(b"Subject: " + subject.encode() + b"\\r\\nMessage-ID: <" + subject.encode() + b"@t>\\r\\n\\r\\nbody\\r\\n.\\r\\n"); f.flush()
                assert cmd(None).startswith(b"250")
            cmd(b"QUIT")
            """)
        let python = try Build.tool("python3")
        XCTAssertEqual(Build.run(python, [deliver, "\(lmtpPort)", "one", "two", "three"]).status, 0)
        let fetchmail = try Build.tool("fetchmail")
        let out = dir.path + "/fetched.mbox"
        func run(keep: Bool) -> (Int32, String) {
            let rc = dir.write("fetchmailrc", """
                set no syslog
                poll 127.0.0.1 port \(port) protocol pop3 uidl
                  user "alice@example.org" password "pw-alice" is "tester" here
                  sslproto '' \(keep ? "keep" : "no keep") fetchall_off
                  mda "/bin/sh -c 'cat >> \(out)'"
                """.replacingOccurrences(of: " fetchall_off", with: ""))
            chmod(rc, 0o600)
            return Build.run(fetchmail, ["-f", rc, "-i", dir.path + "/fetchids", "--nodetach", "--nosyslog", "-v"], cwd: dir.path,
                             environment: ["HOME": dir.path, "FETCHMAILHOME": dir.path, "PATH": "/usr/bin:/bin"])
        }
        func fetched() -> [String] {
            ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").split(separator: "\n").filter { $0.hasPrefix("Subject: ") }.map { String($0.dropFirst(9)) }
        }
        var r = run(keep: true)
        XCTAssertEqual(r.0, 0, r.1)
        XCTAssertEqual(fetched(), ["one", "two", "three"])
        // Again: UIDL says nothing is new (fetchmail exits 1: no mail).
        r = run(keep: true)
        XCTAssertEqual(r.0, 1, r.1)
        XCTAssertEqual(fetched().count, 3)
        XCTAssertEqual(Build.run(python, [deliver, "\(lmtpPort)", "four"]).status, 0)
        r = run(keep: true)
        XCTAssertEqual(r.0, 0, r.1)
        XCTAssertEqual(fetched(), ["one", "two", "three", "four"])
        XCTAssertEqual(admin(server, ["message", "list", "alice@example.org"]).1.split(separator: "\n").count, 4)
        // no keep: the new one is fetched and deleted from the server; the ones kept before stay.
        XCTAssertEqual(Build.run(python, [deliver, "\(lmtpPort)", "five"]).status, 0)
        r = run(keep: false)
        XCTAssertEqual(r.0, 0, r.1)
        XCTAssertEqual(fetched(), ["one", "two", "three", "four", "five"])
        let left = admin(server, ["message", "list", "alice@example.org"]).1
        XCTAssertEqual(left.split(separator: "\n").map { $0.split(separator: "\t").last.map(String.init) ?? "" },
                       ["<one@t>", "<two@t>", "<three@t>", "<four@t>"], left)
    }
}
