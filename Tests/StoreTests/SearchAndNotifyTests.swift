import Foundation
import PosternTestSupport
import PluginAPI
import PosternHost
import XCTest

/// Search over index fields, headers and decoded bodies; change notifications that cross
/// process boundaries.
final class SearchAndNotifyTests: XCTestCase {
    let alice = "alice@example.org", bob = "bob@example.org"

    static func mail(_ lines: [String]) -> [UInt8] { Array(lines.joined(separator: "\r\n").utf8) }

    /// Five messages whose words hide behind encodings: an RFC 2047 subject in Latin-1, a base64
    /// UTF-8 body, a quoted-printable Latin-1 part beside an attachment, a forwarded message.
    static let corpus: [[UInt8]] = [
        mail(["From: Ann <ann@example.net>", "To: alice@example.org", "Subject: =?ISO-8859-1?Q?Caf=E9_meeting?=",
              "Date: Mon, 3 Jun 2024 23:30:00 -0700", "", "Plain words about the agenda.", ""]),
        mail(["From: bob@example.net", "To: alice@example.org", "Cc: Team <team@example.com>", "Subject: report",
              "Date: Tue, 4 Jun 2024 08:00:00 +0200", "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8",
              "Content-Transfer-Encoding: base64", "", Data("Die Größe des Berichts: zwölf Seiten.".utf8).base64EncodedString(), ""]),
        mail(["From: carol@example.net", "To: alice@example.org", "Subject: photos", "Date: Wed, 5 Jun 2024 12:00:00 +0000",
              "MIME-Version: 1.0", "Content-Type: multipart/mixed; boundary=\"b1\"", "",
              "--b1", "Content-Type: text/plain; charset=iso-8859-1", "Content-Transfer-Encoding: quoted-printable", "",
              "Voil=E0 les photos de l'=E9t=E9.", "--b1", "Content-Type: application/octet-stream", "Content-Transfer-Encoding: base64", "",
              Data("secretword inside a binary".utf8).base64EncodedString(), "--b1--", ""]),
        mail(["From: dave@example.net", "To: alice@example.org", "Subject: Fwd: minutes", "MIME-Version: 1.0",
              "Content-Type: message/rfc822", "", "From: erin@example.org", "Subject: minutes of the board", "",
              "The board approved the budget.", ""]),
        mail(["From: frank@example.net", "To: alice@example.org", "Subject: no date here", "X-Priority: 1", "", "Short.", ""]),
    ]

    func testSearchFindsDecodedText() async throws {
        let f = try StoreFixture("search")
        try await f.populate(users: ["alice"])
        let store = f.store
        let dates: [Int64] = [1_717_400_000, 1_717_500_000, 1_717_600_000, 1_717_700_000, 1_717_800_000]
        for (i, m) in Self.corpus.enumerated() {
            _ = try await store.append(user: alice, mailbox: "INBOX", message: m, flags: i % 2 == 0 ? ["\\Seen"] : ["$Work"], internalDate: dates[i])
        }
        func search(_ q: SearchQuery) async throws -> [UInt32] { try await store.search(user: alice, mailbox: "INBOX", query: q) }

        await assertEqual(try await search(.all), [1, 2, 3, 4, 5])
        await assertEqual(try await search(.header(name: "Subject", value: "café")), [1])
        await assertEqual(try await search(.header(name: "subject", value: "MEETING")), [1])
        await assertEqual(try await search(.header(name: "Cc", value: "team@example")), [2])
        await assertEqual(try await search(.header(name: "X-Priority", value: "")), [5])
        await assertEqual(try await search(.body("größe")), [2])
        await assertEqual(try await search(.body("ZWÖLF")), [2])
        await assertEqual(try await search(.body("l'été")), [3])
        // The attachment is not text: its words are not found.
        await assertEqual(try await search(.body("secretword")), [])
        // A forwarded message's header and body are part of the body.
        await assertEqual(try await search(.body("approved the budget")), [4])
        await assertEqual(try await search(.body("minutes of the board")), [4])
        // The header is not the body; TEXT is both.
        await assertEqual(try await search(.body("frank")), [])
        await assertEqual(try await search(.text("frank")), [5])
        await assertEqual(try await search(.text("agenda")), [1])
        await assertEqual(try await search(.flag("\\seen")), [1, 3, 5])
        await assertEqual(try await search(.not(.flag("\\Seen"))), [2, 4])
        await assertEqual(try await search(.flag("$work")), [2, 4])
        await assertEqual(try await search(.or(.flag("$Work"), .header(name: "From", value: "frank"))), [2, 4, 5])
        await assertEqual(try await search(.and([.flag("\\Seen"), .body("photos")])), [3])
        await assertEqual(try await search(.uids([2...3, 5...5])), [2, 3, 5])
        let sizes = Self.corpus.map(\.count)
        await assertEqual(try await search(.larger(sizes[2] - 1)), (1...5).filter { sizes[$0 - 1] > sizes[2] - 1 }.map(UInt32.init))
        await assertEqual(try await search(.smaller(sizes[4] + 1)), (1...5).filter { sizes[$0 - 1] < sizes[4] + 1 }.map(UInt32.init))
        // Sent dates compare the day as written: 3 Jun 23:30 -0700 is 3 Jun, though 4 Jun in UTC.
        let june3 = MailDate(year: 2024, month: 6, day: 3).dayNumber, june4 = june3 + 1
        await assertEqual(try await search(.sentDate(.on, day: june3)), [1])
        await assertEqual(try await search(.sentDate(.before, day: june4)), [1])
        await assertEqual(try await search(.sentDate(.since, day: june4)), [2, 3])
        // Internal dates by their UTC day: 1_717_500_000 is 2024-06-04 11:20 UTC.
        await assertEqual(try await search(.internalDate(.on, day: june4)), [2])
        await assertEqual(try await search(.internalDate(.since, day: june4 + 1)), [3, 4, 5])
        let modseq = try await store.messages(user: alice, mailbox: "INBOX", uids: 4...4)[0].modseq
        await assertEqual(try await search(.modseqAtLeast(modseq)), [4, 5])
        await XCTAssertThrowsExactly(StorageError.noSuchMailbox("Nope")) { try await store.search(user: alice, mailbox: "Nope", query: .all) }
    }

