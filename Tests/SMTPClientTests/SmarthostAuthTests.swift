import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest

/// The `smtp` transport relaying through a smarthost that wants AUTH (RFC 4954): the smarthost
/// is a running `postern serve` whose submission listener takes mail only after STARTTLS and
/// AUTH; the credentials come from a Postfix-style password table served by `table-file`.
final class SmarthostAuthTests: XCTestCase {
    func testRelayThroughASmarthostThatWantsAUTH() async throws {
        let dir = TempDir("smarthost-auth")
        let port = freePort()
        let cert = dir.path + "/relay.crt", key = dir.path + "/relay.key"
        let openssl = Build.run("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                                                     "-subj", "/CN=relay.test", "-days", "2"])
        XCTAssertEqual(openssl.status, 0, openssl.output)
        let config = dir.write("relay.toml", """
            data_dir = "./var"
            workers = 1
            [plugin.store-sqlite]
            password_iterations = 4096
            [plugin.sasl-plain]
            [plugin.sasl-login]
            [plugin.queue]
            hostname = "relay.test"
            [plugin.smtp]
            hostname = "relay.test"
            [[listener]]
            name = "submission"
            address = "127.0.0.1"
            port = \(port)
            protocol = "smtp"
            tls = "starttls"
            certificate = "\(cert)"
            key = "\(key)"
            [listener.options]
            mode = "submission"
            """)
        func admin(_ args: [String]) -> String { Build.run(Build.postern, args + ["-c", config], cwd: dir.path).output }
        _ = admin(["admin", "domain", "add", "b.test"])
        _ = admin(["admin", "user", "add", "carol@b.test", "--password", "carol-pw"])
        _ = admin(["admin", "user", "add", "relay@b.test", "--password", "relay-pw"])
        let serve = try PosternServe(config: config, in: dir.path)
        defer { serve.stop() }
        XCTAssertTrue(waitUntil(30) { acceptsTCP("127.0.0.1", port) })
        let hop = "[127.0.0.1]:\(port)"

        func client(_ table: String?) throws -> PluginFixture {
            var sections: [String: [String: ConfigValue]] = [
                "smtp-client": ["hostname": .string("client.test"), "tls": .string("may"), "connect_timeout": .string("3s"),
                                "command_timeout": .string("10s")],
            ]
            if let table {
                sections["table-file"] = ["tables": .table(["sasl": .table(["path": .string(dir.write("sasl-\(UUID().uuidString.prefix(6))", table))])])]
                sections["smtp-client"]?["sasl_password_tables"] = .array([.string("sasl")])
            }
            return try PluginFixture(sections)
        }

        // The right password: STARTTLS, AUTH, and the relay delivers to its local user (the
        // submission listener also checks that the sender belongs to the authenticated user).
        let good = try client("# Postfix's sasl_passwd format\n\(hop) relay@b.test:relay-pw\n")
        let message = testMessage("through the smarthost")
        let delivered = await good.smtp.deliver(queued(dir, message, from: "relay@b.test", to: ["carol@b.test"], nextHop: hop))
        XCTAssertEqual(delivered.map(\.status), [.delivered], "\(delivered)")
        XCTAssertTrue(waitUntil(15) { !admin(["admin", "message", "list", "carol@b.test"]).isEmpty }, admin(["queue", "list"]))

        // A wrong password defers (the fix is on this side; mail must not bounce for it).
        let wrong = try client("\(hop) relay@b.test:not-the-password\n")
        let deferred = await wrong.smtp.deliver(queued(dir, testMessage("wrong password"), from: "relay@b.test", to: ["carol@b.test"], nextHop: hop))
        XCTAssertEqual(deferred.map(\.status), [.deferred], "\(deferred)")
        XCTAssertTrue(deferred.first?.reply.text.contains("SASL authentication failed; host 127.0.0.1[127.0.0.1]:\(port) said: 535") == true, "\(deferred)")

        // No credentials: the submission listener refuses the transaction itself.
        let none = try client(nil)
        let refused = await none.smtp.deliver(queued(dir, testMessage("no credentials"), from: "relay@b.test", to: ["carol@b.test"], nextHop: hop))
        XCTAssertEqual(refused.first?.reply.code, 530, "\(refused)")
        XCTAssertEqual(admin(["admin", "message", "list", "carol@b.test"]).split(separator: "\n").count, 1, "only the authenticated message arrived")
    }
}
