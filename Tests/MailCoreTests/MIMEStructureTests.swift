import XCTest
import PluginAPI

/// Expected IMAP strings are written from RFC 3501 §7.4.2 and Dovecot's conventions (case as
/// written, lower-case defaults, `("charset" "us-ascii")` added to text, sizes with bare LF
/// counted as CRLF, line end before a delimiter not part of the body).
final class MIMEStructureTests: XCTestCase {
    struct Fixture {
        var name: String
        var message: [UInt8]
        var bodyStructure: String
        var body: String?
        var envelope: String?
        var problems: [MIMEProblem] = []
    }

    static let nested = Fixture(
        name: "alternative in mixed with attachment",
        message: bytes("""
        From: "Alice Example" <alice@example.org>\r
        To: Bob <bob@example.com>, carol@example.net\r
        Subject: Test message\r
        Date: Mon, 7 Feb 1994 21:52:25 -0800\r
        Message-ID: <msg1@example.org>\r
        MIME-Version: 1.0\r
        Content-Type: multipart/mixed; boundary="outer"\r
        \r
        This is the preamble.\r
        --outer\r
        Content-Type: multipart/alternative; boundary="inner"\r
        \r
        --inner\r
        Content-Type: text/plain; charset=utf-8\r
        Content-Transfer-Encoding: quoted-printable\r
        \r
        Hello =E2=82=AC\r
        second line\r
        --inner\r
        Content-Type: text/html; charset=utf-8\r
        \r
        <p>Hello</p>\r
        --inner--\r
        --outer\r
        Content-Type: application/pdf; name="doc.pdf"\r
        Content-Disposition: attachment; filename="doc.pdf"\r
        Content-Transfer-Encoding: base64\r
        Content-ID: <part3@example.org>\r
        \r
        JVBERi0xLjQK\r
        --outer--\r
        epilogue\r

        """),
        bodyStructure: #"((("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 28 1 NIL NIL NIL NIL)("text" "html" ("charset" "utf-8") NIL NIL "7bit" 12 0 NIL NIL NIL NIL) "alternative" ("boundary" "inner") NIL NIL NIL)("application" "pdf" ("name" "doc.pdf") "<part3@example.org>" NIL "base64" 12 NIL ("attachment" ("filename" "doc.pdf")) NIL NIL) "mixed" ("boundary" "outer") NIL NIL NIL)"#,
        body: #"((("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 28 1)("text" "html" ("charset" "utf-8") NIL NIL "7bit" 12 0) "alternative")("application" "pdf" ("name" "doc.pdf") "<part3@example.org>" NIL "base64" 12) "mixed")"#,
        envelope: #"("Mon, 7 Feb 1994 21:52:25 -0800" "Test message" (("Alice Example" NIL "alice" "example.org")) (("Alice Example" NIL "alice" "example.org")) (("Alice Example" NIL "alice" "example.org")) (("Bob" NIL "bob" "example.com")(NIL NIL "carol" "example.net")) NIL NIL NIL "<msg1@example.org>")"#)

    static let rfc822 = Fixture(
        name: "message/rfc822 attachment",
        message: bytes("""
        From: a@example.org\r
        Subject: Fwd\r
        Content-Type: multipart/mixed; boundary=b1\r
        \r
        --b1\r
        Content-Type: text/plain\r
        \r
        See attached.\r
        --b1\r
        Content-Type: message/rfc822\r
        Content-Disposition: inline\r
        \r
        From: =?ISO-8859-1?Q?Andr=E9?= <andre@example.com>\r
        To: undisclosed-recipients:;\r
        Subject: =?UTF-8?B?R3LDvMOfZSDigqw=?=\r
        Date: Tue, 1 Jan 2030 00:00:00 +0000\r
        \r
        Inner body\r
        line two\r
        --b1--\r

        """),
        bodyStructure: #"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 13 0 NIL NIL NIL NIL)("message" "rfc822" NIL NIL NIL "7bit" 181 ("Tue, 1 Jan 2030 00:00:00 +0000" "=?UTF-8?B?R3LDvMOfZSDigqw=?=" (("=?ISO-8859-1?Q?Andr=E9?=" NIL "andre" "example.com")) (("=?ISO-8859-1?Q?Andr=E9?=" NIL "andre" "example.com")) (("=?ISO-8859-1?Q?Andr=E9?=" NIL "andre" "example.com")) ((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 20 1 NIL NIL NIL NIL) 6 NIL ("inline" NIL) NIL NIL) "mixed" ("boundary" "b1") NIL NIL NIL)"#,
        body: #"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 13 0)("message" "rfc822" NIL NIL NIL "7bit" 181 ("Tue, 1 Jan 2030 00:00:00 +0000" "=?UTF-8?B?R3LDvMOfZSDigqw=?=" (("=?ISO-8859-1?Q?Andr=E9?=" NIL "andre" "example.com")) (("=?ISO-8859-1?Q?Andr=E9?=" NIL "andre" "example.com")) (("=?ISO-8859-1?Q?Andr=E9?=" NIL "andre" "example.com")) ((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 20 1) 6) "mixed")"#,
        envelope: #"(NIL "Fwd" ((NIL NIL "a" "example.org")) ((NIL NIL "a" "example.org")) ((NIL NIL "a" "example.org")) NIL NIL NIL NIL NIL)"#)

    static let rfc2231 = Fixture(
        name: "RFC 2231 continuations and charset",
        message: bytes("""
        Content-Type: application/octet-stream;\r
         name*0*=utf-8''%E2%82%AC%20rates;\r
         name*1=".txt"\r
        Content-Disposition: attachment;\r
         filename*0*=UTF-8'en'%E2%82%AC;\r
         filename*1*=%20rates.txt;\r
         size=42\r
        \r
        data\r

        """),
        bodyStructure: #"("application" "octet-stream" ("name*" "utf-8''%E2%82%AC%20rates.txt") NIL NIL "7bit" 6 NIL ("attachment" ("size" "42" "filename*" "UTF-8'en'%E2%82%AC%20rates.txt")) NIL NIL)"#)

    static let noBoundary = Fixture(
        name: "multipart without boundary",
        message: bytes("Content-Type: multipart/mixed\r\n\r\n--x\r\nhi\r\n"),
        bodyStructure: #"("multipart" "mixed" NIL NIL NIL "7bit" 9 NIL NIL NIL NIL)"#,
        problems: [.missingBoundary(part: 0)])

    static let noClose = Fixture(
        name: "missing close delimiter",
        message: bytes("Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\npart one\r\n--x\r\nContent-Type: text/html\r\n\r\n<b>unterminated"),
        bodyStructure: #"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 8 0 NIL NIL NIL NIL)("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 15 0 NIL NIL NIL NIL) "mixed" ("boundary" "x") NIL NIL NIL)"#,
        problems: [.missingCloseDelimiter(part: 0)])

    static let garbageHeaders = Fixture(
        name: "garbage in headers, line without colon",
        message: bytes("From: a@b\r\nthis line has no colon\r\n\u{1}\u{2} junk\r\nContent-Type: text/plain; charset=\"us-ascii\r\n\r\nbody\r\n"),
        bodyStructure: #"("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 1 NIL NIL NIL NIL)"#,
        envelope: #"(NIL NIL ((NIL NIL "a" "b")) ((NIL NIL "a" "b")) ((NIL NIL "a" "b")) NIL NIL NIL NIL NIL)"#,
        problems: [.malformedHeaderLine(part: 0, offset: 11), .malformedHeaderLine(part: 0, offset: 35)])

    static let prefixBoundary = Fixture(
        name: "boundary that is a prefix of another",
        message: bytes("""
        Content-Type: multipart/mixed; boundary="b"\r
        \r
        --b\r
        Content-Type: multipart/alternative; boundary="bb"\r
        \r
        --bb\r
        \r
        one\r
        --b-not\r
        --bb\r
        \r
        two\r
        --bb--\r
        --b\r
        \r
        three\r
        --b--\r

        """),
        bodyStructure: #"((("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 12 1 NIL NIL NIL NIL)("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 0 NIL NIL NIL NIL) "alternative" ("boundary" "bb") NIL NIL NIL)("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 5 0 NIL NIL NIL NIL) "mixed" ("boundary" "b") NIL NIL NIL)"#)

    static let eightBit = Fixture(
        name: "NUL and 8-bit in headers and body, bare LF",
        message: bytes("From: Jörg <jörg@bücher.example>\nSubject: Grüße\u{0} aus Köln\nX-Bin: ") + [0xFF, 0xFE]
            + bytes("\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nBücher\u{0}\nzwei\n"),
        bodyStructure: #"("text" "plain" ("charset" "utf-8") NIL NIL "8bit" 16 2 NIL NIL NIL NIL)"#,
        envelope: "(NIL {20}\r\nGrüße\u{FFFD} aus Köln (({5}\r\nJörg NIL {5}\r\njörg {15}\r\nbücher.example)) (({5}\r\nJörg NIL {5}\r\njörg {15}\r\nbücher.example)) (({5}\r\nJörg NIL {5}\r\njörg {15}\r\nbücher.example)) NIL NIL NIL NIL NIL)")

    /// The layout of Dovecot's own unit test message (LF line ends, so sizes count CRLF),
    /// rebuilt here: a text part with every extension field, and a message/rfc822 holding a
    /// multipart/alternative.
    static let extensionFields = Fixture(
        name: "all extension fields, LF line ends",
        message: bytes("""
        From: user@domain.org
        Mime-Version: 1.0
        Content-Type: multipart/mixed; boundary="foo
         bar"

        Root prologue

        --foo bar
        Content-Type: text/x-myown; charset=us-ascii; foo="quoted\\"string"
        Content-ID: <foo@example.com>
        Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==
        Content-Disposition: inline; foo=bar
        Content-Description: hellodescription
        Content-Language: en, fi, se
        Content-Location: http://example.com/test.txt

        hello

        --foo bar
        Content-Type: text/plain
        Content-Transfer-Encoding: ?invalid

        Hello another world

        --foo bar--
        Root epilogue

        """),
        bodyStructure: #"(("text" "x-myown" ("charset" "us-ascii" "foo" "quoted\"string") "<foo@example.com>" "hellodescription" "7bit" 7 1 "Q2hlY2sgSW50ZWdyaXR5IQ==" ("inline" ("foo" "bar")) ("en" "fi" "se") "http://example.com/test.txt")("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 21 1 NIL NIL NIL NIL) "mixed" ("boundary" "foo bar") NIL NIL NIL)"#)

    static let all = [nested, rfc822, rfc2231, noBoundary, noClose, garbageHeaders, prefixBoundary, eightBit, extensionFields]

    func testFixturesWholeAndByteByByte() {
        for fixture in MIMEStructureTests.all {
            let whole = parseMessage(fixture.message, .whole)
            let single = parseMessage(fixture.message, .byteByByte)
            XCTAssertEqual(whole, single, fixture.name)
            for (feeding, m) in [(Feeding.whole, whole), (.byteByByte, single)] {
                let label = "\(fixture.name), \(feeding)"
                XCTAssertEqual(text(m.root.imapBodyStructure), fixture.bodyStructure, label)
                if let body = fixture.body { XCTAssertEqual(text(m.root.imapBody), body, label) }
                if let env = fixture.envelope { XCTAssertEqual(text(m.root.envelope.imapString), env, label) }
                XCTAssertEqual(m.problems, fixture.problems, label)
                XCTAssertEqual(m.size, fixture.message.count, label)
            }
        }
    }

    func testOffsetsOfNestedFixture() {
        let m = parseMessage(MIMEStructureTests.nested.message, .whole)
        let msg = MIMEStructureTests.nested.message
        XCTAssertEqual(m.partCount, 5)
        let parts = m.root.allParts
        XCTAssertEqual(parts.map(\.index), [0, 1, 2, 3, 4])
        XCTAssertEqual(parts.map(\.depth), [0, 1, 2, 2, 1])
        func slice(_ p: MIMEPart) -> String { text(Array(msg[p.bodyOffset..<(p.bodyOffset + p.bodySize)])) }
        XCTAssertEqual(slice(parts[2]), "Hello =E2=82=AC\r\nsecond line")
        XCTAssertEqual(slice(parts[3]), "<p>Hello</p>")
        XCTAssertEqual(slice(parts[4]), "JVBERi0xLjQK")
        XCTAssertEqual(text(Array(msg[parts[4].headerOffset..<(parts[4].headerOffset + 17)])), "Content-Type: app")
        let pre = m.root.preamble!
        XCTAssertEqual(text(Array(msg[pre.offset..<(pre.offset + pre.size)])), "This is the preamble.\r")
        let epi = m.root.epilogue!
        XCTAssertEqual(text(Array(msg[epi.offset..<(epi.offset + epi.size)])), "epilogue\r\n")
        XCTAssertEqual(parts[2].contentTransferEncoding, "quoted-printable")
        XCTAssertEqual(parts[2].contentType.charset, "utf-8")
        let decoded = QuotedPrintableDecoder.decode(msg[parts[2].bodyOffset..<(parts[2].bodyOffset + parts[2].bodySize)])
        XCTAssertEqual(text(decoded), "Hello €\r\nsecond line")
        XCTAssertEqual(Base64Decoder.decode(msg[parts[4].bodyOffset..<(parts[4].bodyOffset + parts[4].bodySize)]), bytes("%PDF-1.4\n"))
        XCTAssertEqual(parts[4].contentDisposition?.filename, "doc.pdf")
        XCTAssertEqual(m.root.field("subject")?.text, "Test message")
    }

    func testEnclosedMessage() {
        let m = parseMessage(MIMEStructureTests.rfc822.message, .whole)
        let attached = m.root.children[1]
        XCTAssertTrue(attached.isMessage)
        XCTAssertEqual(attached.bodyOffset, 197)
        let inner = attached.enclosedMessage!
        XCTAssertEqual(inner.headerOffset, 197)
        XCTAssertEqual(inner.envelope.decodedSubject, "Grüße €")
        XCTAssertEqual(inner.envelope.from?.mailboxes.first?.displayName, "André")
        XCTAssertEqual(inner.envelope.to?.entries, [.group(name: "undisclosed-recipients", rawName: bytes("undisclosed-recipients"), members: [])])
    }

    func testRFC2231Decoding() {
        let m = parseMessage(MIMEStructureTests.rfc2231.message, .whole)
        let disposition = m.root.contentDisposition!
        XCTAssertEqual(disposition.filename, "€ rates.txt")
        XCTAssertEqual(disposition.parameters.parameter("filename")?.language, "en")
        XCTAssertEqual(disposition.parameters.parameter("filename")?.charset, "UTF-8")
        XCTAssertEqual(m.root.contentType.parameters.value(of: "NAME"), "€ rates.txt")
        let simple = MIMEContentType.parse(bytes("text/plain; title*=utf-8''%E2%82%AC; x=\"a\\\"b\" (comment); charset=ISO-8859-1"))!
        XCTAssertEqual(simple.parameters.value(of: "title"), "€")
        XCTAssertEqual(simple.parameters.value(of: "x"), "a\"b")
        XCTAssertEqual(simple.charset, "ISO-8859-1")
        XCTAssertEqual(simple.mimeType, "text/plain")
        // A gap in the numbering leaves the sections apart, as Dovecot does.
        let gap = MIMEContentType.parse(bytes("a/b; n*0=x; n*2=z"))!
        XCTAssertEqual(gap.parameters.map(\.name), ["n*0", "n*2"])
        XCTAssertNil(MIMEContentType.parse(bytes("garbage")))
        XCTAssertEqual(MIMEContentDisposition.parse(bytes("attachment; filename=\"=?UTF-8?Q?caf=C3=A9?=.txt\""))?.filename, "café.txt")
    }

    func testBadBase64BodyDoesNotDisturbStructure() {
        let message = bytes("Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\nContent-Transfer-Encoding: base64\r\nContent-Type: image/png\r\n\r\n!!!not*base64===\r\n--z--\r\n")
        for feeding in Feeding.allCases {
            let m = parseMessage(message, feeding)
            let p = m.root.children[0]
            XCTAssertEqual(text(m.root.imapBodyStructure), #"(("image" "png" NIL NIL NIL "base64" 16 NIL NIL NIL NIL) "mixed" ("boundary" "z") NIL NIL NIL)"#)
            var d = Base64Decoder()
            _ = d.decode(message[p.bodyOffset..<(p.bodyOffset + p.bodySize)])
            _ = d.finish()
            XCTAssertTrue(d.sawInvalidInput)
        }
    }

    func testThousandParts() {
        var message = bytes("Content-Type: multipart/mixed; boundary=gen\r\n\r\n")
        var expected: [(header: Int, body: Int, size: Int)] = []
        for i in 1...1000 {
            let headerOffset = message.count + 7
            message += bytes("--gen\r\nContent-Type: text/plain\r\n\r\n")
            let content = "part \(i)"
            expected.append((headerOffset, message.count, content.utf8.count))
            message += bytes(content + "\r\n")
        }
        message += bytes("--gen--\r\n")
        for feeding in Feeding.allCases {
            let m = parseMessage(message, feeding)
            XCTAssertEqual(m.partCount, 1001)
            XCTAssertEqual(m.root.children.count, 1000)
            XCTAssertEqual(m.problems, [])
            for i in [0, 1, 499, 998, 999] {
                let p = m.root.children[i]
                XCTAssertEqual(p.index, i + 1)
                XCTAssertEqual(p.headerOffset, expected[i].header)
                XCTAssertEqual(p.bodyOffset, expected[i].body)
                XCTAssertEqual(p.bodySize, expected[i].size)
                XCTAssertEqual(p.bodyLines, 0)
            }
        }
    }

    func testLimitsOnPartsAndDepth() {
        var message = bytes("Content-Type: multipart/mixed; boundary=q\r\n\r\n")
        for _ in 0..<20 { message += bytes("--q\r\n\r\nx\r\n") }
        message += bytes("--q--\r\n")
        let m = MIMEMessage(parsing: message, limits: MIMEParserLimits(maxParts: 5))
        XCTAssertEqual(m.partCount, 5)
        XCTAssertEqual(m.problems, [.tooManyParts])
        XCTAssertEqual(m.root.bodyOffset + m.root.bodySize, message.count)

        var deep: [UInt8] = []
        for level in 0..<150 { deep += bytes("Content-Type: multipart/mixed; boundary=l\(level)\r\n\r\n--l\(level)\r\n") }
        deep += bytes("\r\nleaf\r\n")
        let d = MIMEMessage(parsing: deep, limits: MIMEParserLimits(maxDepth: 100))
        XCTAssertEqual(d.partCount, 101)
        XCTAssertTrue(d.problems.contains(.tooDeep(part: 100)))
        let nested = MIMEMessage(parsing: bytes(String(repeating: "Content-Type: message/rfc822\r\n\r\n", count: 300) + "body"))
        XCTAssertEqual(nested.partCount, 101)
    }

    /// 50 MB fed in 64 KiB chunks, generated on the fly: the parser's buffer stays small.
    func testFiftyMegabytesWithBoundedMemory() {
        let head = bytes("Content-Type: multipart/mixed; boundary=\"big\"\r\n\r\n--big\r\nContent-Type: text/plain\r\n\r\nhi\r\n--big\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n")
        let line = bytes(String(repeating: "QUJD", count: 19) + "\r\n")
        let tail = bytes("\r\n--big--\r\n")
        let lineCount = 50 * 1024 * 1024 / line.count
        var parser = MIMEStructureParser()
        var chunk: [UInt8] = head
        chunk.reserveCapacity(65_536 + line.count)
        var maxBuffered = 0
        var fed = 0
        for _ in 0..<lineCount {
            chunk += line
            if chunk.count >= 65_536 {
                parser.feed(chunk[0..<65_536])
                fed += 65_536
                chunk.removeFirst(65_536)
                maxBuffered = max(maxBuffered, parser.bufferedByteCount)
            }
        }
        chunk += tail
        parser.feed(chunk)
        fed += chunk.count
        let m = parser.finish()
        XCTAssertLessThan(maxBuffered, 1 << 20)
        XCTAssertEqual(m.size, fed)
        XCTAssertGreaterThan(fed, 50_000_000)
        let attachment = m.root.children[1]
        XCTAssertEqual(attachment.bodySize, lineCount * line.count)
        XCTAssertEqual(attachment.bodyLines, lineCount)
        XCTAssertEqual(m.problems, [])
    }
}