    /// A subscriber in this process hears about changes that `postern admin` makes in another
    /// process, within a second, under the name it subscribed with; a shared mailbox's watcher
    /// hears its owner's changes; a cancelled subscription hears nothing more.
    func testChangesReachOtherProcessesWithinASecond() async throws {
        let f = try StoreFixture("notify")
        try await f.populate(users: ["alice", "bob"])
        let store = f.store
        try await store.createMailbox(user: alice, name: "Projects")
        try await store.setACL(user: alice, mailbox: "Projects", identifier: bob, change: .replace(ACLRights("lr")!))
        let notifier = try XCTUnwrap(f.context.services.notifications, "the store registers no change notifier")

        let inbox = Changes(), shared = Changes()
        let s1 = notifier.subscribe(user: alice, mailbox: "inbox") { inbox.add($0) }
        let s2 = notifier.subscribe(user: bob, mailbox: "Other Users/alice@example.org/Projects") { shared.add($0) }

        let mbox = f.dir.write("one.mbox", Array("From a@b Mon Jun  3 10:00:00 2024\nSubject: hi\n\nhello\n".utf8))
        let started = Date()
        var r = Build.runSeparately(Build.postern, ["admin", "import", "mbox", mbox, "--user", alice, "-c", f.configFile])
        XCTAssertEqual(r.status, 0, r.stderr)
        let seen = try await inbox.wait(for: 1, within: 1.0)
        XCTAssertEqual(seen.first?.kind, .messagesAdded)
        XCTAssertEqual(seen.first?.user, alice)
        XCTAssertEqual(seen.first?.mailbox, "inbox")
        XCTAssertEqual(seen.first?.uids, [1])
        print("change seen by the other process after \(String(format: "%.3f", Date().timeIntervalSince(started))) s (postern admin start-up included)")

        r = Build.runSeparately(Build.postern, ["admin", "import", "mbox", mbox, "--user", alice, "--mailbox", "Projects", "-c", f.configFile])
        XCTAssertEqual(r.status, 0, r.stderr)
        let sharedSeen = try await shared.wait(for: 1, within: 1.0)
        XCTAssertEqual(sharedSeen.first?.mailbox, "Other Users/alice@example.org/Projects")
        XCTAssertEqual(sharedSeen.first?.user, bob)

        // Flag changes and expunges are announced too (here from this process).
        _ = try await store.setFlags(user: alice, mailbox: "INBOX", uids: [1], flags: ["\\Deleted"], mode: .add)
        _ = try await inbox.wait(for: 2, within: 1.0)
        _ = try await store.expunge(user: alice, mailbox: "INBOX", uids: nil)
        let all = try await inbox.wait(for: 3, within: 1.0)
        XCTAssertEqual(all.map(\.kind), [.messagesAdded, .flagsChanged, .messagesExpunged])

        s1.cancel()
        s2.cancel()
        _ = try await store.append(user: alice, mailbox: "INBOX", message: message("after"), flags: [], internalDate: nil)
        try await Task.sleep(nanoseconds: 300_000_000)
        XCTAssertEqual(inbox.count, 3)
        XCTAssertEqual(shared.count, 1)
    }
}

/// Changes collected from a notifier's thread.
final class Changes: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [MailboxChange] = []

    func add(_ change: MailboxChange) { lock.withLock { items.append(change) } }
    var count: Int { lock.withLock { items.count } }

    /// Waits until `n` changes arrived; fails after `seconds`.
    func wait(for n: Int, within seconds: Double) async throws -> [MailboxChange] {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let now = lock.withLock { items }
            if now.count >= n { return now }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        let got = lock.withLock { items }
        XCTFail("expected \(n) change(s) within \(seconds) s, got \(got.count): \(got)")
        return got
    }
}
