import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest

/// What IMAP does to the messages of a mailbox: APPEND, STATUS, SELECT, FETCH, STORE with MODSEQ
/// (RFC 7162), COPY, MOVE, EXPUNGE; and the quota they count against (RFC 9208).
extension StoreConformance {
    func checkAppendAndStatus() async throws {
        let f = try await fixture(users: ["alice"])
        let store = f.store
        let initial = try await store.status(user: alice, mailbox: "INBOX")
        XCTAssertEqual(initial, MailboxStatus(messages: 0, unseen: 0, uidValidity: initial.uidValidity, uidNext: 1, highestModseq: 1))

        // Flags keep their first spelling and order; a repeat in another case is the same flag.
        let first = message("first")
        await assertEqual(try await store.append(user: alice, mailbox: "INBOX", message: first, flags: ["\\Seen", "$Label", "\\seen"],
                                                 internalDate: 1_700_000_000), 1)
        await assertEqual(try await store.status(user: alice, mailbox: "inbox"),
                          MailboxStatus(messages: 1, unseen: 0, uidValidity: initial.uidValidity, uidNext: 2, highestModseq: 2))
        let second = message("second")
        let before = Int64(Date().timeIntervalSince1970)
        await assertEqual(try await store.append(user: alice, mailbox: "INBOX", message: second, flags: [], internalDate: nil), 2)
        let after = Int64(Date().timeIntervalSince1970)
        await assertEqual(try await store.status(user: alice, mailbox: "INBOX"),
                          MailboxStatus(messages: 2, unseen: 1, uidValidity: initial.uidValidity, uidNext: 3, highestModseq: 3))

        let listed = try await store.messages(user: alice, mailbox: "INBOX", uids: 1...UInt32.max)
        XCTAssertEqual(listed.count, 2)
        XCTAssertEqual(listed.first, StoredMessage(uid: 1, flags: ["\\Seen", "$Label"], modseq: 2, internalDate: 1_700_000_000, size: first.count))
        XCTAssertEqual(listed.last?.uid, 2)
        XCTAssertEqual(listed.last?.flags, [])
        XCTAssertEqual(listed.last?.modseq, 3)
        XCTAssertEqual(listed.last?.size, second.count)
        XCTAssertTrue((before...after).contains(listed.last?.internalDate ?? 0), "\(listed)")
        await assertEqual(try await store.messages(user: alice, mailbox: "INBOX", uids: 2...2).map(\.uid), [2])
        await assertEqual(try await store.messages(user: alice, mailbox: "INBOX", uids: 3...9), [])
        await assertEqual(try await store.content(user: alice, mailbox: "INBOX", uid: 1), first)
        await assertEqual(try await store.content(user: alice, mailbox: "INBOX", uid: 2), second)
        // Bytes exactly as given, whatever they are (bare LF, NUL, 8-bit).
        let odd: [UInt8] = Array("Subject: odd\n\nbare LF\n".utf8) + [0, 0xff, 0xfe, 13, 10]
        await assertEqual(try await store.append(user: alice, mailbox: "INBOX", message: odd, flags: [], internalDate: nil), 3)
        await assertEqual(try await store.content(user: alice, mailbox: "INBOX", uid: 3), odd)

        // Other mailboxes are untouched; errors name what is missing.
        await assertEqual(try await store.status(user: alice, mailbox: "Sent").highestModseq, 1)
        await assertThrows(StorageError.noSuchMailbox("Nope")) { try await store.status(user: alice, mailbox: "Nope") }
        await assertThrows(StorageError.noSuchMailbox("Nope")) {
            try await store.append(user: alice, mailbox: "Nope", message: first, flags: [], internalDate: nil)
        }
        await assertThrows(StorageError.noSuchUser(nobody)) {
            try await store.append(user: nobody, mailbox: "INBOX", message: first, flags: [], internalDate: nil)
        }
    }

