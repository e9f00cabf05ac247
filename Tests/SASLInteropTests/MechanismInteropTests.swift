import Foundation
import PosternHost
import PosternTestSupport
import XCTest

/// The password-based mechanisms through the real `postern` binary, one server for the class:
/// Cyrus imtest, smtptest and pop3test (libsasl2's client side) with CRAM-MD5, DIGEST-MD5,
/// SCRAM-SHA-1 and SCRAM-SHA-256, Python's imaplib for CRAM-MD5, and a Python SCRAM client for
/// the -PLUS variants over TLS (tls-server-end-point), the `y` downgrade and a tampered binding.
/// Every client must be installed: a missing one fails the test.
final class MechanismInteropTests: XCTestCase {
    nonisolated(unsafe) static var server: ServerProcess?
    nonisolated(unsafe) static var dir: TempDir?
    nonisolated(unsafe) static var ports: [String: Int] = [:]
    nonisolated(unsafe) static var startError: String?
    static let user = "alice@example.org", password = "pencil-Sharp1"

    override class func setUp() {
        super.setUp()
        let dir = TempDir("sasl-mechanisms")
        Self.dir = dir
        do {
            let certificate = try makeCertificate(dir, "localhost")
            for name in ["imap", "imaps", "pop3", "smtp", "smtps"] { ports[name] = freePort() }
            let server = try ServerProcess.start(dir, """
                data_dir = "./var"
                workers = 1
                [plugin.store-sqlite]
                [plugin.queue]
                min_backoff = "1h"
                max_backoff = "1h"
                [plugin.sasl-plain]
                [plugin.sasl-login]
                [plugin.sasl-scram]
                mechanisms = ["SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1", "SCRAM-SHA-1-PLUS"]
                [plugin.sasl-cram-md5]
                [plugin.sasl-digest-md5]
                realm = "example.org"
                hostnames = ["127.0.0.1", "localhost"]
                [plugin.imap]
                hostname = "localhost"
                login_failure_delay = 0
                max_login_failures_per_ip = 0
                max_login_failures_per_session = 100
                [plugin.pop3]
                hostname = "localhost"
                login_failure_delay = 0
                max_login_failures = 100000
                [plugin.smtp]
                hostname = "localhost"
                [[listener]]
                name = "imap"
                address = "127.0.0.1"
                port = \(ports["imap"]!)
                protocol = "imap"
                [[listener]]
                name = "imaps"
                address = "127.0.0.1"
                port = \(ports["imaps"]!)
                protocol = "imap"
                tls = "implicit"
                certificate = "\(certificate.cert)"
                key = "\(certificate.key)"
                [[listener]]
                name = "pop3"
                address = "127.0.0.1"
                port = \(ports["pop3"]!)
                protocol = "pop3"
                tls = "starttls"
                certificate = "\(certificate.cert)"
                key = "\(certificate.key)"
                [[listener]]
                name = "smtp"
                address = "127.0.0.1"
                port = \(ports["smtp"]!)
                protocol = "smtp"
                tls = "starttls"
                certificate = "\(certificate.cert)"
                key = "\(certificate.key)"
                [listener.options]
                mode = "submission"
                [[listener]]
                name = "smtps"
                address = "127.0.0.1"
                port = \(ports["smtps"]!)
                protocol = "smtp"
                tls = "implicit"
                certificate = "\(certificate.cert)"
                key = "\(certificate.key)"
                [listener.options]
                mode = "submissions"
                """)
            Self.server = server
            // `postern admin` loads the mechanism plugins too, so adding the user writes the
            // CRAM-MD5, DIGEST-MD5 and SCRAM-SHA-1 secrets as well.
            for args in [["domain", "add", "example.org"], ["user", "add", user, "--password", password]] {
                let r = Build.run(Build.postern, ["admin"] + args + ["-c", server.configFile], cwd: dir.path)
                if r.status != 0 { startError = "admin \(args): \(r.output)" }
            }
        } catch {
            startError = "\(error)"
        }
    }

    override class func tearDown() {
        server?.stop()
        server = nil
        super.tearDown()
    }

    override func setUpWithError() throws {
        if let startError = Self.startError { XCTFail("server did not start: \(startError)") }
    }

