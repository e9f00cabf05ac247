import PluginAPI
import XCTest

/// Command lines and DATA bodies of SMTP/LMTP, byte by byte.
final class SMTPCommandTests: XCTestCase {
    func parse(_ line: String) -> Result<SMTPCommand, SMTPCommandError> { SMTPCommandParser.parse(Array(line.utf8)) }

    func path(_ local: String, _ domain: String) -> SMTPPath { SMTPPath(localPart: local, domain: .name(domain)) }

    func testCommands() {
        let cases: [(String, SMTPCommand)] = [
            ("LHLO mx.example.org", .lhlo("mx.example.org")),
            ("ehlo [192.0.2.1]", .ehlo("[192.0.2.1]")),
            ("MAIL FROM:<a@example.org>", .mail(from: path("a", "example.org"), parameters: [])),
            ("mail from: <a@example.org>  SIZE=1000 BODY=8BITMIME SMTPUTF8", .mail(from: path("a", "example.org"),
                parameters: [SMTPParameter("SIZE", "1000"), SMTPParameter("BODY", "8BITMIME"), SMTPParameter("SMTPUTF8")])),
            ("MAIL FROM:<>", .mail(from: SMTPPath(localPart: "", domain: nil), parameters: [])),
            ("RCPT TO:<b+tag@example.org> NOTIFY=SUCCESS,FAILURE", .rcpt(to: path("b+tag", "example.org"), parameters: [SMTPParameter("NOTIFY", "SUCCESS,FAILURE")])),
            ("RCPT TO:<Postmaster>", .rcpt(to: SMTPPath(localPart: "postmaster", domain: nil), parameters: [])),
            ("RCPT TO:<\"x>y\"@example.org>", .rcpt(to: path("x>y", "example.org"), parameters: [])),
            ("RCPT TO:<δοκιμή@παράδειγμα.δοκιμή>", .rcpt(to: path("δοκιμή", "παράδειγμα.δοκιμή"), parameters: [])),
            ("DATA", .data), ("rset", .rset), ("NOOP anything", .noop), ("QUIT", .quit), ("STARTTLS", .startTLS),
            ("BDAT 1000", .bdat(size: 1000, last: false)), ("BDAT 0 LAST", .bdat(size: 0, last: true)),
            ("VRFY alice", .vrfy("alice")), ("HELP", .help(nil)),
            ("AUTH plain AGEAYg==", .auth(mechanism: "PLAIN", initialResponse: "AGEAYg==")),
        ]
        for (line, expected) in cases {
            XCTAssertEqual(try parse(line).get(), expected, line)
        }
    }

    func testMalformedCommands() {
        let cases: [(String, SMTPCommandError)] = [
            ("FOO bar", .unknownCommand("FOO")),
            ("HELO", .syntax("HELO needs one domain or address literal")),
            ("MAIL FROM:a@example.org", .syntax("expected FROM:<address>")),
            ("MAIL TO:<a@example.org>", .syntax("expected FROM:<address>")),
            ("MAIL FROM:<a@example.org", .syntax("expected FROM:<address>")),
            ("MAIL FROM:<a@example.org>x", .syntax("text after the address")),
            ("RCPT TO:<>", .badAddress("the null path is only a sender")),
            ("MAIL FROM:<a@example.org> SIZE=1 SIZE=2", .badParameter("SIZE given twice")),
            ("MAIL FROM:<a@example.org> =x", .badParameter("=x")),
            ("DATA now", .syntax("DATA takes no argument")),
            ("BDAT -1", .syntax("BDAT needs a chunk size")),
            ("BDAT 10 FIRST", .syntax("BDAT size [LAST]")),
        ]
        for (line, expected) in cases {
            XCTAssertEqual(parse(line), .failure(expected), line)
        }
        XCTAssertEqual(SMTPCommandParser.parse([0x4e, 0x4f, 0x4f, 0x50, 0x20, 0xff]), .failure(.syntax("not UTF-8")))
        XCTAssertEqual(parse("NOOP \0"), .failure(.syntax("control character in command")))
        if case .failure(.badAddress) = parse("RCPT TO:<a@@example.org>") {} else { XCTFail("double @ is a bad address") }
        XCTAssertEqual(SMTPCommandError.unknownCommand("X").reply.encoded(), "500 5.5.1 command not recognized\r\n")
        XCTAssertEqual(MailReply(250, nil, "mx\nPIPELINING\nSIZE 10").encoded(), "250-mx\r\n250-PIPELINING\r\n250 SIZE 10\r\n")
    }

