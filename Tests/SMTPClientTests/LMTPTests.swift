import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest

/// The built `lmtp` transport delivering to the project's own LMTP server (`postern serve` with
/// an `lmtp` listener on TCP and one on a Unix socket, into the embedded store), and to
/// smtp-sink in LMTP mode.
final class LMTPTests: XCTestCase {
    /// `postern serve` in a temporary directory, stopped with SIGTERM at the end.
    final class Server {
        let dir = TempDir("lmtp-peer")
        let port = freePort()
        let socketPath: String
        let configFile: String
        let process = Process()

        init() throws {
            socketPath = dir.path + "/lmtp.sock"
            configFile = dir.write("postern.toml", """
                data_dir = "\(dir.path)/var"
                workers = 1
                [plugin.store-sqlite]
                password_iterations = 4096
                [[listener]]
                name = "lmtp"
                address = "127.0.0.1"
                port = \(port)
                protocol = "lmtp"
                [[listener]]
                name = "lmtp-unix"
                path = "\(socketPath)"
                protocol = "lmtp"

                """)
            let log = dir.path + "/postern.log"
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            process.executableURL = URL(fileURLWithPath: Build.postern)
            process.arguments = ["serve", "-c", configFile]
            process.standardOutput = FileHandle(forWritingAtPath: log)
            process.standardError = FileHandle(forWritingAtPath: log)
            try process.run()
            guard waitUntil(60, { acceptsTCP("127.0.0.1", self.port) && FileManager.default.fileExists(atPath: self.socketPath) }) else {
                stop()
                throw TestFailure("postern serve did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            }
        }

        @discardableResult
        func admin(_ arguments: [String]) -> (status: Int32, output: String) {
            Build.run(Build.postern, ["admin"] + arguments + ["-c", configFile], cwd: dir.path)
        }

        func stop() {
            guard process.isRunning else { return }
            process.terminate()
            process.waitUntilExit()
        }

        deinit { stop() }
    }

    func testPerRecipientRepliesOverAUnixSocketAndTCP() async throws {
        let server = try Server()
        XCTAssertEqual(server.admin(["domain", "add", "example.org"]).status, 0)
        for user in ["alice", "bob", "carol"] {
            XCTAssertEqual(server.admin(["user", "add", "\(user)@example.org", "--password", "pw-\(user)"]).status, 0)
        }
        XCTAssertEqual(server.admin(["quota", "set", "carol@example.org", "--storage", "100"]).status, 0)
        let fixture = try PluginFixture(nameserver: "127.0.0.1:53", smtpClient: ["hostname": .string("client.test")])
        let dir = TempDir("lmtp-client")
        let message = Array("From: sender@client.test\r\nTo: alice@example.org\r\nMessage-ID: <lmtp-one@client.test>\r\nSubject: lmtp\r\n\r\n.dot line\r\nK\u{e4}se\r\n".utf8)
        let outcomes = await fixture.lmtp.deliver(queued(dir, message, to: ["alice@example.org", "nobody@example.org", "carol@example.org", "bob@example.org"],
                                                         nextHop: "unix:\(server.socketPath)"))
        XCTAssertEqual(outcomes.map(\.status), [.delivered, .failed, .deferred, .delivered], "\(outcomes)")
        XCTAssertEqual(outcomes.map(\.reply.code), [250, 550, 452, 250])
        XCTAssertEqual(outcomes[2].reply.text, "host unix:\(server.socketPath) said: 452 mailbox full (in reply to end of DATA command)")
        XCTAssertEqual(server.admin(["message", "get", "alice@example.org", "1"]).output, String(decoding: message, as: UTF8.self))
        XCTAssertEqual(server.admin(["message", "get", "bob@example.org", "1"]).output, String(decoding: message, as: UTF8.self))

        let overTCP = await fixture.lmtp.deliver(queued(dir, testMessage("over tcp"), to: ["bob@example.org"], nextHop: "[127.0.0.1]:\(server.port)"))
        XCTAssertEqual(overTCP.map(\.status), [.delivered], "\(overTCP)")
        XCTAssertTrue(overTCP[0].reply.text.hasPrefix("host 127.0.0.1[127.0.0.1]:\(server.port) said: 250 delivered to bob@example.org"), overTCP[0].reply.text)
        XCTAssertTrue(server.admin(["message", "list", "bob@example.org"]).output.hasPrefix("1\t"))

        // No next hop and no lmtp_nexthop: a configuration problem, deferred.
        let nowhere = await fixture.lmtp.deliver(queued(dir, message, to: ["alice@example.org"]))
        XCTAssertEqual(nowhere.map(\.status), [.deferred])
        XCTAssertEqual(nowhere[0].reply.enhanced, "4.3.5")
        // A socket nobody listens on: deferred, and says where it tried.
        let gone = await fixture.lmtp.deliver(queued(dir, message, to: ["alice@example.org"], nextHop: "unix:\(dir.path)/none.sock"))
        XCTAssertEqual(gone.map(\.status), [.deferred])
        XCTAssertTrue(gone[0].reply.text.contains("connect to unix:\(dir.path)/none.sock: No such file or directory"), gone[0].reply.text)
    }

    func testLMTPToSMTPSink() async throws {
        let port = freePort()
        let sink = try SMTPSink(port: port, options: ["-L"])
        let fixture = try PluginFixture(nameserver: "127.0.0.1:53", smtpClient: ["hostname": .string("client.test"), "lmtp_nexthop": .string("[127.0.0.1]:\(port)")])
        let dir = TempDir("lmtp-sink")
        let outcomes = await fixture.lmtp.deliver(queued(dir, testMessage("to the sink"), to: ["a@example.org", "b@example.org"]))
        XCTAssertEqual(outcomes.map(\.status), [.delivered, .delivered], "\(outcomes)")
        let received = try XCTUnwrap(sink.waitForTransactions(1).first)
        XCTAssertEqual(received.recipientArguments, ["<a@example.org>", "<b@example.org>"])
        XCTAssertEqual(received.heloArguments, "client.test")
    }
}
