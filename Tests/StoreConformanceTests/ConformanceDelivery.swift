import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest

/// What LMTP and the queue's local transport ask of a store: RCPT-time checks, delivery with
/// its per-recipient outcomes, quotas and idempotence; and the change notifications IMAP IDLE
/// waits on.
extension StoreConformance {
    func checkRecipients() async throws {
        let f = try await fixture(users: ["alice", "bob"])
        try await f.accounts.setEnabled(account: bob, enabled: false)
        let store = f.store
        let cases: [(String, RecipientCheck)] = [
            ("alice@example.org", .local(account: alice)),
            ("alice+lists@example.org", .local(account: alice)),
            ("alice+@example.org", .local(account: alice)),
            ("alice@EXAMPLE.Org", .local(account: alice)),
            ("Alice+X@Example.ORG", .local(account: alice)),
            ("nobody@example.org", .unknownUser),
            ("+alice@example.org", .unknownUser),
            ("alice@example.net", .notLocal),
            ("alice@sub.example.org", .notLocal),
            ("not-an-address", .notLocal),
            ("bob@example.org", .disabled(account: bob)),
            ("bob+x@example.org", .disabled(account: bob)),
        ]
        for (address, expected) in cases {
            let found = try await store.checkRecipient(address)
            XCTAssertEqual(found, expected, address)
        }
    }

    func checkDeliveryOutcomes() async throws {
        let f = try await fixture(users: ["alice", "bob", "carol"])
        try await f.accounts.setEnabled(account: bob, enabled: false)
        let store = f.store
        let bytes = message("outcomes")
        let outcomes = try await store.deliver(messagePath: f.messageFile(bytes), to: [
            "alice@example.org", "nobody@example.org", "bob@example.org", "someone@example.net", "alice+news@example.org", "Carol@Example.ORG",
        ], mailbox: nil)
        XCTAssertEqual(summary(outcomes), [
            "alice@example.org delivered 250 2.0.0",
            "nobody@example.org failed 550 5.1.1",
            "bob@example.org failed 550 5.2.1",
            "someone@example.net failed 550 5.1.2",
            "alice+news@example.org delivered 250 2.0.0",
            "Carol@Example.ORG delivered 250 2.0.0",
        ])
        // Two recipients that are one account: one copy.
        let inbox = try await store.status(user: alice, mailbox: "INBOX")
        XCTAssertEqual(inbox, MailboxStatus(messages: 1, unseen: 1, uidValidity: inbox.uidValidity, uidNext: 2, highestModseq: 2))
        await assertEqual(try await store.content(user: alice, mailbox: "INBOX", uid: 1), bytes)
        await assertEqual(try await store.content(user: carol, mailbox: "INBOX", uid: 1), bytes)
        await assertEqual(try await store.status(user: bob, mailbox: "INBOX").messages, 0)
        let stored = try await store.messages(user: carol, mailbox: "INBOX", uids: 1...UInt32.max)
        XCTAssertEqual(stored.map(\.flags), [[]])
        XCTAssertEqual(stored.map(\.size), [bytes.count])

        // Into a named mailbox; an unknown one falls back to INBOX.
        let archived = try await store.deliver(messagePath: f.messageFile(message("archive")), to: [alice], mailbox: "Archive")
        XCTAssertEqual(summary(archived), ["alice@example.org delivered 250 2.0.0"])
        await assertEqual(try await store.status(user: alice, mailbox: "Archive").messages, 1)
        _ = try await store.deliver(messagePath: f.messageFile(message("fallback")), to: [alice], mailbox: "No Such Box")
        await assertEqual(try await store.status(user: alice, mailbox: "INBOX").messages, 2)
        // Nothing local: every recipient refused, nothing stored.
        let refused = try await store.deliver(messagePath: f.messageFile(message("nobody")), to: [nobody, "x@example.net"], mailbox: nil)
        XCTAssertEqual(summary(refused), ["nobody@example.org failed 550 5.1.1", "x@example.net failed 550 5.1.2"])
        await assertEqual(try await store.verifyIntegrity().problems, [])
    }

