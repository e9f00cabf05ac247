import Foundation
import PosternTestSupport
import PluginAPI
import PosternHost
import XCTest

/// What IMAP does to a mailbox: append, status, flags with MODSEQ, copy, move, expunge, and the
/// mailbox list itself.
final class MailboxTests: XCTestCase {
    let alice = "alice@example.org"

    func testAppendAndStatus() async throws {
        let f = try StoreFixture("append")
        try await f.populate(users: ["alice"])
        let store = f.store
        let initial = try await store.status(user: alice, mailbox: "INBOX")
        XCTAssertEqual(initial, MailboxStatus(messages: 0, unseen: 0, uidValidity: initial.uidValidity, uidNext: 1, highestModseq: 1))

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
        XCTAssertEqual(listed[0], StoredMessage(uid: 1, flags: ["\\Seen", "$Label"], modseq: 2, internalDate: 1_700_000_000, size: first.count))
        XCTAssertEqual(listed[1].uid, 2)
        XCTAssertEqual(listed[1].flags, [])
        XCTAssertEqual(listed[1].modseq, 3)
        XCTAssertEqual(listed[1].size, second.count)
        XCTAssertTrue((before...after).contains(listed[1].internalDate))
        await assertEqual(try await store.messages(user: alice, mailbox: "INBOX", uids: 2...2).map(\.uid), [2])
        await assertEqual(try await store.messages(user: alice, mailbox: "INBOX", uids: 3...9), [])
        await assertEqual(try await store.content(user: alice, mailbox: "INBOX", uid: 1), first)
        await assertEqual(try await store.content(user: alice, mailbox: "INBOX", uid: 2), second)
        // In one batch, by UID; a UID that does not exist is left out.
        await assertEqual(try await store.contents(user: alice, mailbox: "INBOX", uids: [2, 7, 1]), [1: first, 2: second])
        await assertEqual(try await store.contents(user: alice, mailbox: "INBOX", uids: []), [:])
        // What changed since a MODSEQ, and the count that reveals expunges.
        let sinceStart = try await store.changes(user: alice, mailbox: "INBOX", since: 1)
        XCTAssertEqual(sinceStart.changed.map(\.uid), [1, 2])
        XCTAssertEqual(sinceStart.messageCount, 2)
        XCTAssertEqual(sinceStart.highestModseq, 3)
        XCTAssertEqual(sinceStart.uidNext, 3)
        XCTAssertEqual(sinceStart.uidValidity, initial.uidValidity)
        let sinceSecond = try await store.changes(user: alice, mailbox: "INBOX", since: 2)
        XCTAssertEqual(sinceSecond.changed, [listed[1]])
        await assertEqual(try await store.changes(user: alice, mailbox: "INBOX", since: 3).changed, [])
        await XCTAssertThrowsExactly(StorageError.noSuchMailbox("Nope")) { try await store.contents(user: alice, mailbox: "Nope", uids: [1]) }

        // Other mailboxes are untouched; errors name what is missing.
        await assertEqual(try await store.status(user: alice, mailbox: "Sent").highestModseq, 1)
        await XCTAssertThrowsExactly(StorageError.noSuchMailbox("Nope")) { try await store.status(user: alice, mailbox: "Nope") }
        await XCTAssertThrowsExactly(StorageError.noSuchMailbox("Nope")) {
            try await store.append(user: alice, mailbox: "Nope", message: first, flags: [], internalDate: nil)
        }
        await XCTAssertThrowsExactly(StorageError.noSuchUser("nobody@example.org")) {
            try await store.append(user: "nobody@example.org", mailbox: "INBOX", message: first, flags: [], internalDate: nil)
        }
        // No stray temporary files from the appends.
        XCTAssertEqual(filesUnder(f.storeDirectory + "/tmp"), [])
        XCTAssertEqual(filesUnder(f.blobRoot + "/tmp"), [])
    }

