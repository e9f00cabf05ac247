import PluginAPI
import XCTest

/// `EightBitDowngrade` to exact bytes: what is converted, what is left byte for byte, and what
/// cannot be converted.
final class EightBitDowngradeTests: XCTestCase {
    static func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    func converted(_ input: String, file: StaticString = #filePath, line: UInt = #line) -> String? {
        switch EightBitDowngrade.convert(Self.bytes(input)) {
        case .success(let out):
            XCTAssertFalse(out.contains { $0 >= 0x80 }, "output must be 7-bit", file: file, line: line)
            return String(decoding: out, as: UTF8.self)
        case .failure(let why):
            XCTFail("\(why)", file: file, line: line)
            return nil
        }
    }

    func failure(_ input: [UInt8]) -> EightBitDowngrade.Failure? {
        if case .failure(let why) = EightBitDowngrade.convert(input) { return why }
        return nil
    }

    func testSinglePartWithoutMIMEHeaders() {
        XCTAssertEqual(converted("From: a@example.net\r\nSubject: x\r\n\r\nK\u{e4}se = gut\r\nzwei\r\n"),
                       "From: a@example.net\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
                       + "K=C3=A4se =3D gut\r\nzwei\r\n")
    }

    func testSinglePartReplacesTheEncodingField() {
        XCTAssertEqual(converted("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\nSubject: s\r\n\r\n\u{fc}ber trailing \r\n"),
                       "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\nSubject: s\r\n\r\n"
                       + "=C3=BCber trailing=20\r\n")
        // A folded encoding field is replaced whole; a duplicate is dropped.
        XCTAssertEqual(converted("Content-Transfer-Encoding:\r\n 8bit\r\nContent-Transfer-Encoding: binary\r\nMIME-Version: 1.0\r\n\r\n\u{e9}\r\n"),
                       "Content-Transfer-Encoding: quoted-printable\r\nMIME-Version: 1.0\r\n\r\n=C3=A9\r\n")
    }

    func testLongLinesGetSoftBreaks() {
        let line = String(repeating: "\u{e4}", count: 30)   // 60 octets, 180 characters encoded
        let out = converted("Subject: x\r\nMIME-Version: 1.0\r\n\r\n\(line)\r\n")!
        let body = out.components(separatedBy: "\r\n\r\n")[1]
        // 25 escapes of 3 characters and the "=" of a soft break make 76 characters a line.
        let escapes = Array(repeating: ["=C3", "=A4"], count: 30).flatMap { $0 }
        XCTAssertEqual(body, escapes[0..<25].joined() + "=\r\n" + escapes[25..<50].joined() + "=\r\n" + escapes[50...].joined() + "\r\n")
        XCTAssertTrue(out.components(separatedBy: "\r\n").allSatisfy { $0.count <= 76 })
    }

    func testMultipartConvertsOnlyWhatIsEightBit() {
        let input = "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            + "preamble\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGr\u{fc}\u{df}e\r\n"
            + "--b1\r\nContent-Type: text/html\r\n\r\n<p>plain</p>\r\n"
            + "--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        let tail = "\r\n--b1--\r\nepilogue\r\n"
        let bytes = Self.bytes(input) + [0xFF, 0xFE] + Self.bytes(tail)
        guard case .success(let out) = EightBitDowngrade.convert(bytes) else { return XCTFail() }
        XCTAssertEqual(String(decoding: out, as: UTF8.self),
                       "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
                       + "preamble\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe\r\n"
                       + "--b1\r\nContent-Type: text/html\r\n\r\n<p>plain</p>\r\n"
                       + "--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n//4=\r\n--b1--\r\nepilogue\r\n")
    }

    func testPartWithoutHeaderAndNestedMessage() {
        XCTAssertEqual(converted("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n"
                                 + "--outer\r\n\r\ndefault text/plain \u{e4}\r\n"
                                 + "--outer\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\nSubject: inner\r\n\r\nCaf\u{e9}\r\n"
                                 + "--outer--\r\n"),
                       "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n"
                       + "--outer\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ndefault text/plain =C3=A4\r\n"
                       + "--outer\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: 7bit\r\n\r\nSubject: inner\r\n"
                       + "Content-Transfer-Encoding: quoted-printable\r\n\r\nCaf=C3=A9\r\n"
                       + "--outer--\r\n")
    }

    func testQuotedPrintablePartWithRawEightBitOctets() {
        XCTAssertEqual(converted("MIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nalready =3D encoded, but \u{e4}\r\n"),
                       "MIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nalready =3D encoded, but =C3=A4\r\n")
    }

    func testSevenBitMessageIsUnchanged() {
        let message = Self.bytes("Subject: x\r\n\r\nplain\r\n")
        XCTAssertEqual(try EightBitDowngrade.convert(message).get(), message)
    }

    func testBareLineFeedMessage() {
        XCTAssertEqual(converted("Subject: x\n\nK\u{e4}se\n"), "Subject: x\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\n\nK=C3=A4se\r\n")
    }

    func testWhatCannotBeConverted() {
        XCTAssertEqual(failure(Self.bytes("Subject: K\u{e4}se\r\n\r\nbody \u{e4}\r\n")), .eightBitHeader(part: 0))
        XCTAssertEqual(failure(Self.bytes("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Description: K\u{e4}se\r\n\r\nx\r\n--b--\r\n")),
                       .eightBitHeader(part: 1))
        XCTAssertEqual(failure(Self.bytes("MIME-Version: 1.0\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\u{e4}\r\n")),
                       .eightBitInEncodedPart(part: 0, encoding: "base64"))
        XCTAssertEqual(failure(Self.bytes("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\npre \u{e4}\r\n--b\r\n\r\nx\r\n--b--\r\n")),
                       .eightBitOutsideParts)
        XCTAssertEqual(failure(Self.bytes("MIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\nno boundary \u{e4}\r\n")),
                       .unparsedContainer(part: 0))
        XCTAssertEqual(EightBitDowngrade.Failure.eightBitHeader(part: 0).description, "8-bit octets in the message header")
    }
}
