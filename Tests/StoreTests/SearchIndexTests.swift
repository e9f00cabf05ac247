import Foundation
import PosternTestSupport
import PluginAPI
import PosternHost
import XCTest

/// The store's SEARCH answers from its index (SQL over the message rows and the text kept at
/// delivery) and confirms only what SQL cannot decide. This compares it with the scan it
/// replaced, `SearchMatcher` over every message's index data and content, on a random corpus
/// (headers in RFC 2047 and several charsets, base64 and quoted-printable bodies, attachments,
/// forwarded messages, flags, dates, sizes) and random queries of every criterion.
final class SearchIndexTests: XCTestCase {
    let alice = "alice@example.org"

    func testIndexAnswersAsTheScanOnARandomCorpus() async throws {
        var random = SeededRandom(seed: 0x5EA2C4)
        let f = try StoreFixture("search-index")
        try await f.populate(users: ["alice"])
        let store = f.store
        let corpus = RandomCorpus()
        for _ in 0..<2_000 {
            let (message, flags, date) = corpus.message(&random)
            _ = try await store.append(user: alice, mailbox: "INBOX", message: message, flags: flags, internalDate: date)
        }
        // Later flag changes, so that MODSEQs differ from arrival order.
        for _ in 0..<200 {
            let uid = UInt32.random(in: 1...2_000, using: &random)
            _ = try await store.setFlags(user: alice, mailbox: "INBOX", uids: [uid], flags: [corpus.flags.randomElement(using: &random)!],
                                         mode: Bool.random(using: &random) ? .add : .remove)
        }

        // The reference: every message, its index data and its content, parsed once.
        let stored = try await store.messages(user: alice, mailbox: "INBOX", uids: 1...UInt32.max)
        let contents = try await store.contents(user: alice, mailbox: "INBOX", uids: stored.map(\.uid))
        let messages = stored.map { m in
            (SearchCandidate(uid: m.uid, flags: m.flags, size: m.size, internalDate: m.internalDate, modseq: m.modseq, content: { contents[m.uid]! }),
             SearchMatcher.Parsed(bytes: contents[m.uid]!))
        }
        let highestModseq = stored.map(\.modseq).max() ?? 1
        var nonEmpty = 0
        for i in 0..<500 {
            let query = corpus.query(&random, depth: 3, highestModseq: highestModseq)
            let matcher = SearchMatcher(query)
            let expected = try messages.filter { try matcher.matches($0.0, parsed: $0.1) }.map(\.0.uid)
            let found = try await store.search(user: alice, mailbox: "INBOX", query: query)
            XCTAssertEqual(found, expected, "query \(i): \(query)")
            if !expected.isEmpty && expected.count < stored.count { nonEmpty += 1 }
        }
        // The queries discriminate: most select some messages and not others.
        XCTAssertGreaterThan(nonEmpty, 200)
    }

    func testSearchableTextIsWhatTheMatcherComparesWith() {
        let text = SearchableText(message: Array("Subject: =?utf-8?q?Caf=C3=A9_MEETING?=\r\nDate: Mon, 3 Jun 2024 23:30:00 -0700\r\n\r\nHello THERE\r\n".utf8))
        XCTAssertEqual(text.fields["subject"], ["café meeting"])
        XCTAssertNil(text.fields["from"])
        XCTAssertEqual(text.header, "subject: café meeting\ndate: mon, 3 jun 2024 23:30:00 -0700")
        XCTAssertEqual(text.body, "hello there\r\n\n")
        XCTAssertEqual(text.sentDay, MailDate(year: 2024, month: 6, day: 3).dayNumber)
    }
}

/// Messages and queries drawn from one vocabulary, so that queries find something.
struct RandomCorpus {
    let words = ["budget", "Meeting", "report", "alpha", "minutes", "agenda", "photos", "invoice", "Board", "release",
                 "café", "Größe", "zwölf", "été", "naïve", "Ελλάδα", "日本語", "smörgåsbord", "FAÇADE", "ﬁle"]
    let names = ["Ann", "Bob Smith", "Zoë Müller", "Ærlig Ødegård", "Carol", "Дмитрий"]
    let domains = ["example.net", "example.com", "mail.example.org"]
    let flags = ["\\Seen", "\\Flagged", "\\Answered", "\\Deleted", "\\Draft", "$Work", "$work", "Junk", "$Label_1"]
    let fields = ["From", "To", "Cc", "Bcc", "Subject", "X-Tag", "Date", "Message-ID", "Reply-To"]
    /// 2024-05-01 00:00 UTC, and the days after it the corpus spans.
    let base: Int64 = 1_714_521_600
    let days: Int64 = 40

