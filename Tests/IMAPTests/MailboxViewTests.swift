import PosternTestSupport
import PluginAPI
import XCTest
@testable import PosternIMAPCore

/// The session's view of a selected mailbox (Session/MailboxView.swift): numbering, resolution of
/// sequence and UID sets, and the untagged updates it owes the client after the store changed.
final class MailboxViewTests: XCTestCase {
    func stored(_ uid: UInt32, _ flags: [String] = [], modseq: UInt64 = 1) -> StoredMessage {
        StoredMessage(uid: uid, flags: flags, modseq: modseq, internalDate: 0, size: 100)
    }

    func view(_ uids: [UInt32], recent: Set<UInt32> = []) -> MailboxView {
        MailboxView(MailboxSelection(uidValidity: 7, uidNext: (uids.max() ?? 0) + 1, highestModseq: 1, uids: uids.sorted(), firstUnseen: nil, keywords: []),
                    recent: recent)
    }

    func wire(_ responses: [IMAPResponse]) -> [String] {
        responses.map { String(decoding: IMAPResponseEncoder().encode($0), as: UTF8.self).trimmingCharacters(in: .newlines) }
    }

    let plain = MailboxView.Announcing(expungesAllowed: true, condStore: false, qresync: false, permanentFlags: [])

    func testSequenceNumbersAndUIDs() {
        let v = view([3, 5, 9, 10])
        XCTAssertEqual(v.count, 4)
        XCTAssertEqual(v.sequenceNumber(of: 9), 3)
        XCTAssertNil(v.sequenceNumber(of: 4))
        XCTAssertEqual(v.uid(at: 1), 3)
        XCTAssertNil(v.uid(at: 5))
        XCTAssertNil(v.uid(at: 0))
        XCTAssertEqual(v.largestUID, 10)
    }

    func testResolvingSequenceSets() {
        let v = view([3, 5, 9, 10])
        XCTAssertEqual(v.resolve(sequenceSet: set("2:*")).map(\.uid), [5, 9, 10])
        XCTAssertEqual(v.resolve(sequenceSet: set("*:3")).map(\.seq), [3, 4])
        XCTAssertEqual(v.resolve(sequenceSet: set("4,1")).map(\.uid), [3, 10])
        XCTAssertEqual(v.resolve(sequenceSet: set("1:2,2:3")).map(\.seq), [1, 2, 3], "overlaps merge")
        XCTAssertTrue(set("5").exceeds(UInt32(v.count)))
    }

    func testResolvingUIDSets() {
        let v = view([3, 5, 9, 10])
        XCTAssertEqual(v.resolve(uidSet: set("4:9")).map(\.uid), [5, 9])
        XCTAssertEqual(v.resolve(uidSet: set("1:*")).map(\.seq), [1, 2, 3, 4])
        // RFC 3501 §6.4.8: `n:*` names the largest UID even when it is below n.
        XCTAssertEqual(v.resolve(uidSet: set("100:*")).map(\.uid), [10])
        XCTAssertEqual(v.resolve(uidSet: set("11:20")).count, 0)
        XCTAssertEqual(view([]).resolve(uidSet: set("1:*")).count, 0)
    }

    func testUIDRangesFollowConsecutiveNumbers() {
        let v = view([3, 5, 9, 10, 20])
        XCTAssertEqual(MailboxView.uidRanges(v.resolve(sequenceSet: set("1:2,4:5"))), [3...5, 10...20])
        XCTAssertEqual(MailboxView.uidRanges(v.resolve(sequenceSet: set("1,3,5"))), [3...3, 9...9, 20...20])
    }

    func testNewMessagesAreAnnouncedWithExistsAndRecent() {
        var v = view([1, 2])
        let added = v.absorb(listing: [stored(1), stored(2), stored(3), stored(4)], highestModseq: 4, uidNext: 5)
        XCTAssertEqual(added, [3, 4])
        v.markRecent([4])
        XCTAssertEqual(wire(v.takeUpdates(plain)), ["* 4 EXISTS", "* 1 RECENT"])
        XCTAssertEqual(v.flags([], of: 4), ["\\Recent"])
        XCTAssertTrue(v.takeUpdates(plain).isEmpty, "said once")
        XCTAssertEqual(v.uidNext, 5)
    }

