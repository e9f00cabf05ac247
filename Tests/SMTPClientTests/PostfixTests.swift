import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest

/// The built `smtp` transport delivering to a real Postfix found through MX records served by a
/// throw-away unbound. Postfix is started as root (its master switches to the `postfix` user
/// itself), so these tests are skipped when not root, as the Dovecot import test is; CI runs
/// them as root.
final class PostfixTests: XCTestCase {
    nonisolated(unsafe) static var sharedPostfix: PostfixServer?
    var unbound: UnboundServer!
    var dir: TempDir!
    static let users = ["alice", "bob", "carol", "dave", "erin", "frank"]

    /// One Postfix for the whole class (it takes seconds to start).
    func postfix() throws -> PostfixServer {
        guard getuid() == 0 else { throw XCTSkip("Postfix is started as root (postfix -c DIR start); run the tests as root") }
        if let running = Self.sharedPostfix { return running }
        let server = try PostfixServer(users: Self.users, messageSizeLimit: 1_000_000)
        Self.sharedPostfix = server
        return server
    }

    override class func tearDown() {
        sharedPostfix?.stop()
        sharedPostfix = nil
        super.tearDown()
    }

    override func setUpWithError() throws {
        _ = try postfix()
        unbound = try UnboundServer(zones: TestZones.lines)
        dir = TempDir("smtp-client")
    }

    override func tearDown() {
        unbound?.stop()
        unbound = nil
        dir = nil
    }

    func transport(_ settings: [String: ConfigValue] = [:]) throws -> (PluginFixture, any Transport) {
        let server = try postfix()
        var config: [String: ConfigValue] = ["hostname": .string("client.test"), "port": .integer(server.port),
                                             "connect_timeout": .string("3s"), "command_timeout": .string("20s")]
        config.merge(settings) { _, new in new }
        let fixture = try PluginFixture(nameserver: unbound.address, smtpClient: config)
        return (fixture, fixture.smtp)
    }

    func testDeliveryThroughTheMXArrivesByteIdenticalOverSTARTTLS() async throws {
        let server = try postfix()
        let (fixture, smtp) = try transport()
        let tlsBefore = outboundSessions(tls: true)
        // Dot lines, a long line and trailing blanks: what dot-stuffing and line handling could spoil.
        let body = ".leading dot\r\n..two dots\r\n.\r\nline with trailing blanks  \r\n" + String(repeating: "x", count: 900) + "\r\nlast line\r\n"
        let message = testMessage("byte for byte", body: body)
        let outcomes = await smtp.deliver(queued(dir, message, to: ["alice@example.test"]))
        XCTAssertEqual(outcomes.map(\.status), [.delivered], "\(outcomes)\n\(server.log)")
        XCTAssertEqual(outcomes.first?.reply.code, 250)
        XCTAssertTrue(outcomes.first?.reply.text.hasPrefix("host mx.example.test[127.0.0.1]:\(server.port) said: 250 Ok: queued as ") ?? false,
                      "\(outcomes)")
        let found = await server.message(of: "alice", containing: messageID(message))
        let arrived = try XCTUnwrap(found, server.log)
        // Postfix stores LF line ends in the Maildir; apart from that and its trace fields, the same.
        XCTAssertEqual(withoutTraceFields(arrived), withoutTraceFields(message))
        let text = String(decoding: arrived, as: UTF8.self)
        XCTAssertTrue(text.contains("(using TLSv1."), "Postfix records the TLS session in Received: \(text.prefix(600))")
        XCTAssertTrue(text.contains("with ESMTPS id"), String(text.prefix(600)))
        XCTAssertTrue(text.contains("Received: from client.test (localhost [127.0.0.1])"), "EHLO name: \(text.prefix(600))")
        XCTAssertEqual(outboundSessions(tls: true) - tlsBefore, 1)
        withExtendedLifetime(fixture) {}
    }

    func testRefusedRecipientFailsAloneAndBracketedNextHop() async throws {
        let server = try postfix()
        let (fixture, smtp) = try transport()
        let message = testMessage("one of two")
        let outcomes = await smtp.deliver(queued(dir, message, to: ["bob@example.test", "nobody@example.test", "carol@example.test"]))
        XCTAssertEqual(outcomes.map(\.recipient), ["bob@example.test", "nobody@example.test", "carol@example.test"])
        XCTAssertEqual(outcomes.map(\.status), [.delivered, .failed, .delivered], "\(outcomes)")
        XCTAssertEqual(outcomes[1].reply.code, 550)
        XCTAssertEqual(outcomes[1].reply.enhanced, "5.1.1")
        XCTAssertTrue(outcomes[1].reply.text.contains("User unknown in virtual mailbox table (in reply to RCPT TO command)"), outcomes[1].reply.text)
        let toBob = await server.message(of: "bob", containing: messageID(message))
        let toCarol = await server.message(of: "carol", containing: messageID(message))
        XCTAssertNotNil(toBob)
        XCTAssertNotNil(toCarol)

        // A bracketed next hop: no MX look-up, straight to that address and port.
        let hop = await smtp.deliver(queued(dir, testMessage("next hop"), to: ["dave@example.test"], nextHop: "[127.0.0.1]:\(server.port)"))
        XCTAssertEqual(hop.map(\.status), [.delivered], "\(hop)")
        XCTAssertTrue(hop[0].reply.text.hasPrefix("host 127.0.0.1[127.0.0.1]:\(server.port) said: 250"), hop[0].reply.text)
        withExtendedLifetime(fixture) {}
    }

