import Foundation
import PluginAPI
import PosternHost
@testable import PosternSASLOAuthCore
import PosternTestSupport
import XCTest

/// OAUTHBEARER and XOAUTH2 through the real binary: curl (IMAP, POP3, SMTP) and msmtp (SMTP)
/// with JWTs signed by a key whose JWKS the server reads, and opaque tokens checked at a real
/// introspection endpoint; expired, wrong-audience, forged and unsigned tokens refused with the
/// RFC 7628 error challenge, and valid tokens for a suspended or missing account refused too.
final class TokenInteropTests: XCTestCase {
    static var fixture: TokenServerFixture?
    static var startError: Error?

    override class func setUp() {
        super.setUp()
        do { fixture = try TokenServerFixture("token-interop") } catch { startError = error }
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

    func curl(_ args: [String]) throws -> (status: Int32, output: String) {
        try TokenServerFixture.run(try Build.tool("curl"), ["-sv", "--max-time", "20"] + args)
    }

    func testCurlIMAPOAuthBearerAndXOAuth2() throws {
        let f = try f
        let token = try awaitToken { try await f.token("alice@example.org") }
        let bearer = try curl(["--oauth2-bearer", token, "-u", "alice@example.org:", "imap://127.0.0.1:\(f.imap)/"])
        XCTAssertEqual(bearer.status, 0, bearer.output)
        XCTAssertTrue(bearer.output.contains("AUTHENTICATE OAUTHBEARER"), bearer.output)
        XCTAssertTrue(bearer.output.contains("INBOX"), bearer.output)
        // XOAUTH2: curl 7.88 takes OAUTHBEARER whenever a server offers both (its AUTH= login
        // option does not narrow the choice), so Python's imaplib speaks XOAUTH2 here.
        let xoauth = try TokenServerFixture.run(try Build.tool("python3"), ["-c", """
            import imaplib, sys
            m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
            m.debug = 4
            token = sys.argv[2]
            typ, _ = m.authenticate("XOAUTH2", lambda _: ("user=alice@example.org\\x01auth=Bearer " + token + "\\x01\\x01").encode())
            print("auth", typ)
            print(m.list())
            """, "\(f.imap)", token])
        XCTAssertEqual(xoauth.status, 0, xoauth.output)
        XCTAssertTrue(xoauth.output.contains("AUTHENTICATE XOAUTH2"), xoauth.output)
        XCTAssertTrue(xoauth.output.contains("auth OK"), xoauth.output)
        XCTAssertTrue(xoauth.output.contains("INBOX"), xoauth.output)
        // Over implicit TLS too (the listener that also asks for client certificates).
        let tls = try curl(["--oauth2-bearer", token, "-u", "alice@example.org:", "--cacert", f.certificates.caCert,
                            "imaps://127.0.0.1:\(f.imaps)/"])
        XCTAssertEqual(tls.status, 0, tls.output)
    }

    func testCurlPOP3AndSMTP() throws {
        let f = try f
        let token = try awaitToken { try await f.token("alice@example.org") }
        for mech in ["OAUTHBEARER"] {
            let pop = try curl(["--oauth2-bearer", token, "-u", "alice@example.org:", "--login-options", "AUTH=\(mech)",
                                "pop3://127.0.0.1:\(f.pop3)/"])
            XCTAssertEqual(pop.status, 0, pop.output)
            XCTAssertTrue(pop.output.contains("AUTH \(mech)"), pop.output)
            let message = f.dir.write("message-\(mech).txt", "From: alice@example.org\r\nTo: bob@example.org\r\nSubject: via \(mech)\r\n\r\nHello.\r\n")
            let smtp = try curl(["--oauth2-bearer", token, "-u", "alice@example.org:", "--login-options", "AUTH=\(mech)",
                                 "--mail-from", "alice@example.org", "--mail-rcpt", "bob@example.org", "-T", message,
                                 "smtp://127.0.0.1:\(f.submission)"])
            XCTAssertEqual(smtp.status, 0, smtp.output)
            XCTAssertTrue(smtp.output.contains("AUTH \(mech)"), smtp.output)
            XCTAssertTrue(smtp.output.contains("< 235 2.7.0"), smtp.output)
        }
        // XOAUTH2 with Python's poplib and smtplib (curl 7.88 prefers OAUTHBEARER, see above).
        let xoauth = try TokenServerFixture.run(try Build.tool("python3"), ["-c", """
            import base64, poplib, smtplib, sys
            pop_port, smtp_port, token = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
            ir = "user=alice@example.org\\x01auth=Bearer " + token + "\\x01\\x01"
            p = poplib.POP3("127.0.0.1", pop_port)
            print("pop3", p._shortcmd("AUTH XOAUTH2 " + base64.b64encode(ir.encode()).decode()).decode())
            print("pop3 stat", p.stat())
            p.quit()
            s = smtplib.SMTP("127.0.0.1", smtp_port)
            s.ehlo("client.test")
            code, text = s.auth("XOAUTH2", lambda challenge=None: ir, initial_response_ok=True)
            print("smtp", code, text.decode())
            s.sendmail("alice@example.org", ["bob@example.org"], "Subject: via XOAUTH2\\r\\n\\r\\nHello.\\r\\n")
            print("sent")
            s.quit()
            """, "\(f.pop3)", "\(f.submission)", token])
        XCTAssertEqual(xoauth.status, 0, xoauth.output)
        XCTAssertTrue(xoauth.output.contains("pop3 +OK"), xoauth.output)
        XCTAssertTrue(xoauth.output.contains("smtp 235 2.7.0"), xoauth.output)
        XCTAssertTrue(xoauth.output.contains("sent"), xoauth.output)
    }

    func testRefusedTokensGetTheErrorChallenge() throws {
        let f = try f
        let now = Date().timeIntervalSince1970
        let forger = TestIssuer()
        let cases: [(String, String)] = try [
            ("expired", awaitToken { try await f.token("alice@example.org", ["exp": .number((now - 3600).rounded())]) }),
            ("wrong audience", awaitToken { try await f.token("alice@example.org", ["aud": .string("someone-else")]) }),
            ("wrong issuer", awaitToken { try await f.token("alice@example.org", ["iss": .string("https://evil.test")]) }),
            ("forged", awaitToken { try await forger.token(TestIssuer.claims(email: "alice@example.org")) }),
            ("alg none", f.issuer.unsignedToken(TestIssuer.claims(email: "alice@example.org"))),
            ("suspended account", awaitToken { try await f.token("carol@example.org") }),
            ("no such account", awaitToken { try await f.token("nobody@example.org") }),
            ("unknown opaque", "opaque-nobody-knows"),
            ("expired opaque", "opaque-expired"),
        ]
        for (name, token) in cases {
            let r = try curl(["--oauth2-bearer", token, "-u", "alice@example.org:", "imap://127.0.0.1:\(f.imap)/"])
            XCTAssertEqual(r.status, 67, "\(name): curl should report a refused login\n\(r.output)")
            // The challenge curl printed is the RFC 7628 JSON error.
            let challenge = r.output.split(whereSeparator: \.isNewline).first { $0.hasPrefix("< + ") && $0.count > 8 }  // "\r\n" is one Character
            let json = challenge.flatMap { Data(base64Encoded: String($0.dropFirst(4)).trimmingCharacters(in: .whitespacesAndNewlines)) }
                .flatMap { try? JSONDecoder().decode([String: String].self, from: $0) }
            XCTAssertEqual(json?["status"], "invalid_token", "\(name): \(r.output)")
            XCTAssertEqual(json?["scope"], "mail", name)
        }
        // SMTP: 535 after the error challenge.
        let expired = try awaitToken { try await f.token("alice@example.org", ["exp": .number((now - 3600).rounded())]) }
        let message = f.dir.write("refused.txt", "Subject: no\r\n\r\nno\r\n")
        let smtp = try curl(["--oauth2-bearer", expired, "-u", "alice@example.org:", "--mail-from", "alice@example.org",
                             "--mail-rcpt", "bob@example.org", "-T", message, "smtp://127.0.0.1:\(f.submission)"])
        XCTAssertNotEqual(smtp.status, 0)
        XCTAssertTrue(smtp.output.contains("< 535 5.7.8"), smtp.output)
        XCTAssertTrue(f.server.log.contains("bearer token refused"), "the reason is logged")
    }

    func testIntrospectedTokensAndTheirCache() throws {
        let f = try f
        let before = try f.introspection.requestCount
        for _ in 0..<2 {
            let r = try curl(["--oauth2-bearer", "opaque-alice", "-u", "alice@example.org:", "imap://127.0.0.1:\(f.imap)/"])
            XCTAssertEqual(r.status, 0, r.output)
        }
        XCTAssertEqual(try f.introspection.requestCount - before, 1, "the second login was answered from the cache")
    }

    func testMsmtpOAuthBearerAndXOAuth2() throws {
        let f = try f
        let token = try awaitToken { try await f.token("alice@example.org") }
        for auth in ["oauthbearer", "xoauth2"] {
            let r = try TokenServerFixture.run(try Build.tool("msmtp"), [
                "--host=127.0.0.1", "--port=\(f.submission)", "--tls=off", "--auth=\(auth)", "--user=alice@example.org",
                "--passwordeval=echo \(token)", "--from=alice@example.org", "--debug", "bob@example.org",
            ], input: "From: alice@example.org\r\nTo: bob@example.org\r\nSubject: msmtp \(auth)\r\n\r\nHi.\r\n")
            XCTAssertEqual(r.status, 0, r.output)
            XCTAssertTrue(r.output.contains("AUTH \(auth.uppercased())"), r.output)
            XCTAssertTrue(r.output.contains("235 2.7.0"), r.output)
        }
        let bad = try TokenServerFixture.run(try Build.tool("msmtp"), [
            "--host=127.0.0.1", "--port=\(f.submission)", "--tls=off", "--auth=oauthbearer", "--user=alice@example.org",
            "--passwordeval=echo forged.\(token.split(separator: ".")[1]).AAAA", "--from=alice@example.org", "bob@example.org",
        ], input: "Subject: x\r\n\r\nx\r\n")
        XCTAssertNotEqual(bad.status, 0, bad.output)
    }

    /// Runs an async token maker from a synchronous test.
    func awaitToken(_ make: @escaping @Sendable () async throws -> String) throws -> String {
        nonisolated(unsafe) var result: Result<String, Error> = .failure(SystemError.message("no token"))
        let done = DispatchSemaphore(value: 0)
        Task {
            do { result = .success(try await make()) } catch { result = .failure(error) }
            done.signal()
        }
        done.wait()
        return try result.get()
    }
}