    func testExpungesWaitUntilTheyMayBeSent() {
        var v = view([1, 2, 3, 4, 5])
        v.absorb(listing: [stored(1), stored(3), stored(5), stored(6)], highestModseq: 9, uidNext: 7)
        // During FETCH/STORE/SEARCH: only EXISTS, which counts the expunged ones still.
        let during = MailboxView.Announcing(expungesAllowed: false, condStore: false, qresync: false, permanentFlags: [])
        XCTAssertEqual(wire(v.takeUpdates(during)), ["* 6 EXISTS", "* 0 RECENT"])
        XCTAssertEqual(v.sequenceNumber(of: 4), 4, "still numbered")
        XCTAssertTrue(v.isVanished(2))
        // Later: each EXPUNGE counts after the previous one (2 is message 2; then 4 is message 3).
        XCTAssertEqual(wire(v.takeUpdates(plain)), ["* 2 EXPUNGE", "* 3 EXPUNGE"])
        XCTAssertEqual(Array(v.uids), [1, 3, 5, 6])
        XCTAssertTrue(v.takeUpdates(plain).isEmpty)
    }

    func testQResyncSendsVanishedInsteadOfExpunge() {
        var v = view([1, 2, 3, 4, 5])
        v.absorb(listing: [stored(1), stored(5)], highestModseq: 9, uidNext: 6)
        let q = MailboxView.Announcing(expungesAllowed: true, condStore: true, qresync: true, permanentFlags: [])
        XCTAssertEqual(wire(v.takeUpdates(q)), ["* VANISHED 2:4"])
        XCTAssertEqual(v.count, 2)
    }

    func testFlagChangesBecomeFetchResponses() {
        var v = view([1, 2, 3])
        v.absorb(listing: [stored(1), stored(2, ["\\Seen"], modseq: 5), stored(3)], highestModseq: 5, uidNext: 4)
        XCTAssertEqual(wire(v.takeUpdates(plain)), ["* 2 FETCH (FLAGS (\\Seen))"])
        v.absorb(listing: [stored(1), stored(2, ["\\Seen", "\\Flagged"], modseq: 6), stored(3)], highestModseq: 6, uidNext: 4)
        let cs = MailboxView.Announcing(expungesAllowed: true, condStore: true, qresync: true, permanentFlags: [])
        XCTAssertEqual(wire(v.takeUpdates(cs)), ["* 2 FETCH (UID 2 FLAGS (\\Flagged \\Seen) MODSEQ (6))"])
        // The same flags in another case or order are no change.
        v.absorb(listing: [stored(1), stored(2, ["\\flagged", "\\SEEN"], modseq: 6), stored(3)], highestModseq: 6, uidNext: 4)
        XCTAssertTrue(v.takeUpdates(plain).isEmpty)
    }

    /// Catching up from the changes since `syncedModseq`: new messages and new flags are taken
    /// in; a count that says something the view numbers is gone asks for the full listing.
    func testAbsorbingOnlyTheChanges() {
        var v = view([1, 2, 3])
        XCTAssertEqual(v.syncedModseq, 1)
        let added = v.absorb(changes: [stored(2, ["\\Seen"], modseq: 5), stored(4, modseq: 6)], messageCount: 4, highestModseq: 6, uidNext: 5)
        XCTAssertEqual(added, [4])
        XCTAssertEqual(v.syncedModseq, 6)
        XCTAssertEqual(wire(v.takeUpdates(plain)), ["* 4 EXISTS", "* 0 RECENT", "* 2 FETCH (FLAGS (\\Seen))"])
        // Message 3 expunged elsewhere while 5 arrived: the count (4, not 5) gives it away.
        let before = v
        XCTAssertNil(v.absorb(changes: [stored(5, modseq: 8)], messageCount: 4, highestModseq: 8, uidNext: 6))
        XCTAssertEqual(v, before, "nothing taken from a refused catch-up")
        v.absorb(listing: [stored(1), stored(2, ["\\Seen"], modseq: 5), stored(4, modseq: 6), stored(5, modseq: 8)], highestModseq: 8, uidNext: 6)
        XCTAssertEqual(v.syncedModseq, 8)
        XCTAssertTrue(v.isVanished(3))
        // Still numbered until the EXPUNGE goes out, and not counted as present meanwhile.
        XCTAssertEqual(v.absorb(changes: [], messageCount: 4, highestModseq: 9, uidNext: 6), [])
        XCTAssertEqual(wire(v.takeUpdates(plain)), ["* 3 EXPUNGE", "* 4 EXISTS", "* 0 RECENT"])
    }

