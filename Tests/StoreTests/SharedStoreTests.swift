import Foundation
import PosternTestSupport
import PluginAPI
import PosternHost
import XCTest

/// Two opens of one store, as two processes have them (a worker delivering, another serving IMAP,
/// `postern admin`): each sees the other's committed writes, and interleaved writes lose nothing.
final class SharedStoreTests: XCTestCase {
    func testTwoOpensSeeEachOthersWrites() async throws {
        let f = try StoreFixture("shared")
        let other = try f.reopen()
        let a = (accounts: f.accounts, store: f.store)
        let b = (accounts: try other.accounts(), store: try other.store())
        XCTAssertFalse(a.store as AnyObject === b.store as AnyObject, "two separate store instances")

        try await a.accounts.createDomain("example.org")
        await assertEqual(try await b.accounts.domains(), ["example.org"])
        _ = try await b.accounts.createAccount(NewAccount(name: "alice@example.org", password: "pw"))
        await assertEqual(try await a.store.checkRecipient("alice@example.org"), .local(account: "alice@example.org"))

        let m1 = message("from a")
        await assertEqual(try await a.store.deliver(messagePath: f.messageFile(m1), to: ["alice@example.org"], mailbox: nil).map(\.reply.code), [250])
        await assertEqual(try await b.store.status(user: "alice@example.org", mailbox: "INBOX").messages, 1)
        await assertEqual(try await b.store.content(user: "alice@example.org", mailbox: "INBOX", uid: 1), m1)
        _ = try await b.store.setFlags(user: "alice@example.org", mailbox: "INBOX", uids: [1], flags: ["\\Seen"], mode: .add)
        await assertEqual(try await a.store.messages(user: "alice@example.org", mailbox: "INBOX", uids: 1...1).map(\.flags), [["\\Seen"]])
        await assertEqual(try await a.store.status(user: "alice@example.org", mailbox: "INBOX").unseen, 0)

        // Interleaved: deliveries through one open, appends and reads through the other, at once.
        let aStore = a.store, bStore = b.store
        let files = (0..<20).map { f.messageFile(message("delivery \($0)")) }
        async let delivered: [Int] = {
            var codes: [Int] = []
            for file in files { codes += try await aStore.deliver(messagePath: file, to: ["alice@example.org"], mailbox: nil).map(\.reply.code) }
            return codes
        }()
        async let appended: [UInt32] = {
            var uids: [UInt32] = []
            for i in 0..<20 {
                uids.append(try await bStore.append(user: "alice@example.org", mailbox: "INBOX", message: message("append \(i)"), flags: [], internalDate: nil))
                _ = try await bStore.status(user: "alice@example.org", mailbox: "INBOX")
            }
            return uids
        }()
        let (codes, uids) = try await (delivered, appended)
        XCTAssertEqual(codes, Array(repeating: 250, count: 20))
        XCTAssertEqual(Set(uids).count, 20)
        for status in [try await a.store.status(user: "alice@example.org", mailbox: "INBOX"),
                       try await b.store.status(user: "alice@example.org", mailbox: "INBOX")] {
            XCTAssertEqual(status.messages, 41)
            XCTAssertEqual(status.uidNext, 42)
        }
        let listed = try await a.store.messages(user: "alice@example.org", mailbox: "INBOX", uids: 1...UInt32.max)
        XCTAssertEqual(listed.map(\.uid), Array(1...41))
        XCTAssertEqual(Set(listed.map(\.modseq)).count, 41, "every message its own MODSEQ")

        // Expunge on one side, seen on the other; the blob goes with its last reference.
        _ = try await a.store.setFlags(user: "alice@example.org", mailbox: "INBOX", uids: [1], flags: ["\\Deleted"], mode: .add)
        await assertEqual(try await b.store.expunge(user: "alice@example.org", mailbox: "INBOX", uids: nil), [1])
        await assertEqual(try await a.store.status(user: "alice@example.org", mailbox: "INBOX").messages, 40)
        XCTAssertNil(try f.index.blobRefs()[digest(m1)])

        // Account changes made by one are enforced by the other at once.
        try await b.accounts.setEnabled(account: "alice@example.org", enabled: false)
        await assertEqual(try await a.store.checkRecipient("alice@example.org"), .disabled(account: "alice@example.org"))
        await assertEqual(try await a.store.deliver(messagePath: f.messageFile(message("late")), to: ["alice@example.org"], mailbox: nil).map(\.reply.code), [550])
        try await b.accounts.setPassword(account: "alice@example.org", password: "changed")
        try await b.accounts.setEnabled(account: "alice@example.org", enabled: true)
        let credentials = f.credentials
        await assertEqual(try await credentials.verifyPassword(user: "alice@example.org", password: "changed"), .verified(user: "alice@example.org"))
        try await b.accounts.setQuota(account: "alice@example.org", bytes: nil, messages: 40)
        await assertEqual(try await a.store.deliver(messagePath: f.messageFile(message("full")), to: ["alice@example.org"], mailbox: nil).map(\.reply.code), [452])
        try await a.accounts.deleteAccount("alice@example.org")
        await assertEqual(try await b.store.checkRecipient("alice@example.org"), .unknownUser)
        XCTAssertEqual(try f.index.blobRefs(), [:])
    }
}
