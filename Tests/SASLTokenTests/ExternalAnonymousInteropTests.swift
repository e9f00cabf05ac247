import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest

/// EXTERNAL with TLS client certificates and ANONYMOUS through the real binary: Python's
/// imaplib, smtplib and poplib with certificates from a test CA, and Cyrus imtest (`-m
/// EXTERNAL -t certfile`, `-m ANONYMOUS`). Unmapped, suspended and untrusted certificates are
/// refused; the anonymous IMAP session is read-only; SMTP neither offers nor accepts ANONYMOUS.
final class ExternalAnonymousInteropTests: XCTestCase {
    static var fixture: TokenServerFixture?
    static var startError: Error?

    override class func setUp() {
        super.setUp()
        do { fixture = try TokenServerFixture("external-anonymous-interop") } catch { startError = error }
    }

    override class func tearDown() {
        fixture?.stop()
        fixture = nil
        super.tearDown()
    }

    var f: TokenServerFixture {
        get throws {
            guard let f = Self.fixture else { throw Self.startError ?? SystemError.message("server not started") }
            return f
        }
    }

    static let externalClient = #"""
        import imaplib, json, poplib, smtplib, ssl, sys
        imaps, pop3s, submissions, ca = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
        certs = json.loads(sys.argv[5])
        out = {}
        def context(name):
            ctx = ssl.create_default_context(cafile=ca)
            if name:
                ctx.load_cert_chain(certs[name][0], certs[name][1])
            return ctx
        def imap_external(name, authzid=b""):
            try:
                m = imaplib.IMAP4_SSL("127.0.0.1", imaps, ssl_context=context(name))
            except (ssl.SSLError, OSError, imaplib.IMAP4.abort) as e:
                return "handshake refused"
            try:
                caps = m.capabilities
                typ, data = m.authenticate("EXTERNAL", lambda _: authzid)
                typ, data = m.select("INBOX")
                m.logout()
                return "OK " + str("AUTH=EXTERNAL" in caps)
            except imaplib.IMAP4.error as e:
                return "NO " + str(e)
            except (ssl.SSLError, OSError, imaplib.IMAP4.abort) as e:
                return "handshake refused"
        for name in ["alice", "bob", "carol", "nameless", None, "untrusted"]:
            out["imap-" + str(name)] = imap_external(name)
        out["imap-alice-authzid-bob"] = imap_external("alice", b"bob@example.org")
        out["imap-alice-authzid-alice"] = imap_external("alice", b"alice@example.org")
        s = smtplib.SMTP_SSL("127.0.0.1", submissions, context=context("alice"))
        s.ehlo()
        out["smtp-ehlo-auth"] = s.esmtp_features.get("auth", "")
        code, text = s.docmd("AUTH", "EXTERNAL =")
        out["smtp-alice"] = [code, text.decode()]
        out["smtp-send"] = str(s.sendmail("alice@example.org", ["bob@example.org"], b"Subject: by certificate\r\n\r\nHi.\r\n"))
        s.quit()
        s = smtplib.SMTP_SSL("127.0.0.1", submissions, context=context(None))
        s.ehlo()
        out["smtp-no-cert"] = s.docmd("AUTH", "EXTERNAL =")[0]
        s.quit()
        p = poplib.POP3_SSL("127.0.0.1", pop3s, context=context("bob"))
        out["pop3-bob"] = p._shortcmd("AUTH EXTERNAL =").decode()
        out["pop3-bob-stat"] = list(p.stat())
        p.quit()
        print(json.dumps(out))
        """#

    func python(_ script: String, _ args: [String]) throws -> [String: Any] {
        let f = try f
        let file = f.dir.write("client-\(UUID().uuidString).py", script)
        let r = try TokenServerFixture.run(try Build.tool("python3"), [file] + args, timeout: 60)
        guard r.status == 0, let line = r.output.split(separator: "\n").last,
              let json = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw SystemError.message("python client failed:\n\(r.output)\n--- server log ---\n\(f.server.log.suffix(3000))")
        }
        return json
    }

    func testExternalWithPythonClients() throws {
        let f = try f
        let c = f.certificates
        let certs: [String: [String]] = ["alice": [c.sanAlice.cert, c.sanAlice.key], "bob": [c.subjectEmailBob.cert, c.subjectEmailBob.key],
                                         "carol": [c.cnOnlyCarol.cert, c.cnOnlyCarol.key], "nameless": [c.nameless.cert, c.nameless.key],
                                         "untrusted": [c.untrusted.cert, c.untrusted.key]]
        let certJSON = String(decoding: try JSONSerialization.data(withJSONObject: certs), as: UTF8.self)
        let out = try python(Self.externalClient, ["\(f.imaps)", "\(f.pop3s)", "\(f.submissions)", c.caCert, certJSON])
        XCTAssertEqual(out["imap-alice"] as? String, "OK True", "subjectAltName rfc822Name")
        XCTAssertEqual(out["imap-bob"] as? String, "OK True", "subject emailAddress")
        XCTAssertTrue((out["imap-carol"] as? String)?.hasPrefix("NO") == true, "CN maps to a suspended account: \(out)")
        XCTAssertTrue((out["imap-nameless"] as? String)?.hasPrefix("NO") == true, "a certificate naming nobody: \(out)")
        XCTAssertTrue((out["imap-None"] as? String)?.hasPrefix("NO") == true, "no certificate: \(out)")
        XCTAssertEqual(out["imap-untrusted"] as? String, "handshake refused", "a certificate from another CA fails the handshake")
        XCTAssertTrue((out["imap-alice-authzid-bob"] as? String)?.hasPrefix("NO") == true, "authzid must be the mapped account: \(out)")
        XCTAssertEqual(out["imap-alice-authzid-alice"] as? String, "OK True")
        XCTAssertTrue((out["smtp-ehlo-auth"] as? String)?.contains("EXTERNAL") == true)
        XCTAssertFalse((out["smtp-ehlo-auth"] as? String)?.contains("ANONYMOUS") ?? true, "SMTP never offers ANONYMOUS")
        XCTAssertEqual((out["smtp-alice"] as? [Any])?.first as? Int, 235)
        XCTAssertEqual(out["smtp-send"] as? String, "{}")
        XCTAssertEqual(out["smtp-no-cert"] as? Int, 535)
        XCTAssertTrue((out["pop3-bob"] as? String)?.hasPrefix("+OK") == true, "\(out)")
        XCTAssertTrue(f.server.log.contains("EXTERNAL refused"), "an unmapped certificate is logged")
    }

    func testExternalWithImtest() throws {
        let f = try f
        // imtest reads the client certificate and its key from one file.
        let both = try String(contentsOfFile: f.certificates.sanAlice.cert, encoding: .utf8)
            + (try String(contentsOfFile: f.certificates.sanAlice.key, encoding: .utf8))
        let keyfile = f.dir.write("alice-imtest.pem", both)
        let r = try TokenServerFixture.run("/usr/lib/cyrus/bin/imtest", ["-t", keyfile, "-m", "EXTERNAL", "-a", "alice@example.org", "-u", "alice@example.org",
                                                                         "-p", "\(f.imapStartTLS)", "127.0.0.1"],
                                           input: "x1 SELECT INBOX\nx2 LOGOUT\n")
        XCTAssertTrue(r.output.contains("Authenticated."), r.output)
        XCTAssertTrue(r.output.contains("x1 OK"), r.output)
    }

    static let anonymousClient = #"""
        import base64, imaplib, json, poplib, smtplib, socket, sys
        imap, pop3, submission, lmtp = (int(a) for a in sys.argv[1:5])
        out = {}
        # A message for the guest account, by LMTP.
        s = socket.create_connection(("127.0.0.1", lmtp)); f = s.makefile("rwb")
        def cmd(line):
            if line is not None:
                f.write(line + b"\r\n"); f.flush()
            while True:
                l = f.readline()
                if l[3:4] == b" ": return l
        cmd(None); cmd(b"LHLO t"); cmd(b"MAIL FROM:<s@remote.example>"); cmd(b"RCPT TO:<guest@example.org>"); cmd(b"DATA")
        f.write(b"Subject: public notice\r\n\r\nRead me.\r\n.\r\n"); f.flush(); out["lmtp"] = cmd(None).decode().strip(); cmd(b"QUIT")

