import PluginAPI
import XCTest

/// `DotStuffingWriter` and `MessageContentScan` over byte fixtures, whole and cut at every offset;
/// the writer's output read back through the server side's `DotStuffedReader` gives the message.
final class MessageDataTests: XCTestCase {
    static func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    /// `input` written whole, after checking every two-chunk cut and byte-by-byte give the same.
    func stuffed(_ input: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> [UInt8] {
        let whole = DotStuffingWriter.stuff(input)
        for cut in 0...input.count {
            var writer = DotStuffingWriter()
            let out = writer.write(input[..<cut]) + writer.write(input[cut...]) + writer.finish()
            XCTAssertEqual(out, whole, "cut at \(cut)", file: file, line: line)
            XCTAssertEqual(writer.written, whole.count, file: file, line: line)
        }
        var writer = DotStuffingWriter()
        var out: [UInt8] = []
        for b in input { out += writer.write([b]) }
        XCTAssertEqual(out + writer.finish(), whole, "byte by byte", file: file, line: line)
        return whole
    }

    func testDotsAtLineStartsAreDoubled() {
        XCTAssertEqual(stuffed(Self.bytes("Subject: x\r\n\r\n.\r\n..two\r\na.b\r\n.end")),
                       Self.bytes("Subject: x\r\n\r\n..\r\n...two\r\na.b\r\n..end\r\n.\r\n"))
        XCTAssertEqual(stuffed(Self.bytes(".first line\r\n")), Self.bytes("..first line\r\n.\r\n"))
    }

    func testLineEndsAreCRLF() {
        // Bare LF and bare CR both become CRLF; CRLF stays; a missing last line end is added.
        XCTAssertEqual(stuffed(Self.bytes("a\nb\rc\r\nd")), Self.bytes("a\r\nb\r\nc\r\nd\r\n.\r\n"))
        // The smuggling shapes: after them a dot line is stuffed, never an end of data.
        XCTAssertEqual(stuffed(Self.bytes("x\n.\ny\r.\rz")), Self.bytes("x\r\n..\r\ny\r\n..\r\nz\r\n.\r\n"))
        XCTAssertEqual(stuffed(Self.bytes("ends in CR\r")), Self.bytes("ends in CR\r\n.\r\n"))
        XCTAssertEqual(stuffed(Self.bytes("\r\r\n\n")), Self.bytes("\r\n\r\n\r\n.\r\n"))
    }

    func testEmptyMessage() {
        XCTAssertEqual(stuffed([]), Self.bytes(".\r\n"))
    }

    func testRoundTripThroughTheServerReader() {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Self.bytes(".\r\nab \u{7f}") + [0xC3, 0xA4]
        for _ in 0..<200 {
            let length = Int.random(in: 0..<300, using: &generator)
            let message = (0..<length).map { _ in alphabet.randomElement(using: &generator)! }
            let data = DotStuffingWriter.stuff(message)
            var reader = DotStuffedReader(maxSize: 1 << 20)
            let (read, consumed) = reader.feed(data)
            XCTAssertTrue(reader.finished, "\(message)")
            XCTAssertEqual(consumed, data.count, "the end marker is the last line, nothing earlier ends the data")
            XCTAssertFalse(reader.sawBareLineFeed)
            // What arrives is the message with its line ends made CRLF and a final line end.
            var expected = DotStuffingWriter()
            let normalised = expected.write(message)
            let unstuffedExpectation = Self.unstuff(normalised + (expected.finish().dropLast(3)))
            XCTAssertEqual(read, unstuffedExpectation)
        }
    }

    /// Drops the doubled dots again (the reader's job), to state what the server must get.
    static func unstuff(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var atLineStart = true
        var i = 0
        while i < bytes.count {
            if atLineStart && bytes[i] == UInt8(ascii: ".") { i += 1 }
            guard i < bytes.count else { break }
            out.append(bytes[i])
            atLineStart = bytes[i] == 10
            i += 1
        }
        return out
    }

    func testContentScan() {
        func scan(_ bytes: [UInt8]) -> MessageContentScan {
            let whole = MessageContentScan.scan(bytes)
            for cut in 0...bytes.count {
                var s = MessageContentScan()
                s.feed(bytes[..<cut])
                s.feed(bytes[cut...])
                XCTAssertEqual(s, whole, "cut at \(cut)")
            }
            return whole
        }
        var s = scan(Self.bytes("Subject: plain\r\n\r\nascii only\r\n"))
        XCTAssertEqual([s.eightBitHeader, s.eightBitBody, s.headerEnded], [false, false, true])
        XCTAssertEqual(s.size, 30)
        s = scan(Self.bytes("Subject: plain\r\n\r\nK\u{e4}se\r\n"))
        XCTAssertEqual([s.eightBitHeader, s.eightBitBody], [false, true])
        s = scan(Self.bytes("Subject: K\u{e4}se\r\n\r\nascii\r\n"))
        XCTAssertEqual([s.eightBitHeader, s.eightBitBody], [true, false])
        // Bare LF header end, and folded lines are still header.
        s = scan(Self.bytes("Subject: a\n \u{e4}\n\nbody"))
        XCTAssertEqual([s.eightBitHeader, s.eightBitBody, s.headerEnded], [true, false, true])
        s = scan(Self.bytes("Subject: a\n\n\u{e4}"))
        XCTAssertEqual([s.eightBitHeader, s.eightBitBody], [false, true])
        // No empty line: all header.
        s = scan(Self.bytes("Subject: \u{e4}"))
        XCTAssertEqual([s.eightBitHeader, s.eightBitBody, s.headerEnded], [true, false, false])
        // A line holding only CR then LF ends the header; CR inside a line does not.
        s = scan(Self.bytes("A: b\r\r\nC: \u{e4}\r\n\r\n"))
        XCTAssertEqual([s.eightBitHeader, s.headerEnded], [true, true])
    }
}
