import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest

/// STARTTLS going wrong, against a scripted server (Python, one session at a time) that offers
/// STARTTLS and then breaks the handshake, or slips a reply in before it.
final class STARTTLSFailureTests: XCTestCase {
    static let server = #"""
        import json, socket, sys
        mode, port, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(5)
        while True:
            conn, _ = listener.accept()
            # A client that gives up mid-session (a reset, a broken pipe) must not end the
            # server: the next session (the plaintext retry) has to find it listening.
            commands = []
            try:
                reader = conn.makefile("rb")
                conn.sendall(b"220 scripted ESMTP\r\n")
                while True:
                    line = reader.readline()
                    if not line:
                        break
                    command = line.decode(errors="replace").rstrip("\r\n")
                    commands.append(command)
                    verb = command.split(" ")[0].upper()
                    if verb == "EHLO":
                        conn.sendall(b"250-scripted\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
                    elif verb == "STARTTLS" and mode == "broken-handshake":
                        conn.sendall(b"220 2.0.0 go ahead\r\n")
                        conn.recv(4096)                       # the ClientHello
                        conn.sendall(b"this is not TLS\r\n" * 8)
                        break
                    elif verb == "STARTTLS" and mode == "injection":
                        # A reply before the handshake, as a man in the middle would add it.
                        conn.sendall(b"220 2.0.0 go ahead\r\n250 2.0.0 injected\r\n")
                    elif verb in ("MAIL", "RCPT"):
                        conn.sendall(b"250 2.0.0 ok\r\n")
                    elif verb == "DATA":
                        conn.sendall(b"354 go ahead\r\n")
                        while reader.readline() not in (b".\r\n", b""):
                            pass
                        conn.sendall(b"250 2.0.0 accepted\r\n")
                    elif verb == "QUIT":
                        conn.sendall(b"221 2.0.0 bye\r\n")
                        break
                    else:
                        conn.sendall(b"502 5.5.2 unknown\r\n")

            except OSError:
                pass
            with open(log, "a") as out:
                out.write(json.dumps(commands) + "\n")
            conn.close()
        """#

    final class ScriptedServer {
        let dir = TempDir("scripted-smtp")
        let port = freePort()
        let process = Process()
        var logPath: String { dir.path + "/sessions.jsonl" }

        init(mode: String) throws {
            let script = dir.write("server.py", Self.script)
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = [script, mode, String(port), logPath]
            process.standardInput = FileHandle.nullDevice
            try process.run()
            guard waitUntil(20, { acceptsTCP("127.0.0.1", self.port) }) else {
                stop()
                throw TestFailure("the scripted server did not start")
            }
        }

        static var script: String { STARTTLSFailureTests.server }

        /// The commands of each finished session (the readiness probe's empty one left out).
        func sessions() -> [[String]] {
            let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String]
            }.filter { !$0.isEmpty }
        }

        func stop() {
            guard process.isRunning else { return }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }

        deinit { stop() }
    }

    func testBrokenHandshakeIsRetriedInPlaintextUnderMay() async throws {
        let server = try ScriptedServer(mode: "broken-handshake")
        let fixture = try PluginFixture(nameserver: "127.0.0.1:53", smtpClient: ["hostname": .string("client.test"), "tls": .string("may")])
        let dir = TempDir("starttls")
        let outcomes = await fixture.smtp.deliver(queued(dir, testMessage("retry"), to: ["a@example.test"], nextHop: "[127.0.0.1]:\(server.port)"))
        XCTAssertEqual(outcomes.map(\.status), [.delivered], "\(outcomes)")
        XCTAssertEqual(outcomes[0].reply.text, "host 127.0.0.1[127.0.0.1]:\(server.port) said: 250 accepted (in reply to end of DATA command)")
        XCTAssertTrue(waitUntil(5) { server.sessions().count == 2 })
        let sessions = server.sessions()
        XCTAssertEqual(sessions.first, ["EHLO client.test", "STARTTLS"])
        XCTAssertEqual(sessions.last, ["EHLO client.test", "MAIL FROM:<sender@client.test>", "RCPT TO:<a@example.test>", "DATA", "QUIT"],
                       "the second session goes without STARTTLS")

        // Under encrypt the same server is never given the message.
        let strict = try PluginFixture(nameserver: "127.0.0.1:53", smtpClient: ["tls": .string("encrypt")])
        let refused = await strict.smtp.deliver(queued(dir, testMessage("strict"), to: ["a@example.test"], nextHop: "[127.0.0.1]:\(server.port)"))
        XCTAssertEqual(refused.map(\.status), [.deferred])
        XCTAssertTrue(refused[0].reply.text.contains("TLS handshake with 127.0.0.1[127.0.0.1]:\(server.port) failed"), refused[0].reply.text)
        XCTAssertTrue(waitUntil(5) { server.sessions().count == 3 })
        XCTAssertEqual(server.sessions().last?.last, "STARTTLS", "no plaintext retry, no MAIL")
    }

    func testReplyInjectedBeforeTheHandshakeEndsTheSession() async throws {
        let server = try ScriptedServer(mode: "injection")
        let fixture = try PluginFixture(nameserver: "127.0.0.1:53", smtpClient: ["hostname": .string("client.test"), "tls": .string("may")])
        let dir = TempDir("starttls-injection")
        let outcomes = await fixture.smtp.deliver(queued(dir, testMessage("injected"), to: ["a@example.test"], nextHop: "[127.0.0.1]:\(server.port)"))
        XCTAssertEqual(outcomes.map(\.status), [.deferred], "\(outcomes)")
        XCTAssertEqual(outcomes[0].reply.enhanced, "4.4.1")
        XCTAssertTrue(outcomes[0].reply.text.hasSuffix("protocol error (data after the 220 reply to STARTTLS) with 127.0.0.1[127.0.0.1]:\(server.port) while performing the TLS handshake"),
                      outcomes[0].reply.text)
        XCTAssertTrue(waitUntil(5) { server.sessions().count == 1 })
        XCTAssertEqual(server.sessions(), [["EHLO client.test", "STARTTLS"]])
    }
}