    /// The reads a session makes between commands: changeStamp, selection (SELECT), changes since
    /// a MODSEQ (QRESYNC), several contents at once (FETCH).
    func checkSessionReads() async throws {
        let f = try await fixture(users: ["alice"])
        let store = f.store
        let bodies = (1...5).map { message("m\($0)") }
        let flags: [[String]] = [["\\Seen"], [], ["\\Seen", "Work"], ["$Junk", "\\Flagged"], ["\\Seen"]]
        for (m, fl) in zip(bodies, flags) { _ = try await store.append(user: alice, mailbox: "INBOX", message: m, flags: fl, internalDate: nil) }
        _ = try await store.setFlags(user: alice, mailbox: "INBOX", uids: [1], flags: ["\\Deleted"], mode: .add)
        await assertEqual(try await store.expunge(user: alice, mailbox: "INBOX", uids: nil), [1])
        let status = try await store.status(user: alice, mailbox: "INBOX")
        XCTAssertEqual([status.messages, status.unseen], [4, 2])
        XCTAssertEqual(status.uidNext, 6)

        let stamp = try await store.changeStamp(user: alice, mailbox: "INBOX")
        XCTAssertEqual([stamp.uidValidity, stamp.uidNext], [status.uidValidity, status.uidNext])
        XCTAssertEqual(stamp.highestModseq, status.highestModseq)

        let selection = try await store.selection(user: alice, mailbox: "INBOX")
        XCTAssertEqual(selection.uids, [2, 3, 4, 5])
        XCTAssertEqual(selection.firstUnseen, 2)
        XCTAssertEqual(Set(selection.keywords), ["Work", "$Junk"])
        XCTAssertEqual(selection.keywords.count, 2, "each keyword once")
        XCTAssertEqual([selection.uidValidity, selection.uidNext], [status.uidValidity, status.uidNext])
        XCTAssertEqual(selection.highestModseq, status.highestModseq)
        _ = try await store.setFlags(user: alice, mailbox: "INBOX", uids: [2, 4], flags: ["\\SEEN"], mode: .add)
        await assertEqual(try await store.selection(user: alice, mailbox: "INBOX").firstUnseen, nil)
        await assertEqual(try await store.selection(user: alice, mailbox: "Sent"),
                          MailboxSelection(uidValidity: try await store.status(user: alice, mailbox: "Sent").uidValidity, uidNext: 1,
                                           highestModseq: 1, uids: [], firstUnseen: nil, keywords: []))

        // What changed since a MODSEQ, and the count that reveals expunges.
        let all = try await store.messages(user: alice, mailbox: "INBOX", uids: 1...UInt32.max)
        let since = all.first { $0.uid == 3 }!.modseq
        let changes = try await store.changes(user: alice, mailbox: "INBOX", since: since)
        // 5 came after 3; 2 and 4 have new flags since.
        XCTAssertEqual(changes.changed.map(\.uid), [2, 4, 5])
        XCTAssertEqual(changes.changed, all.filter { $0.modseq > since })
        XCTAssertEqual(changes.messageCount, 4)
        let now = try await store.status(user: alice, mailbox: "INBOX")
        XCTAssertEqual(changes.highestModseq, now.highestModseq)
        XCTAssertEqual([changes.uidValidity, changes.uidNext], [now.uidValidity, now.uidNext])
        await assertEqual(try await store.changes(user: alice, mailbox: "INBOX", since: now.highestModseq).changed, [])
        await assertEqual(try await store.changes(user: alice, mailbox: "INBOX", since: 0).changed.map(\.uid), [2, 3, 4, 5])

        // In one batch, by UID; UIDs that do not exist (or were expunged) are left out.
        await assertEqual(try await store.contents(user: alice, mailbox: "INBOX", uids: [3, 1, 9, 2]), [2: bodies[1], 3: bodies[2]])
        await assertEqual(try await store.contents(user: alice, mailbox: "INBOX", uids: []), [:])
        await assertThrows(StorageError.noSuchMailbox("Nope")) { try await store.contents(user: alice, mailbox: "Nope", uids: [1]) }
        await assertThrows(StorageError.noSuchMailbox("Nope")) { try await store.selection(user: alice, mailbox: "Nope") }
        await assertThrows(StorageError.noSuchMailbox("Nope")) { try await store.changeStamp(user: alice, mailbox: "Nope") }
        // An expunged message is a typed answer (IMAP answers EXPUNGEISSUED), not a missing mailbox.
        await assertThrows(StorageError.expunged(mailbox: "INBOX", uid: 1)) { try await store.content(user: alice, mailbox: "INBOX", uid: 1) }
    }

