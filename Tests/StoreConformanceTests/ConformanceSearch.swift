import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest

/// SEARCH (`SearchQuery`): index criteria, and header and body text decoded as the matcher in
/// PluginAPI decodes it (RFC 2047 words, transfer encodings, charsets), substring without case.
extension StoreConformance {
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

    /// Internal dates of the corpus: 2024-06-03 07:33, 06-04 11:20, 06-05 15:06, 06-06 18:53,
    /// 06-07 22:40 UTC.
    static let corpusDates: [Int64] = [1_717_400_000, 1_717_500_000, 1_717_600_000, 1_717_700_000, 1_717_800_000]

    /// The corpus in alice's INBOX (UIDs 1 to 5): odd UIDs \Seen, even ones `$Work`.
    func corpusFixture(_ function: String = #function) async throws -> StoreFixture {
        let f = try await fixture(function, users: ["alice"])
        for (i, m) in Self.corpus.enumerated() {
            _ = try await f.store.append(user: alice, mailbox: "INBOX", message: m, flags: i % 2 == 0 ? ["\\Seen"] : ["$Work"],
                                         internalDate: Self.corpusDates[i])
        }
        return f
    }

    /// Criteria the index answers: flags, UIDs, sizes, internal dates, MODSEQ, and their
    /// combinations with AND, OR and NOT.
    func checkSearchIndexCriteria() async throws {
        let f = try await corpusFixture()
        let store = f.store
        func search(_ q: SearchQuery) async throws -> [UInt32] { try await store.search(user: alice, mailbox: "INBOX", query: q) }
        await assertEqual(try await search(.all), [1, 2, 3, 4, 5])
        await assertEqual(try await search(.flag("\\seen")), [1, 3, 5])
        await assertEqual(try await search(.flag("$work")), [2, 4])
        await assertEqual(try await search(.flag("\\Flagged")), [])
        await assertEqual(try await search(.not(.flag("\\Seen"))), [2, 4])
        await assertEqual(try await search(.uids([2...3, 5...5])), [2, 3, 5])
        await assertEqual(try await search(.uids([4...UInt32.max])), [4, 5])
        await assertEqual(try await search(.not(.uids([1...2]))), [3, 4, 5])
        let sizes = Self.corpus.map(\.count)
        await assertEqual(try await search(.larger(sizes[2] - 1)), (1...5).filter { sizes[$0 - 1] > sizes[2] - 1 }.map(UInt32.init))
        await assertEqual(try await search(.smaller(sizes[4] + 1)), (1...5).filter { sizes[$0 - 1] < sizes[4] + 1 }.map(UInt32.init))
        await assertEqual(try await search(.larger(sizes.max()!)), [])
        // Internal dates by their UTC day.
        let june4 = MailDate(year: 2024, month: 6, day: 4).dayNumber
        await assertEqual(try await search(.internalDate(.on, day: june4)), [2])
        await assertEqual(try await search(.internalDate(.before, day: june4)), [1])
        await assertEqual(try await search(.internalDate(.since, day: june4 + 1)), [3, 4, 5])
        let modseq = try await store.messages(user: alice, mailbox: "INBOX", uids: 4...4)[0].modseq
        await assertEqual(try await search(.modseqAtLeast(modseq)), [4, 5])
        _ = try await store.setFlags(user: alice, mailbox: "INBOX", uids: [1], flags: ["\\Flagged"], mode: .add)
        await assertEqual(try await search(.modseqAtLeast(modseq)), [1, 4, 5])
        await assertEqual(try await search(.and([.flag("\\Seen"), .flag("\\Flagged")])), [1])
        await assertEqual(try await search(.or(.flag("\\Flagged"), .uids([5...5]))), [1, 5])
        await assertEqual(try await search(.and([.not(.flag("\\Seen")), .or(.uids([1...2]), .internalDate(.since, day: june4 + 2))])), [2, 4])
        await assertEqual(try await store.search(user: alice, mailbox: "Sent", query: .all), [])
        await assertThrows(StorageError.noSuchMailbox("Nope")) { try await store.search(user: alice, mailbox: "Nope", query: .all) }
        // Expunged messages are not found.
        _ = try await store.setFlags(user: alice, mailbox: "INBOX", uids: [3], flags: ["\\Deleted"], mode: .add)
        _ = try await store.expunge(user: alice, mailbox: "INBOX", uids: nil)
        await assertEqual(try await search(.flag("\\Seen")), [1, 5])
    }

