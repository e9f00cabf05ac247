import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest

/// The built `postern` with the ldap plugin against a throw-away slapd: users that exist only in
/// the directory log in over IMAP and SMTP and get mail (their store account is made on first
/// use), a `mailHost` user's mail leaves through the smtp transport to that host, a group address
/// reaches every member, injection logins are refused, and a directory that dies gives temporary
/// failures (SMTP 454/451, IMAP NO [UNAVAILABLE]) until it is back. The first configured LDAP
/// server is a dead port, so every answer here also goes through failover.
final class LDAPServerTests: XCTestCase {
    nonisolated(unsafe) static var slapd: SlapdFixture!
    nonisolated(unsafe) static var server: ServerProcess!
    nonisolated(unsafe) static var sink: SMTPSink!
    static let imapPort = freePort(), submissionPort = freePort(), mxPort = freePort(), webmailPort = freePort()
    nonisolated(unsafe) static var setupError: String?

    override class func setUp() {
        super.setUp()
        signal(SIGPIPE, SIG_IGN)
        do {
            slapd = try SlapdFixture("ldap-server")
            sink = try SMTPSink()
            let dir = TempDir("ldap-postern")
            let config = """
                data_dir = "./var"
                workers = 1
                [plugins]
                load = ["sasl-plain", "sasl-login"]
                [plugin.store-sqlite]
                password_iterations = 4096
                [plugin.ldap]
                servers = ["ldap://127.0.0.1:\(freePort())", "\(slapd.uri)"]
                base_dn = "\(SlapdFixture.baseDN)"
                bind_dn = "\(SlapdFixture.serviceDN)"
                bind_password_file = "\(dir.write("ldap-password", SlapdFixture.servicePassword + "\n"))"
                start_tls = true
                ca_file = "\(slapd.caFile)"
                quota_attribute = "posternMailQuota"
                suspended_attribute = "posternAccountStatus"
                suspended_value = "suspended"
                mail_host_transport = "smtp:[127.0.0.1]:\(sink.port)"
                cache_ttl = "2s"
                timeout = "2s"
                connect_timeout = "2s"
                [plugin.queue]
                alias_tables = ["ldap-aliases"]
                transport_tables = ["ldap-transport"]
                min_backoff = "1s"
                max_backoff = "2s"
                scan_interval = "200ms"
                [plugin.dns]
                [plugin.smtp-client]
                hostname = "mx.ldap.test"
                [plugin.smtp]
                hostname = "mx.ldap.test"
                [plugin.imap]
                # The tests fail logins on purpose, from one address, many times.
                login_failure_delay = "0s"
                max_login_failures_per_ip = 0
                [[listener]]
                name = "imap"
                address = "127.0.0.1"
                port = \(imapPort)
                protocol = "imap"
                [listener.options]
                allow_plaintext_on_loopback = true
                [[listener]]
                name = "submission"
                address = "127.0.0.1"
                port = \(submissionPort)
                protocol = "smtp"
                [listener.options]
                mode = "submission"
                allow_plaintext_auth_on_loopback = true
                [[listener]]
                name = "mx"
                address = "127.0.0.1"
                port = \(mxPort)
                protocol = "smtp"
                [plugin.webmail]
                [[listener]]
                name = "webmail"
                address = "127.0.0.1"
                port = \(webmailPort)
                protocol = "webmail"
                [listener.options]
                imap_host = "127.0.0.1"
                imap_port = \(imapPort)
                submission_port = \(submissionPort)
                submission_security = "none"
                secure_cookies = false    # Python's cookie jar sends no Secure cookie over http://

                """
            let file = dir.write("postern.toml", config)
            // The mail domain is the store's (the router asks the store which domains are local);
            // the users are the directory's alone.
            let (code, output) = Build.run(Build.postern, ["admin", "domain", "add", "example.org", "-c", file], cwd: dir.path)
            guard code == 0 else { throw SystemError.message("postern admin domain add: \(output)") }
            server = try ServerProcess.start(dir, config)
        } catch {
            setupError = "\(error)"
        }
    }

