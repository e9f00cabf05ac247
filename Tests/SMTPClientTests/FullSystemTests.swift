import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest

/// The whole MTA against a real Postfix, with DNS from a throw-away unbound: Postfix relays mail
/// for `postern.test` to Postern as that domain's MX (SMTP server, queue, store), and Postern
/// delivers mail for `example.test` to Postfix, found through the MX record (queue, smtp
/// transport, DNS). Both arrive byte-identical apart from trace fields. Root only (Postfix).
final class FullSystemTests: XCTestCase {
    func testPostfixToPosternAndPosternToPostfixThroughDNS() throws {
        guard getuid() == 0 else { throw XCTSkip("Postfix is started as root (postfix -c DIR start); run the tests as root") }
        let dir = TempDir("full-system")
        let mxPort = freePort(), relayPort = freePort()
        dir.write("transport", "postern.test smtp:[127.0.0.1]:\(mxPort)\n")
        let postfix = try PostfixServer(users: ["bob"], extraMainCF: """
            relay_domains = postern.test
            transport_maps = texthash:\(dir.path)/transport
            """)
        defer { postfix.stop() }
        let unbound = try UnboundServer(zones: TestZones.lines)
        defer { unbound.stop() }

        let config = dir.write("postern.toml", """
            data_dir = "./var"
            workers = 1
            [plugin.store-sqlite]
            [plugin.queue]
            hostname = "mx.postern.test"
            min_backoff = "1s"
            max_backoff = "2s"
            [plugin.dns]
            nameservers = ["\(unbound.address)"]
            [plugin.smtp-client]
            hostname = "mx.postern.test"
            port = \(postfix.port)
            [plugin.smtp]
            hostname = "mx.postern.test"
            [[listener]]
            name = "mx"
            address = "127.0.0.1"
            port = \(mxPort)
            protocol = "smtp"
            [[listener]]
            name = "relay"
            address = "127.0.0.1"
            port = \(relayPort)
            protocol = "smtp"
            [listener.options]
            trust_loopback = true
            """)
        for args in [["domain", "add", "postern.test"], ["user", "add", "alice@postern.test", "--password", "pw"]] {
            let r = Build.run(Build.postern, ["admin"] + args + ["-c", config], cwd: dir.path)
            XCTAssertEqual(r.status, 0, r.output)
        }
        let serve = Process()
        serve.executableURL = URL(fileURLWithPath: Build.postern)
        serve.arguments = ["serve", "-c", config]
        serve.currentDirectoryURL = URL(fileURLWithPath: dir.path)
        let log = dir.path + "/postern.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        serve.standardOutput = FileHandle(forWritingAtPath: log)
        serve.standardError = FileHandle(forWritingAtPath: log)
        try serve.run()
        defer {
            Build.run(Build.postern, ["ctl", "stop", "-c", config], cwd: dir.path)
            serve.waitUntilExit()
        }
        XCTAssertTrue(waitUntil(30) { acceptsTCP("127.0.0.1", mxPort) && acceptsTCP("127.0.0.1", relayPort) },
                      (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")

        let send = dir.write("send.py", """
            import smtplib, sys
            port, sender, rcpt, path = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
            s = smtplib.SMTP("127.0.0.1", port, timeout=20); s.ehlo("client.test")
            s.sendmail(sender, [rcpt], open(path, "rb").read()); s.quit()
            """)
        let python = "/usr/bin/python3"
        let body = ".leading dot\r\nline with trailing blanks  \r\n" + String(repeating: "y", count: 900) + "\r\nlast line\r\n"

        // 1. In through Postfix, which relays to Postern as the MX of postern.test.
        let inbound = testMessage("from postfix to postern", body: body)
        let inboundFile = dir.write("inbound.eml", inbound)
        var r = Build.run(python, [send, "\(postfix.port)", "bob@example.test", "alice@postern.test", inboundFile])
        XCTAssertEqual(r.status, 0, r.output)
        var stored: String?
        XCTAssertTrue(waitUntil(30) {
            let listed = Build.run(Build.postern, ["admin", "message", "list", "alice@postern.test", "-c", config], cwd: dir.path).output
            guard let uid = listed.split(separator: "\t").first, !listed.isEmpty else { return false }
            stored = Build.run(Build.postern, ["admin", "message", "get", "alice@postern.test", String(uid), "-c", config], cwd: dir.path).output
            return true
        }, "Postern never stored the relayed message\n\(postfix.log)\n\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        let arrivedIn = try XCTUnwrap(stored)
        XCTAssertEqual(withoutTraceFields(Array(arrivedIn.utf8)), withoutTraceFields(inbound))
        XCTAssertTrue(arrivedIn.contains("by mx.example.test (Postfix)"), "Postfix's own Received: \(arrivedIn.prefix(800))")
        // The client's name as reverse DNS gives it: the test zones have no PTR for 127.0.0.1.
        XCTAssertTrue(arrivedIn.hasPrefix("Return-Path: <bob@example.test>\r\nReceived: from mx.example.test (unknown [127.0.0.1])\r\n\tby mx.postern.test (Postern) with ESMTP id "),
                      String(arrivedIn.prefix(400)))

        // 2. Out through Postern, which finds Postfix as the MX of example.test through DNS.
        let outbound = testMessage("from postern to postfix", body: body)
        let outboundFile = dir.write("outbound.eml", outbound)
        r = Build.run(python, [send, "\(relayPort)", "alice@postern.test", "bob@example.test", outboundFile])
        XCTAssertEqual(r.status, 0, r.output)
        let found = runBlockingFound { await postfix.message(of: "bob", containing: messageID(outbound), within: 30) }
        let arrivedOut = try XCTUnwrap(found, "\(postfix.log)\n\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        XCTAssertEqual(withoutTraceFields(arrivedOut), withoutTraceFields(outbound))
        let text = String(decoding: arrivedOut, as: UTF8.self)
        XCTAssertTrue(text.contains("Received: from mx.postern.test (localhost [127.0.0.1])"), "Postern's EHLO name at Postfix: \(text.prefix(600))")
        XCTAssertTrue(text.contains("by mx.postern.test (Postern)"), "Postern's own Received: \(text.prefix(600))")
        XCTAssertEqual(Build.run(Build.postern, ["queue", "list", "-c", config], cwd: dir.path).output, "0 message(s)\n")
    }

    /// Runs async work from this synchronous test.
    func runBlockingFound(_ work: @escaping @Sendable () async -> [UInt8]?) -> [UInt8]? {
        let semaphore = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: [UInt8]?
        Task {
            result = await work()
            semaphore.signal()
        }
        semaphore.wait()
        return result
    }
}
