import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest

/// Quota usage and limits (RFC 9208: STORAGE in bytes, MESSAGE in messages), and the store's
/// own consistency check after a day's kind of work.
extension StoreConformance {
    func checkQuotaNumbers() async throws {
        let f = try await fixture(users: ["alice"])
        let store = f.store, accounts = f.accounts
        await assertEqual(try await store.quota(user: alice), Quota(bytesUsed: 0, bytesLimit: nil, messagesUsed: 0, messagesLimit: nil))
        let a = message("a"), b = message("bb", body: String(repeating: "b", count: 1000))
        _ = try await store.append(user: alice, mailbox: "INBOX", message: a, flags: [], internalDate: nil)
        _ = try await store.deliver(messagePath: f.messageFile(b), to: [alice], mailbox: nil)
        _ = try await store.copy(user: alice, from: "INBOX", uids: [2], to: "Archive", move: false)
        try await accounts.setQuota(account: alice, bytes: 10 << 20, messages: 100)
        // Every copy counts against the account, however the store shares their contents.
        await assertEqual(try await store.quota(user: alice),
                          Quota(bytesUsed: a.count + 2 * b.count, bytesLimit: 10 << 20, messagesUsed: 3, messagesLimit: 100))
        let info = try await accounts.account(alice)
        XCTAssertEqual(info?.bytesUsed, a.count + 2 * b.count)
        XCTAssertEqual(info?.messagesUsed, 3)
        await assertEqual(try await accounts.accounts(domain: "example.org").map(\.messagesUsed), [3])
        try await accounts.setQuota(account: alice, bytes: nil, messages: nil)
        await assertEqual(try await store.quota(user: alice),
                          Quota(bytesUsed: a.count + 2 * b.count, bytesLimit: nil, messagesUsed: 3, messagesLimit: nil))
        await assertThrows(StorageError.noSuchUser(nobody)) { try await store.quota(user: nobody) }
        // A move changes nothing; an expunge, and a mailbox deleted with its messages, take theirs off.
        _ = try await store.copy(user: alice, from: "INBOX", uids: [1], to: "Trash", move: true)
        await assertEqual(try await store.quota(user: alice).messagesUsed, 3)
        _ = try await store.setFlags(user: alice, mailbox: "Trash", uids: [1], flags: ["\\Deleted"], mode: .add)
        await assertEqual(try await store.expunge(user: alice, mailbox: "Trash", uids: nil), [1])
        await assertEqual(try await store.quota(user: alice), Quota(bytesUsed: 2 * b.count, bytesLimit: nil, messagesUsed: 2, messagesLimit: nil))
        try await store.deleteMailbox(user: alice, name: "Archive")
        await assertEqual(try await store.quota(user: alice), Quota(bytesUsed: b.count, bytesLimit: nil, messagesUsed: 1, messagesLimit: nil))
        await assertEqual(try await store.verifyIntegrity().problems, [])
    }

    /// APPEND and COPY are refused over quota as delivery is (RFC 9208 §5: [OVERQUOTA]); a move
    /// within the account adds nothing, so it still works at the limit.
    func checkAppendAndCopyRespectQuota() async throws {
        let f = try await fixture(users: ["alice"])
        let store = f.store
        let m = message("q", body: String(repeating: "x", count: 500))
        _ = try await store.append(user: alice, mailbox: "INBOX", message: m, flags: [], internalDate: nil)
        try await f.accounts.setQuota(account: alice, bytes: m.count * 2 - 1, messages: nil)
        await assertThrows(StorageError.overQuota(anyReason)) {
            try await store.append(user: alice, mailbox: "INBOX", message: m, flags: [], internalDate: nil)
        }
        await assertThrows(StorageError.overQuota(anyReason)) { try await store.copy(user: alice, from: "INBOX", uids: [1], to: "Archive", move: false) }
        await assertEqual(try await store.copy(user: alice, from: "INBOX", uids: [1], to: "Archive", move: true), [1])
        // Exactly at the limit fits.
        try await f.accounts.setQuota(account: alice, bytes: m.count * 2, messages: nil)
        await assertEqual(try await store.append(user: alice, mailbox: "INBOX", message: m, flags: [], internalDate: nil), 2)
        try await f.accounts.setQuota(account: alice, bytes: nil, messages: 2)
        await assertThrows(StorageError.overQuota(anyReason)) {
            try await store.append(user: alice, mailbox: "INBOX", message: message("small"), flags: [], internalDate: nil)
        }
        await assertEqual(try await store.quota(user: alice), Quota(bytesUsed: m.count * 2, bytesLimit: nil, messagesUsed: 2, messagesLimit: 2))
        // Refused writes leave nothing behind.
        await assertEqual(try await store.status(user: alice, mailbox: "INBOX").uidNext, 3)
        await assertEqual(try await store.status(user: alice, mailbox: "Archive").messages, 1)
        await assertEqual(try await store.verifyIntegrity().problems, [])
    }

    /// Accounts, deliveries to several recipients (contents a store may share), appends, copies,
    /// moves, flags, expunges, mailbox renames and deletes, an account deleted with its mail:
    /// afterwards the store finds nothing wrong with itself and counts every message it holds.
    func checkIntegrityAfterMixedWorkload() async throws {
        let f = try await fixture(users: ["alice", "bob", "carol"])
        let store = f.store, accounts = f.accounts
        for i in 0..<6 {
            let to = i % 2 == 0 ? [alice, bob, carol] : [alice, "bob+tag@example.org"]
            _ = try await store.deliver(messagePath: f.messageFile(message("delivery \(i)", body: String(repeating: "d", count: i * 100))),
                                        to: to, mailbox: nil, deliveryID: "Q\(i)")
        }
        // The same message twice: a second copy, not a second anything else.
        _ = try await store.deliver(messagePath: f.messageFile(message("delivery 0")), to: [alice], mailbox: nil)
        try await store.createMailbox(user: alice, name: "Work/Old")
        for i in 0..<4 { _ = try await store.append(user: alice, mailbox: "Work", message: message("work \(i)"), flags: ["\\Seen"], internalDate: nil) }
        _ = try await store.copy(user: alice, from: "INBOX", uids: [1, 2, 3], to: "Work/Old", move: false)
        _ = try await store.copy(user: alice, from: "INBOX", uids: [4, 5], to: "Archive", move: true)
        _ = try await store.setFlags(user: alice, mailbox: "Work", uids: [1, 2], flags: ["\\Deleted"], mode: .add)
        _ = try await store.expunge(user: alice, mailbox: "Work", uids: nil)
        try await store.renameMailbox(user: alice, from: "Work", to: "Done")
        try await store.deleteMailbox(user: alice, name: "Done/Old")
        try await store.createMailbox(user: bob, name: "Shared")
        try await store.setACL(user: bob, mailbox: "Shared", identifier: alice, change: .replace(ACLRights("lri")!))
        _ = try await store.copy(user: alice, from: "INBOX", uids: [6], to: "Other Users/bob@example.org/Shared", move: false)
        try await accounts.deleteAccount(carol)

        // INBOX 7 - 2 moved + Archive 2 + Done 2 (alice); bob's INBOX 6 + Shared 1.
        let counts = [try await store.quota(user: alice).messagesUsed, try await store.quota(user: bob).messagesUsed]
        XCTAssertEqual(counts, [9, 7])
        let report = try await store.verifyIntegrity()
        XCTAssertEqual(report.problems, [])
        XCTAssertEqual(report.unreferencedFiles, [])
        XCTAssertEqual(report.messages, 16)
    }
}
