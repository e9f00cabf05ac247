import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest

/// store-postgres with its database unreachable: every operation is a temporary failure within
/// `connect_timeout` (the pool would otherwise wait for a connection forever), logins are
/// "unavailable" rather than "wrong password", and LMTP answers 4xx so the sender keeps the mail.
final class PostgresDownTests: XCTestCase {
    func config(_ dir: TempDir, extra: String = "") -> String {
        """
        data_dir = "\(dir.path)/var"
        user = "root"
        [plugin.store-postgres]
        host = "127.0.0.1"
        port = \(freePort())
        user = "postern"
        database = "nowhere"
        connect_timeout = "1s"
        \(extra)
        """
    }

    func testEveryOperationIsATemporaryFailure() async throws {
        let dir = TempDir("pg-down")
        let source = config(dir)
        let context = try StoreFixture.open(source: source, file: dir.write("postern.toml", source))
        let store = try context.store()
        do {
            _ = try await store.checkRecipient("alice@example.org")
            XCTFail("answered without a database")
        } catch StorageError.temporary(let why) {
            XCTAssertTrue(why.contains("no connection within 1.0 s"), why)
        }
        do {
            _ = try await store.status(user: "alice@example.org", mailbox: "INBOX")
            XCTFail("answered without a database")
        } catch StorageError.temporary {}
        let credentials = try XCTUnwrap(context.services.credentialBackends.first?.backend)
        let answer = try await credentials.verifyPassword(user: "alice@example.org", password: "secret")
        guard case .unavailable = answer else { return XCTFail("\(answer)") }
    }

    func testLMTPDefersWhileTheDatabaseIsDown() throws {
        let dir = TempDir("pg-down-lmtp")
        let lmtp = freePort()
        let server = try ServerProcess.start(dir, config(dir) + """

            [[listener]]
            name = "lmtp"
            address = "127.0.0.1"
            port = \(lmtp)
            protocol = "lmtp"
            """)
        defer { server.stop() }
        let program = """
            import json, smtplib, sys
            l = smtplib.LMTP("127.0.0.1", int(sys.argv[1]))
            l.ehlo("client")
            l.mail("x@example.net")
            code, text = l.rcpt("alice@example.org")
            print(json.dumps({"code": code, "text": text.decode()}))
            """
        let (status, stdout, stderr) = Build.runSeparately("/usr/bin/python3", ["-c", program, "\(lmtp)"])
        XCTAssertEqual(status, 0, stderr)
        let out = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any])
        let code = try XCTUnwrap(out["code"] as? Int)
        XCTAssertTrue((400..<500).contains(code), "a temporary refusal, the sender retries: \(out)")
    }
}
