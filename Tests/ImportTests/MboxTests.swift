import Foundation
import PosternTestSupport
import PosternHost
import PosternImport
import XCTest

/// The mbox reader as a pure function over bytes.
final class MboxTests: XCTestCase {
    private func parse(_ text: String, _ format: Mbox.Format = .mboxrd) -> (messages: [Mbox.Message], problems: [Mbox.Problem]) {
        Mbox.parse(Array(text.utf8), format: format)
    }

    private func texts(_ r: (messages: [Mbox.Message], problems: [Mbox.Problem])) -> [String] {
        r.messages.map { String(decoding: $0.bytes, as: UTF8.self) }
    }

    func testSplitsOnFromLinesAfterAnEmptyLine() {
        let r = parse("""
            From alice@example.net Tue Mar  5 10:00:00 2024
            Subject: one

            body
            From here, not a separator (no empty line before it)

            From bob@example.net Wed Mar  6 11:30:15 2024
            Subject: two

            second

            """)
        XCTAssertEqual(texts(r), [
            "Subject: one\n\nbody\nFrom here, not a separator (no empty line before it)\n",
            "Subject: two\n\nsecond\n",
        ])
        XCTAssertEqual(r.messages.map(\.line), [1, 7])
        XCTAssertEqual(r.messages.map(\.internalDate), [1_709_632_800, 1_709_724_615])
        XCTAssertEqual(r.problems, [])
    }

    func testFromQuoting() {
        let text = "From a Mon Jan  1 00:00:00 2024\nSubject: q\n\n>From the start\n>>From quoted once\n>>>From twice\n> From not quoting\nFrom mid-line is fine\n\n"
        XCTAssertEqual(texts(parse(text, .mboxrd)), ["Subject: q\n\nFrom the start\n>From quoted once\n>>From twice\n> From not quoting\nFrom mid-line is fine\n"])
        XCTAssertEqual(texts(parse(text, .mboxo)), ["Subject: q\n\nFrom the start\n>>From quoted once\n>>>From twice\n> From not quoting\nFrom mid-line is fine\n"])
    }

    func testCRLFKeptAsInTheFile() {
        let r = parse("From a Mon Jan  1 00:00:00 2024\r\nSubject: crlf\r\n\r\n>From x\r\n\r\nFrom b Mon Jan  1 00:00:01 2024\r\nSubject: 2\r\n\r\nb\r\n\r\n")
        XCTAssertEqual(texts(r), ["Subject: crlf\r\n\r\nFrom x\r\n", "Subject: 2\r\n\r\nb\r\n"])
        XCTAssertEqual(r.messages.map(\.internalDate), [1_704_067_200, 1_704_067_201])
    }

    func testEmptyAndBlankFiles() {
        XCTAssertEqual(parse("").messages, [])
        XCTAssertEqual(parse("").problems, [])
        XCTAssertEqual(parse("\n\n").messages, [])
        XCTAssertEqual(parse("\n\n").problems, [])
    }

    func testNoLeadingFromLine() {
        let r = parse("Subject: stray\n\ntext\n\nFrom a Mon Jan  1 00:00:00 2024\nSubject: ok\n\nx\n")
        XCTAssertEqual(texts(r), ["Subject: ok\n\nx\n"])
        XCTAssertEqual(r.problems, [Mbox.Problem(line: 1, reason: "text before the first 'From ' line: not an mbox message, skipped")])
        XCTAssertEqual(r.messages.map(\.line), [5])
    }

    func testMessageWithoutFinalNewline() {
        let r = parse("From a Mon Jan  1 00:00:00 2024\nSubject: a\n\nfirst\n\nFrom b Mon Jan  1 00:00:00 2024\nSubject: b\n\nno newline")
        XCTAssertEqual(texts(r), ["Subject: a\n\nfirst\n", "Subject: b\n\nno newline"])
    }

    func testEmptyMessageIsReported() {
        let r = parse("From a Mon Jan  1 00:00:00 2024\n\nFrom b Mon Jan  1 00:00:00 2024\nSubject: b\n\nx\n")
        XCTAssertEqual(texts(r), ["Subject: b\n\nx\n"])
        XCTAssertEqual(r.problems, [Mbox.Problem(line: 1, reason: "empty message, skipped")])
    }

    func testStatusHeadersGiveFlags() {
        let r = parse("""
            From a Mon Jan  1 00:00:00 2024
            Status: RO
            X-Status: AF
            X-Keywords: $Label1 Work
            Subject: s

            x

            From b Mon Jan  1 00:00:00 2024
            Status: O
            X-Status: DT

            y

            From c Mon Jan  1 00:00:00 2024
            Subject: none

            z

            """)
        XCTAssertEqual(r.messages.map(\.flags), [["\\Seen", "\\Answered", "\\Flagged", "$Label1", "Work"], ["\\Deleted", "\\Draft"], []])
        // The headers stay: the bytes are the file's.
        XCTAssertTrue(texts(r)[0].hasPrefix("Status: RO\nX-Status: AF\n"))
    }

    func testFromLineDates() {
        func d(_ s: String) -> Int64? { Mbox.date(fromLine: Array(s.utf8)) }
        XCTAssertEqual(d("From MAILER-DAEMON Thu Jan  1 00:00:00 1970"), 0)
        XCTAssertEqual(d("From a@b Sat Feb 29 23:59:59 2020"), 1_583_020_799)
        XCTAssertEqual(d("From a@b Sat Feb 29 23:59:59 2020 +0100"), 1_583_020_799 - 3600)
        XCTAssertEqual(d("From a@b Sat Feb 29 23:59 PST 2020"), 1_583_020_740)
        XCTAssertEqual(d("From a@b Sat Feb 29 23:59:59 2020\r"), 1_583_020_799)
        XCTAssertNil(d("From a@b"))
        XCTAssertNil(d("From a@b yesterday"))
        XCTAssertNil(d("From a@b Sat Feb 29 23:59:59"))
        // A message with an unreadable date is still a message, with no internal date.
        XCTAssertEqual(parse("From nobody\nSubject: x\n\ny\n").messages.map(\.internalDate), [nil])
    }
}
