import Foundation
import PosternTestSupport
import PosternHost
import XCTest

/// The `smtp` plugin in the real `postern` binary with the real queue and store, driven by swaks
/// (a real SMTP client) and by raw Python sockets where swaks has no switch (BDAT, SMTPUTF8).
/// Remote mail stays in the queue (no SMTP client transport is loaded here, and retries are an
/// hour apart); local mail lands in the store.
struct SMTPScenario {
    /// `[plugin.X]` sections that provide services.queue and services.router.
    var queueSection = "[plugin.queue]\nmin_backoff = \"1h\"\nmax_backoff = \"1h\""

    let dir = TempDir("smtp-e2e")
    let mxPort = freePort(), submissionPort = freePort(), submissionsPort = freePort(), blockedPort = freePort(), idlePort = freePort()

    func makeCertificate() throws -> (cert: String, key: String) {
        let cert = dir.path + "/mx.crt", key = dir.path + "/mx.key"
        let (code, output) = Build.run(try Build.tool("openssl"), ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                                                                   "-out", cert, "-subj", "/CN=mx.test.example", "-days", "2"])
        guard code == 0 else { throw SystemError.message("openssl: \(output)") }
        return (cert, key)
    }

    func config() throws -> String {
        let (cert, key) = try makeCertificate()
        dir.write("access", "# test access table\nclient:127.0.0.1 REJECT blocked by the access table\n")
        let tls = "certificate = \"\(cert)\"\nkey = \"\(key)\""
        return """
            data_dir = "./var"
            workers = 1
            [plugin.store-sqlite]
            [plugin.sasl-plain]
            [plugin.sasl-login]
            \(queueSection)
            [plugin.table-file.tables.access]
            path = "\(dir.path)/access"
            [plugin.smtp]
            hostname = "mx.test.example"
            [[listener]]
            name = "mx"
            address = "127.0.0.1"
            port = \(mxPort)
            protocol = "smtp"
            tls = "starttls"
            \(tls)
            [listener.options]
            max_message_size = "64K"
            [[listener]]
            name = "submission"
            address = "127.0.0.1"
            port = \(submissionPort)
            protocol = "smtp"
            tls = "starttls"
            \(tls)
            [listener.options]
            mode = "submission"
            max_recipients = 3
            [[listener]]
            name = "submissions"
            address = "127.0.0.1"
            port = \(submissionsPort)
            protocol = "smtp"
            tls = "implicit"
            \(tls)
            [listener.options]
            mode = "submissions"
            [[listener]]
            name = "blocked"
            address = "127.0.0.1"
            port = \(blockedPort)
            protocol = "smtp"
            [listener.options]
            access_tables = ["access"]
            [[listener]]
            name = "idle"
            address = "127.0.0.1"
            port = \(idlePort)
            protocol = "smtp"
            [listener.options]
            timeout = "1s"
            """
    }

    func start() throws -> ServerProcess {
        let server = try ServerProcess.start(dir, try config())
        for args in [["domain", "add", "example.org"], ["user", "add", "alice@example.org", "--password", "alice-pw"]] {
            let (code, output) = Build.run(Build.postern, ["admin"] + args + ["-c", server.configFile], cwd: dir.path)
            guard code == 0 else { throw SystemError.message("postern admin \(args): \(output)") }
        }
        return server
    }

    /// Runs swaks; returns its transcript.
    func swaks(_ args: [String]) throws -> String {
        let (_, output) = Build.run(try Build.tool("swaks"), ["--server", "127.0.0.1", "--helo", "client.test.example",
                                                               "--timeout", "20"] + args)
        return output
    }

    /// What the queue holds: (summary as `postern queue list --json` gives it, message text).
    func queued() throws -> [(summary: [String: Any], message: String)] {
        let (code, output) = Build.run(Build.postern, ["queue", "list", "--json", "-c", dir.path + "/postern.toml"], cwd: dir.path)
        guard code == 0, let list = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [[String: Any]] else {
            throw SystemError.message("postern queue list: \(output)")
        }
        return list.map { entry in
            let id = entry["id"] as? String ?? ""
            let shown = Build.run(Build.postern, ["queue", "show", id, "-c", dir.path + "/postern.toml"], cwd: dir.path).output
            return (entry, shown)
        }
    }

    /// The messages in `user`'s INBOX, oldest first.
    func inbox(_ user: String) -> [String] {
        let listed = Build.run(Build.postern, ["admin", "message", "list", user, "-c", dir.path + "/postern.toml"], cwd: dir.path).output
        return listed.split(separator: "\n").compactMap { line in
            guard let uid = line.split(separator: "\t").first else { return nil }
            return Build.run(Build.postern, ["admin", "message", "get", user, String(uid), "-c", dir.path + "/postern.toml"], cwd: dir.path).output
        }
    }

    /// A raw client: sends each step, prints each reply's last line (JSON list).
    static let rawClient = """
        import json, socket, ssl, sys, time
        port, steps = int(sys.argv[1]), json.loads(sys.argv[2])
        s = socket.create_connection(("127.0.0.1", port)); s.settimeout(20)
        f = s.makefile("rb")
        def reply():
            while True:
                line = f.readline()
                if not line: return "<closed>"
                if line[3:4] != b"-": return line.decode("utf-8").rstrip("\\r\\n")
        out = [reply()]
        for step in steps:
            if step.get("tls"):
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                s = ctx.wrap_socket(s, server_hostname="mx.test.example")
                f = s.makefile("rb")
                out.append("TLS " + s.version())
                continue
            if step.get("sleep"):
                time.sleep(step["sleep"])
            s.sendall(step["send"].encode("utf-8"))
            for _ in range(step.get("replies", 1)):
                out.append(reply())
        print(json.dumps(out, ensure_ascii=False))
        """

    func raw(port: Int, _ steps: [[String: Any]], script name: String = "raw.py") throws -> [String] {
        let script = dir.write(name, Self.rawClient)
        let json = String(decoding: try JSONSerialization.data(withJSONObject: steps), as: UTF8.self)
        let (code, output) = Build.run(try Build.tool("python3"), [script, String(port), json])
        guard code == 0, let line = output.split(separator: "\n").last,
              let replies = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String] else {
            throw SystemError.message("raw client failed: \(output)")
        }
        return replies
    }

    // MARK: - Scenarios

    func submissionWithSTARTTLSAndAuth() throws {
        let server = try start()
        defer { server.stop() }
        for mechanism in ["PLAIN", "LOGIN"] {
            let out = try swaks(["--port", "\(submissionPort)", "--tls", "--auth", mechanism, "--auth-user", "alice@example.org",
                                 "--auth-password", "alice-pw", "--from", "alice@example.org", "--to", "friend@remote.example",
                                 "--h-Subject", "via \(mechanism)"])
            XCTAssertTrue(out.contains("220 2.0.0 ready to start TLS"), out)
            XCTAssertTrue(out.contains("235 2.7.0 authentication successful"), out)
            XCTAssertTrue(out.contains("250 2.1.5 recipient ok"), out)
            XCTAssertTrue(out.contains("250 2.0.0 ok: queued as "), out)
        }
        // Without AUTH the submission port refuses MAIL; with a wrong password AUTH fails.
        let anonymous = try swaks(["--port", "\(submissionPort)", "--tls", "--from", "alice@example.org", "--to", "alice@example.org"])
        XCTAssertTrue(anonymous.contains("530 5.7.0 authentication required"), anonymous)
        let wrong = try swaks(["--port", "\(submissionPort)", "--tls", "--auth", "PLAIN", "--auth-user", "alice@example.org",
                               "--auth-password", "nope", "--from", "alice@example.org", "--to", "alice@example.org"])
        XCTAssertTrue(wrong.contains("535 5.7.8 authentication credentials invalid"), wrong)
        // Plaintext AUTH before STARTTLS is not even offered.
        let plain = try raw(port: submissionPort, [["send": "EHLO x.example\r\n"], ["send": "AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAGFsaWNlLXB3\r\n"]])
        XCTAssertEqual(plain, ["220 mx.test.example ESMTP Postern", "250 STARTTLS",
                               "538 5.7.11 encryption required for requested authentication mechanism"])
        // Both relayed messages wait in the queue for the (absent) SMTP client transport.
        let messages = try queued()
        XCTAssertEqual(messages.count, 2)
        XCTAssertEqual(((messages.first?.summary["pending"] as? [[String: Any]])?.first?["address"]) as? String, "friend@remote.example")
        XCTAssertEqual(messages.first?.summary["sender"] as? String, "alice@example.org")
        XCTAssertTrue(messages.first?.message.hasPrefix("Received: from client.test.example (localhost [127.0.0.1])\r\n\tby mx.test.example (Postern) with ESMTPSA id ") == true
                      || messages.first?.message.hasPrefix("Received: from client.test.example (unknown [127.0.0.1])\r\n\tby mx.test.example (Postern) with ESMTPSA id ") == true,
                      messages.first?.message ?? "")
    }

    func implicitTLS() throws {
        let server = try start()
        defer { server.stop() }
        let out = try swaks(["--port", "\(submissionsPort)", "--tls-on-connect", "--auth", "PLAIN", "--auth-user", "alice@example.org",
                             "--auth-password", "alice-pw", "--from", "alice@example.org", "--to", "alice@example.org"])
        XCTAssertTrue(out.contains("220 mx.test.example ESMTP Postern"), out)
        XCTAssertTrue(out.contains("250 2.0.0 ok: queued as "), out)
        XCTAssertFalse(out.contains("STARTTLS"), out)
    }

    func pipeliningAndLimits() throws {
        let server = try start()
        defer { server.stop() }
        let pipelined = try swaks(["--port", "\(mxPort)", "--pipeline", "--from", "someone@remote.example",
                                   "--to", "alice@example.org,nobody@example.org"])
        XCTAssertTrue(pipelined.contains("PIPELINING"), pipelined)
        XCTAssertTrue(pipelined.contains("550 5.1.1 <nobody@example.org>: no such user here"), pipelined)
        XCTAssertTrue(pipelined.contains("250 2.0.0 ok: queued as "), pipelined)
        let tooMany = try swaks(["--port", "\(submissionPort)", "--tls", "--auth", "PLAIN", "--auth-user", "alice@example.org",
                                 "--auth-password", "alice-pw", "--from", "alice@example.org",
                                 "--to", "a@remote.example,b@remote.example,c@remote.example,d@remote.example"])
        XCTAssertTrue(tooMany.contains("452 4.5.3 too many recipients"), tooMany)
        XCTAssertTrue(tooMany.contains("250 2.0.0 ok: queued as "), tooMany)
        let big = String(repeating: "0123456789abcdef\r\n", count: 5000)
        let bodyFile = dir.write("big.txt", "Subject: big\r\n\r\n" + big)
        let oversize = try swaks(["--port", "\(mxPort)", "--from", "someone@remote.example", "--to", "alice@example.org", "--data", bodyFile])
        XCTAssertTrue(oversize.contains("552 5.3.4 message exceeds fixed limit of 65536 bytes"), oversize)
        let relay = try swaks(["--port", "\(mxPort)", "--from", "someone@remote.example", "--to", "friend@remote.example"])
        XCTAssertTrue(relay.contains("554 5.7.1 <friend@remote.example>: relay access denied"), relay)
        let trick = try swaks(["--port", "\(mxPort)", "--from", "someone@remote.example", "--to", "friend%remote.example@example.org"])
        XCTAssertTrue(trick.contains("553 5.7.1 percent-hack addresses are not accepted"), trick)
    }

    func bdatAndSMTPUTF8() throws {
        let server = try start()
        defer { server.stop() }
        let replies = try raw(port: mxPort, [
            ["send": "EHLO x.example\r\n"],
            ["send": "MAIL FROM:<jörg@remote.example> SMTPUTF8 BODY=BINARYMIME\r\nRCPT TO:<alice@example.org>\r\n", "replies": 2],
            // 20 octets: "ü" and "ß" are two each in UTF-8.
            ["send": "BDAT 20\r\nSubject: grüße\r\n\r\n"],
            ["send": "BDAT 6 LAST\r\nhallo\n"],
            ["send": "MAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.org>\r\nBDAT 0 LAST\r\nQUIT\r\n", "replies": 4],
        ])
        XCTAssertEqual(replies.count, 10)
        XCTAssertEqual(replies[1], "250 STARTTLS")
        XCTAssertEqual(Array(replies[2...4]), ["250 2.1.0 sender ok", "250 2.1.5 recipient ok", "250 2.0.0 20 octets received"])
        XCTAssertTrue(replies[5].hasPrefix("250 2.0.0 ok: queued as "), replies[5])
        XCTAssertEqual(Array(replies[6...7]), ["250 2.1.0 sender ok", "250 2.1.5 recipient ok"])
        XCTAssertTrue(replies[8].hasPrefix("250 2.0.0 ok: queued as "), replies[8])
        XCTAssertEqual(replies[9], "221 2.0.0 bye")
        // Delivered into alice's INBOX through the queue: the UTF-8 sender in Return-Path, the
        // BDAT content exactly as sent (a bare LF included).
        var inbox: [String] = []
        for _ in 0..<100 {
            inbox = self.inbox("alice@example.org")
            if inbox.count == 2 { break }
            usleep(100_000)
        }
        let utf8 = inbox.first { $0.contains("grüße") }
        XCTAssertTrue(utf8?.hasPrefix("Return-Path: <jörg@remote.example>\r\nReceived: from x.example") == true, utf8 ?? "\(inbox)")
        XCTAssertTrue(utf8?.contains("with UTF8SMTP id ") == true, utf8 ?? "")
        XCTAssertTrue(utf8?.hasSuffix("Subject: grüße\r\n\r\nhallo\n") == true, utf8 ?? "")
    }

    /// Plaintext pipelined after STARTTLS is dropped: the first reply under TLS answers the first
    /// command sent under TLS. Then the idle timer.
    func startTLSAndTimeout() throws {
        let server = try start()
        defer { server.stop() }
        let replies = try raw(port: mxPort, [
            ["send": "EHLO x.example\r\nSTARTTLS\r\nMAIL FROM:<injected@remote.example>\r\nRCPT TO:<alice@example.org>\r\n", "replies": 2],
            ["tls": true],
            ["send": "NOOP\r\n"],
            ["send": "MAIL FROM:<a@remote.example>\r\n"],
            ["send": "EHLO x.example\r\n"],
            ["send": "STARTTLS\r\n"],
        ])
        XCTAssertEqual(replies.count, 8, "\(replies)")
        XCTAssertEqual(Array(replies.prefix(3)), ["220 mx.test.example ESMTP Postern", "250 STARTTLS", "220 2.0.0 ready to start TLS"])
        XCTAssertTrue(replies[3].hasPrefix("TLS "), replies[3])
        XCTAssertEqual(Array(replies.suffix(4)), ["250 2.0.0 ok", "503 5.5.1 send HELO or EHLO first", replies[6], "503 5.5.1 TLS already active"])
        // Under TLS: AUTH with both plaintext mechanisms (in plugin load order), no STARTTLS.
        XCTAssertEqual(Set(replies[6].split(separator: " ")), ["250", "AUTH", "PLAIN", "LOGIN"])
        let idle = try raw(port: idlePort, [["send": "EHLO x.example\r\n"], ["send": "", "replies": 2]])
        XCTAssertEqual(idle, ["220 mx.test.example ESMTP Postern", "250 DSN", "421 4.4.2 mx.test.example timeout exceeded, closing connection", "<closed>"])
    }

    /// `postern ctl stop` while two sessions are open: the idle one hears 421 4.3.2 at once, the
    /// one inside DATA finishes its message (250) and then hears 421 4.3.2.
    func drainOnStop() throws {
        let server = try start()
        let stopper = Thread { usleep(1_500_000); server.stop() }
        // Each written by its own thread, read after both have left the group.
        final class Transcripts: @unchecked Sendable { var idle: [String] = [], busy: [String] = [] }
        let transcripts = Transcripts()
        let group = DispatchGroup()
        group.enter()
        Thread {
            transcripts.idle = (try? self.raw(port: self.mxPort, [["send": "EHLO x.example\r\n"], ["send": "", "replies": 2]])) ?? ["failed"]
            group.leave()
        }.start()
        group.enter()
        Thread {
            transcripts.busy = (try? self.raw(port: self.mxPort, [
                ["send": "EHLO x.example\r\nMAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n", "replies": 4],
                ["send": "Subject: during drain\r\n\r\nbody\r\n.\r\n", "sleep": 3, "replies": 3],
            ], script: "raw-busy.py")) ?? ["failed"]
            group.leave()
        }.start()
        stopper.start()
        group.wait()
        let idle = transcripts.idle, busy = transcripts.busy
        XCTAssertEqual(idle, ["220 mx.test.example ESMTP Postern", "250 STARTTLS",
                              "421 4.3.2 mx.test.example service shutting down, try again later", "<closed>"])
        XCTAssertEqual(busy.count, 8, "\(busy)")
        XCTAssertEqual(busy.suffix(3).dropFirst().map { $0 }, ["421 4.3.2 mx.test.example service shutting down, try again later", "<closed>"])
        XCTAssertTrue(busy[5].hasPrefix("250 2.0.0 ok: queued as "), "\(busy)")
    }

    func accessTableFromFile() throws {
        let server = try start()
        defer { server.stop() }
        let replies = try raw(port: blockedPort, [["send": "EHLO x.example\r\n"], ["send": "QUIT\r\n"]])
        XCTAssertEqual(replies, ["554 5.7.1 blocked by the access table", "503 5.7.1 no service here: blocked by the access table", "221 2.0.0 bye"])
    }
}