        m = imaplib.IMAP4("127.0.0.1", imap)
        out["imap-caps"] = "AUTH=ANONYMOUS" in m.capabilities
        out["imap-auth"] = m.authenticate("ANONYMOUS", lambda _: b"sirhc@example.com")[0]
        try:
            typ, data = m.select("INBOX")
            caught = False
        except m.readonly:
            # imaplib raises when SELECT answers [READ-ONLY]; the mailbox is selected all the same.
            typ, caught = "OK", True
        out["imap-select"] = [typ, caught or "READ-ONLY" in m.untagged_responses]
        # Otherwise imaplib raises "mailbox status changed to READ-ONLY" at every later command.
        m.is_readonly = True
        out["imap-fetch"] = m.fetch("1", "(BODY[])")[0]
        out["imap-flags-after-fetch"] = m.fetch("1", "(FLAGS)")[1][0].decode()
        def refused(f):
            try:
                typ, data = f()
                return typ + " " + (data[0].decode() if data and data[0] else "")
            except imaplib.IMAP4.error as e:
                return "NO " + str(e)
        out["imap-store"] = refused(lambda: m.store("1", "+FLAGS", "\\Deleted"))
        out["imap-copy"] = refused(lambda: m.copy("1", "INBOX"))
        out["imap-expunge"] = refused(lambda: m.expunge())
        out["imap-append"] = refused(lambda: m.append("INBOX", None, None, b"Subject: spam\r\n\r\nx\r\n"))
        out["imap-create"] = refused(lambda: m.create("Mine"))
        out["imap-examine"] = m.select("INBOX", readonly=True)[0]
        m.logout()