    // MARK: helpers

    static let cyrus = "/usr/lib/cyrus/bin/"

    /// A Cyrus test client (imtest, smtptest, pop3test) authenticating with `mechanism`; true
    /// when it reports success. Its whole output is attached to failures.
    func cyrusClient(_ tool: String, port: Int, mechanism: String, password: String = password,
                     extra: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws -> (Bool, String) {
        let path = Self.cyrus + tool
        guard FileManager.default.isExecutableFile(atPath: path) else {
            XCTFail("\(path) is not installed (cyrus-clients)", file: file, line: line)
            return (false, "")
        }
        // stdin is /dev/null: the client logs out at once after authenticating.
        let r = Build.run("/usr/bin/timeout", ["30", path, "-m", mechanism, "-a", Self.user, "-u", Self.user, "-w", password,
                                               "-r", "example.org", "-p", "\(port)"] + extra + ["127.0.0.1"])
        let ok = r.output.contains("Authenticated.") && !r.output.contains("Authentication failed")
        return (ok, r.output)
    }

    func python(_ arguments: [String]) throws -> String {
        let script = Build.packageRoot + "/Tests/SASLInteropTests/Scripts/sasl_client.py"
        return Build.run(try Build.tool("python3"), [script] + arguments).output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    // MARK: Cyrus clients

    func testImtestEveryMechanismAndWrongPasswords() throws {
        for mechanism in ["CRAM-MD5", "DIGEST-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256"] {
            let (ok, output) = try cyrusClient("imtest", port: Self.ports["imap"]!, mechanism: mechanism)
            XCTAssertTrue(ok, "imtest \(mechanism):\n\(output)")
            let (wrong, wrongOutput) = try cyrusClient("imtest", port: Self.ports["imap"]!, mechanism: mechanism, password: "wrong")
            XCTAssertFalse(wrong, "imtest \(mechanism) with a wrong password:\n\(wrongOutput)")
        }
    }

    func testSmtptestEveryMechanismAndWrongPasswords() throws {
        for mechanism in ["CRAM-MD5", "DIGEST-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256"] {
            // Submission over STARTTLS ("-t ''"): SMTP AUTH without plaintext mechanisms needs no TLS,
            // but this listener is where users submit.
            let (ok, output) = try cyrusClient("smtptest", port: Self.ports["smtp"]!, mechanism: mechanism)
            XCTAssertTrue(ok, "smtptest \(mechanism):\n\(output)")
            let (wrong, wrongOutput) = try cyrusClient("smtptest", port: Self.ports["smtp"]!, mechanism: mechanism, password: "wrong")
            XCTAssertFalse(wrong, "smtptest \(mechanism) with a wrong password:\n\(wrongOutput)")
        }
    }

    func testPop3testEveryMechanismAndWrongPasswords() throws {
        for mechanism in ["CRAM-MD5", "DIGEST-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256"] {
            let (ok, output) = try cyrusClient("pop3test", port: Self.ports["pop3"]!, mechanism: mechanism)
            XCTAssertTrue(ok, "pop3test \(mechanism):\n\(output)")
            let (wrong, wrongOutput) = try cyrusClient("pop3test", port: Self.ports["pop3"]!, mechanism: mechanism, password: "wrong")
            XCTAssertFalse(wrong, "pop3test \(mechanism) with a wrong password:\n\(wrongOutput)")
        }
    }

    /// imtest under TLS: plain SCRAM-SHA-256 works (libsasl2 sends "n" for a non-PLUS mechanism);
    /// its -PLUS binds with tls-unique only, and it sends that as "SCRAM-SHA-256" with "p=": refused
    /// (a binding on a non-PLUS mechanism, of a type this server does not have).
    func testImtestOverTLS() throws {
        let (ok, output) = try cyrusClient("imtest", port: Self.ports["imaps"]!, mechanism: "SCRAM-SHA-256", extra: ["-s"])
        XCTAssertTrue(ok, "imtest -s SCRAM-SHA-256:\n\(output)")
        XCTAssertTrue(output.contains("TLS connection established"), output)
        let (plus, plusOutput) = try cyrusClient("imtest", port: Self.ports["imaps"]!, mechanism: "SCRAM-SHA-256-PLUS", extra: ["-s"])
        XCTAssertFalse(plus, "imtest -s SCRAM-SHA-256-PLUS (tls-unique):\n\(plusOutput)")
    }

    // MARK: Python

    func testImaplibCRAMMD5() throws {
        let script = Self.dir!.write("cram.py", """
            import imaplib, sys
            port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
            for attempt in (password, "wrong"):
                m = imaplib.IMAP4("127.0.0.1", port)
                try:
                    typ, _ = m.login_cram_md5(user, attempt)
                    print("OK", typ)
                    m.logout()
                except imaplib.IMAP4.error as e:
                    print("NO", e)
            """)
        let r = Build.run(try Build.tool("python3"), [script, "\(Self.ports["imap"]!)", Self.user, Self.password])
        let lines = r.output.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "OK OK", r.output)
        XCTAssertTrue(lines.count == 2 && lines[1].hasPrefix("NO"), r.output)
    }

    func testSCRAMPlusOverTLSOnEveryProtocol() throws {
        let targets = [("imap", "imaps", "implicit"), ("smtp", "smtps", "implicit"), ("pop3", "pop3", "starttls"), ("smtp", "smtp", "starttls")]
        for (proto, listener, tls) in targets {
            let port = "\(Self.ports[listener]!)"
            let caps = try python([proto, port, tls, "-", "-", "-", "caps"])
            XCTAssertTrue(caps.split(separator: " ").contains("SCRAM-SHA-256-PLUS"), "\(listener): \(caps)")
            for mechanism in ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS"] {
                XCTAssertEqual(try python([proto, port, tls, mechanism, Self.user, Self.password, "plus"]), "OK VERIFIED", "\(listener) \(mechanism)")
                XCTAssertTrue(try python([proto, port, tls, mechanism, Self.user, "wrong", "plus"]).hasPrefix("FAIL"), "\(listener) \(mechanism) wrong password")
                XCTAssertTrue(try python([proto, port, tls, mechanism, Self.user, Self.password, "tamper"]).hasPrefix("FAIL"), "\(listener) \(mechanism) tampered binding")
            }
            // Under TLS with -PLUS offered, a client saying "y" (it thinks the server cannot bind)
            // was downgraded by someone: refused. "n" is fine.
            XCTAssertTrue(try python([proto, port, tls, "SCRAM-SHA-256", Self.user, Self.password, "y"]).hasPrefix("FAIL"), "\(listener) y flag")
            XCTAssertEqual(try python([proto, port, tls, "SCRAM-SHA-256", Self.user, Self.password, "n"]), "OK VERIFIED", "\(listener) n flag")
        }
    }