    /// Criteria on the content: header fields (RFC 2047-decoded), sent dates as written, body
    /// text (decoded text parts and attached messages, not binary attachments), TEXT.
    func checkSearchContent() async throws {
        let f = try await corpusFixture()
        let store = f.store
        func search(_ q: SearchQuery) async throws -> [UInt32] { try await store.search(user: alice, mailbox: "INBOX", query: q) }
        await assertEqual(try await search(.header(name: "Subject", value: "café")), [1])
        await assertEqual(try await search(.header(name: "subject", value: "MEETING")), [1])
        await assertEqual(try await search(.header(name: "Subject", value: "minutes")), [4])
        await assertEqual(try await search(.header(name: "From", value: "example.net")), [1, 2, 3, 4, 5])
        await assertEqual(try await search(.header(name: "From", value: "ANN")), [1])
        await assertEqual(try await search(.header(name: "Cc", value: "team@example")), [2])
        await assertEqual(try await search(.header(name: "X-Priority", value: "")), [5])
        await assertEqual(try await search(.header(name: "Subject", value: "nothing like this")), [])
        await assertEqual(try await search(.body("größe")), [2])
        await assertEqual(try await search(.body("ZWÖLF")), [2])
        await assertEqual(try await search(.body("l'été")), [3])
        await assertEqual(try await search(.body("secretword")), [])
        await assertEqual(try await search(.body("approved the budget")), [4])
        await assertEqual(try await search(.body("minutes of the board")), [4])
        // The header is not the body; TEXT is both.
        await assertEqual(try await search(.body("frank")), [])
        await assertEqual(try await search(.text("frank")), [5])
        await assertEqual(try await search(.text("agenda")), [1])
        await assertEqual(try await search(.not(.text("example.org"))), [])
        // Sent dates compare the day as written: 3 Jun 23:30 -0700 is 3 Jun, though 4 Jun in UTC.
        let june3 = MailDate(year: 2024, month: 6, day: 3).dayNumber, june4 = june3 + 1
        await assertEqual(try await search(.sentDate(.on, day: june3)), [1])
        await assertEqual(try await search(.sentDate(.before, day: june4)), [1])
        await assertEqual(try await search(.sentDate(.since, day: june4)), [2, 3])
        // Content and index criteria together.
        await assertEqual(try await search(.or(.flag("$Work"), .header(name: "From", value: "frank"))), [2, 4, 5])
        await assertEqual(try await search(.and([.flag("\\Seen"), .body("photos")])), [3])
        await assertEqual(try await search(.and([.not(.flag("\\Seen")), .not(.header(name: "Subject", value: "report"))])), [4])
        await assertEqual(try await search(.and([.uids([1...3]), .text("example.com")])), [2])
    }

    /// 300 seeded random index-only queries (flags and keywords in any case, UID ranges, sizes,
    /// internal days, MODSEQ, nested AND/OR/NOT) answered by the store (in SQL, for both stores)
    /// exactly as the shared matcher answers them over the store's own listing.
    func checkIndexSearchAgreesWithTheMatcher() async throws {
        let f = try await fixture(users: ["alice"])
        var random = SeededRandom(seed: 0x5EA6C4)
        let flags = ["\\Seen", "\\Flagged", "\\Answered", "$Work", "$later"]
        let day: Int64 = 86_400
        for i in 0..<60 {
            let chosen = flags.filter { _ in Bool.random(using: &random) }
            let body = String(repeating: "x", count: Int.random(in: 0...400, using: &random))
            _ = try await f.store.append(user: alice, mailbox: "INBOX", message: mail(["Subject: m\(i)", "", body]),
                                         flags: chosen, internalDate: 1_717_400_000 + Int64.random(in: -3...3, using: &random) * day
                                             + Int64.random(in: 0..<day, using: &random))
        }
        // Later flag changes give some messages higher MODSEQs.
        _ = try await f.store.setFlags(user: alice, mailbox: "INBOX", uids: Array(stride(from: 1, to: 61, by: 7)), flags: ["$Work"], mode: .add)
        let listing = try await f.store.messages(user: alice, mailbox: "INBOX", uids: 1...UInt32.max)
        let top = listing.map(\.modseq).max() ?? 1
        func leaf() -> SearchQuery {
            switch Int.random(in: 0..<7, using: &random) {
            case 0:
                let f = flags.randomElement(using: &random)!
                return .flag(Bool.random(using: &random) ? f.uppercased() : f)
            case 1:
                let a = UInt32.random(in: 1...65, using: &random)
                return .uids([a...a + UInt32.random(in: 0...20, using: &random)])
            case 2: return .larger(Int.random(in: 0...500, using: &random))
            case 3: return .smaller(Int.random(in: 0...500, using: &random))
            case 4:
                let cmp: SearchQuery.DayComparison = [.before, .on, .since].randomElement(using: &random)!
                return .internalDate(cmp, day: 1_717_400_000 / day + Int64.random(in: -4...4, using: &random))
            case 5: return .modseqAtLeast(UInt64.random(in: 1...(top + 1), using: &random))
            default: return .all
            }
        }
        func query(_ depth: Int) -> SearchQuery {
            guard depth > 0 else { return leaf() }
            switch Int.random(in: 0..<4, using: &random) {
            case 0: return .and((0..<Int.random(in: 0...3, using: &random)).map { _ in query(depth - 1) })
            case 1: return .or(query(depth - 1), query(depth - 1))
            case 2: return .not(query(depth - 1))
            default: return leaf()
            }
        }
        for _ in 0..<300 {
            let q = query(3)
            let matcher = SearchMatcher(q)
            let expected = try listing.filter { m in
                try matcher.matches(SearchCandidate(uid: m.uid, flags: m.flags, size: m.size, internalDate: m.internalDate, modseq: m.modseq,
                                                    content: { throw StorageError.temporary("index criteria only") }))
            }.map(\.uid)
            let answered = try await f.store.search(user: alice, mailbox: "INBOX", query: q)
            XCTAssertEqual(answered, expected, "\(q)")
        }
    }
}