        s = smtplib.SMTP("127.0.0.1", submission)
        s.ehlo()
        out["smtp-ehlo-auth"] = s.esmtp_features.get("auth", "")
        out["smtp-anonymous"] = s.docmd("AUTH", "ANONYMOUS " + base64.b64encode(b"trace").decode())[0]
        s.quit()

        p = poplib.POP3("127.0.0.1", pop3)
        out["pop3-auth"] = p._shortcmd("AUTH ANONYMOUS " + base64.b64encode(b"pop-trace").decode()).decode()
        out["pop3-stat"] = list(p.stat())
        try:
            out["pop3-dele"] = p.dele(1).decode()
        except poplib.error_proto as e:
            out["pop3-dele"] = str(e)
        p.quit()
        print(json.dumps(out))
        """#

    func testAnonymousIsReadOnlyInIMAPAndRefusedBySMTP() throws {
        let f = try f
        let out = try python(Self.anonymousClient, ["\(f.imap)", "\(f.pop3)", "\(f.submission)", "\(f.lmtp)"])
        XCTAssertTrue((out["lmtp"] as? String)?.hasPrefix("250") == true, "\(out)")
        XCTAssertEqual(out["imap-caps"] as? Bool, true)
        XCTAssertEqual(out["imap-auth"] as? String, "OK")
        XCTAssertEqual((out["imap-select"] as? [Any])?.first as? String, "OK")
        XCTAssertEqual((out["imap-select"] as? [Any])?.last as? Bool, true, "SELECT opens read-only: \(out)")
        XCTAssertEqual(out["imap-fetch"] as? String, "OK")
        XCTAssertFalse((out["imap-flags-after-fetch"] as? String)?.contains("\\Seen") ?? true, "FETCH BODY[] set no \\Seen: \(out)")
        for command in ["imap-store", "imap-copy", "imap-expunge", "imap-append", "imap-create"] {
            XCTAssertTrue((out[command] as? String)?.hasPrefix("NO") == true, "\(command): \(out[command] ?? "nil")")
        }
        XCTAssertTrue((out["imap-append"] as? String)?.contains("NOPERM") == true, "\(out)")
        XCTAssertEqual(out["imap-examine"] as? String, "OK")
        XCTAssertFalse((out["smtp-ehlo-auth"] as? String)?.contains("ANONYMOUS") ?? true)
        XCTAssertEqual(out["smtp-anonymous"] as? Int, 504)
        XCTAssertTrue((out["pop3-auth"] as? String)?.hasPrefix("+OK") == true, "\(out)")
        XCTAssertEqual((out["pop3-stat"] as? [Int])?.first, 1)
        XCTAssertTrue((out["pop3-dele"] as? String)?.contains("read-only") == true, "\(out)")
        XCTAssertTrue(f.server.log.contains("sirhc@example.com"), "the trace string is logged")
        // Nothing the guest did changed the mailbox.
        let (_, listing) = Build.run(Build.postern, ["admin", "message", "list", "guest@example.org", "-c", f.server.configFile], cwd: f.dir.path)
        XCTAssertEqual(listing.split(separator: "\n").count, 1, listing)
    }

    func testAnonymousWithImtest() throws {
        let f = try f
        let r = try TokenServerFixture.run("/usr/lib/cyrus/bin/imtest", ["-m", "ANONYMOUS", "-a", "imtest-trace@example.net",
                                                                         "-p", "\(f.imap)", "127.0.0.1"],
                                           input: "y1 SELECT INBOX\ny2 CREATE Mine\ny3 LOGOUT\n")
        XCTAssertTrue(r.output.contains("Authenticated."), r.output)
        XCTAssertTrue(r.output.contains("y1 OK [READ-ONLY]"), r.output)
        XCTAssertTrue(r.output.contains("y2 NO [NOPERM]"), r.output)
        // Cyrus's ANONYMOUS client sends "anonymous@<its host name>" whatever -a says.
        XCTAssertTrue(f.server.log.contains("trace=anonymous@"), "the trace string is logged")
    }
}
