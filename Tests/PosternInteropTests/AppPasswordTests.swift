import Foundation
import PosternTestSupport
import PosternHost
import XCTest

/// App passwords on the real binary: made and listed with `postern admin user app-password`, each
/// accepted only by the protocols of its scope, revoked one by one, beside the account's password.
final class AppPasswordTests: XCTestCase {
    func config(imap: Int, pop3: Int, smtp: Int) -> String {
        """
        data_dir = "./var"
        workers = 1
        [plugin.store-sqlite]
        [plugin.queue]
        [plugin.sasl-plain]
        [plugin.imap]
        login_failure_delay = "0s"
        [plugin.pop3]
        login_failure_delay = "0s"
        [plugin.smtp]
        login_failure_delay = "0s"
        [[listener]]
        name = "imap"
        address = "127.0.0.1"
        port = \(imap)
        protocol = "imap"
        [listener.options]
        allow_plaintext_on_loopback = true
        [[listener]]
        name = "pop3"
        address = "127.0.0.1"
        port = \(pop3)
        protocol = "pop3"
        [listener.options]
        allow_plaintext_on_loopback = true
        [[listener]]
        name = "submission"
        address = "127.0.0.1"
        port = \(smtp)
        protocol = "smtp"
        [listener.options]
        mode = "submission"
        allow_plaintext_auth_on_loopback = true
        """
    }

    static let client = """
        import base64, imaplib, json, poplib, smtplib, sys
        imap_port, pop3_port, smtp_port = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
        user, password = sys.argv[4], sys.argv[5]
        out = {}
        c = imaplib.IMAP4("127.0.0.1", imap_port)
        try:
            out["imap"] = c.login(user, password)[0]
        except imaplib.IMAP4.error as e:
            out["imap"] = str(e)
        c.shutdown()
        p = poplib.POP3("127.0.0.1", pop3_port)
        try:
            p.user(user); out["pop3"] = p.pass_(password).decode().split(",")[0]
        except poplib.error_proto as e:
            out["pop3"] = e.args[0].decode()
        p.sock.close()
        s = smtplib.SMTP("127.0.0.1", smtp_port); s.ehlo("client.example")
        code, text = s.docmd("AUTH", "PLAIN " + base64.b64encode(("\\0" + user + "\\0" + password).encode()).decode())
        out["smtp"] = code
        s.close()
        print(json.dumps(out))
        """

    func testScopesRevocationAndTheAccountPassword() throws {
        let dir = TempDir("apppw")
        let imap = freePort(), pop3 = freePort(), smtp = freePort()
        let server = try ServerProcess.start(dir, config(imap: imap, pop3: pop3, smtp: smtp))
        defer { server.stop() }
        func admin(_ args: [String]) -> (status: Int32, stdout: String, stderr: String) {
            Build.runSeparately(Build.postern, ["admin"] + args + ["-c", server.configFile], cwd: dir.path)
        }
        XCTAssertEqual(admin(["domain", "add", "example.org"]).0, 0)
        XCTAssertEqual(admin(["user", "add", "alice@example.org", "--password", "pw-alice"]).0, 0)
        let made = admin(["user", "app-password", "add", "alice@example.org", "phone", "--scope", "imap", "--json"])
        XCTAssertEqual(made.0, 0, made.stderr)
        let phone = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(made.1.utf8)) as? [String: String])
        let phonePassword = try XCTUnwrap(phone["password"])
        XCTAssertEqual(phone["scopes"], "imap")
        XCTAssertTrue(phonePassword.range(of: #"^[a-z2-9]{6}(-[a-z2-9]{6}){3}$"#, options: .regularExpression) != nil, phonePassword)
        // A second with the same name is refused; an unknown scope too.
        let again = admin(["user", "app-password", "add", "alice@example.org", "phone"])
        XCTAssertEqual(again.0, 1)
        XCTAssertTrue(again.stderr.contains("already has an app password named 'phone'"), again.stderr)
        let badScope = admin(["user", "app-password", "add", "alice@example.org", "x", "--scope", "ftp"])
        XCTAssertNotEqual(badScope.0, 0)
        XCTAssertTrue(badScope.stderr.contains("unknown scope 'ftp'"), badScope.stderr)
        let laptop = admin(["user", "app-password", "add", "alice@example.org", "laptop", "--scope", "smtp,pop3", "--json"])
        XCTAssertEqual(laptop.0, 0, laptop.stderr)
        let laptopPassword = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(laptop.1.utf8)) as? [String: String])?["password"])

        let script = dir.write("apppw_client.py", Self.client)
        func logins(_ password: String) throws -> [String: Any] {
            let (code, output) = Build.run(try Build.tool("python3"), [script, "\(imap)", "\(pop3)", "\(smtp)", "alice@example.org", password])
            XCTAssertEqual(code, 0, output)
            let line = try XCTUnwrap(output.split(separator: "\n").last)
            return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
        let failed = "b'[AUTHENTICATIONFAILED] Authentication failed.'"
        let phoneResult = try logins(phonePassword)
        XCTAssertEqual(phoneResult["imap"] as? String, "OK")
        XCTAssertEqual(phoneResult["pop3"] as? String, "-ERR [AUTH] authentication failed")
        XCTAssertEqual(phoneResult["smtp"] as? Int, 535)
        // Typed in capitals, without the dashes: the same password.
        let typed = try logins(phonePassword.uppercased().replacingOccurrences(of: "-", with: ""))
        XCTAssertEqual(typed["imap"] as? String, "OK")
        let laptopResult = try logins(laptopPassword)
        XCTAssertEqual(laptopResult["imap"] as? String, failed)
        XCTAssertEqual(laptopResult["pop3"] as? String, "+OK logged in")
        XCTAssertEqual(laptopResult["smtp"] as? Int, 235)

        let listed = admin(["user", "app-password", "list", "alice@example.org", "--json"])
        XCTAssertEqual(listed.0, 0, listed.stderr)
        let list = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(listed.1.utf8)) as? [[String: Any]])
        XCTAssertEqual(list.map { $0["name"] as? String }, ["laptop", "phone"])
        XCTAssertEqual(list.map { $0["scopes"] as? [String] }, [["pop3", "smtp"], ["imap"]])
        XCTAssertNotNil(list.last?["lastUsed"] as? Int, "a login marks the password used")
        XCTAssertFalse(listed.1.contains(phonePassword), "the secret is never listed")

        XCTAssertEqual(admin(["user", "app-password", "revoke", "alice@example.org", "phone"]).0, 0)
        XCTAssertEqual(try logins(phonePassword)["imap"] as? String, failed)
        XCTAssertEqual(try logins(laptopPassword)["smtp"] as? Int, 235, "revoking one leaves the others")
        let main = try logins("pw-alice")
        XCTAssertEqual(main["imap"] as? String, "OK")
        XCTAssertEqual(main["pop3"] as? String, "+OK logged in")
        XCTAssertEqual(main["smtp"] as? Int, 235)
        let missing = admin(["user", "app-password", "revoke", "alice@example.org", "phone"])
        XCTAssertEqual(missing.0, 1)
        XCTAssertTrue(missing.stderr.contains("has no app password named 'phone'"), missing.stderr)
    }
}
