import XCTest
import PluginAPI

final class HeaderParserTests: XCTestCase {
    private func field(_ name: String, _ raw: String, at offset: Int) -> MailHeaderEvent {
        .field(MailHeaderField(name: name, rawValue: bytes(raw), offset: offset))
    }

    private func check(_ input: [UInt8], limits: MailHeaderLimits = MailHeaderLimits(), _ expected: [MailHeaderEvent],
                       consumed: Int, file: StaticString = #filePath, line: UInt = #line) {
        for feeding in Feeding.allCases {
            let (events, used) = parseHeader(input, feeding, limits: limits)
            XCTAssertEqual(events, expected, "\(feeding)", file: file, line: line)
            XCTAssertEqual(used, consumed, "consumed, \(feeding)", file: file, line: line)
        }
    }

    func testFoldingCRLFAndBodyNotConsumed() {
        let input = bytes("Subject: hello\r\n world\r\nFrom: a@b\r\n\r\nbody")
        check(input, [field("Subject", " hello\r\n world", at: 0), field("From", " a@b", at: 24), .end], consumed: 37)
        let (events, _) = parseHeader(input, .whole)
        guard case .field(let s) = events[0] else { return XCTFail() }
        XCTAssertEqual(s.text, "hello world")
    }

    func testBareLFTabFoldAndObsFold() {
        let input = bytes("Subject : a\n\tb\nX-Empty:\n\n")
        check(input, [field("Subject", " a\n\tb", at: 0), field("X-Empty", "", at: 15), .end], consumed: 25)
        let f = MailHeaderField(name: "Subject", rawValue: bytes(" a\n\tb"))
        XCTAssertEqual(f.value, bytes("a\tb"))
    }

    func testEightBitAndNUL() {
        var input = bytes("Subject: Grüße\r\n")
        input += bytes("X-Latin: caf") + [0xE9] + bytes("\r\n")
        input += bytes("X-Nul: a") + [0] + bytes("b\r\n\r\n")
        for feeding in Feeding.allCases {
            let (events, _) = parseHeader(input, feeding)
            let fields = events.compactMap { e -> MailHeaderField? in if case .field(let f) = e { return f } else { return nil } }
            XCTAssertEqual(fields.map(\.name), ["Subject", "X-Latin", "X-Nul"])
            XCTAssertEqual(fields[0].text, "Grüße")
            XCTAssertEqual(fields[1].text, "café")
            XCTAssertEqual(fields[2].value, [97, 0, 98])
        }
    }

    func testHeaderWithoutBodyAndWithoutFinalLineEnd() {
        check(bytes("A: 1\r\nB: 2\r\n"), [field("A", " 1", at: 0), field("B", " 2", at: 6), .end], consumed: 12)
        check(bytes("A: 1\r\nB: 2"), [field("A", " 1", at: 0), field("B", " 2", at: 6), .end], consumed: 10)
        check(bytes("A: 1\r\n b\r"), [field("A", " 1\r\n b", at: 0), .end], consumed: 9)
        check([], [.end], consumed: 0)
    }

    func testMalformedLinesAreReportedNotFatal() {
        check(bytes("A: 1\r\nthis is garbage\r\nB: 2\r\n\r\n"),
              [field("A", " 1", at: 0), .malformed(line: bytes("this is garbage"), offset: 6), field("B", " 2", at: 23), .end],
              consumed: 31)
        check(bytes(" x\r\n: y\r\nA: 1\r\n\r\n"),
              [.malformed(line: bytes(" x"), offset: 0), .malformed(line: bytes(": y"), offset: 4), field("A", " 1", at: 9), .end],
              consumed: 17)
    }

    func testLimits() {
        check(bytes("A: 123456789012345678901234567890\r\nB: 2\r\n\r\n"), limits: MailHeaderLimits(maxLineLength: 20),
              [.limitExceeded(.lineTooLong(limit: 20)), field("B", " 2", at: 35), .end], consumed: 43)
        check(bytes("A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n"), limits: MailHeaderLimits(maxFieldCount: 2),
              [field("A", " 1", at: 0), field("B", " 2", at: 6), .limitExceeded(.tooManyFields(limit: 2)), .end], consumed: 26)
        check(bytes("A: 1\r\n 2345678901234\r\nB: 2\r\n\r\n"), limits: MailHeaderLimits(maxFieldSize: 10),
              [.limitExceeded(.fieldTooLarge(limit: 10)), field("B", " 2", at: 22), .end], consumed: 30)
    }

    func testBufferStaysWithinLimits() {
        var p = MailHeaderParser(limits: MailHeaderLimits(maxLineLength: 100, maxFieldSize: 1_000))
        var maxBuffered = 0
        for _ in 0..<10_000 {
            _ = p.feed(bytes("X-Long: 0123456789012345678901234567890123456789"))
            maxBuffered = max(maxBuffered, p.bufferedByteCount)
        }
        XCTAssertLessThanOrEqual(maxBuffered, 1_100)
    }

    func testHeaderBlockConvenience() {
        let block = MailHeaderBlock(parsing: bytes("To: x@y\r\nto: z@w\r\nbad\r\n\r\nbody"))
        XCTAssertEqual(block.all("TO").count, 2)
        XCTAssertEqual(block.first("To")?.text, "x@y")
        XCTAssertEqual(block.malformedLines, [bytes("bad")])
        XCTAssertEqual(block.bodyOffset, 25)
    }
}
