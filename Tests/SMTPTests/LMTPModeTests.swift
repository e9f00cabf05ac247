import PosternTestSupport
import Foundation
import PluginAPI
import XCTest
@testable import PosternSMTPCore

/// The state machine in LMTP mode (RFC 2033), as an lmtp listener runs it: on the real store
/// (`StoreFixture`, the built store plugin), every reply as it goes on the wire.
final class LMTPModeTests: XCTestCase {
    /// A session on a store with alice, bob, carol (no room for a message) and dave (suspended),
    /// with an lmtp listener's default options.
    func harness(_ name: String, options: [String: ConfigValue] = [:]) async throws -> (SMTPHarness, StoreFixture) {
        let fixture = try StoreFixture(name)
        try await fixture.populate(users: ["alice", "bob", "carol", "dave"])
        try await fixture.accounts.setQuota(account: "carol@example.org", bytes: 10, messages: nil)
        try await fixture.accounts.setEnabled(account: "dave@example.org", enabled: false)
        let lmtp = LMTPOptions(ConfigSection(LMTPOptions.schema.applyingDefaults(to: options)))
        let h = SMTPHarness(options: lmtp.smtpOptions, client: SMTPHarness.loopback)
        h.client.canStartTLS = false
        h.mechanisms = []
        h.hostname = "store.example.org"
        h.lmtpStore = fixture.store
        return (h, fixture)
    }

    static let lhlo = """
        250-store.example.org\r
        250-PIPELINING\r
        250-ENHANCEDSTATUSCODES\r
        250-8BITMIME\r
        250-SMTPUTF8\r
        250 SIZE 52428800\r

        """

    func testGreetingLHLOAndWhatLMTPDoesNotOffer() async throws {
        let (h, _) = try await harness("lmtp-greeting")
        let greeting = await h.start()
        XCTAssertEqual(greeting, "220 store.example.org LMTP Postern ready\r\n")
        let before = await h.each(["HELO client.example.net", "EHLO client.example.net", "MAIL FROM:<a@remote.example>",
                                   "RCPT TO:<alice@example.org>", "DATA"])
        XCTAssertEqual(before, ["500 5.5.1 this is LMTP: use LHLO", "500 5.5.1 this is LMTP: use LHLO", "503 5.5.1 LHLO first",
                                "503 5.5.1 MAIL first", "503 5.5.1 MAIL first"])
        let lhlo = await h.send("LHLO mta.example.org")
        XCTAssertEqual(lhlo, Self.lhlo)
        let replies = await h.each(["STARTTLS", "AUTH PLAIN", "BDAT 4 LAST", "HELP", "VRFY alice", "EXPN staff", "NOOP", "RSET",
                                    "MAIL FROM:<a@remote.example> FOO=1", "MAIL FROM:<a@remote.example> SIZE=x",
                                    "MAIL FROM:<a@remote.example> SIZE=99999999999", "BOGUS"])
        XCTAssertEqual(replies, [
            "502 5.5.1 not offered on LMTP",
            "502 5.5.1 not offered on LMTP",
            "502 5.5.1 BDAT is not offered here",
            "214 2.0.0 LHLO MAIL RCPT DATA RSET NOOP QUIT",
            "252 2.5.0 cannot verify, but will try",
            "502 5.5.1 EXPN is disabled",
            "250 2.0.0 ok",
            "250 2.0.0 reset",
            "555 5.5.4 unsupported parameter: FOO",
            "501 5.5.4 bad SIZE",
            "552 5.3.4 message too big for this server",
            "500 5.5.1 command not recognized",
        ])
        // SMTP's error limit does not apply: the session goes on after any number of errors.
        for _ in 0..<30 { _ = await h.send("BOGUS") }
        let quit = await h.send("QUIT")
        XCTAssertEqual(quit, "221 2.0.0 bye\r\n<CLOSE>\r\n")
    }