    func testPlusIsNotOfferedWithoutTLSAndYIsHonestThere() throws {
        let imap = "\(Self.ports["imap"]!)"
        let caps = try python(["imap", imap, "none", "-", "-", "-", "caps"])
        XCTAssertEqual(Set(caps.split(separator: " ")), ["SCRAM-SHA-256", "SCRAM-SHA-1", "CRAM-MD5", "DIGEST-MD5"], caps)
        XCTAssertEqual(try python(["imap", imap, "none", "SCRAM-SHA-256", Self.user, Self.password, "y"]), "OK VERIFIED")
        XCTAssertTrue(try python(["imap", imap, "none", "SCRAM-SHA-256-PLUS", Self.user, Self.password, "n"]).hasPrefix("FAIL"))
        // SMTP before STARTTLS and POP3 before STLS: no -PLUS either.
        let smtp = try python(["smtp", "\(Self.ports["smtp"]!)", "none", "-", "-", "-", "caps"])
        XCTAssertFalse(smtp.contains("PLUS"), smtp)
        XCTAssertTrue(smtp.contains("SCRAM-SHA-256"), smtp)
        let pop3 = try python(["pop3", "\(Self.ports["pop3"]!)", "none", "-", "-", "-", "caps"])
        XCTAssertFalse(pop3.contains("PLUS"), pop3)
        XCTAssertTrue(pop3.contains("CRAM-MD5"), pop3)
    }
}