    override class func tearDown() {
        server?.stop()
        slapd?.stop()
        sink?.stop()
        super.tearDown()
    }

    override func setUpWithError() throws {
        // A missing peer is a failure, never a skip.
        if let setupError = Self.setupError { return XCTFail("fixture: \(setupError)") }
        if Self.slapd.process == nil { try Self.slapd.start() }
    }

    // MARK: Clients

    func imapLogin(_ user: String, _ password: String) throws -> (reply: String, client: LineClient) {
        let c = try LineClient(port: Self.imapPort)
        _ = try c.readLine()
        try c.send("a1 LOGIN \(Self.quoted(user)) \(Self.quoted(password))")
        return (try Self.tagged(c, "a1"), c)
    }

    static func quoted(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    static func tagged(_ c: LineClient, _ tag: String) throws -> String {
        while true {
            let line = try c.readLine()
            if line.hasPrefix(tag + " ") { return line }
        }
    }

    static func smtpReply(_ c: LineClient) throws -> String {
        while true {
            let line = try c.readLine()
            if line.count < 4 || line[line.index(line.startIndex, offsetBy: 3)] != "-" { return line }
        }
    }

    func smtp(_ port: Int) throws -> LineClient {
        let c = try LineClient(port: port)
        XCTAssertTrue(try Self.smtpReply(c).hasPrefix("220"))
        try c.send("EHLO client.test")
        XCTAssertTrue(try Self.smtpReply(c).hasPrefix("250"))
        return c
    }

    func smtpAuth(_ user: String, _ password: String) throws -> String {
        let c = try smtp(Self.submissionPort)
        defer { try? c.send("QUIT") }
        let token = Data("\u{0}\(user)\u{0}\(password)".utf8).base64EncodedString()
        try c.send("AUTH PLAIN \(token)")
        return try Self.smtpReply(c)
    }

    /// Sends one message through the MX listener; returns the RCPT replies.
    @discardableResult
    func send(to recipients: [String], subject: String) throws -> [String] {
        let c = try smtp(Self.mxPort)
        defer { try? c.send("QUIT") }
        try c.send("MAIL FROM:<sender@outside.test>")
        XCTAssertTrue(try Self.smtpReply(c).hasPrefix("250"))
        var replies: [String] = []
        for r in recipients {
            try c.send("RCPT TO:<\(r)>")
            replies.append(try Self.smtpReply(c))
        }
        guard replies.contains(where: { $0.hasPrefix("250") }) else {
            try c.send("RSET")
            _ = try Self.smtpReply(c)
            return replies
        }
        try c.send("DATA")
        XCTAssertTrue(try Self.smtpReply(c).hasPrefix("354"))
        try c.send("From: sender@outside.test\r\nTo: \(recipients.joined(separator: ", "))\r\nSubject: \(subject)\r\n\r\nHello.\r\n.")
        XCTAssertTrue(try Self.smtpReply(c).hasPrefix("250"))
        return replies
    }

    func admin(_ args: [String]) -> (Int32, String) {
        Build.run(Build.postern, ["admin"] + args + ["-c", Self.server.configFile], cwd: Self.server.dir.path)
    }

    /// Waits until `user`'s INBOX lists a message with `subject`.
    func waitForMessage(_ user: String, _ subject: String, timeout: Double = 20) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            // `message list` prints UID, size, flags; the subject is in the message itself.
            let uids = admin(["message", "list", user]).1.split(separator: "\n").compactMap { $0.split(separator: "\t").first }
            for uid in uids where admin(["message", "get", user, String(uid)]).1.contains("Subject: \(subject)") { return true }
            usleep(200_000)
        }
        return false
    }

    // MARK: Tests

    func testIMAPAndSMTPLoginOfDirectoryUsers() throws {
        var (reply, client) = try imapLogin("alice@example.org", "alice-pw")
        XCTAssertTrue(reply.hasPrefix("a1 OK"), reply)
        // The store account was made at login: INBOX can be selected.
        try client.send("a2 SELECT INBOX")
        XCTAssertTrue(try Self.tagged(client, "a2").hasPrefix("a2 OK"))
        (reply, client) = try imapLogin("erin", "erin-pw")
        XCTAssertTrue(reply.hasPrefix("a1 OK"), "login by uid: \(reply)")
        (reply, _) = try imapLogin("alice@example.org", "wrong")
        XCTAssertTrue(reply.hasPrefix("a1 NO [AUTHENTICATIONFAILED]"), reply)
        (reply, _) = try imapLogin("dave@example.org", "dave-pw")
        XCTAssertTrue(reply.hasPrefix("a1 NO"), "suspended: \(reply)")
        XCTAssertFalse(reply.contains("UNAVAILABLE"))

        XCTAssertTrue(try smtpAuth("alice@example.org", "alice-pw").hasPrefix("235"))
        XCTAssertTrue(try smtpAuth("alice@example.org", "nope").hasPrefix("535"))
        // The store holds the account now, with the directory's quota, and no password of its own.
        let info = admin(["user", "list"]).1
        XCTAssertTrue(info.contains("alice@example.org"), info)
    }

    func testInjectionLoginsAreRefused() throws {
        for name in ["*", "alice)(uid=*", "*)(|(objectClass=*", "al*"] {
            let (reply, _) = try imapLogin(name, "alice-pw")
            XCTAssertTrue(reply.hasPrefix("a1 NO [AUTHENTICATIONFAILED]"), "\(name): \(reply)")
            XCTAssertTrue(try smtpAuth(name, "alice-pw").hasPrefix("535"), name)
        }
    }

    func testDeliveryToDirectoryUsersAliasesAndGroups() throws {
        let replies = try send(to: ["erin@example.org", "ali@example.org"], subject: "direct-and-alias")
        XCTAssertEqual(replies.map { String($0.prefix(3)) }, ["250", "250"], "\(replies)")
        XCTAssertTrue(waitForMessage("erin@example.org", "direct-and-alias"), "erin's account made at first delivery")
        XCTAssertTrue(waitForMessage("alice@example.org", "direct-and-alias"), "mailLocalAddress ali@ reaches alice")

        // The group: alice and erin (dave suspended, bob on another mailHost: to the sink).
        XCTAssertEqual(try send(to: ["staff@example.org"], subject: "group-mail").first?.prefix(3), "250")
        XCTAssertTrue(waitForMessage("alice@example.org", "group-mail"))
        XCTAssertTrue(waitForMessage("erin@example.org", "group-mail"))
        XCTAssertTrue(Self.sink.waitFor("<bob@example.org>", timeout: 20), "bob's copy leaves for his mailHost: \(Self.sink.received)")

        // Unknown and suspended recipients are refused at RCPT.
        let refused = try send(to: ["nobody@example.org", "dave@example.org"], subject: "refused")
        XCTAssertTrue(refused[0].hasPrefix("550 5.1.1"), refused[0])
        XCTAssertTrue(refused[1].hasPrefix("550"), refused[1])
    }

    /// The webmail with the ldap plugin loaded: the top bar links the Directory, a search finds
    /// people (a link to write to each), an injection finds nobody, and the entry's
    /// `preferredLanguage` and `displayName` are the user's defaults until they set their own.
    func testWebmailDirectoryAndDefaultsFromTheDirectory() throws {
        let script = #"""
            import http.cookiejar, json, re, sys, urllib.parse, urllib.request
            base = sys.argv[1]
            def session(user, password):
                jar = http.cookiejar.CookieJar()
                web = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
                page = web.open(base + "/login").read().decode()
                csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
                form = urllib.parse.urlencode({"csrf": csrf, "user": user, "password": password}).encode()
                return web, web.open(base + "/login", form).read().decode()
            out = {}
            web, inbox = session("alice@example.org", "alice-pw")
            out["alice_lang"] = re.search(r'<html lang="([a-z]+)"', inbox).group(1)
            out["alice_directory_link"] = 'id="directory-link"' in inbox
            out["smith"] = web.open(base + "/directory?q=smith").read().decode()
            out["injection"] = web.open(base + "/directory?q=" + urllib.parse.quote("*)(uid=*")).read().decode()
            out["settings"] = web.open(base + "/settings").read().decode()
            out["suggest"] = json.loads(web.open(base + "/directory/suggest?q=smi").read().decode())
            out["suggest_short"] = json.loads(web.open(base + "/directory/suggest?q=s").read().decode())
            web, inbox = session("erin@example.org", "erin-pw")
            out["erin_lang"] = re.search(r'<html lang="([a-z]+)"', inbox).group(1)
            print(json.dumps(out))
            """#
        let (code, output) = Build.run("/usr/bin/python3", ["-c", script, "http://127.0.0.1:\(Self.webmailPort)"])
        XCTAssertEqual(code, 0, output)
        guard let data = output.split(separator: "\n").last.map({ Data($0.utf8) }),
              let page = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { return XCTFail(output) }
        XCTAssertEqual(page["alice_lang"] as? String, "de", "alice's preferredLanguage is de")
        XCTAssertEqual(page["erin_lang"] as? String, "en", "erin has no preferredLanguage")
        XCTAssertEqual(page["alice_directory_link"] as? Bool, true)
        let smith = page["smith"] as? String ?? ""
        XCTAssertTrue(smith.contains("Erin Smith"), smith)
        XCTAssertTrue(smith.contains("href=\"/compose?to=erin%40example.org\""), smith)
        XCTAssertTrue(smith.contains("+1 555 0104"), smith)
        XCTAssertFalse(smith.contains("Alice"), "only the people who match")
        let injection = page["injection"] as? String ?? ""
        XCTAssertTrue(injection.contains("id=\"result-count\">0 "), injection)
        XCTAssertFalse(injection.contains("@example.org</a>"), injection)
        XCTAssertTrue((page["settings"] as? String ?? "").contains("value=\"Alice L.\""), "displayName is the default sender name")
        XCTAssertEqual(page["suggest"] as? [String], ["Erin Smith <erin@example.org>"])
        XCTAssertEqual(page["suggest_short"] as? [String], [], "one character asks nothing")
    }

    /// Compose in headless Chromium: typing part of a name offers the directory's address in the
    /// recipient field's list (static/app.js fills the datalist from /directory/suggest).
    func testComposeCompletesAddressesFromTheDirectoryInABrowser() throws {
        let script = #"""
            import json, sys
            from selenium import webdriver
            from selenium.webdriver.chrome.service import Service
            from selenium.webdriver.common.by import By
            from selenium.webdriver.support.ui import WebDriverWait
            base = sys.argv[1]
            options = webdriver.ChromeOptions()
            options.binary_location = "/usr/bin/chromium"
            for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-proxy-server"]:
                options.add_argument(arg)
            driver = webdriver.Chrome(options=options, service=Service(executable_path="/usr/bin/chromedriver"))
            try:
                driver.get(base + "/login")
                driver.find_element(By.ID, "user").send_keys("alice@example.org")
                driver.find_element(By.ID, "password").send_keys("alice-pw")
                driver.find_element(By.ID, "login").click()
                WebDriverWait(driver, 20).until(lambda d: "/mail" in d.current_url)
                driver.get(base + "/compose")
                driver.find_element(By.ID, "to").send_keys("bob@example.org, smi")
                def offered(d):
                    return [o.get_attribute("value") for o in d.find_elements(By.CSS_SELECTOR, "#contacts option[data-directory]")]
                WebDriverWait(driver, 20).until(lambda d: offered(d))
                print(json.dumps({"offered": offered(driver)}))
            finally:
                driver.quit()
            """#
        let (code, output) = Build.run("/usr/bin/python3", ["-c", script, "http://127.0.0.1:\(Self.webmailPort)"])
        XCTAssertEqual(code, 0, output)
        guard let data = output.split(whereSeparator: \.isNewline).last.map({ Data($0.utf8) }),
              let result = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { return XCTFail(output) }
        XCTAssertEqual(result["offered"] as? [String], ["bob@example.org, Erin Smith <erin@example.org>"],
                       "the directory's address after the ones already typed")
    }

    func testMailHostRecipientLeavesThroughSMTP() throws {
        XCTAssertEqual(try send(to: ["bob@example.org"], subject: "to-mailhost").first?.prefix(3), "250")
        XCTAssertTrue(Self.sink.waitFor("<bob@example.org>", timeout: 20), "received: \(Self.sink.received)")
        XCTAssertFalse(admin(["user", "list"]).1.contains("bob@example.org"), "no local account for a user on another mailHost")
    }

    func testDirectoryDownGivesTemporaryFailuresThenRecovers() throws {
        XCTAssertTrue(try smtpAuth("erin@example.org", "erin-pw").hasPrefix("235"))
        Self.slapd.kill()
        defer { if Self.slapd.process == nil { try? Self.slapd.start() } }
        sleep(3)  // past cache_ttl
        let auth = try smtpAuth("erin@example.org", "erin-pw")
        XCTAssertTrue(auth.hasPrefix("454"), auth)
        let (reply, _) = try imapLogin("erin@example.org", "erin-pw")
        XCTAssertTrue(reply.hasPrefix("a1 NO [UNAVAILABLE]"), reply)
        let rcpt = try send(to: ["carol@example.org"], subject: "while-down")
        XCTAssertTrue(rcpt[0].hasPrefix("451"), rcpt[0])
        XCTAssertTrue(Self.server.process.isRunning, "the server survives")

        try Self.slapd.start()
        let deadline = Date().addingTimeInterval(15)
        var recovered = ""
        repeat {
            recovered = try smtpAuth("erin@example.org", "erin-pw")
            if recovered.hasPrefix("235") { break }
            usleep(500_000)
        } while Date() < deadline
        XCTAssertTrue(recovered.hasPrefix("235"), "after slapd restarted: \(recovered)")
        XCTAssertTrue(try imapLogin("erin@example.org", "erin-pw").reply.hasPrefix("a1 OK"))
    }
}

/// A minimal SMTP receiver (python3) that records each message's envelope recipients: the
/// "other mail host" a `mailHost` user's mail is routed to.
final class SMTPSink {
    let port = freePort()
    let dir = TempDir("smtp-sink")
    let process = Process()
    var received: String { (try? String(contentsOfFile: dir.path + "/received", encoding: .utf8)) ?? "" }

    init() throws {
        let script = dir.write("sink.py", """
            import socket, sys, threading
            port, out = int(sys.argv[1]), sys.argv[2]
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            s.listen(16)
            def handle(c):
                try:
                    serve(c)
                except OSError:
                    pass
                c.close()
            def serve(c):
                f = c.makefile("rb")
                w = lambda text: c.sendall(text.encode() + b"\\r\\n")
                w("220 sink.test ESMTP")
                rcpts = []
                while True:
                    line = f.readline()
                    if not line:
                        break
                    cmd = line.decode(errors="replace").strip()
                    u = cmd.upper()
                    if u.startswith("EHLO") or u.startswith("HELO"):
                        w("250 sink.test")
                    elif u.startswith("MAIL"):
                        rcpts = []
                        w("250 ok")
                    elif u.startswith("RCPT"):
                        rcpts.append(cmd[8:].strip().split(" ")[0])
                        w("250 ok")
                    elif u == "DATA":
                        w("354 go ahead")
                        while True:
                            l = f.readline()
                            if l in (b".\\r\\n", b".\\n", b""):
                                break
                        with open(out, "a") as o:
                            o.write(" ".join(rcpts) + "\\n")
                        w("250 queued")
                    elif u == "QUIT":
                        w("221 bye")
                        break
                    else:
                        w("250 ok")
            while True:
                c, _ = s.accept()
                threading.Thread(target=handle, args=(c,), daemon=True).start()
            """)
        process.executableURL = URL(fileURLWithPath: try Build.tool("python3"))
        process.arguments = [script, "\(port)", dir.path + "/received"]
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if case .success(let fd) = connectLoopback(port: port, timeout: 1) { close(fd); return }
            usleep(50_000)
        }
        throw SystemError.message("the SMTP sink did not start")
    }

    func waitFor(_ text: String, timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if received.contains(text) { return true }
            usleep(200_000)
        }
        return false
    }

    func stop() {
        if process.isRunning { process.terminate(); process.waitUntilExit() }
    }
}