    func word<R: RandomNumberGenerator>(_ r: inout R) -> String { words.randomElement(using: &r)! }

    func phrase<R: RandomNumberGenerator>(_ r: inout R, _ count: ClosedRange<Int>) -> String {
        (0..<Int.random(in: count, using: &r)).map { _ in word(&r) }.joined(separator: " ")
    }

    /// A header value, sometimes as RFC 2047 encoded words (Q or B, UTF-8 or Latin-1 when it fits).
    func encoded<R: RandomNumberGenerator>(_ text: String, _ r: inout R) -> String {
        guard Int.random(in: 0..<3, using: &r) == 0 || !text.unicodeScalars.allSatisfy(\.isASCII) else { return text }
        let latin1 = text.unicodeScalars.allSatisfy { $0.value < 0x100 } && Bool.random(using: &r)
        let bytes: [UInt8] = latin1 ? text.unicodeScalars.map { UInt8($0.value) } : Array(text.utf8)
        let charset = latin1 ? "ISO-8859-1" : "UTF-8"
        if Bool.random(using: &r) {
            return "=?\(charset)?B?\(Data(bytes).base64EncodedString())?="
        }
        let q = bytes.map { b -> String in
            if b == 0x20 { return "_" }
            if (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) { return String(UnicodeScalar(b)) }
            return String(format: "=%02X", b)
        }.joined()
        return "=?\(charset)?Q?\(q)?="
    }

    func address<R: RandomNumberGenerator>(_ r: inout R) -> String {
        let name = names.randomElement(using: &r)!
        let local = ["ann", "bob", "carol", "dave", "erin"].randomElement(using: &r)!
        let domain = domains.randomElement(using: &r)!
        return Bool.random(using: &r) ? "\(encoded(name, &r)) <\(local)@\(domain)>" : "\(local)@\(domain)"
    }

    func date<R: RandomNumberGenerator>(_ r: inout R) -> String {
        let t = base + Int64.random(in: 0..<(days * 86_400), using: &r)
        let offset = [-720, -420, 0, 60, 330, 840].randomElement(using: &r)!
        let d = MailDate(secondsSince1970: t, offsetMinutes: offset)
        return d.rfc5322
    }

    func message<R: RandomNumberGenerator>(_ r: inout R) -> (message: [UInt8], flags: [String], internalDate: Int64) {
        var header = ["From: \(address(&r))", "To: \(address(&r))"]
        if Int.random(in: 0..<3, using: &r) == 0 { header.append("Cc: \(address(&r)), \(address(&r))") }
        if Int.random(in: 0..<8, using: &r) == 0 { header.append("Cc: \(address(&r))") }
        if Int.random(in: 0..<6, using: &r) == 0 { header.append("Bcc: \(address(&r))") }
        if Int.random(in: 0..<10, using: &r) != 0 { header.append("Subject: \(encoded(phrase(&r, 1...4), &r))") }
        switch Int.random(in: 0..<10, using: &r) {
        case 0: break
        case 1: header.append("Date: not a date")
        default: header.append("Date: \(date(&r))")
        }
        if Int.random(in: 0..<4, using: &r) == 0 { header.append("X-Tag: \(encoded(word(&r), &r))") }
        header.append("Message-ID: <\(UInt32.random(in: 0...UInt32.max, using: &r))@\(domains.randomElement(using: &r)!)>")
        let text = (0..<Int.random(in: 1...12, using: &r)).map { _ in phrase(&r, 3...10) }
        var body: [String]
        switch Int.random(in: 0..<6, using: &r) {
        case 0:
            header += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: base64"]
            body = [Data(text.joined(separator: "\r\n").utf8).base64EncodedString(options: .lineLength76Characters)]
        case 1:
            header += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=iso-8859-1", "Content-Transfer-Encoding: quoted-printable"]
            body = text.map { line in
                line.unicodeScalars.map { $0.value < 0x80 && $0 != "=" ? String($0) : $0.value < 0x100 ? String(format: "=%02X", $0.value) : "?" }.joined()
            }
        case 2:
            header += ["MIME-Version: 1.0", "Content-Type: multipart/mixed; boundary=\"b\""]
            body = ["--b", "Content-Type: text/plain; charset=utf-8", ""] + text
                + ["--b", "Content-Type: application/octet-stream", "Content-Transfer-Encoding: base64", "",
                   Data(phrase(&r, 2...5).utf8).base64EncodedString(), "--b--"]
        case 3:
            header += ["MIME-Version: 1.0", "Content-Type: message/rfc822"]
            body = ["From: \(address(&r))", "Subject: \(encoded(phrase(&r, 1...3), &r))", ""] + text
        default:
            header += text.joined().unicodeScalars.allSatisfy(\.isASCII) ? [] : ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8"]
            body = text
        }
        let message = Array((header + [""] + body + [""]).joined(separator: "\r\n").utf8)
        let chosen = flags.filter { _ in Int.random(in: 0..<4, using: &r) == 0 }
        // Mostly inside the span, a few before 1970 and on day boundaries.
        let internalDate: Int64
        switch Int.random(in: 0..<20, using: &r) {
        case 0: internalDate = -Int64.random(in: 0...(3 * 86_400), using: &r)
        case 1: internalDate = base + Int64.random(in: 0..<days, using: &r) * 86_400 - Int64.random(in: 0...1, using: &r)
        default: internalDate = base + Int64.random(in: 0..<(days * 86_400), using: &r)
        }
        return (message, chosen, internalDate)
    }

