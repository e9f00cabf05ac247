import Foundation
import PosternTestSupport
import PluginAPI
import PosternHost
import XCTest

/// RCPT-time checks and local delivery with quotas.
final class DeliveryTests: XCTestCase {
    func testCheckRecipient() async throws {
        let f = try StoreFixture("rcpt")
        try await f.populate(users: ["alice", "bob"])
        try await f.accounts.setEnabled(account: "bob@example.org", enabled: false)
        let store = f.store
        let cases: [(String, RecipientCheck)] = [
            ("alice@example.org", .local(account: "alice@example.org")),
            ("alice+lists@example.org", .local(account: "alice@example.org")),
            ("alice+@example.org", .local(account: "alice@example.org")),
            ("alice@EXAMPLE.Org", .local(account: "alice@example.org")),
            ("Alice+X@Example.ORG", .local(account: "alice@example.org")),
            ("nobody@example.org", .unknownUser),
            ("+alice@example.org", .unknownUser),
            ("alice@example.net", .notLocal),
            ("alice@sub.example.org", .notLocal),
            ("not-an-address", .notLocal),
            ("bob@example.org", .disabled(account: "bob@example.org")),
            ("bob+x@example.org", .disabled(account: "bob@example.org")),
        ]
        for (address, expected) in cases {
            let found = try await store.checkRecipient(address)
            XCTAssertEqual(found, expected, address)
        }
    }

    func testDeliverOutcomes() async throws {
        let f = try StoreFixture("deliver")
        try await f.populate(users: ["alice", "bob", "carol"])
        try await f.accounts.setEnabled(account: "bob@example.org", enabled: false)
        let store = f.store
        let bytes = message("outcomes")
        let outcomes = try await store.deliver(messagePath: f.messageFile(bytes), to: [
            "alice@example.org", "nobody@example.org", "bob@example.org", "someone@example.net", "alice+news@example.org", "Carol@Example.ORG",
        ], mailbox: nil)
        XCTAssertEqual(outcomes, [
            RecipientOutcome(recipient: "alice@example.org", status: .delivered, reply: MailReply(250, "2.0.0", "delivered to alice@example.org")),
            RecipientOutcome(recipient: "nobody@example.org", status: .failed, reply: MailReply(550, "5.1.1", "no such user")),
            RecipientOutcome(recipient: "bob@example.org", status: .failed, reply: MailReply(550, "5.2.1", "mailbox disabled")),
            RecipientOutcome(recipient: "someone@example.net", status: .failed, reply: MailReply(550, "5.1.2", "not a local domain")),
            RecipientOutcome(recipient: "alice+news@example.org", status: .delivered, reply: MailReply(250, "2.0.0", "delivered to alice@example.org")),
            RecipientOutcome(recipient: "Carol@Example.ORG", status: .delivered, reply: MailReply(250, "2.0.0", "delivered to carol@example.org")),
        ])
        // Two recipients that are one account: one copy.
        let inbox = try await store.status(user: "alice@example.org", mailbox: "INBOX")
        XCTAssertEqual(inbox.messages, 1)
        XCTAssertEqual(inbox.unseen, 1)
        XCTAssertEqual(inbox.uidNext, 2)
        XCTAssertEqual(inbox.highestModseq, 2)
        await assertEqual(try await store.content(user: "alice@example.org", mailbox: "INBOX", uid: 1), bytes)
        await assertEqual(try await store.status(user: "carol@example.org", mailbox: "INBOX").messages, 1)
        await assertEqual(try await store.status(user: "bob@example.org", mailbox: "INBOX").messages, 0)
        let stored = try await store.messages(user: "carol@example.org", mailbox: "INBOX", uids: 1...UInt32.max)
        XCTAssertEqual(stored.map(\.flags), [[]])
        XCTAssertEqual(stored.map(\.size), [bytes.count])

        // Into a named mailbox; an unknown one falls back to INBOX.
        let archived = try await store.deliver(messagePath: f.messageFile(message("archive")), to: ["alice@example.org"], mailbox: "Archive")
        XCTAssertEqual(archived.map(\.reply.code), [250])
        await assertEqual(try await store.status(user: "alice@example.org", mailbox: "Archive").messages, 1)
        _ = try await store.deliver(messagePath: f.messageFile(message("fallback")), to: ["alice@example.org"], mailbox: "No Such Box")
        await assertEqual(try await store.status(user: "alice@example.org", mailbox: "INBOX").messages, 2)

        // Nothing local: no blob is left behind.
        let before = filesUnder(f.blobRoot)
        let refused = try await store.deliver(messagePath: f.messageFile(message("nobody")), to: ["nobody@example.org", "x@example.net"], mailbox: nil)
        XCTAssertEqual(refused.map(\.reply.code), [550, 550])
        XCTAssertEqual(filesUnder(f.blobRoot), before)
    }

    /// Over quota by bytes and by count: 452 4.2.2 (temporary) by default; the message is still
    /// delivered to the recipients it fits.
    func testQuotaExceededIsTemporaryByDefault() async throws {
        let f = try StoreFixture("quota-temp")
        try await quotaChecks(f, full: MailReply(452, "4.2.2", "mailbox full"), status: .deferred)
    }

