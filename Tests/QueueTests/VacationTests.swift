import PosternTestSupport
import Foundation
import PluginAPI
import XCTest
@testable import PosternQueueCore

/// RFC 3834 decisions of the vacation responder (Plugin/ holds the plugin's files by symlink),
/// and forwarding and vacation through the running queue and store.
final class VacationTests: XCTestCase {
    func fields(_ header: String) -> [MailHeaderField] { MailHeaderBlock(parsing: Array((header + "\r\n\r\n").utf8)).fields }

    func testWhoGetsAReply() {
        let me = ["alice@example.org", "sales@example.org"]
        let ok = "From: bob@remote.example\r\nTo: Alice <alice@example.org>\r\nSubject: hi"
        XCTAssertNil(VacationResponder.refusal(sender: "bob@remote.example", fields: fields(ok), addresses: me))
        XCTAssertNil(VacationResponder.refusal(sender: "bob@remote.example", fields: fields("To: x@y.example\r\nCc: SALES@example.org"), addresses: me))
        let cases: [(String, String, String)] = [
            ("", ok, "null sender"),
            ("MAILER-DAEMON@remote.example", ok, "sender mailer-daemon is automated"),
            ("owner-list@remote.example", ok, "sender owner-list is automated"),
            ("list-request@remote.example", ok, "sender list-request is automated"),
            ("bob@remote.example", ok + "\r\nAuto-Submitted: auto-replied", "Auto-Submitted: auto-replied"),
            ("bob@remote.example", ok + "\r\nPrecedence: bulk", "Precedence: bulk"),
            ("bob@remote.example", ok + "\r\nPrecedence: LIST", "Precedence: list"),
            ("bob@remote.example", ok + "\r\nList-Id: <l.example>", "List-Id present (a list message)"),
            ("bob@remote.example", ok + "\r\nX-Auto-Response-Suppress: OOF, AutoReply", "X-Auto-Response-Suppress: oof, autoreply"),
            ("alice@example.org", ok, "sent by the account itself"),
            ("bob@remote.example", "To: undisclosed-recipients:;", "not addressed to the account in To/Cc"),
        ]
        for (sender, header, why) in cases {
            XCTAssertEqual(VacationResponder.refusal(sender: sender, fields: fields(header), addresses: me), why, "\(sender) / \(header)")
        }
        XCTAssertNil(VacationResponder.refusal(sender: "bob@remote.example", fields: fields(ok + "\r\nAuto-Submitted: no"), addresses: me))
    }

    func testReplyBytes() {
        let original = fields("From: bob@remote.example\r\nTo: alice@example.org\r\nSubject: =?UTF-8?Q?R=C3=A9union?=\r\nMessage-ID: <m1@remote.example>\r\nReferences: <m0@remote.example>")
        let text = String(decoding: VacationResponder.reply(from: "alice@example.org", to: "bob@remote.example",
                                                            vacation: Vacation(subject: "", body: "Away until Monday.\n"), original: original,
                                                            hostname: "mx.example.org", now: 1_700_000_000), as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("From: <alice@example.org>\r\nTo: <bob@remote.example>\r\nSubject: Auto: =?UTF-8?"), text)
        XCTAssertEqual(EncodedWords.decode(Array(MailHeaderBlock(parsing: Array(text.utf8)).fields.first { $0.hasName("Subject") }!.value)), "Auto: Réunion")
        XCTAssertTrue(text.contains("\r\nIn-Reply-To: <m1@remote.example>\r\nReferences: <m0@remote.example> <m1@remote.example>\r\n"), text)
        XCTAssertTrue(text.contains("\r\nAuto-Submitted: auto-replied (vacation)\r\n"), text)
        XCTAssertTrue(text.hasSuffix("\r\n\r\nAway until Monday.\r\n"), text)
    }

    func testForwardingAndVacationThroughTheQueue() async throws {
        let f = try QueueTests.Fixture("queue-vacation")
        try await f.populate(["alice", "bob", "carol", "dave"])
        // carol forwards to dave and keeps a copy; dave forwards to bob only.
        try await f.accounts.setForwarding(account: "carol@example.org", to: ["dave@example.org"], keepCopy: true)
        try await f.accounts.setForwarding(account: "dave@example.org", to: ["bob@example.org"], keepCopy: false)
        _ = try await f.send(from: "x@remote.example", to: [EnvelopeRecipient(address: "carol@example.org")], QueueTests.mail("fwd"))
        _ = try await f.inbox("carol@example.org", count: 1)
        _ = try await f.inbox("bob@example.org", count: 1)
        try await f.drained()
        await assertEqual(try await f.store.messages(user: "dave@example.org", mailbox: "INBOX", uids: 1...UInt32.max).count, 0)

        try await f.accounts.setVacation(account: "alice@example.org", Vacation(subject: "Away", body: "Back on Monday."))
        func mail(_ subject: String, extra: String = "") -> [UInt8] {
            Array("From: bob@example.org\r\nTo: alice@example.org\r\nSubject: \(subject)\r\nMessage-ID: <\(subject)@example.org>\r\n\(extra)\r\nhello\r\n".utf8)
        }
        _ = try await f.send(from: "bob@example.org", to: [EnvelopeRecipient(address: "alice@example.org")], mail("first"))
        let bob = try await f.inbox("bob@example.org", count: 2)
        let reply = String(decoding: bob[1], as: UTF8.self)
        XCTAssertTrue(reply.hasPrefix("Return-Path: <>\r\nFrom: <alice@example.org>\r\nTo: <bob@example.org>\r\nSubject: Away\r\n"), reply)
        XCTAssertTrue(reply.contains("In-Reply-To: <first@example.org>") && reply.hasSuffix("Back on Monday.\r\n"), reply)
        // Once per sender per period; never to a list message.
        _ = try await f.send(from: "bob@example.org", to: [EnvelopeRecipient(address: "alice@example.org")], mail("second"))
        _ = try await f.send(from: "carol@example.org", to: [EnvelopeRecipient(address: "alice@example.org")], mail("list", extra: "List-Id: <l.example>\r\n"))
        _ = try await f.inbox("alice@example.org", count: 3)
        try await f.drained()
        await assertEqual(try await f.store.messages(user: "bob@example.org", mailbox: "INBOX", uids: 1...UInt32.max).count, 2)
        await assertEqual(try await f.store.messages(user: "carol@example.org", mailbox: "INBOX", uids: 1...UInt32.max).count, 1)
    }
}
