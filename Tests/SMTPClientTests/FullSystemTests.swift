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
        let serve = try PosternServe(config: config, in: dir.path)
        defer { serve.stop() }
        XCTAssertTrue(waitUntil(30) { acceptsTCP("127.0.0.1", mxPort) && acceptsTCP("127.0.0.1", relayPort) },
                      serve.log)

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
        }, "Postern never stored the relayed message\n\(postfix.log)\n\(serve.log)")
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
        let arrivedOut = try XCTUnwrap(found, "\(postfix.log)\n\(serve.log)")
        XCTAssertEqual(withoutTraceFields(arrivedOut), withoutTraceFields(outbound))
        let text = String(decoding: arrivedOut, as: UTF8.self)
        XCTAssertTrue(text.contains("Received: from mx.postern.test (localhost [127.0.0.1])"), "Postern's EHLO name at Postfix: \(text.prefix(600))")
        XCTAssertTrue(text.contains("by mx.postern.test (Postern)"), "Postern's own Received: \(text.prefix(600))")
        XCTAssertEqual(Build.run(Build.postern, ["queue", "list", "-c", config], cwd: dir.path).output, "0 message(s)\n")
    }

    /// The remote MX is down: the message waits in the queue with the reason, is retried on
    /// schedule and delivered once Postfix is back; a message for a domain whose every MX stays
    /// down is returned when its lifetime ends, with exactly one bounce.
    func testRemoteDownThenBackAndLifetimeExpiry() throws {
        guard getuid() == 0 else { throw XCTSkip("Postfix is started as root (postfix -c DIR start); run the tests as root") }
        let dir = TempDir("full-retry")
        let relayPort = freePort()
        let postfix = try PostfixServer(users: ["bob"])
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
            max_backoff = "1s"
            lifetime = "6s"
            [plugin.dns]
            nameservers = ["\(unbound.address)"]
            [plugin.smtp-client]
            hostname = "mx.postern.test"
            port = \(postfix.port)
            connect_timeout = "1s"
            [plugin.smtp]
            hostname = "mx.postern.test"
            [[listener]]
            name = "relay"
            address = "127.0.0.1"
            port = \(relayPort)
            protocol = "smtp"
            [listener.options]
            trust_loopback = true
            """)
        func admin(_ args: [String]) -> String { Build.run(Build.postern, args + ["-c", config], cwd: dir.path).output }
        _ = admin(["admin", "domain", "add", "postern.test"])
        _ = admin(["admin", "user", "add", "alice@postern.test", "--password", "pw"])
        let serve = try PosternServe(config: config, in: dir.path)
        defer { serve.stop() }
        XCTAssertTrue(waitUntil(30) { acceptsTCP("127.0.0.1", relayPort) })
        let send = dir.write("send.py", """
            import smtplib, sys
            s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=20); s.ehlo("client.test")
            s.sendmail(sys.argv[2], [sys.argv[3]], open(sys.argv[4], "rb").read()); s.quit()
            """)
        postfix.stop()
        let message = testMessage("while the MX was down")
        var r = Build.run("/usr/bin/python3", [send, "\(relayPort)", "alice@postern.test", "bob@example.test", dir.write("m.eml", message)])
        XCTAssertEqual(r.status, 0, r.output)
        // Deferred with the reason; tried again (attempts grow) while Postfix is down.
        XCTAssertTrue(waitUntil(10) { admin(["queue", "list"]).contains("attempts=2") }, admin(["queue", "list"]))
        let listing = admin(["queue", "list"])
        XCTAssertTrue(listing.contains("\tdeferred\t") && listing.contains("bob@example.test\t4"), listing)
        try postfix.restart()
        let found = runBlockingFound { await postfix.message(of: "bob", containing: messageID(message), within: 30) }
        XCTAssertNotNil(found, admin(["queue", "list"]) + postfix.log)
        XCTAssertTrue(waitUntil(10) { admin(["queue", "list"]) == "0 message(s)\n" })

        // Every MX of dead.test is down: returned after the lifetime, with one bounce.
        let doomed = testMessage("to a dead domain")
        r = Build.run("/usr/bin/python3", [send, "\(relayPort)", "alice@postern.test", "carol@dead.test", dir.write("d.eml", doomed)])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(waitUntil(30) { admin(["queue", "list"]) == "0 message(s)\n" && !admin(["admin", "message", "list", "alice@postern.test"]).isEmpty },
                      admin(["queue", "list"]))
        sleep(3)
        let inbox = admin(["admin", "message", "list", "alice@postern.test"]).split(separator: "\n")
        XCTAssertEqual(inbox.count, 1, "exactly one bounce: \(inbox)")
        let bounce = admin(["admin", "message", "get", "alice@postern.test", String(inbox.first?.split(separator: "\t").first ?? "1")])
        XCTAssertTrue(bounce.contains("Final-Recipient: rfc822; carol@dead.test") && bounce.contains("Action: failed") && bounce.contains("Status: 5.4.7"), bounce)
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
