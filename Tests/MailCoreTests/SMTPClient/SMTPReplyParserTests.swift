import PluginAPI
import XCTest

/// `SMTPReplyParser` over byte fixtures: every fixture is fed whole, byte by byte, and cut in
/// two at every offset, and must give the same replies and the same error each time.
final class SMTPReplyParserTests: XCTestCase {
    struct Parsed: Equatable {
        var replies: [SMTPReply]
        var error: SMTPReplyError?
        var buffered: Bool
    }

    /// Feeds `chunks` in turn, taking every reply after each chunk.
    static func parse(_ chunks: [[UInt8]], maxLineLength: Int = 4096, maxLines: Int = 1000) -> Parsed {
        var parser = SMTPReplyParser(maxLineLength: maxLineLength, maxLines: maxLines)
        var replies: [SMTPReply] = []
        for chunk in chunks {
            parser.feed(chunk)
            do {
                while let reply = try parser.next() { replies.append(reply) }
            } catch let error as SMTPReplyError {
                return Parsed(replies: replies, error: error, buffered: parser.hasBufferedInput)
            } catch {
                XCTFail("\(error)")
            }
        }
        return Parsed(replies: replies, error: nil, buffered: parser.hasBufferedInput)
    }

    /// The result of `text` fed whole, after checking every other cut gives the same.
    func check(_ text: String, maxLineLength: Int = 4096, maxLines: Int = 1000, file: StaticString = #filePath, line: UInt = #line) -> Parsed {
        let bytes = Array(text.utf8)
        let whole = Self.parse([bytes], maxLineLength: maxLineLength, maxLines: maxLines)
        XCTAssertEqual(Self.parse(bytes.map { [$0] }, maxLineLength: maxLineLength, maxLines: maxLines), whole, "byte by byte", file: file, line: line)
        for cut in 0...bytes.count {
            let split = Self.parse([Array(bytes[..<cut]), Array(bytes[cut...])], maxLineLength: maxLineLength, maxLines: maxLines)
            XCTAssertEqual(split, whole, "cut at \(cut)", file: file, line: line)
        }
        return whole
    }

    func testSingleLineReplies() {
        let parsed = check("220 mx.example.org ESMTP Postfix\r\n250 2.1.0 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n")
        XCTAssertEqual(parsed.replies, [SMTPReply(220, ["mx.example.org ESMTP Postfix"]), SMTPReply(250, ["2.1.0 Ok"]),
                                        SMTPReply(354, ["End data with <CR><LF>.<CR><LF>"])])
        XCTAssertNil(parsed.error)
        XCTAssertFalse(parsed.buffered)
    }

    func testMultilineEHLOReplyAndExtensions() {
        let parsed = check("250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-STARTTLS\r\n250-8bitmime\r\n250-DSN\r\n250 SMTPUTF8\r\n")
        XCTAssertEqual(parsed.replies.count, 1)
        let reply = parsed.replies[0]
        XCTAssertEqual(reply.lines, ["mx.example.org", "PIPELINING", "SIZE 10240000", "STARTTLS", "8bitmime", "DSN", "SMTPUTF8"])
        let extensions = SMTPServerExtensions(ehlo: reply)
        for keyword in ["PIPELINING", "SIZE", "STARTTLS", "8BITMIME", "DSN", "SMTPUTF8"] { XCTAssertTrue(extensions.has(keyword), keyword) }
        XCTAssertFalse(extensions.has("CHUNKING"))
        XCTAssertFalse(extensions.has("MX.EXAMPLE.ORG"), "the first line is the server's name, not a keyword")
        XCTAssertEqual(extensions.sizeLimit, 10_240_000)
        XCTAssertEqual(SMTPServerExtensions(ehlo: SMTPReply(250, ["x", "SIZE"])).sizeLimit, 0, "SIZE without a limit")
        XCTAssertNil(SMTPServerExtensions(ehlo: SMTPReply(250, ["x"])).sizeLimit)
    }

    func testBareLineFeedsAndEmptyTexts() {
        let parsed = check("220 ready\n250\r\n250-\r\n250 \r\n421\n")
        XCTAssertEqual(parsed.replies, [SMTPReply(220, ["ready"]), SMTPReply(250, [""]), SMTPReply(250, ["", ""]), SMTPReply(421, [""])])
        XCTAssertNil(parsed.error)
    }