    func testFlagsAndModseq() async throws {
        let f = try StoreFixture("flags")
        try await f.populate(users: ["alice"])
        let store = f.store
        for i in 1...3 { _ = try await store.append(user: alice, mailbox: "INBOX", message: message("m\(i)"), flags: [], internalDate: nil) }
        var modseq = try await store.status(user: alice, mailbox: "INBOX").highestModseq
        XCTAssertEqual(modseq, 4)

        func expectChange(_ uids: [UInt32], _ flags: [String], _ mode: FlagChange, changed: [UInt32], line: UInt = #line) async throws {
            let result = try await store.setFlags(user: alice, mailbox: "INBOX", uids: uids, flags: flags, mode: mode)
            XCTAssertEqual(result.keys.sorted(), changed, line: line)
            // Each changed message gets a new MODSEQ above the old highest, in UID order.
            XCTAssertEqual(changed.map { result[$0]! }, changed.indices.map { modseq + UInt64($0) + 1 }, line: line)
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
        // Flags compare without case: already set.
        try await expectChange([1, 2], ["\\SEEN"], .add, changed: [])
        // Already set on 1 and 2: only 3 changes; an unknown UID is ignored.
        try await expectChange([1, 2, 3, 99], ["\\Seen"], .add, changed: [3])
        await assertEqual(try await store.status(user: alice, mailbox: "INBOX").unseen, 0)
        let unchangedModseq = try await store.messages(user: alice, mailbox: "INBOX", uids: 1...1)[0].modseq
        try await expectChange([2], ["\\Flagged", "$Work"], .add, changed: [2])
        await assertEqual(try await store.messages(user: alice, mailbox: "INBOX", uids: 1...1)[0].modseq, unchangedModseq)
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
    }

    func testCopyMoveAndReferenceCounts() async throws {
        let f = try StoreFixture("copy")
        try await f.populate(users: ["alice"])
        let store = f.store
        let m1 = message("one"), m2 = message("two")
        _ = try await store.append(user: alice, mailbox: "INBOX", message: m1, flags: ["\\Seen"], internalDate: 1_600_000_000)
        _ = try await store.append(user: alice, mailbox: "INBOX", message: m2, flags: [], internalDate: 1_600_000_001)
        XCTAssertEqual(try f.index.blobRefs(), [digest(m1): 1, digest(m2): 1])

        let archiveBefore = try await store.status(user: alice, mailbox: "Archive")
        await assertEqual(try await store.copy(user: alice, from: "INBOX", uids: [2, 1], to: "Archive", move: false), [1, 2])
        await assertEqual(try await store.copy(user: alice, from: "INBOX", uids: [1, 42], to: "Archive", move: false), [3])
        XCTAssertEqual(try f.index.blobRefs(), [digest(m1): 3, digest(m2): 2])
        let archive = try await store.status(user: alice, mailbox: "Archive")
        XCTAssertEqual(archive.messages, 3)
        XCTAssertEqual(archive.unseen, 1)
        XCTAssertEqual(archive.uidNext, 4)
        XCTAssertEqual(archive.uidValidity, archiveBefore.uidValidity)
        XCTAssertGreaterThan(archive.highestModseq, archiveBefore.highestModseq)
        // Copies keep flags and INTERNALDATE; the source is unchanged.
        let copies = try await store.messages(user: alice, mailbox: "Archive", uids: 1...UInt32.max)
        XCTAssertEqual(copies.map(\.flags), [[], ["\\Seen"], ["\\Seen"]])
        XCTAssertEqual(copies.map(\.internalDate), [1_600_000_001, 1_600_000_000, 1_600_000_000])
        await assertEqual(try await store.content(user: alice, mailbox: "Archive", uid: 1), m2)
        await assertEqual(try await store.status(user: alice, mailbox: "INBOX").messages, 2)

        // Move: new UID in the target, gone from the source, one reference moved.
        let inboxBefore = try await store.status(user: alice, mailbox: "INBOX")
        await assertEqual(try await store.copy(user: alice, from: "INBOX", uids: [2], to: "Trash", move: true), [1])
        let inboxAfter = try await store.status(user: alice, mailbox: "INBOX")
        XCTAssertEqual(inboxAfter.messages, 1)
        XCTAssertGreaterThan(inboxAfter.highestModseq, inboxBefore.highestModseq)
        await assertEqual(try await store.messages(user: alice, mailbox: "INBOX", uids: 1...UInt32.max).map(\.uid), [1])
        await assertEqual(try await store.content(user: alice, mailbox: "Trash", uid: 1), m2)
        XCTAssertEqual(try f.index.blobRefs(), [digest(m1): 3, digest(m2): 2])
        await XCTAssertThrowsExactly(StorageError.noSuchMailbox("Nope")) {
            try await store.copy(user: alice, from: "INBOX", uids: [1], to: "Nope", move: false)
        }

        // A blob shared by copies survives deleting one of them, and goes with the last.
        _ = try await store.setFlags(user: alice, mailbox: "Trash", uids: [1], flags: ["\\Deleted"], mode: .add)
        await assertEqual(try await store.expunge(user: alice, mailbox: "Trash", uids: nil), [1])
        XCTAssertEqual(try f.index.blobRefs(), [digest(m1): 3, digest(m2): 1])
        await assertEqual(try await store.content(user: alice, mailbox: "Archive", uid: 1), m2)
        _ = try await store.setFlags(user: alice, mailbox: "Archive", uids: [1], flags: ["\\Deleted"], mode: .add)
        await assertEqual(try await store.expunge(user: alice, mailbox: "Archive", uids: nil), [1])
        XCTAssertEqual(try f.index.blobRefs(), [digest(m1): 3])
        XCTAssertEqual(filesUnder(f.blobRoot).count, 1)
        // Deleting a mailbox drops its references.
        try await store.deleteMailbox(user: alice, name: "Archive")
        XCTAssertEqual(try f.index.blobRefs(), [digest(m1): 1])
        await assertEqual(try await store.content(user: alice, mailbox: "INBOX", uid: 1), m1)
    }

    func testExpungeOnlyDeleted() async throws {
        let f = try StoreFixture("expunge")
        try await f.populate(users: ["alice"])
        let store = f.store
        for i in 1...4 { _ = try await store.append(user: alice, mailbox: "INBOX", message: message("m\(i)"), flags: [], internalDate: nil) }
        await assertEqual(try await store.expunge(user: alice, mailbox: "INBOX", uids: nil), [])
        _ = try await store.setFlags(user: alice, mailbox: "INBOX", uids: [1, 3, 4], flags: ["\\Deleted"], mode: .add)
        var modseq = try await store.status(user: alice, mailbox: "INBOX").highestModseq
        // Only the given UIDs, and of those only the \Deleted ones.
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
        XCTAssertEqual(try f.index.blobRefs().count, 1)
        // An expunged message is a typed answer, not a missing mailbox (IMAP answers EXPUNGEISSUED).
        await XCTAssertThrowsExactly(StorageError.expunged(mailbox: "INBOX", uid: 3)) {
            try await store.content(user: alice, mailbox: "INBOX", uid: 3)
        }
        // UIDs are never reused.
        await assertEqual(try await store.append(user: alice, mailbox: "INBOX", message: message("m5"), flags: [], internalDate: nil), 5)
    }

    func testMailboxLifecycle() async throws {
        let f = try StoreFixture("mailboxes")
        try await f.populate(users: ["alice"])
        let store = f.store
        // The parent is created with the child (RFC 3501 §6.3.3).
        try await store.createMailbox(user: alice, name: "Projects/2024")
        await assertEqual(try await store.mailboxes(user: alice).map(\.name), ["INBOX", "Archive", "Drafts", "Junk", "Projects", "Projects/2024", "Sent", "Trash"])
        for bad in ["/x", "x/", "a//b", "Other Users/x", "tab\there"] {
            await XCTAssertThrowsExactly(StorageError.permissionDenied("'\(bad)' is not a valid mailbox name")) { try await store.createMailbox(user: alice, name: bad) }
        }
        await XCTAssertThrowsExactly(StorageError.mailboxExists("Projects")) { try await store.createMailbox(user: alice, name: "Projects") }
        await XCTAssertThrowsExactly(StorageError.mailboxExists("INBOX")) { try await store.createMailbox(user: alice, name: "INBOX") }
        await XCTAssertThrowsExactly(StorageError.mailboxExists("inbox")) { try await store.createMailbox(user: alice, name: "inbox") }
        await XCTAssertThrowsExactly(StorageError.noSuchUser("nobody@example.org")) { try await store.createMailbox(user: "nobody@example.org", name: "X") }

        let bytes = message("project")
        _ = try await store.append(user: alice, mailbox: "Projects", message: bytes, flags: [], internalDate: nil)
        let projects = try await store.status(user: alice, mailbox: "Projects")
        try await store.renameMailbox(user: alice, from: "Projects", to: "Work")
        // Children move with their parent.
        await assertEqual(try await store.mailboxes(user: alice).map(\.name), ["INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash", "Work", "Work/2024"])
        // Renamed, not recreated: same UIDVALIDITY, same messages.
        await assertEqual(try await store.status(user: alice, mailbox: "Work"), projects)
        await assertEqual(try await store.content(user: alice, mailbox: "Work", uid: 1), bytes)
        await XCTAssertThrowsExactly(StorageError.noSuchMailbox("Projects")) { try await store.status(user: alice, mailbox: "Projects") }
        await XCTAssertThrowsExactly(StorageError.mailboxExists("Sent")) { try await store.renameMailbox(user: alice, from: "Work", to: "Sent") }
        await XCTAssertThrowsExactly(StorageError.noSuchMailbox("Nope")) { try await store.renameMailbox(user: alice, from: "Nope", to: "Other") }
        await XCTAssertThrowsExactly(StorageError.permissionDenied("INBOX cannot be renamed here")) {
            try await store.renameMailbox(user: alice, from: "INBOX", to: "Old")
        }
        await XCTAssertThrowsExactly(StorageError.permissionDenied("INBOX cannot be renamed here")) {
            try await store.renameMailbox(user: alice, from: "Work", to: "inbox")
        }
        await XCTAssertThrowsExactly(StorageError.permissionDenied("INBOX cannot be deleted")) { try await store.deleteMailbox(user: alice, name: "INBOX") }
        await XCTAssertThrowsExactly(StorageError.permissionDenied("INBOX cannot be deleted")) { try await store.deleteMailbox(user: alice, name: "Inbox") }
        await XCTAssertThrowsExactly(StorageError.noSuchMailbox("Nope")) { try await store.deleteMailbox(user: alice, name: "Nope") }

        // Not while it has children (as Dovecot); then it deletes its messages (and the blob
        // nobody else has).
        await XCTAssertThrowsExactly(StorageError.hasChildren("Work")) { try await store.deleteMailbox(user: alice, name: "Work") }
        try await store.deleteMailbox(user: alice, name: "Work/2024")
        try await store.deleteMailbox(user: alice, name: "Work")
        XCTAssertEqual(try f.index.blobRefs(), [:])
        XCTAssertEqual(filesUnder(f.blobRoot), [])
        // A new mailbox of the same name is a new mailbox: RFC 3501 §2.3.1.1 wants a new
        // UIDVALIDITY, since its UIDs start again at 1.
        try await store.createMailbox(user: alice, name: "Work")
        let recreated = try await store.status(user: alice, mailbox: "Work")
        XCTAssertEqual(recreated.messages, 0)
        XCTAssertEqual(recreated.uidNext, 1)
        XCTAssertNotEqual(recreated.uidValidity, projects.uidValidity)
        // Likewise for the name a rename left free.
        try await store.createMailbox(user: alice, name: "Projects")
        await assertNotEqual(try await store.status(user: alice, mailbox: "Projects").uidValidity, projects.uidValidity)
        await assertEqual(try await store.mailboxes(user: alice).map(\.name), ["INBOX", "Archive", "Drafts", "Junk", "Projects", "Sent", "Trash", "Work"])
    }

    func testQuotaNumbers() async throws {
        let f = try StoreFixture("quota")
        try await f.populate(users: ["alice"])
        let store = f.store, accounts = f.accounts
        await assertEqual(try await store.quota(user: alice), Quota(bytesUsed: 0, bytesLimit: nil, messagesUsed: 0, messagesLimit: nil))
        let a = message("a"), b = message("bb", body: String(repeating: "b", count: 1000))
        _ = try await store.append(user: alice, mailbox: "INBOX", message: a, flags: [], internalDate: nil)
        _ = try await store.deliver(messagePath: f.messageFile(b), to: [alice], mailbox: nil)
        _ = try await store.copy(user: alice, from: "INBOX", uids: [2], to: "Archive", move: false)
        try await accounts.setQuota(account: alice, bytes: 10 << 20, messages: 100)
        // Every copy counts against the account, however the blobs are shared.
        await assertEqual(try await store.quota(user: alice), Quota(bytesUsed: a.count + 2 * b.count, bytesLimit: 10 << 20, messagesUsed: 3, messagesLimit: 100))
        let info = try await accounts.account(alice)
        XCTAssertEqual(info?.bytesUsed, a.count + 2 * b.count)
        XCTAssertEqual(info?.messagesUsed, 3)
        try await accounts.setQuota(account: alice, bytes: nil, messages: nil)
        await assertEqual(try await store.quota(user: alice), Quota(bytesUsed: a.count + 2 * b.count, bytesLimit: nil, messagesUsed: 3, messagesLimit: nil))
        await XCTAssertThrowsExactly(StorageError.noSuchUser("nobody@example.org")) { try await store.quota(user: "nobody@example.org") }
        // The usage is kept per mailbox by the index itself: a move changes nothing, an expunge
        // and a mailbox deleted with its messages take theirs off.
        _ = try await store.copy(user: alice, from: "INBOX", uids: [1], to: "Trash", move: true)
        await assertEqual(try await store.quota(user: alice).messagesUsed, 3)
        _ = try await store.setFlags(user: alice, mailbox: "Trash", uids: [1], flags: ["\\Deleted"], mode: .add)
        await assertEqual(try await store.expunge(user: alice, mailbox: "Trash", uids: nil), [1])
        await assertEqual(try await store.quota(user: alice), Quota(bytesUsed: 2 * b.count, bytesLimit: nil, messagesUsed: 2, messagesLimit: nil))
        try await store.deleteMailbox(user: alice, name: "Archive")
        await assertEqual(try await store.quota(user: alice), Quota(bytesUsed: b.count, bytesLimit: nil, messagesUsed: 1, messagesLimit: nil))
        await assertEqual(try await store.verifyIntegrity().problems, [])
        // A counter that disagrees with the rows is an integrity problem.
        try IndexReader(path: f.storeDirectory + "/index.sqlite").execute("UPDATE mailbox SET message_count = 7 WHERE name = 'INBOX'")
        await assertEqual(try await store.verifyIntegrity().problems, ["mailbox alice@example.org/INBOX: counted 7 messages of \(b.count) bytes, holds 1 of \(b.count)"])
    }

    /// APPEND and COPY are refused over quota as delivery is (RFC 9208 §5: [OVERQUOTA]); a move
    /// within the account adds nothing, so it still works at the limit.
    func testAppendAndCopyRespectQuota() async throws {
        let f = try StoreFixture("quota-append")
        try await f.populate(users: ["alice"])
        let store = f.store
        let m = message("q", body: String(repeating: "x", count: 500))
        _ = try await store.append(user: alice, mailbox: "INBOX", message: m, flags: [], internalDate: nil)
        try await f.accounts.setQuota(account: alice, bytes: m.count * 2 - 1, messages: nil)
        await XCTAssertThrowsExactly(StorageError.overQuota("storage limit \(m.count * 2 - 1) bytes")) {
            try await store.append(user: alice, mailbox: "INBOX", message: m, flags: [], internalDate: nil)
        }
        await XCTAssertThrowsExactly(StorageError.overQuota("storage limit \(m.count * 2 - 1) bytes")) {
            try await store.copy(user: alice, from: "INBOX", uids: [1], to: "Archive", move: false)
        }
        await assertEqual(try await store.copy(user: alice, from: "INBOX", uids: [1], to: "Archive", move: true), [1])
        try await f.accounts.setQuota(account: alice, bytes: nil, messages: 1)
        await XCTAssertThrowsExactly(StorageError.overQuota("message limit 1")) {
            try await store.append(user: alice, mailbox: "INBOX", message: message("small"), flags: [], internalDate: nil)
        }
        await assertEqual(try await store.quota(user: alice).messagesUsed, 1)
        await assertEqual(try await store.verifyIntegrity().problems, [])
    }

    /// Files left by a delivery interrupted between writing and committing are removed by
    /// `admin check --repair` once old enough; young ones (a delivery may be in progress) and
    /// referenced ones stay.
    func testRepairRemovesOnlyOldUnreferencedFiles() async throws {
        let f = try StoreFixture("repair")
        try await f.populate(users: ["alice"])
        let kept = message("kept")
        _ = try await f.store.append(user: alice, mailbox: "INBOX", message: kept, flags: [], internalDate: nil)
        let old = f.blobRoot + "/aa/bb/aabb" + String(repeating: "0", count: 60)
        let young = f.blobRoot + "/cc/dd/ccdd" + String(repeating: "0", count: 60)
        for path in [old, young] {
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data("orphan".utf8)))
        }
        var times = [timeval(tv_sec: time(nil) - 7200, tv_usec: 0), timeval(tv_sec: time(nil) - 7200, tv_usec: 0)]
        XCTAssertEqual(utimes(old, &times), 0)
        await assertEqual(try await f.store.verifyIntegrity().unreferencedFiles, [old, young])
        let r = Build.runSeparately(Build.postern, ["admin", "check", "--repair", "-c", f.configFile])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.hasPrefix("removed \(old)\nunreferenced \(young)\nchecked 1 messages, 1 blobs: ok"), r.stdout)
        XCTAssertFalse(FileManager.default.fileExists(atPath: old))
        await assertEqual(try await f.store.content(user: alice, mailbox: "INBOX", uid: 1), kept)
        await assertEqual(try await f.store.removeUnreferencedFiles(olderThan: 0), [young])
        await assertEqual(try await f.store.verifyIntegrity(), IntegrityReport(problems: [], unreferencedFiles: [], messages: 1, blobs: 1))
    }
}