    /// Over quota by bytes and by count: 452 4.2.2, deferred (the default: the sender retries);
    /// the message still goes to the recipients it fits, and exactly at the limit fits.
    func checkQuotaExceededIsTemporary() async throws {
        let f = try await fixture(users: ["alice", "bytes", "count"])
        let accounts = f.accounts, store = f.store
        let bytes = message("quota", body: String(repeating: "x", count: 600))
        try await accounts.setQuota(account: "bytes@example.org", bytes: bytes.count * 2, messages: nil)
        try await accounts.setQuota(account: "count@example.org", bytes: nil, messages: 2)
        let all = [alice, "bytes@example.org", "count@example.org"]
        func ok(_ r: String) -> String { "\(r) delivered 250 2.0.0" }
        func over(_ r: String) -> String { "\(r) deferred 452 4.2.2" }
        func deliver(_ m: [UInt8], _ to: [String]) async throws -> [String] {
            summary(try await store.deliver(messagePath: f.messageFile(m), to: to, mailbox: nil))
        }

        for _ in 0..<2 { await assertEqual(try await deliver(bytes, all), all.map(ok)) }
        await assertEqual(try await store.quota(user: "bytes@example.org"),
                          Quota(bytesUsed: bytes.count * 2, bytesLimit: bytes.count * 2, messagesUsed: 2, messagesLimit: nil))
        await assertEqual(try await store.quota(user: "count@example.org"),
                          Quota(bytesUsed: bytes.count * 2, bytesLimit: nil, messagesUsed: 2, messagesLimit: 2))
        await assertEqual(try await deliver(bytes, all), [ok(alice), over("bytes@example.org"), over("count@example.org")])
        // One byte over is over.
        let small = message("small")
        try await accounts.setQuota(account: "bytes@example.org", bytes: bytes.count * 2 + small.count - 1, messages: nil)
        await assertEqual(try await deliver(small, ["bytes@example.org"]), [over("bytes@example.org")])
        try await accounts.setQuota(account: "bytes@example.org", bytes: bytes.count * 2 + small.count, messages: nil)
        await assertEqual(try await deliver(small, ["bytes@example.org"]), [ok("bytes@example.org")])

        await assertEqual(try await store.status(user: alice, mailbox: "INBOX").messages, 3)
        await assertEqual(try await store.status(user: "bytes@example.org", mailbox: "INBOX").messages, 3)
        await assertEqual(try await store.status(user: "count@example.org", mailbox: "INBOX").messages, 2)
        // Removing the limit lets mail in again; a limit of nothing keeps everything out.
        try await accounts.setQuota(account: "count@example.org", bytes: nil, messages: nil)
        await assertEqual(try await deliver(small, ["count@example.org"]), [ok("count@example.org")])
        try await accounts.setQuota(account: "count@example.org", bytes: nil, messages: 0)
        await assertEqual(try await deliver(message("no room", body: "unique"), ["count@example.org"]), [over("count@example.org")])
        await assertEqual(try await store.status(user: "count@example.org", mailbox: "INBOX").messages, 3)
        await assertEqual(try await store.verifyIntegrity().problems, [])
    }

    /// The queue's retry of a delivery the store already committed (a crash in between) adds no
    /// second copy: the delivery id is remembered per account.
    func checkDeliveryIDIsStoredOnce() async throws {
        let f = try await fixture(users: ["alice", "bob"])
        let store = f.store
        let m = message("once")
        let first = try await store.deliver(messagePath: f.messageFile(m), to: [alice], mailbox: nil, deliveryID: "Q1")
        XCTAssertEqual(summary(first), ["alice@example.org delivered 250 2.0.0"])
        let again = try await store.deliver(messagePath: f.messageFile(m), to: [alice, bob], mailbox: nil, deliveryID: "Q1")
        XCTAssertEqual(summary(again), ["alice@example.org delivered 250 2.0.0", "bob@example.org delivered 250 2.0.0"])
        await assertEqual(try await store.messages(user: alice, mailbox: "INBOX", uids: 1...UInt32.max).map(\.uid), [1])
        await assertEqual(try await store.messages(user: bob, mailbox: "INBOX", uids: 1...UInt32.max).map(\.uid), [1])
        // The same id through a tagged address of the same account is still the same delivery.
        _ = try await store.deliver(messagePath: f.messageFile(m), to: ["alice+x@example.org"], mailbox: nil, deliveryID: "Q1")
        await assertEqual(try await store.status(user: alice, mailbox: "INBOX").messages, 1)
        // Another id is another delivery; no id is always one.
        _ = try await store.deliver(messagePath: f.messageFile(m), to: [alice], mailbox: nil, deliveryID: "Q2")
        _ = try await store.deliver(messagePath: f.messageFile(m), to: [alice], mailbox: nil)
        await assertEqual(try await store.messages(user: alice, mailbox: "INBOX", uids: 1...UInt32.max).map(\.uid), [1, 2, 3])
        await assertEqual(try await store.verifyIntegrity().problems, [])
    }