    /// A needle: a word, a piece of one, in another case; now and then empty or with a `;`.
    func needle<R: RandomNumberGenerator>(_ r: inout R) -> String {
        let w = word(&r)
        switch Int.random(in: 0..<12, using: &r) {
        case 0: return ""
        case 1, 2:
            let chars = Array(w)
            let start = Int.random(in: 0..<chars.count, using: &r), end = Int.random(in: start..<chars.count, using: &r)
            return String(chars[start...end])
        case 3: return w.uppercased()
        case 4: return ["ann@", "example", ".net", "smith", "müller", "ødegård", "дмитрий", ";", "1"].randomElement(using: &r)!
        case 5: return "\(w) \(word(&r))"
        default: return w
        }
    }

    func day<R: RandomNumberGenerator>(_ r: inout R) -> Int64 {
        Int.random(in: 0..<10, using: &r) == 0 ? Int64.random(in: -4...0, using: &r) : base / 86_400 + Int64.random(in: -1...days, using: &r)
    }

    func query<R: RandomNumberGenerator>(_ r: inout R, depth: Int, highestModseq: UInt64) -> SearchQuery {
        if depth > 0 && Int.random(in: 0..<3, using: &r) != 0 {
            switch Int.random(in: 0..<3, using: &r) {
            case 0: return .and((0..<Int.random(in: 2...3, using: &r)).map { _ in query(&r, depth: depth - 1, highestModseq: highestModseq) })
            case 1: return .or(query(&r, depth: depth - 1, highestModseq: highestModseq), query(&r, depth: depth - 1, highestModseq: highestModseq))
            default: return .not(query(&r, depth: depth - 1, highestModseq: highestModseq))
            }
        }
        let comparisons: [SearchQuery.DayComparison] = [.before, .on, .since]
        switch Int.random(in: 0..<14, using: &r) {
        case 0: return .all
        case 1: return .flag(Bool.random(using: &r) ? flags.randomElement(using: &r)! : flags.randomElement(using: &r)!.uppercased())
        case 2:
            let a = UInt32.random(in: 1...2_000, using: &r), b = UInt32.random(in: 1...2_000, using: &r)
            return .uids([min(a, b)...max(a, b), UInt32.random(in: 1...2_000, using: &r)...UInt32.max])
        case 3: return .larger(Int.random(in: 200...1_500, using: &r))
        case 4: return .smaller(Int.random(in: 200...1_500, using: &r))
        case 5: return .internalDate(comparisons.randomElement(using: &r)!, day: day(&r))
        case 6: return .sentDate(comparisons.randomElement(using: &r)!, day: day(&r))
        case 7: return .modseqAtLeast(UInt64.random(in: 1...highestModseq, using: &r))
        case 8, 9, 10: return .header(name: fields.randomElement(using: &r)!, value: needle(&r))
        case 11, 12: return .body(needle(&r))
        default: return .text(needle(&r))
        }
    }
}
