import Foundation
import PosternTestSupport
import PluginAPI
import PosternHost
import XCTest

/// `StorageBackend.selection` (what IMAP SELECT reads) agrees with the whole listing it replaces:
/// UIDs, first unseen (through the system flags' index) and keywords in use.
final class SelectionTests: XCTestCase {
    let alice = "alice@example.org"

    /// What the listing says, computed the plain way.
    private func expected(_ store: any StorageBackend, _ mailbox: String) async throws -> (uids: [UInt32], firstUnseen: UInt32?, keywords: Set<String>) {
        let all = try await store.messages(user: alice, mailbox: mailbox, uids: 1...UInt32.max)
        return (all.map(\.uid), all.first { m in !m.flags.contains { $0.lowercased() == "\\seen" } }?.uid,
                Set(all.flatMap(\.flags).filter { !$0.hasPrefix("\\") }))
    }

    func testSelectionAgreesWithTheListing() async throws {
        let f = try StoreFixture("selection")
        try await f.populate(users: ["alice"])
        let store = f.store
        // Empty first.
        var s = try await store.selection(user: alice, mailbox: "INBOX")
        XCTAssertEqual(s.uids, [])
        XCTAssertNil(s.firstUnseen)
        XCTAssertEqual(s.keywords, [])

        var rng = SystemRandomNumberGenerator()
        let flagChoices: [[String]] = [[], ["\\Seen"], ["\\Seen", "$Forwarded"], ["\\Flagged"], ["\\Seen", "\\Answered"], ["Work"], ["\\Seen", "Work", "$Junk"]]
        for n in 0..<120 {
            let flags = n < 40 ? ["\\Seen"] : flagChoices[Int.random(in: 0..<flagChoices.count, using: &rng)]
            _ = try await store.append(user: alice, mailbox: "INBOX", message: Array("Subject: \(n)\r\n\r\nbody \(n)\r\n".utf8), flags: flags, internalDate: nil)
        }
        // Some expunged, so the UIDs have gaps.
        let doomed: [UInt32] = [1, 2, 3, 50, 51, 99, 120]
        _ = try await store.setFlags(user: alice, mailbox: "INBOX", uids: doomed, flags: ["\\Deleted"], mode: .add)
        _ = try await store.expunge(user: alice, mailbox: "INBOX", uids: doomed)
        // Case of the stored system flag does not matter.
        _ = try await store.setFlags(user: alice, mailbox: "INBOX", uids: [4], flags: ["\\SEEN"], mode: .replace)

        s = try await store.selection(user: alice, mailbox: "INBOX")
        let want = try await expected(store, "INBOX")
        XCTAssertEqual(s.uids, want.uids)
        XCTAssertEqual(s.uids.count, 113)
        XCTAssertEqual(s.firstUnseen, want.firstUnseen)
        XCTAssertNotNil(s.firstUnseen)
        XCTAssertEqual(Set(s.keywords), want.keywords)
        XCTAssertEqual(s.keywords.count, Set(s.keywords).count, "each keyword once")
        let stamp = try await store.changeStamp(user: alice, mailbox: "INBOX")
        XCTAssertEqual([s.uidValidity, s.uidNext], [stamp.uidValidity, stamp.uidNext])
        XCTAssertEqual(s.highestModseq, stamp.highestModseq)

        // Everything seen: no first unseen.
        _ = try await store.setFlags(user: alice, mailbox: "INBOX", uids: want.uids, flags: ["\\Seen"], mode: .add)
        s = try await store.selection(user: alice, mailbox: "INBOX")
        XCTAssertNil(s.firstUnseen)
        do {
            _ = try await store.selection(user: alice, mailbox: "Nope")
            XCTFail("a mailbox that does not exist")
        } catch StorageError.noSuchMailbox {}
    }
}
