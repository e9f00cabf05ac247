import Crypto
import XCTest
@testable import PosternSenderAuthCore

/// RFC 6376 §3.4 byte by byte: header fields and bodies, simple and relaxed.
final class DKIMCanonicalizationTests: XCTestCase {
    func header(_ text: String, _ method: DKIMCanonicalization) -> String {
        String(decoding: DKIMHeaderCanonicalizer.canonicalize(Array(text.utf8), method), as: UTF8.self)
    }

    func body(_ text: String, _ method: DKIMCanonicalization, chunk: Int = .max) -> String {
        var canonicalizer = DKIMBodyCanonicalizer(method)
        var out: [UInt8] = []
        let bytes = Array(text.utf8)
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + chunk)
            canonicalizer.feed(bytes[start..<end], into: &out)
            start = end
        }
        canonicalizer.finish(into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    func testSimpleHeaderIsUnchanged() {
        XCTAssertEqual(header("SubJect :  Hello \t World \r\n  again ", .simple), "SubJect :  Hello \t World \r\n  again ")
    }

    func testRelaxedHeader() {
        // RFC 6376 §3.4.5's example: "A: X" / "B : Y\t\r\n\tZ  " become "a:X" / "b:Y Z".
        XCTAssertEqual(header("A: X", .relaxed), "a:X")
        XCTAssertEqual(header("B : Y\t\r\n\tZ  ", .relaxed), "b:Y Z")
        XCTAssertEqual(header("SubJect :  Hello \t World \r\n  again ", .relaxed), "subject:Hello World again")
        XCTAssertEqual(header("X-Empty:", .relaxed), "x-empty:")
        XCTAssertEqual(header("X-Blank: \t \r\n ", .relaxed), "x-blank:")
        // Only the name is lowercased.
        XCTAssertEqual(header("TO: Bob <BOB@Example.NET>", .relaxed), "to:Bob <BOB@Example.NET>")
    }

    func testSimpleBody() {
        // RFC 6376 §3.4.5: "C \r\nD \t E\r\n\r\n\r\n" → "C \r\nD \t E\r\n".
        XCTAssertEqual(body(" C \r\nD \t E\r\n\r\n\r\n", .simple), " C \r\nD \t E\r\n")
        XCTAssertEqual(body("", .simple), "\r\n")
        XCTAssertEqual(body("\r\n\r\n", .simple), "\r\n")
        XCTAssertEqual(body("no final line end", .simple), "no final line end\r\n")
        XCTAssertEqual(body("trailing WSP \t\r\n", .simple), "trailing WSP \t\r\n")
        XCTAssertEqual(body("a\r\n\r\n\r\nb\r\n\r\n", .simple), "a\r\n\r\n\r\nb\r\n")
        // A bare CR or LF is an ordinary octet.
        XCTAssertEqual(body("a\rb\nc\r\n", .simple), "a\rb\nc\r\n")
        XCTAssertEqual(body("ends in CR\r", .simple), "ends in CR\r\r\n")
    }

    func testRelaxedBody() {
        // RFC 6376 §3.4.5: " C \r\nD \t E\r\n\r\n\r\n" → " C\r\nD E\r\n".
        XCTAssertEqual(body(" C \r\nD \t E\r\n\r\n\r\n", .relaxed), " C\r\nD E\r\n")
        // An empty body stays empty under relaxed (RFC 6376 erratum 3986).
        XCTAssertEqual(body("", .relaxed), "")
        XCTAssertEqual(body("\r\n\r\n \t \r\n", .relaxed), "")
        XCTAssertEqual(body("no final line end", .relaxed), "no final line end\r\n")
        XCTAssertEqual(body("trailing WSP \t\r\nnext\t\r\n", .relaxed), "trailing WSP\r\nnext\r\n")
        XCTAssertEqual(body("a \r\n \r\n\r\nb", .relaxed), "a\r\n\r\n\r\nb\r\n")
        XCTAssertEqual(body("tab\tand  spaces", .relaxed), "tab and spaces\r\n")
    }

    func testBodyIsTheSameHoweverItIsCut() {
        let text = " lead \t\r\n\r\nmid  dle\r\r\n\n  \r\n\r\n\r\n"
        for method in [DKIMCanonicalization.simple, .relaxed] {
            let whole = body(text, method)
            for chunk in 1...5 { XCTAssertEqual(body(text, method, chunk: chunk), whole, "\(method) chunk \(chunk)") }
        }
    }

    func testBodyLengthLimitCutsTheCanonicalBody() {
        var limited = DKIMBodyHasher(.simple, limit: 3)
        limited.feed(Array("abcdef\r\n".utf8))
        let hash = limited.finish()
        XCTAssertEqual(limited.canonicalLength, 8)
        XCTAssertEqual(hash, Array(SHA256.hash(data: Array("abc".utf8))))
    }

    func testMessageSplitsFieldsAndBody() {
        let message = DKIMMessage(Array("From: a@example.org\r\nSubject: one\r\n two\r\nbroken line\r\nX : y\r\n\r\nbody\r\n".utf8))
        XCTAssertEqual(message.fields.map(\.name), ["From", "Subject", "X"])
        XCTAssertEqual(String(decoding: message.fields[1].raw, as: UTF8.self), "Subject: one\r\n two")
        XCTAssertEqual(String(decoding: message.fields[1].value, as: UTF8.self), " one\r\n two")
        XCTAssertEqual(String(decoding: message.body, as: UTF8.self), "body\r\n")
        // Bare LF line ends are taken as CRLF; no empty line: all header, empty body.
        let lf = DKIMMessage(Array("From: a\nTo: b\n".utf8))
        XCTAssertEqual(lf.fields.map(\.name), ["From", "To"])
        XCTAssertTrue(lf.body.isEmpty)
    }

    func testSelectPicksInstancesFromTheBottomUp() {
        let message = DKIMMessage(Array("Received: 1\r\nFrom: a\r\nReceived: 2\r\n\r\n".utf8))
        let picked = message.select(["received", "Received", "received", "from"])
        XCTAssertEqual(picked.map { $0.map { String(decoding: $0.raw, as: UTF8.self) } }, ["Received: 2", "Received: 1", nil, "From: a"])
    }
}