/// The index locked by another process past `busy_timeout` is a temporary failure the protocols
/// turn into 451 / NO [UNAVAILABLE] / a deferral, never an unknown error.
final class BusyIndexTests: XCTestCase {
    func testIndexHeldByAnotherProcessIsATemporaryFailure() async throws {
        let f = try StoreFixture("busy", pluginSettings: "busy_timeout = \"200ms\"")
        try await f.populate(users: ["alice"])
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        holder.arguments = ["-c", """
            import sqlite3, sys, time
            c = sqlite3.connect(sys.argv[1], isolation_level=None)
            c.execute("BEGIN EXCLUSIVE")
            print("locked", flush=True)
            time.sleep(3)
            """, f.storeDirectory + "/index.sqlite"]
        let out = Pipe()
        holder.standardOutput = out
        try holder.run()
        defer { holder.terminate(); holder.waitUntilExit() }
        let line = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self)
        XCTAssertTrue(line.hasPrefix("locked"), line)
        do {
            _ = try await f.store.append(user: "alice@example.org", mailbox: "INBOX", message: message("held"), flags: [], internalDate: nil)
            XCTFail("the write went through an exclusive lock")
        } catch StorageError.temporary(let why) {
            XCTAssertTrue(why.contains("busy"), why)
        }
        holder.terminate()
        holder.waitUntilExit()
        // Once the other process lets go, the same write succeeds.
        await assertEqual(try await f.store.append(user: "alice@example.org", mailbox: "INBOX", message: message("later"),
                                                   flags: [], internalDate: nil), 1)
    }
}