    /// A subscriber hears deliveries, appends, flag changes and expunges of its mailbox under the
    /// name it subscribed with, changes made through another open of the store too (another
    /// process), and a shared mailbox's grantee hears its owner's changes. Nothing after cancel.
    func checkChangeNotifications() async throws {
        let f = try await fixture(users: ["alice", "bob"])
        let store = f.store
        try await store.createMailbox(user: alice, name: "Projects")
        try await store.setACL(user: alice, mailbox: "Projects", identifier: bob, change: .replace(ACLRights("lr")!))
        let notifier = try XCTUnwrap(f.context.services.notifications, "the store registers no change notifier")
        let inbox = Changes(), shared = Changes()
        let s1 = notifier.subscribe(user: alice, mailbox: "inbox") { inbox.add($0) }
        let s2 = notifier.subscribe(user: bob, mailbox: "Other Users/alice@example.org/Projects") { shared.add($0) }

        // Each change awaited before the next: quick successive ones may come as one.
        _ = try await store.deliver(messagePath: f.messageFile(message("news")), to: [alice], mailbox: nil)
        try await inbox.next(.messagesAdded, uids: [1], within: 5)
        // From a second open of the store, as `postern admin` or another worker would make it.
        let other = try f.reopen()
        _ = try await other.store().append(user: alice, mailbox: "INBOX", message: message("from elsewhere"), flags: [], internalDate: nil)
        try await inbox.next(.messagesAdded, uids: [2], within: 5)
        _ = try await store.setFlags(user: alice, mailbox: "INBOX", uids: [1], flags: ["\\Deleted"], mode: .add)
        try await inbox.next(.flagsChanged, uids: [1], within: 5)
        _ = try await store.expunge(user: alice, mailbox: "INBOX", uids: nil)
        try await inbox.next(.messagesExpunged, uids: [1], within: 5)
        _ = try await store.copy(user: alice, from: "INBOX", uids: [2], to: "Archive", move: true)
        try await inbox.next(.messagesExpunged, uids: [2], within: 5)
        // Every change under the name subscribed with, as the subscriber.
        XCTAssertEqual(Set(inbox.all.map { "\($0.user) \($0.mailbox)" }), ["alice@example.org inbox"])

        _ = try await store.append(user: alice, mailbox: "Projects", message: message("plan"), flags: [], internalDate: nil)
        try await shared.next(.messagesAdded, uids: [1], within: 5)
        XCTAssertEqual(Set(shared.all.map { "\($0.user) \($0.mailbox)" }), ["bob@example.org Other Users/alice@example.org/Projects"])

        s1.cancel()
        s2.cancel()
        let heard = (inbox.all.count, shared.all.count)
        _ = try await store.append(user: alice, mailbox: "INBOX", message: message("after"), flags: [], internalDate: nil)
        _ = try await store.append(user: alice, mailbox: "Projects", message: message("after"), flags: [], internalDate: nil)
        // Nothing may arrive once cancelled: given a second to show that it does not.
        try await Task.sleep(nanoseconds: 1_000_000_000)
        XCTAssertEqual(inbox.all.count, heard.0)
        XCTAssertEqual(shared.all.count, heard.1)
    }
}
