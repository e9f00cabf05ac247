import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest

/// GSSAPI and Kerberos passwords through authproxyd, end to end: a real MIT KDC (KerberosRealm),
/// `kinit`, the real `postern serve` with `[authproxyd]`, and Cyrus's imtest, smtptest and
/// pop3test as clients. One realm and one server for the class.
final class KerberosLoginTests: XCTestCase {
    static let proxyUser = "postern-auth"
    static let annPassword = "ann-kerberos-pw"
    nonisolated(unsafe) static var realm: KerberosRealm!
    nonisolated(unsafe) static var server: ServerProcess!
    nonisolated(unsafe) static var dir: TempDir!
    nonisolated(unsafe) static var setupError: Error?
    static let imapPort = freePort(), smtpPort = freePort(), pop3Port = freePort()

    var server: ServerProcess { Self.server }
    var realm: KerberosRealm { Self.realm }

    override class func setUp() {
        super.setUp()
        do {
            try ensureSystemUser(proxyUser)
            realm = try KerberosRealm(users: [("ann", annPassword), ("dave", "dave-kerberos-pw")])
            // The server and every child read this realm's krb5.conf.
            setenv("KRB5_CONFIG", realm.krb5Config, 1)
            dir = TempDir("kerberos-login")
            chmod(dir.path, 0o755)
            // The keytab as an administrator installs it: owned by authproxyd's user, 0600.
            let keytab = dir.path + "/service.keytab"
            try FileManager.default.copyItem(atPath: realm.keytab, toPath: keytab)
            let pw = try XCTUnwrap(getpwnam(proxyUser))
            chown(keytab, pw.pointee.pw_uid, pw.pointee.pw_gid)
            chmod(keytab, 0o600)
            let config = """
                data_dir = "./var"
                workers = 1
                [plugins]
                load = ["sasl-gssapi", "sasl-plain", "sasl-login", "queue"]
                [plugin.sasl-gssapi]
                socket = "\(dir.path)/var/authproxyd/authproxyd.sock"
                timeout = "3s"
                password_domains = ["example.org"]
                [plugin.store-sqlite]
                password_iterations = 4096
                [plugin.imap]
                hostname = "localhost"
                login_failure_delay = "0s"
                max_login_failures_per_ip = 0
                [plugin.pop3]
                hostname = "localhost"
                login_failure_delay = "0s"
                max_login_failures = 100000
                [plugin.smtp]
                hostname = "localhost"
                [authproxyd]
                user = "\(proxyUser)"
                [authproxyd.backend.auth-kerberos]
                keytab = "service.keytab"
                realms = { "\(KerberosRealm.realm)" = "example.org" }
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
                port = \(smtpPort)
                protocol = "smtp"
                [listener.options]
                mode = "submission"
                allow_plaintext_auth_on_loopback = true
                [[listener]]
                name = "pop3"
                address = "127.0.0.1"
                port = \(pop3Port)
                protocol = "pop3"
                [listener.options]
                allow_plaintext_on_loopback = true

                """
            let file = dir.write("postern.toml", "first_account = false\n" + config)
            for args in [["domain", "add", "example.org"], ["user", "add", "ann@example.org", "--password", "ann-local-pw"],
                         ["user", "add", "erin@example.org", "--password", "erin-local-pw"]] {
                let (code, output) = Build.run(Build.postern, ["admin"] + args + ["-c", file], cwd: dir.path)
                guard code == 0 else { throw SystemError.message("postern admin \(args): \(output)") }
            }
            server = try ServerProcess.start(dir, config)
            try waitForAuthProxy(timeout: 30)
        } catch {
            setupError = error
        }
    }

    override class func tearDown() {
        server?.stop()
        server = nil
        realm = nil
        dir = nil
        super.tearDown()
    }

    override func setUpWithError() throws {
        if let error = Self.setupError { throw error }
    }

    // MARK: helpers