    /// RCPT asks the store; after DATA every accepted recipient gets its own reply, in RCPT order,
    /// one of them refused by the store at delivery (over quota).
    func testOneReplyPerRecipientAfterDATA() async throws {
        let (h, fixture) = try await harness("lmtp-recipients")
        await h.start()
        _ = await h.send("LHLO mta.example.org")
        let envelope = await h.each(["MAIL FROM:<sender@remote.example> BODY=8BITMIME", "RCPT TO:<alice@example.org>",
                                     "RCPT TO:<nobody@example.org>", "RCPT TO:<dave@example.org>", "RCPT TO:<x@elsewhere.example>",
                                     "RCPT TO:<carol@example.org>", "RCPT TO:<bob+lists@EXAMPLE.org>", "DATA"])
        XCTAssertEqual(envelope, [
            "250 2.1.0 sender ok",
            "250 2.1.5 recipient ok",
            "550 5.1.1 <nobody@example.org>: no such user here",
            "550 5.2.1 <dave@example.org>: mailbox disabled",
            "550 5.1.2 <x@elsewhere.example>: not a local domain",
            "250 2.1.5 recipient ok",
            "250 2.1.5 recipient ok",
            "354 send the message, end with <CRLF>.<CRLF>",
        ])
        let delivered = await h.send("Subject: hello", "", "..dot line", "body", ".")
        XCTAssertEqual(delivered.lines, ["250 2.0.0 delivered to alice@example.org", "452 4.2.2 mailbox full",
                                         "250 2.0.0 delivered to bob@example.org"])
        // Stored as received: LMTP adds no trace fields; the spool file is gone.
        let stored = try await fixture.store.content(user: "bob@example.org", mailbox: "INBOX", uid: 1)
        XCTAssertEqual(String(decoding: stored, as: UTF8.self), "Subject: hello\r\n\r\n.dot line\r\nbody\r\n")
        XCTAssertEqual(h.spoolFiles, [])
        // The transaction is over: a new one starts with MAIL.
        let next = await h.each(["RCPT TO:<alice@example.org>", "MAIL FROM:<>", "DATA"])
        XCTAssertEqual(next, ["503 5.5.1 MAIL first", "250 2.1.0 sender ok", "503 5.5.1 no valid recipients"])
    }

    /// A whole pipelined transaction, in one read: replies keep command order while the store works.
    func testPipelinedTransactionKeepsOrder() async throws {
        let (h, _) = try await harness("lmtp-pipelining")
        await h.start()
        let out = await h.send("LHLO mta.example.org", "MAIL FROM:<s@remote.example>", "RCPT TO:<bob@example.org>",
                               "RCPT TO:<nobody@example.org>", "RCPT TO:<alice@example.org>", "DATA", "Subject: p", "", "x", ".",
                               "NOOP", "QUIT", "NOOP")
        XCTAssertEqual(out.lines, Self.lhlo.lines + [
            "250 2.1.0 sender ok", "250 2.1.5 recipient ok", "550 5.1.1 <nobody@example.org>: no such user here",
            "250 2.1.5 recipient ok", "354 send the message, end with <CRLF>.<CRLF>",
            "250 2.0.0 delivered to bob@example.org", "250 2.0.0 delivered to alice@example.org",
            "250 2.0.0 ok", "221 2.0.0 bye", "<CLOSE>",
        ])
    }