    struct DataFixture {
        var name: String
        var input: String
        var data: String
        var rest: String
        var maxSize = 1 << 20
        var tooBig = false
    }

    let dataFixtures: [DataFixture] = [
        DataFixture(name: "plain", input: "Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n", data: "Subject: x\r\n\r\nhello\r\n", rest: "QUIT\r\n"),
        DataFixture(name: "empty message", input: ".\r\n", data: "", rest: ""),
        DataFixture(name: "dot stuffing", input: "..leading\r\n...\r\n.x\r\n.\r\n", data: ".leading\r\n..\r\nx\r\n", rest: ""),
        DataFixture(name: "bare LF lines become CRLF", input: "a\nb\r\n.\r\n", data: "a\r\nb\r\n", rest: ""),
        DataFixture(name: "smuggled LF.CRLF is data", input: "a\n.\r\nMAIL FROM:<x@y>\r\n.\r\n", data: "a\r\n\r\nMAIL FROM:<x@y>\r\n", rest: ""),
        DataFixture(name: "dot with bare LF is data", input: "a\r\n.\nb\r\n.\r\n", data: "a\r\n\r\nb\r\n", rest: ""),
        DataFixture(name: "too big, read to the end", input: "0123456789\r\n0123456789\r\n.\r\nNOOP\r\n", data: "0123456789\r\n", rest: "NOOP\r\n", maxSize: 15, tooBig: true),
    ]

    func testDataReaderWholeAndByteByByte() {
        for f in dataFixtures {
            let input = Array(f.input.utf8)
            var whole = DotStuffedReader(maxSize: f.maxSize)
            let (data, used) = whole.feed(input)
            XCTAssertEqual(String(decoding: data, as: UTF8.self), f.data, f.name)
            XCTAssertEqual(String(decoding: input[used...], as: UTF8.self), f.rest, f.name)
            XCTAssertTrue(whole.finished, f.name)
            XCTAssertEqual(whole.tooBig, f.tooBig, f.name)
            var split = DotStuffedReader(maxSize: f.maxSize)
            var collected: [UInt8] = []
            var index = 0
            while index < input.count && !split.finished {
                let (d, n) = split.feed(input[index...index])
                collected += d
                index += n
            }
            XCTAssertEqual(String(decoding: collected, as: UTF8.self), f.data, "\(f.name), byte by byte")
            XCTAssertEqual(String(decoding: input[index...], as: UTF8.self), f.rest, "\(f.name), byte by byte")
        }
    }

    func testRandomChunksGiveWhatOneFeedGives() {
        // Lines of dots, CRs, LFs and long runs, cut at random places: the reader's line search
        // must give the same message and the same rest as one feed of the whole input.
        var rng = SystemRandomNumberGenerator()
        let pieces = [".", "..", "\r\n", "\n", "\r", "a", "text ", ".\r\n", String(repeating: "x", count: 70_000)]
        for round in 0..<200 {
            var text = ""
            for _ in 0..<Int.random(in: 1...40, using: &rng) { text += pieces.randomElement(using: &rng)! }
            let input = Array((text + "\r\n.\r\nQUIT\r\n").utf8)
            var whole = DotStuffedReader(maxSize: 1 << 24)
            let (expected, expectedUsed) = whole.feed(input)
            var split = DotStuffedReader(maxSize: 1 << 24)
            var collected: [UInt8] = []
            var index = 0
            while index < input.count && !split.finished {
                let end = min(input.count, index + Int.random(in: 1...9000, using: &rng))
                let (d, n) = split.feed(input[index..<end])
                collected += d
                index += n
            }
            XCTAssertTrue(split.finished, "round \(round)")
            XCTAssertEqual(collected, expected, "round \(round)")
            XCTAssertEqual(index, expectedUsed, "round \(round)")
        }
    }

    func testLongLinesStreamWithoutLosingCRLFAtChunkEdges() {
        // Lines longer than the reader's internal buffer, with the CR landing on its edge.
        for length in [65_535, 65_536, 65_537, 200_000] {
            let body = String(repeating: "a", count: length) + "\r\n.b\r\n"
            var reader = DotStuffedReader(maxSize: 1 << 24)
            let (data, used) = reader.feed(Array((body + ".\r\n").utf8))
            XCTAssertTrue(reader.finished)
            XCTAssertEqual(used, body.utf8.count + 3)
            XCTAssertEqual(data, Array((String(repeating: "a", count: length) + "\r\nb\r\n").utf8), "length \(length)")
        }
    }
}