    /// STORE: add, remove, replace; flags compare without case; each changed message gets the
    /// next MODSEQ in UID order, and a change that changes nothing gets none (RFC 7162 §3.1.3).
    func checkFlagsAndModseq() async throws {
        let f = try await fixture(users: ["alice"])
        let store = f.store
        for i in 1...3 { _ = try await store.append(user: alice, mailbox: "INBOX", message: message("m\(i)"), flags: [], internalDate: nil) }
        var modseq = try await store.status(user: alice, mailbox: "INBOX").highestModseq
        XCTAssertEqual(modseq, 4)

        func expectChange(_ uids: [UInt32], _ flags: [String], _ mode: FlagChange, changed: [UInt32], line: UInt = #line) async throws {
            let result = try await store.setFlags(user: alice, mailbox: "INBOX", uids: uids, flags: flags, mode: mode)
            XCTAssertEqual(result.keys.sorted(), changed, line: line)
            XCTAssertEqual(changed.map { result[$0] }, changed.indices.map { modseq + UInt64($0) + 1 }, line: line)
            let highest = try await store.status(user: alice, mailbox: "INBOX").highestModseq
            XCTAssertEqual(highest, modseq + UInt64(changed.count), line: line)
            let stored = try await store.messages(user: alice, mailbox: "INBOX", uids: 1...UInt32.max)
            for uid in changed { XCTAssertEqual(stored.first { $0.uid == uid }?.modseq, result[uid], line: line) }
            modseq = highest
        }
        func flags() async throws -> [[String]] { try await store.messages(user: alice, mailbox: "INBOX", uids: 1...UInt32.max).map(\.flags) }

        try await expectChange([1, 2], ["\\Seen"], .add, changed: [1, 2])
        await assertEqual(try await flags(), [["\\Seen"], ["\\Seen"], []])
        await assertEqual(try await store.status(user: alice, mailbox: "INBOX").unseen, 1)
        try await expectChange([1, 2], ["\\SEEN"], .add, changed: [])
        // Only 3 changes; an unknown UID is ignored.
        try await expectChange([1, 2, 3, 99], ["\\Seen"], .add, changed: [3])
        await assertEqual(try await store.status(user: alice, mailbox: "INBOX").unseen, 0)
        let untouched = try await store.messages(user: alice, mailbox: "INBOX", uids: 1...1)[0].modseq
        try await expectChange([2], ["\\Flagged", "$Work"], .add, changed: [2])
        await assertEqual(try await store.messages(user: alice, mailbox: "INBOX", uids: 1...1)[0].modseq, untouched)
        await assertEqual(try await flags(), [["\\Seen"], ["\\Seen", "\\Flagged", "$Work"], ["\\Seen"]])
        try await expectChange([1, 2], ["\\seen"], .remove, changed: [1, 2])
        await assertEqual(try await flags(), [[], ["\\Flagged", "$Work"], ["\\Seen"]])
        try await expectChange([1], ["\\Seen"], .remove, changed: [])
        try await expectChange([2, 3], ["\\Answered"], .replace, changed: [2, 3])
        await assertEqual(try await flags(), [[], ["\\Answered"], ["\\Answered"]])
        try await expectChange([2, 3], ["\\Answered"], .replace, changed: [])
        try await expectChange([2], ["$Later"], .add, changed: [2])
        // The same set in another order, or another case, is no change either.
        try await expectChange([2], ["$Later", "\\answered"], .replace, changed: [])
        await assertEqual(try await flags(), [[], ["\\Answered", "$Later"], ["\\Answered"]])
        try await expectChange([2], ["\\Answered"], .replace, changed: [2])
        try await expectChange([3], [], .replace, changed: [3])
        await assertEqual(try await flags(), [[], ["\\Answered"], []])
        await assertEqual(try await store.status(user: alice, mailbox: "INBOX").unseen, 3)
        await assertThrows(StorageError.noSuchMailbox("Nope")) {
            try await store.setFlags(user: alice, mailbox: "Nope", uids: [1], flags: ["\\Seen"], mode: .add)
        }
    }