    func testQuotaExceededPermanent() async throws {
        let f = try StoreFixture("quota-perm", pluginSettings: "quota_exceeded = \"permanent\"")
        try await quotaChecks(f, full: MailReply(552, "5.2.2", "mailbox full"), status: .failed)
    }

    private func quotaChecks(_ f: StoreFixture, full: MailReply, status: RecipientOutcome.Status) async throws {
        try await f.populate(users: ["alice", "bytes", "count"])
        let accounts = f.accounts, store = f.store
        let bytes = message("quota", body: String(repeating: "x", count: 600))
        try await accounts.setQuota(account: "bytes@example.org", bytes: bytes.count * 2, messages: nil)
        try await accounts.setQuota(account: "count@example.org", bytes: nil, messages: 2)
        let all = ["alice@example.org", "bytes@example.org", "count@example.org"]
        func ok(_ r: String) -> RecipientOutcome { RecipientOutcome(recipient: r, status: .delivered, reply: MailReply(250, "2.0.0", "delivered to \(r)")) }
        func over(_ r: String) -> RecipientOutcome { RecipientOutcome(recipient: r, status: status, reply: full) }

        // Exactly at the limit is allowed.
        for _ in 0..<2 {
            await assertEqual(try await store.deliver(messagePath: f.messageFile(bytes), to: all, mailbox: nil), all.map(ok))
        }
        await assertEqual(try await store.quota(user: "bytes@example.org"), Quota(bytesUsed: bytes.count * 2, bytesLimit: bytes.count * 2, messagesUsed: 2, messagesLimit: nil))
        await assertEqual(try await store.quota(user: "count@example.org"), Quota(bytesUsed: bytes.count * 2, bytesLimit: nil, messagesUsed: 2, messagesLimit: 2))
        await assertEqual(try await store.deliver(messagePath: f.messageFile(bytes), to: all, mailbox: nil),
                       [ok("alice@example.org"), over("bytes@example.org"), over("count@example.org")])
        // One byte over is over.
        let small = message("small")
        try await accounts.setQuota(account: "bytes@example.org", bytes: bytes.count * 2 + small.count - 1, messages: nil)
        await assertEqual(try await store.deliver(messagePath: f.messageFile(small), to: ["bytes@example.org"], mailbox: nil), [over("bytes@example.org")])
        try await accounts.setQuota(account: "bytes@example.org", bytes: bytes.count * 2 + small.count, messages: nil)
        await assertEqual(try await store.deliver(messagePath: f.messageFile(small), to: ["bytes@example.org"], mailbox: nil), [ok("bytes@example.org")])

        await assertEqual(try await store.status(user: "alice@example.org", mailbox: "INBOX").messages, 3)
        await assertEqual(try await store.status(user: "bytes@example.org", mailbox: "INBOX").messages, 3)
        await assertEqual(try await store.status(user: "count@example.org", mailbox: "INBOX").messages, 2)
        // Removing the limit lets mail in again.
        try await accounts.setQuota(account: "count@example.org", bytes: nil, messages: nil)
        await assertEqual(try await store.deliver(messagePath: f.messageFile(small), to: ["count@example.org"], mailbox: nil), [ok("count@example.org")])

        // Everybody over quota: the blob written for the attempt is removed again.
        try await accounts.setQuota(account: "count@example.org", bytes: nil, messages: 0)
        let before = filesUnder(f.blobRoot)
        let lonely = message("nobody has room", body: "unique")
        await assertEqual(try await store.deliver(messagePath: f.messageFile(lonely), to: ["count@example.org"], mailbox: nil), [over("count@example.org")])
        XCTAssertEqual(filesUnder(f.blobRoot), before)
        XCTAssertNil(try f.index.blobRefs()[digest(lonely)])
    }

    /// The queue's retry of a delivery the store already committed (a crash in between) adds no
    /// second copy: the delivery id is remembered per account.
    func testDeliveryWithTheSameIDIsStoredOnce() async throws {
        let f = try StoreFixture("delivery-id")
        try await f.populate(users: ["alice", "bob"])
        let m = message("once")
        let first = try await f.store.deliver(messagePath: f.messageFile(m), to: ["alice@example.org"], mailbox: nil, deliveryID: "Q1")
        XCTAssertEqual(first.map(\.status), [.delivered])
        let again = try await f.store.deliver(messagePath: f.messageFile(m), to: ["alice@example.org", "bob@example.org"], mailbox: nil, deliveryID: "Q1")
        XCTAssertEqual(again.map(\.status), [.delivered, .delivered])
        await assertEqual(try await f.store.messages(user: "alice@example.org", mailbox: "INBOX", uids: 1...UInt32.max).count, 1)
        await assertEqual(try await f.store.messages(user: "bob@example.org", mailbox: "INBOX", uids: 1...UInt32.max).count, 1)
        // Another id is another delivery.
        _ = try await f.store.deliver(messagePath: f.messageFile(m), to: ["alice@example.org"], mailbox: nil, deliveryID: "Q2")
        await assertEqual(try await f.store.messages(user: "alice@example.org", mailbox: "INBOX", uids: 1...UInt32.max).count, 2)
        await assertEqual(try await f.store.verifyIntegrity().problems, [])
    }
}