    func testIncompleteReplyWaits() {
        var parsed = check("250-first\r\n250-second\r\n")
        XCTAssertEqual(parsed.replies, [])
        XCTAssertTrue(parsed.buffered)
        parsed = check("220 hello\r\n250 par")
        XCTAssertEqual(parsed.replies, [SMTPReply(220, ["hello"])])
        XCTAssertTrue(parsed.buffered, "bytes after a reply are held (STARTTLS must see them)")
        parsed = check("220 go ahead\r")
        XCTAssertEqual(parsed.replies, [], "a CR without its LF is not a line end yet")
    }

    func testEnhancedCodesAndText() {
        let reply = SMTPReply(550, ["5.1.1 <bob@example.org>: Recipient address rejected", "5.1.1 User unknown"])
        XCTAssertEqual(reply.enhancedCode, "5.1.1")
        XCTAssertEqual(reply.text, "<bob@example.org>: Recipient address rejected User unknown")
        XCTAssertEqual(reply.mailReply, MailReply(550, "5.1.1", "<bob@example.org>: Recipient address rejected User unknown"))
        // No enhanced code: the class's X.0.0. A code of another class is not believed.
        XCTAssertEqual(SMTPReply(451, ["try later"]).mailReply, MailReply(451, "4.0.0", "try later"))
        XCTAssertNil(SMTPReply(250, ["5.0.0 odd"]).enhancedCode)
        XCTAssertNil(SMTPReply(250, ["2.0 short"]).enhancedCode)
        XCTAssertNil(SMTPReply(250, ["2.0.1234 long"]).enhancedCode)
        XCTAssertEqual(SMTPReply(250, ["2.0.0"]).text, "")
        XCTAssertEqual(SMTPReply(421, ["4.3.2 Service shutting down"]).description, "421 4.3.2 Service shutting down")
    }

    func testNonNumericCodesAreRefused() {
        for text in ["ABC hello\r\n", "25 short\r\n", "2x0 hello\r\n", "\r\n", " 250 indented\r\n", "650 out of range\r\n", "150 too low\r\n",
                     "HTTP/1.1 400 Bad Request\r\n"] {
            let parsed = check(text)
            XCTAssertEqual(parsed.replies, [], text)
            guard case .notAReply? = parsed.error else { return XCTFail("\(text.debugDescription): \(String(describing: parsed.error))") }
        }
    }

    func testBadSeparator() {
        let parsed = check("250+PIPELINING\r\n")
        XCTAssertEqual(parsed.error, .badSeparator("250+PIPELINING"))
        XCTAssertEqual(check("2500 four digits\r\n").error, .badSeparator("2500 four digits"))
    }

    func testMismatchedContinuationCode() {
        let parsed = check("220 hi\r\n250-mx.example.org\r\n251-PIPELINING\r\n250 SIZE\r\n")
        XCTAssertEqual(parsed.replies, [SMTPReply(220, ["hi"])])
        XCTAssertEqual(parsed.error, .mismatchedCode(expected: 250, found: 251))
    }

    func testOverlongLines() {
        let limit = 64
        let fits = "250 " + String(repeating: "a", count: limit - 4)
        XCTAssertEqual(check(fits + "\r\n", maxLineLength: limit).replies, [SMTPReply(250, [String(repeating: "a", count: limit - 4)])])
        XCTAssertEqual(check(fits + "a\r\n", maxLineLength: limit).error, .lineTooLong(limit: limit))
        // Refused before the line end arrives: a server cannot make the client buffer forever.
        XCTAssertEqual(check(fits + "aaaa", maxLineLength: limit).error, .lineTooLong(limit: limit))
        XCTAssertNil(check(fits + "\r", maxLineLength: limit).error, "the CR of the line end does not count")
    }

    func testTooManyLines() {
        let text = String(repeating: "250-x\r\n", count: 10) + "250 end\r\n"
        XCTAssertEqual(check(text, maxLines: 10).error, .tooManyLines(limit: 10))
        XCTAssertEqual(check(text, maxLines: 11).replies.first?.lines.count, 11)
    }

    func testErrorIsSticky() {
        var parser = SMTPReplyParser()
        parser.feed(Array("xyz\r\n220 fine\r\n".utf8))
        XCTAssertThrowsError(try parser.next())
        parser.feed(Array("250 more\r\n".utf8))
        XCTAssertThrowsError(try parser.next(), "the stream is not resynchronised after garbage")
    }

    func testUTF8AndInvalidBytesInText() {
        let parsed = Self.parse([Array("250 caf\u{e9} ok\r\n".utf8), [0x32, 0x35, 0x30, 0x20, 0xFF, 0x0D, 0x0A]])
        XCTAssertEqual(parsed.replies.map(\.lines), [["caf\u{e9} ok"], ["\u{FFFD}"]])
    }
}