    /// COPY: new UIDs in the target in the order given, flags and INTERNALDATE kept, the source
    /// unchanged; missing UIDs skipped.
    func checkCopy() async throws {
        let f = try await fixture(users: ["alice"])
        let store = f.store
        let m1 = message("one"), m2 = message("two")
        _ = try await store.append(user: alice, mailbox: "INBOX", message: m1, flags: ["\\Seen"], internalDate: 1_600_000_000)
        _ = try await store.append(user: alice, mailbox: "INBOX", message: m2, flags: [], internalDate: 1_600_000_001)
        let archiveBefore = try await store.status(user: alice, mailbox: "Archive")
        let inboxBefore = try await store.status(user: alice, mailbox: "INBOX")
        await assertEqual(try await store.copy(user: alice, from: "INBOX", uids: [2, 1], to: "Archive", move: false), [1, 2])
        await assertEqual(try await store.copy(user: alice, from: "INBOX", uids: [1, 42], to: "Archive", move: false), [3])
        let archive = try await store.status(user: alice, mailbox: "Archive")
        XCTAssertEqual([archive.messages, archive.unseen], [3, 1])
        XCTAssertEqual(archive.uidNext, 4)
        XCTAssertEqual(archive.uidValidity, archiveBefore.uidValidity)
        XCTAssertGreaterThan(archive.highestModseq, archiveBefore.highestModseq)
        let copies = try await store.messages(user: alice, mailbox: "Archive", uids: 1...UInt32.max)
        XCTAssertEqual(copies.map(\.flags), [[], ["\\Seen"], ["\\Seen"]])
        XCTAssertEqual(copies.map(\.internalDate), [1_600_000_001, 1_600_000_000, 1_600_000_000])
        XCTAssertEqual(copies.map(\.size), [m2.count, m1.count, m1.count])
        await assertEqual(try await store.contents(user: alice, mailbox: "Archive", uids: [1, 2, 3]), [1: m2, 2: m1, 3: m1])
        await assertEqual(try await store.status(user: alice, mailbox: "INBOX"), inboxBefore)
        // Every copy counts against the quota.
        await assertEqual(try await store.quota(user: alice).messagesUsed, 5)
        // A copy is a message of its own: flagging it leaves the original alone.
        _ = try await store.setFlags(user: alice, mailbox: "Archive", uids: [1], flags: ["\\Flagged"], mode: .add)
        await assertEqual(try await store.messages(user: alice, mailbox: "INBOX", uids: 2...2).map(\.flags), [[]])
        await assertEqual(try await store.copy(user: alice, from: "INBOX", uids: [77], to: "Archive", move: false), [])
        await assertThrows(StorageError.noSuchMailbox("Nope")) { try await store.copy(user: alice, from: "INBOX", uids: [1], to: "Nope", move: false) }
        await assertThrows(StorageError.noSuchMailbox("Nope")) { try await store.copy(user: alice, from: "Nope", uids: [1], to: "INBOX", move: false) }
    }

