import PluginAPI
import XCTest

/// Byte-level fixtures for the shared line codec: each fed whole and one byte at a time.
final class LineSplitterTests: XCTestCase {
    struct Fixture {
        var name: String
        var input: String
        var maxLength: Int = 16
        var bareLineFeed: LineSplitter.BareLineFeed = .accept
        var expected: [LineSplitter.Event]
        var leftover: Int = 0
    }

    static func line(_ s: String) -> LineSplitter.Event { .line(Array(s.utf8)) }

    let fixtures: [Fixture] = [
        Fixture(name: "two CRLF lines", input: "HELO a\r\nQUIT\r\n", expected: [line("HELO a"), line("QUIT")]),
        Fixture(name: "empty line", input: "\r\n", expected: [line("")]),
        Fixture(name: "bare LF accepted", input: "A\nB\r\n", expected: [line("A"), line("B")]),
        Fixture(name: "bare LF rejected", input: "A\nB\r\n", bareLineFeed: .reject, expected: [.bareLineFeed, line("B")]),
        Fixture(name: "CR inside a line is data", input: "A\rB\r\n", expected: [line("A\rB")]),
        Fixture(name: "incomplete line is kept", input: "NOOP\r\nPAR", expected: [line("NOOP")], leftover: 3),
        Fixture(name: "exactly the limit", input: String(repeating: "x", count: 16) + "\r\n", expected: [line(String(repeating: "x", count: 16))]),
        Fixture(name: "one over the limit", input: String(repeating: "x", count: 17) + "\r\nOK\r\n", expected: [.tooLong, line("OK")]),
        Fixture(name: "far over the limit, no memory kept", input: String(repeating: "y", count: 5000), expected: [], leftover: 0),
        Fixture(name: "overlong then bare LF still too long", input: String(repeating: "z", count: 40) + "\nOK\n", expected: [.tooLong, line("OK")]),
        Fixture(name: "NUL and 8-bit bytes pass through", input: "A\u{0}\u{e9}\r\n", expected: [.line([65, 0, 0xC3, 0xA9])]),
    ]

    func testFixturesWholeAndByteByByte() {
        for f in fixtures {
            var whole = LineSplitter(maxLength: f.maxLength, bareLineFeed: f.bareLineFeed)
            XCTAssertEqual(whole.feed(Array(f.input.utf8)), f.expected, "\(f.name), whole")
            XCTAssertEqual(whole.buffered, f.leftover, "\(f.name), leftover")
            var split = LineSplitter(maxLength: f.maxLength, bareLineFeed: f.bareLineFeed)
            var events: [LineSplitter.Event] = []
            for byte in f.input.utf8 { events += split.feed([byte]) }
            XCTAssertEqual(events, f.expected, "\(f.name), byte by byte")
        }
    }

    func testDecoderInAPipeline() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(LineFrameDecoder(maxLength: 8)))
        try channel.writeInbound(ByteBuffer(string: "PING\r\nTOO LONG LINE\r\nEN"))
        try channel.writeInbound(ByteBuffer(string: "D\r\n"))
        XCTAssertEqual(try channel.readInbound(as: LineSplitter.Event.self), .line(Array("PING".utf8)))
        XCTAssertEqual(try channel.readInbound(as: LineSplitter.Event.self), .tooLong)
        XCTAssertEqual(try channel.readInbound(as: LineSplitter.Event.self), .line(Array("END".utf8)))
        XCTAssertNil(try channel.readInbound(as: LineSplitter.Event.self))
        _ = try channel.finish()
    }
}