    /// The session's own STORE raises HIGHESTMODSEQ as told to the client but not the point the
    /// view has caught up to: another session's change with a lower MODSEQ is still read.
    func testOwnChangesDoNotAdvanceTheSyncPoint() {
        var v = view([1, 2])
        v.record(uid: 1, flags: ["\\Flagged"], modseq: 11)
        XCTAssertEqual(v.highestModseq, 11)
        XCTAssertEqual(v.syncedModseq, 1)
        XCTAssertEqual(v.absorb(changes: [stored(1, ["\\Flagged"], modseq: 11), stored(2, ["\\Seen"], modseq: 10)], messageCount: 2,
                                highestModseq: 11, uidNext: 3), [])
        XCTAssertEqual(wire(v.takeUpdates(plain)), ["* 2 FETCH (FLAGS (\\Seen))"])
    }

    func testNewKeywordsResendFlags() {
        var v = view([1])
        v.absorb(listing: [stored(1, ["$Forwarded"], modseq: 2)], highestModseq: 2, uidNext: 2)
        let how = MailboxView.Announcing(expungesAllowed: true, condStore: false, qresync: false, permanentFlags: [.seen, .mayCreateKeywords])
        XCTAssertEqual(wire(v.takeUpdates(how)), [
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded)",
            "* OK [PERMANENTFLAGS (\\Seen \\*)] Flags permitted.",
            "* 1 FETCH (FLAGS ($Forwarded))",
        ])
    }

    func testOwnChangesAreNotAnnouncedAgain() {
        var v = view([1, 2])
        v.record(uid: 2, flags: ["\\Deleted"], modseq: 3)
        v.absorb(listing: [stored(1), stored(2, ["\\Deleted"], modseq: 3)], highestModseq: 3, uidNext: 3)
        XCTAssertTrue(v.takeUpdates(plain).isEmpty)
        XCTAssertEqual(v.remove(expunged: [2, 99]), [2])
        XCTAssertTrue(v.takeUpdates(plain).isEmpty, "an own EXPUNGE is answered by the command itself")
    }

    func testRemovingSeveralRenumbersInOrder() {
        var v = view([10, 20, 30, 40, 50])
        XCTAssertEqual(v.remove(expunged: [50, 20, 30]), [2, 2, 3])
        XCTAssertEqual(Array(v.uids), [10, 40])
    }

    func testRecentIsTheSessionsOwn() {
        var v = view([1, 2, 3], recent: [2, 3, 99])
        XCTAssertEqual(v.recent, [2, 3])
        XCTAssertEqual(v.flags([], of: 3), ["\\Recent"])
        _ = v.remove(expunged: [3])
        XCTAssertEqual(v.recent, [2])
        XCTAssertEqual(wire(v.takeUpdates(plain)), [], "RECENT changed only through this session's own expunge")
    }

    func testMissingRanges() {
        XCTAssertEqual(MailboxView.missing([1...10], present: [2, 3, 7]), [1...1, 4...6, 8...10])
        XCTAssertEqual(MailboxView.missing([1...3, 8...9], present: [1, 2, 3, 9]), [8...8])
        XCTAssertEqual(MailboxView.missing([5...UInt32.max], present: [5, UInt32.max]), [6...(UInt32.max - 1)])
        XCTAssertEqual(MailboxView.missing([], present: [1]), [])
        XCTAssertEqual(MailboxView.missing([1...4_000_000_000], present: []), [1...4_000_000_000], "no enumeration of huge ranges")
    }
}