    /// MOVE: a new UID in the target, gone from the source (whose MODSEQ rises), the usage the same.
    func checkMove() async throws {
        let f = try await fixture(users: ["alice"])
        let store = f.store
        let m1 = message("one"), m2 = message("two")
        _ = try await store.append(user: alice, mailbox: "INBOX", message: m1, flags: [], internalDate: nil)
        _ = try await store.append(user: alice, mailbox: "INBOX", message: m2, flags: ["\\Flagged"], internalDate: 1_600_000_000)
        _ = try await store.append(user: alice, mailbox: "Trash", message: message("old"), flags: [], internalDate: nil)
        let inboxBefore = try await store.status(user: alice, mailbox: "INBOX")
        let usage = try await store.quota(user: alice)
        await assertEqual(try await store.copy(user: alice, from: "INBOX", uids: [2], to: "Trash", move: true), [2])
        let inboxAfter = try await store.status(user: alice, mailbox: "INBOX")
        XCTAssertEqual(inboxAfter.messages, 1)
        XCTAssertEqual(inboxAfter.uidNext, inboxBefore.uidNext)
        XCTAssertGreaterThan(inboxAfter.highestModseq, inboxBefore.highestModseq)
        await assertEqual(try await store.messages(user: alice, mailbox: "INBOX", uids: 1...UInt32.max).map(\.uid), [1])
        let moved = try await store.messages(user: alice, mailbox: "Trash", uids: 2...2)
        XCTAssertEqual(moved.map(\.flags), [["\\Flagged"]])
        XCTAssertEqual(moved.map(\.internalDate), [1_600_000_000])
        await assertEqual(try await store.content(user: alice, mailbox: "Trash", uid: 2), m2)
        await assertEqual(try await store.quota(user: alice), usage)
        await assertThrows(StorageError.expunged(mailbox: "INBOX", uid: 2)) { try await store.content(user: alice, mailbox: "INBOX", uid: 2) }
        // Back again: yet another UID, never the old one.
        await assertEqual(try await store.copy(user: alice, from: "Trash", uids: [2], to: "INBOX", move: true), [3])
        await assertEqual(try await store.content(user: alice, mailbox: "INBOX", uid: 3), m2)
        await assertEqual(try await store.messages(user: alice, mailbox: "Trash", uids: 1...UInt32.max).map(\.uid), [1])
        await assertEqual(try await store.verifyIntegrity().problems, [])
    }

    /// EXPUNGE removes \Deleted messages only (all, or those of the given UIDs); UIDs are never
    /// reused.
    func checkExpungeOnlyDeleted() async throws {
        let f = try await fixture(users: ["alice"])
        let store = f.store
        for i in 1...4 { _ = try await store.append(user: alice, mailbox: "INBOX", message: message("m\(i)"), flags: [], internalDate: nil) }
        await assertEqual(try await store.expunge(user: alice, mailbox: "INBOX", uids: nil), [])
        _ = try await store.setFlags(user: alice, mailbox: "INBOX", uids: [1, 3, 4], flags: ["\\Deleted"], mode: .add)
        var modseq = try await store.status(user: alice, mailbox: "INBOX").highestModseq
        await assertEqual(try await store.expunge(user: alice, mailbox: "INBOX", uids: [3, 2]), [3])
        var status = try await store.status(user: alice, mailbox: "INBOX")
        XCTAssertEqual(status.messages, 3)
        XCTAssertGreaterThan(status.highestModseq, modseq)
        modseq = status.highestModseq
        await assertEqual(try await store.expunge(user: alice, mailbox: "INBOX", uids: nil), [1, 4])
        status = try await store.status(user: alice, mailbox: "INBOX")
        XCTAssertEqual(status.messages, 1)
        XCTAssertEqual(status.uidNext, 5)
        XCTAssertGreaterThan(status.highestModseq, modseq)
        await assertEqual(try await store.messages(user: alice, mailbox: "INBOX", uids: 1...UInt32.max).map(\.uid), [2])
        await assertEqual(try await store.quota(user: alice).messagesUsed, 1)
        await assertThrows(StorageError.expunged(mailbox: "INBOX", uid: 3)) { try await store.content(user: alice, mailbox: "INBOX", uid: 3) }
        await assertEqual(try await store.append(user: alice, mailbox: "INBOX", message: message("m5"), flags: [], internalDate: nil), 5)
    }
}