    /// An oversize message is read to its end and refused per recipient; the session goes on.
    /// Lines ending in a bare LF are taken, over-long lines refused.
    func testOversizeMessageAndLineLimits() async throws {
        let (h, fixture) = try await harness("lmtp-limits", options: ["max_message_size": .string("1K"), "max_line_length": .integer(512)])
        await h.start()
        _ = await h.send("LHLO mta.example.org")
        let setup = await h.each(["MAIL FROM:<s@remote.example>", "RCPT TO:<alice@example.org>", "RCPT TO:<bob@example.org>", "DATA"])
        XCTAssertEqual(setup.last, "354 send the message, end with <CRLF>.<CRLF>")
        let big = await h.send(String(repeating: "y", count: 500), String(repeating: "y", count: 500), String(repeating: "y", count: 500), ".")
        XCTAssertEqual(big.lines, ["552 5.3.4 message exceeds 1024 bytes", "552 5.3.4 message exceeds 1024 bytes"])
        XCTAssertEqual(h.spoolFiles, [])
        let long = await h.send("NOOP " + String(repeating: "z", count: 600))
        XCTAssertEqual(long, "500 5.5.2 line too long\r\n")
        let bare = await h.send(bytes: Array("MAIL FROM:<s@remote.example>\nRCPT TO:<alice@example.org>\nDATA\nbare\r\n.\r\n".utf8))
        XCTAssertEqual(bare.lines, ["250 2.1.0 sender ok", "250 2.1.5 recipient ok", "354 send the message, end with <CRLF>.<CRLF>",
                                    "250 2.0.0 delivered to alice@example.org"])
        let stored = try await fixture.store.content(user: "alice@example.org", mailbox: "INBOX", uid: 1)
        XCTAssertEqual(String(decoding: stored, as: UTF8.self), "bare\r\n")
    }

    /// A store that fails at delivery answers the same 451 for every accepted recipient.
    func testStoreFailureAnswersEveryRecipient() async throws {
        let (h, fixture) = try await harness("lmtp-store-failure")
        await h.start()
        _ = await h.send("LHLO mta.example.org")
        _ = await h.each(["MAIL FROM:<s@remote.example>", "RCPT TO:<alice@example.org>", "RCPT TO:<bob@example.org>", "DATA"])
        // The blob root becomes a file: the store cannot write the message.
        try FileManager.default.removeItem(atPath: fixture.blobRoot)
        XCTAssertTrue(FileManager.default.createFile(atPath: fixture.blobRoot, contents: Data()))
        let out = await h.send("Subject: lost", "", "x", ".").lines
        XCTAssertEqual(out.count, 2, "\(out)")
        XCTAssertTrue(out.allSatisfy { $0.hasPrefix("451 4.3.0 store failure: ") }, "\(out)")
        XCTAssertEqual(h.spoolFiles, [])
    }

    /// On drain, a session between transactions is told to come back; one in a transaction finishes
    /// it first (the driver asks `isIdle` before `drainNow`), and a MAIL after the drain began is
    /// refused with the same 421.
    func testDrain() async throws {
        let (h, _) = try await harness("lmtp-drain")
        await h.start()
        _ = await h.send("LHLO mta.example.org")
        XCTAssertTrue(h.state.isIdle)
        _ = await h.each(["MAIL FROM:<s@remote.example>", "RCPT TO:<alice@example.org>"])
        h.state.draining = true
        XCTAssertFalse(h.state.isIdle, "a transaction is open")
        let finished = await h.send("DATA", "x", ".").lines
        XCTAssertEqual(finished.last, "250 2.0.0 delivered to alice@example.org")
        XCTAssertTrue(h.state.isIdle)
        let mail = await h.send("MAIL FROM:<s@remote.example>")
        XCTAssertEqual(mail, "421 4.3.2 store.example.org shutting down, try again\r\n<CLOSE>\r\n")

        let (idle, _) = try await harness("lmtp-drain-idle")
        await idle.start()
        XCTAssertEqual(SMTPHarness.wire(idle.state.drainNow()), "421 4.3.2 store.example.org shutting down, try again\r\n<CLOSE>\r\n")
    }

    /// The plugin's manifest: the lmtp protocol with the options it always had, in the store roles.
    func testManifestDeclaresLMTPForTheStoreRoles() {
        let manifest = SMTPRegistration.registration.manifest
        XCTAssertEqual(Set(manifest.protocols.keys), ["smtp", "lmtp"])
        XCTAssertEqual(manifest.protocols["lmtp"]?.fields.map(\.name), ["max_message_size", "max_recipients", "max_line_length", "store"])
        XCTAssertEqual(manifest.roles(ofProtocol: "lmtp"), ["all-in-one", "store"])
        XCTAssertEqual(manifest.roles(ofProtocol: "smtp"), ["all-in-one", "gateway", "relay"])
        XCTAssertTrue(manifest.uses.contains(.storage))
    }
}