    func testFirstMXDownSecondTakesIt() async throws {
        let server = try postfix()
        let (fixture, smtp) = try transport()
        let message = testMessage("backup")
        // backup.test: MX 10 down.backup.test (127.0.0.2, nothing listens), MX 20 mx.example.test.
        // Postfix takes it for erin@example.test once the transport reaches it.
        let outcomes = await smtp.deliver(queued(dir, message, to: ["erin@example.test"], nextHop: "backup.test"))
        XCTAssertEqual(outcomes.map(\.status), [.delivered], "\(outcomes)")
        XCTAssertTrue(outcomes[0].reply.text.hasPrefix("host mx.example.test[127.0.0.1]:\(server.port) said: 250"), outcomes[0].reply.text)
        let toErin = await server.message(of: "erin", containing: messageID(message))
        XCTAssertNotNil(toErin)
        withExtendedLifetime(fixture) {}
    }

    func testMandatoryTLSVerifiesTheCertificate() async throws {
        let server = try postfix()
        // The system trust store does not know the self-signed certificate: deferred, never sent in plaintext.
        let (strictFixture, strict) = try transport(["tls": .string("encrypt")])
        let refused = await strict.deliver(queued(dir, testMessage("unverified"), to: ["frank@example.test"]))
        XCTAssertEqual(refused.map(\.status), [.deferred], "\(refused)")
        XCTAssertEqual(refused[0].reply.enhanced, "4.4.1")
        XCTAssertTrue(refused[0].reply.text.hasSuffix("TLS handshake with mx.example.test[127.0.0.1]:\(server.port) failed: certificate verify failed"),
                      refused[0].reply.text)
        XCTAssertFalse(refused[0].reply.text.contains("trying again without TLS"), "encrypt never falls back")
        XCTAssertTrue(server.messages(of: "frank").isEmpty)
        // Trusting that certificate: verified (its name is mx.example.test, the MX host's name).
        let (trustingFixture, trusting) = try transport(["tls": .string("encrypt"), "tls_ca_file": .string(server.certificate)])
        let message = testMessage("verified")
        let delivered = await trusting.deliver(queued(dir, message, to: ["frank@example.test"]))
        XCTAssertEqual(delivered.map(\.status), [.delivered], "\(delivered)")
        let verified = await server.message(of: "frank", containing: messageID(message))
        let arrived = String(decoding: try XCTUnwrap(verified), as: UTF8.self)
        XCTAssertTrue(arrived.contains("(using TLSv1."), arrived)
        // tls = "none" never asks.
        let (plainFixture, plain) = try transport(["tls": .string("none")])
        let clear = testMessage("plaintext")
        let clearOutcomes = await plain.deliver(queued(dir, clear, to: ["frank@example.test"]))
        XCTAssertEqual(clearOutcomes.map(\.status), [.delivered])
        let plaintext = await server.message(of: "frank", containing: messageID(clear))
        let text = String(decoding: try XCTUnwrap(plaintext), as: UTF8.self)
        XCTAssertFalse(text.contains("(using TLS"), text)
        XCTAssertTrue(text.contains("with ESMTP id"), text)
        withExtendedLifetime((strictFixture, trustingFixture, plainFixture)) {}
    }

    func testMessageOverThePeersSizeLimitIsReturnedBeforeMail() async throws {
        let server = try postfix()
        let (fixture, smtp) = try transport()
        let big = testMessage("too big", body: String(repeating: String(repeating: "y", count: 998) + "\r\n", count: 1100))
        let outcomes = await smtp.deliver(queued(dir, big, to: ["alice@example.test", "bob@example.test"]))
        XCTAssertEqual(outcomes.map(\.status), [.failed, .failed], "\(outcomes)")
        XCTAssertEqual(outcomes[0].reply, MailReply(552, "5.3.4", "message size \(big.count) exceeds size limit 1000000 of server mx.example.test[127.0.0.1]:\(server.port)"))
        // Nothing reached Postfix's MAIL: its log shows the session ended without a transaction.
        XCTAssertFalse(server.log.contains("from=<sender@client.test>, size=\(big.count)"))
        withExtendedLifetime(fixture) {}
    }

    func testQueueDeliversRemoteMailThroughTheSMTPTransport() async throws {
        let server = try postfix()
        // The queue, the store and the transports in one worker-like process: the queue routes
        // example.test (not a local domain) to the "smtp" transport, which finds Postfix by MX.
        let data = dir.path + "/data"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let fixture = try PluginFixture(["store-sqlite": ["password_iterations": .integer(4096)],
                                         "queue": ["hostname": .string("client.test"), "scan_interval": .string("100ms"),
                                                   "min_backoff": .string("1s"), "max_backoff": .string("1s")],
                                         "dns": ["nameservers": .array([.string(unbound.address)]), "timeout": .string("2s")],
                                         "smtp-client": ["hostname": .string("client.test"), "port": .integer(server.port)]],
                                        dataDirectory: data, serving: true)
        let queue = try XCTUnwrap(fixture.services.queue)
        let message = testMessage("through the queue")
        let path = dir.write("incoming", message)
        _ = try await queue.enqueue(envelope: Envelope(sender: "sender@client.test", recipients: [EnvelopeRecipient(address: "alice@example.test")]),
                                    messagePath: path)
        let found = await server.message(of: "alice", containing: messageID(message), within: 20)
        let arrived = try XCTUnwrap(found, server.log)
        XCTAssertEqual(withoutTraceFields(arrived), withoutTraceFields(message))
        var left: [QueueSummary] = []
        for _ in 0..<200 {
            left = try await queue.list()
            if left.isEmpty { break }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        XCTAssertEqual(left, [], "the delivered entry leaves the queue")
        withExtendedLifetime(fixture) {}
    }
}