    static func ensureSystemUser(_ name: String) throws {
        if getpwnam(name) != nil { return }
        let (code, output) = Build.run("/usr/sbin/useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name])
        guard code == 0 || getpwnam(name) != nil else { throw SystemError.message("useradd \(name): \(output)") }
    }

    static var socketPath: String { dir.path + "/var/authproxyd/authproxyd.sock" }

    /// authproxyd's pid: the master's child running `postern authproxyd`.
    static func authProxyPid() -> pid_t? {
        guard let server else { return nil }
        let master = server.process.processIdentifier
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
            guard fields.count > 1, Int32(fields[1]) == master,
                  let cmdline = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8),
                  cmdline.split(separator: "\0").contains("authproxyd") else { continue }
            return pid
        }
        return nil
    }

    /// Waits until authproxyd answers a ping on its socket; returns its pid.
    @discardableResult
    static func waitForAuthProxy(timeout: Double, notPid: pid_t? = nil) throws -> pid_t {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let pid = authProxyPid(), pid != notPid,
               case .success(.pong) = AuthProxyProbe.ask(.ping, socket: socketPath, timeout: 1) {
                return pid
            }
            usleep(50_000)
        }
        throw SystemError.message("authproxyd did not answer within \(timeout) s:\n\(server?.log.suffix(4000) ?? "")")
    }

    static func uids(of pid: pid_t) -> [uid_t] {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Uid:") }) else { return [] }
        return line.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().compactMap { uid_t($0) }
    }

    func cyrus(_ tool: String, _ arguments: [String], cache: String) -> (status: Int32, output: String) {
        runWithInput("/usr/lib/cyrus/bin/\(tool)", arguments, input: "",
                     environment: realm.environment.merging(["KRB5CCNAME": cache]) { _, b in b }, timeout: 30)
    }

    func imapLogin(_ user: String, _ password: String) throws -> String {
        let c = try LineClient(port: Self.imapPort)
        _ = try c.readLine()
        let answer = try c.command("a1 LOGIN \(user) \(password)")
        return answer
    }

    // MARK: tests

    /// Only authproxyd can read the keytab: the file is authproxyd's user's, mode 0600, and
    /// authproxyd runs as that user (all four uids), the worker as another; the socket is 0660.
    func testKeytabAndProcessIdentity() throws {
        let pw = try XCTUnwrap(getpwnam(Self.proxyUser))
        let uid = pw.pointee.pw_uid
        var st = stat()
        XCTAssertEqual(stat(Self.dir.path + "/service.keytab", &st), 0)
        XCTAssertEqual(st.st_uid, uid)
        XCTAssertEqual(st.st_mode & 0o777, 0o600)
        let proxy = try XCTUnwrap(Self.authProxyPid())
        XCTAssertEqual(Self.uids(of: proxy), [uid, uid, uid, uid])
        let worker = try XCTUnwrap(server.status().workers.first?.pid)
        let workerUids = Self.uids(of: worker)
        XCTAssertFalse(workerUids.isEmpty)
        XCTAssertFalse(workerUids.contains(uid), "the worker must not run as authproxyd's user")
        XCTAssertFalse(workerUids.contains(0))
        // The worker's user cannot read the keytab.
        let workerUser = String(cString: try XCTUnwrap(getpwuid(workerUids[0])).pointee.pw_name)
        let read = Build.run("/usr/sbin/runuser", ["-u", workerUser, "--", "/usr/bin/head", "-c", "1", Self.dir.path + "/service.keytab"])
        XCTAssertNotEqual(read.status, 0, read.output)
        XCTAssertEqual(stat(Self.socketPath, &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o660)
        XCTAssertEqual(st.st_uid, uid)
        // The worker never maps libkrb5; authproxyd does.
        XCTAssertFalse(processMaps(worker, contain: "libkrb5"))
        XCTAssertTrue(processMaps(proxy, contain: "libkrb5"))
    }

    func testIMAPGSSAPI() throws {
        let cache = try realm.kinit("ann", password: Self.annPassword)
        let r = cyrus("imtest", ["-m", "GSSAPI", "-u", "ann@example.org", "-p", String(Self.imapPort), "localhost"], cache: cache)
        XCTAssertTrue(r.output.contains("Authenticated."), "\(r.output)\n--- server ---\n\(String(server.log.suffix(3000)))")
        XCTAssertTrue(server.log.contains("logged in") && server.log.contains("user=ann@example.org"), String(server.log.suffix(3000)))
    }

    func testSMTPGSSAPI() throws {
        let cache = try realm.kinit("ann", password: Self.annPassword)
        let r = cyrus("smtptest", ["-m", "GSSAPI", "-u", "ann@example.org", "-p", String(Self.smtpPort), "localhost"], cache: cache)
        XCTAssertTrue(r.output.contains("Authenticated."), "\(r.output)\n--- server ---\n\(String(server.log.suffix(3000)))")
        XCTAssertTrue(r.output.contains("235"), r.output)
    }

    func testPOP3GSSAPI() throws {
        let cache = try realm.kinit("ann", password: Self.annPassword)
        let r = cyrus("pop3test", ["-m", "GSSAPI", "-u", "ann@example.org", "-p", String(Self.pop3Port), "localhost"], cache: cache)
        XCTAssertTrue(r.output.contains("Authenticated."), "\(r.output)\n--- server ---\n\(String(server.log.suffix(3000)))")
    }

    /// No ticket: the client cannot even start. A principal with a ticket but no account here
    /// (dave): the server refuses.
    func testWithoutTicketOrAccountLoginFails() throws {
        let none = cyrus("imtest", ["-m", "GSSAPI", "-u", "ann@example.org", "-p", String(Self.imapPort), "localhost"],
                         cache: "FILE:" + Self.dir.path + "/no-such-cache")
        XCTAssertFalse(none.output.contains("Authenticated."), none.output)
        let cache = try realm.kinit("dave", password: "dave-kerberos-pw")
        let dave = cyrus("imtest", ["-m", "GSSAPI", "-u", "dave@example.org", "-p", String(Self.imapPort), "localhost"], cache: cache)
        XCTAssertFalse(dave.output.contains("Authenticated."), dave.output)
        XCTAssertTrue(dave.output.contains("NO"), dave.output)
    }

    /// PLAIN/LOGIN users of a Kerberos domain: the KDC checks the password (then the keytab checks
    /// the KDC); the store's own password for the account is not accepted instead.
    func testPasswordLoginsThroughKerberos() throws {
        XCTAssertTrue(try imapLogin("ann@example.org", Self.annPassword).contains("a1 OK"))
        XCTAssertTrue(try imapLogin("ann@example.org", "wrong-password").contains("a1 NO [AUTHENTICATIONFAILED]"))
        XCTAssertTrue(try imapLogin("ann@example.org", "ann-local-pw").contains("a1 NO [AUTHENTICATIONFAILED]"))
        // erin has an account but no principal: the store answers for her.
        XCTAssertTrue(try imapLogin("erin@example.org", "erin-local-pw").contains("a1 OK"))
        // dave has a principal but no account.
        XCTAssertTrue(try imapLogin("dave@example.org", "dave-kerberos-pw").contains("a1 NO"))

        let smtp = try LineClient(port: Self.smtpPort)
        _ = try smtp.readLine()
        try smtp.send("EHLO client.test")
        while !(try smtp.readLine()).hasPrefix("250 ") {}
        let plain = Data("\0ann@example.org\0\(Self.annPassword)".utf8).base64EncodedString()
        XCTAssertTrue(try smtp.command("AUTH PLAIN \(plain)").hasPrefix("235 "))
        let bad = Data("\0ann@example.org\0nope".utf8).base64EncodedString()
        let smtp2 = try LineClient(port: Self.smtpPort)
        _ = try smtp2.readLine()
        try smtp2.send("EHLO client.test")
        while !(try smtp2.readLine()).hasPrefix("250 ") {}
        XCTAssertTrue(try smtp2.command("AUTH PLAIN \(bad)").hasPrefix("535 "))

        let pop = try LineClient(port: Self.pop3Port)
        _ = try pop.readLine()
        XCTAssertTrue(try pop.command("USER ann@example.org").hasPrefix("+OK"))
        XCTAssertTrue(try pop.command("PASS \(Self.annPassword)").hasPrefix("+OK"))
    }

    /// authproxyd hung (SIGSTOP) and then killed (SIGKILL) while logins wait on it: each login gets
    /// a clean temporary failure (IMAP NO [UNAVAILABLE], SMTP 454 4.7.0, POP3 -ERR [SYS/TEMP]),
    /// never a hang; the master starts a new authproxyd and the next logins succeed.
    func testAuthProxydKilledDuringLogins() throws {
        let first = try Self.waitForAuthProxy(timeout: 30)
        // Hung: answers come from the worker's timeout (3 s), not from authproxyd.
        kill(first, SIGSTOP)
        var started = Date()
        let hung = try imapLogin("ann@example.org", Self.annPassword)
        let hungSeconds = Date().timeIntervalSince(started)
        XCTAssertTrue(hung.contains("a1 NO [UNAVAILABLE]"), hung)
        XCTAssertLessThan(hungSeconds, 6)
        print("login with authproxyd stopped: \(String(format: "%.2f", hungSeconds)) s")

        // Killed in the middle of a login: the waiting login fails at once.
        nonisolated(unsafe) var during = ""
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            during = (try? self.imapLogin("ann@example.org", Self.annPassword)) ?? "error"
            done.signal()
        }
        usleep(500_000)
        started = Date()
        kill(first, SIGKILL)
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success)
        let afterKill = Date().timeIntervalSince(started)
        XCTAssertTrue(during.contains("a1 NO [UNAVAILABLE]"), during)
        print("login answered \(String(format: "%.2f", afterKill)) s after authproxyd was killed")

        let second = try Self.waitForAuthProxy(timeout: 30, notPid: first)
        XCTAssertNotEqual(first, second)
        let pw = try XCTUnwrap(getpwnam(Self.proxyUser))
        XCTAssertEqual(Self.uids(of: second), Array(repeating: pw.pointee.pw_uid, count: 4))

        // While it is down (stopped again): SMTP and POP3 give their temporary replies.
        kill(second, SIGSTOP)
        let smtp = try LineClient(port: Self.smtpPort)
        _ = try smtp.readLine()
        try smtp.send("EHLO client.test")
        while !(try smtp.readLine()).hasPrefix("250 ") {}
        let plain = Data("\0ann@example.org\0\(Self.annPassword)".utf8).base64EncodedString()
        let smtpReply = try smtp.command("AUTH PLAIN \(plain)")
        XCTAssertTrue(smtpReply.hasPrefix("454 4.7.0"), smtpReply)
        let pop = try LineClient(port: Self.pop3Port)
        _ = try pop.readLine()
        _ = try pop.command("USER ann@example.org")
        let popReply = try pop.command("PASS \(Self.annPassword)")
        XCTAssertTrue(popReply.hasPrefix("-ERR [SYS/TEMP]"), popReply)
        kill(second, SIGCONT)

        // Logins work again, by password and by ticket.
        XCTAssertTrue(try imapLogin("ann@example.org", Self.annPassword).contains("a1 OK"))
        let cache = try realm.kinit("ann", password: Self.annPassword)
        let r = cyrus("imtest", ["-m", "GSSAPI", "-u", "ann@example.org", "-p", String(Self.imapPort), "localhost"], cache: cache)
        XCTAssertTrue(r.output.contains("Authenticated."), r.output)
        XCTAssertTrue(server.log.contains("authproxyd exited"), "the master saw the crash")
    }

    /// The master's /metrics-style merge includes authproxyd's counters (asked over its socket).
    func testAuthProxydAnswersPingAndMetrics() throws {
        guard case .success(.pong) = AuthProxyProbe.ask(.ping, socket: Self.socketPath, timeout: 2) else { return XCTFail("no pong") }
        XCTAssertTrue(try imapLogin("ann@example.org", Self.annPassword).contains("a1 OK"))
        guard case .success(.metricsText(let text)) = AuthProxyProbe.ask(.metrics, socket: Self.socketPath, timeout: 2) else {
            return XCTFail("no metrics")
        }
        XCTAssertTrue(text.contains("postern_authproxyd_served_total"), text)
        // A frame that is not one closes the connection without an answer; authproxyd lives on.
        if case .success(let fd) = connectUnix(Self.socketPath) {
            let junk: [UInt8] = [0xff, 0xff, 0xff, 0xff, 0x01]
            _ = junk.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            var buffer = [UInt8](repeating: 0, count: 16)
            var tv = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            XCTAssertEqual(recv(fd, &buffer, 16, 0), 0, "closed without a reply")
            close(fd)
        } else {
            XCTFail("cannot connect to \(Self.socketPath)")
        }
        guard case .success(.pong) = AuthProxyProbe.ask(.ping, socket: Self.socketPath, timeout: 2) else { return XCTFail("no pong after junk") }
    }

    func connectUnix(_ path: String) -> Result<CInt, SystemError> {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if rc != 0 { close(fd); return .failure(.call("connect", errno)) }
        return .success(fd)
    }
}