final class SMTPInteropTests: XCTestCase {
    var scenario: SMTPScenario { SMTPScenario() }

    func testSubmissionWithSTARTTLSAndAuthPlainAndLogin() throws { try scenario.submissionWithSTARTTLSAndAuth() }
    func testImplicitTLS() throws { try scenario.implicitTLS() }
    func testPipeliningLimitsAndRelayDenied() throws { try scenario.pipeliningAndLimits() }
    func testBDATAndSMTPUTF8() throws { try scenario.bdatAndSMTPUTF8() }
    func testAccessTableFromTableFilePlugin() throws { try scenario.accessTableFromFile() }
    func testSTARTTLSDropsPipelinedPlaintextAndIdleTimeout() throws { try scenario.startTLSAndTimeout() }
    func testDrainOnStop() throws { try scenario.drainOnStop() }

    /// Without a queue the listener refuses service, as LMTP does without a store.
    func testNoQueueMeansNoService() throws {
        let s = SMTPScenario(queueSection: "")
        let server = try ServerProcess.start(s.dir, try s.config())
        defer { server.stop() }
        let replies = try s.raw(port: s.mxPort, [])
        XCTAssertEqual(replies, ["421 4.3.0 mx.test.example no mail queue configured"])
        XCTAssertTrue(server.log.contains("no queue plugin loaded"), server.log)
    }
}
