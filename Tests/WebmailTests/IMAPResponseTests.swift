import PluginAPI
import XCTest
@testable import PosternWebmailCore

/// PluginAPI's IMAP client (the webmail's) reads what servers send: framing of lines and literals,
/// and the generic value parser, from byte-level fixtures fed whole and byte by byte, malformed
/// ones too. The webmail's own helpers on top (`MailAccess.fetchItems`, `IMAPSyntax`) need
/// @testable.
final class IMAPResponseTests: XCTestCase {
    func frames(_ text: String, byteByByte: Bool = false, limit: Int = 1 << 20) throws -> [String] {
        var framer = IMAPResponseFramer(maxResponseSize: limit)
        let bytes = Array(text.utf8)
        var out: [[UInt8]] = []
        if byteByByte {
            for b in bytes { out += try framer.feed([b]) }
        } else {
            out = try framer.feed(bytes)
        }
        return out.map { String(decoding: $0, as: UTF8.self) }
    }

    func testFramesLinesAndLiteralsWholeAndByteByByte() throws {
        let stream = "* OK [CAPABILITY IMAP4rev1 LITERAL+] ready\r\n"
            + "* 1 FETCH (UID 7 BODY[HEADER.FIELDS (SUBJECT)] {16}\r\nSubject: hi\r\n\r\n FLAGS (\\Seen))\r\n"
            + "* 2 FETCH (BODY[] {0}\r\n)\r\n"
            + "W1 OK done\r\n"
        let expected = [
            "* OK [CAPABILITY IMAP4rev1 LITERAL+] ready\r\n",
            "* 1 FETCH (UID 7 BODY[HEADER.FIELDS (SUBJECT)] {16}\r\nSubject: hi\r\n\r\n FLAGS (\\Seen))\r\n",
            "* 2 FETCH (BODY[] {0}\r\n)\r\n",
            "W1 OK done\r\n",
        ]
        XCTAssertEqual(try frames(stream), expected)
        XCTAssertEqual(try frames(stream, byteByByte: true), expected)
    }

    func testALiteralHoldingWhatLooksLikeALiteralIsNotReframed() throws {
        // The literal's own bytes end in "{5}\r\n": they are data, not a new announcement.
        let stream = "* 1 FETCH (BODY[] {7}\r\nab{5}\r\n)\r\nW2 OK\r\n"
        XCTAssertEqual(try frames(stream), ["* 1 FETCH (BODY[] {7}\r\nab{5}\r\n)\r\n", "W2 OK\r\n"])
    }

    func testOversizedResponsesAndBadLiteralLengthsAreErrors() {
        XCTAssertThrowsError(try frames("* 1 FETCH (BODY[] {999999}\r\n", limit: 1000)) { error in
            XCTAssertEqual(error as? IMAPResponseFramer.FramingError, .responseTooLarge(limit: 1000))
        }
        XCTAssertThrowsError(try frames(String(repeating: "x", count: 2000), limit: 1000))
        XCTAssertThrowsError(try frames("* 1 FETCH (BODY[] {99999999999}\r\n")) { error in
            XCTAssertEqual(error as? IMAPResponseFramer.FramingError, .badLiteralLength)
        }
    }

    func testParsesStatusResponsesWithCodes() throws {
        XCTAssertEqual(try IMAPResponseParser.parse(Array("W3 NO [AUTHENTICATIONFAILED] Invalid credentials\r\n".utf8)),
                       .tagged(tag: "W3", status: .no, code: "AUTHENTICATIONFAILED", text: "Invalid credentials"))
        XCTAssertEqual(try IMAPResponseParser.parse(Array("* OK [UIDVALIDITY 42] UIDs valid\r\n".utf8)),
                       .untaggedStatus(status: .ok, code: "UIDVALIDITY 42", text: "UIDs valid"))
        XCTAssertEqual(try IMAPResponseParser.parse(Array("* BYE shutting down\r\n".utf8)),
                       .untaggedStatus(status: .bye, code: nil, text: "shutting down"))
        XCTAssertEqual(try IMAPResponseParser.parse(Array("+ \r\n".utf8)), .continuation(""))
    }

    func testParsesFetchListStatusAndQuotaData() throws {
        let fetch = try IMAPResponseParser.parse(Array("* 12 FETCH (UID 5 FLAGS (\\Seen \\Flagged) RFC822.SIZE 1234 INTERNALDATE \"05-Dec-2026 10:00:00 +0000\" BODY[HEADER.FIELDS (FROM SUBJECT)] {9}\r\nFrom: a\r\n)\r\n".utf8))
        guard case .data(12, "FETCH", let values) = fetch, let items = values.first?.list else { return XCTFail("\(fetch)") }
        let map = MailAccess.fetchItems(items)
        XCTAssertEqual(map["UID"]?.number, 5)
        XCTAssertEqual(map["FLAGS"], .list([.atom("\\Seen"), .atom("\\Flagged")]))
        XCTAssertEqual(map["RFC822.SIZE"]?.number, 1234)
        XCTAssertEqual(map["INTERNALDATE"]?.text, "05-Dec-2026 10:00:00 +0000")
        XCTAssertEqual(map["HEADER"]?.bytes, Array("From: a\r\n".utf8))

        XCTAssertEqual(try IMAPResponseParser.parse(Array("* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent \\\"Items\\\"\"\r\n".utf8)),
                       .data(number: nil, name: "LIST", values: [.list([.atom("\\HasNoChildren"), .atom("\\Sent")]), .string(Array("/".utf8)),
                                                                  .string(Array("Sent \"Items\"".utf8))]))
        XCTAssertEqual(try IMAPResponseParser.parse(Array("* LIST () NIL INBOX\r\n".utf8)),
                       .data(number: nil, name: "LIST", values: [.list([]), .nil_, .atom("INBOX")]))
        XCTAssertEqual(try IMAPResponseParser.parse(Array("* STATUS \"Sent\" (MESSAGES 3 UNSEEN 1)\r\n".utf8)),
                       .data(number: nil, name: "STATUS", values: [.string(Array("Sent".utf8)), .list([.atom("MESSAGES"), .atom("3"), .atom("UNSEEN"), .atom("1")])]))
        XCTAssertEqual(try IMAPResponseParser.parse(Array("* 3 EXISTS\r\n".utf8)), .data(number: 3, name: "EXISTS", values: []))
    }

    func testMalformedResponsesAreErrorsNotCrashes() {
        for bad in ["", "\r\n", "* \r\n", "W1\r\n", "* 1 FETCH (UID 5\r\n", "* 1 FETCH (BODY[] {5}\r\nab)\r\n",
                    "* LIST (\\Noselect) \"/ \r\n", "* 1 FETCH )\r\n", "* 1\r\n", "* 1 FETCH (BODY[] {x}\r\n)\r\n",
                    "* X " + String(repeating: "(", count: 100) + "\r\n", "W1 FETCH (UID 1)\r\n"] {
            XCTAssertThrowsError(try IMAPResponseParser.parse(Array(bad.utf8)), bad.debugDescription)
        }
    }

    func testEveryPrefixAndMutationOfAFetchIsHandled() {
        let good = Array("* 12 FETCH (UID 5 FLAGS (\\Seen) BODY[] {3}\r\nabc)\r\n".utf8)
        // Truncations and single-byte changes: each one parses or throws, and never traps.
        for n in 0..<good.count { _ = try? IMAPResponseParser.parse(Array(good[..<n])) }
        for i in good.indices {
            for replacement: UInt8 in [0, 0x20, 0x28, 0x29, 0x22, 0x7B, 0x7D, 0x5B, 0x5D, 0x0A, 0xFF] {
                var mutated = good
                mutated[i] = replacement
                _ = try? IMAPResponseParser.parse(mutated)
                var framer = IMAPResponseFramer(maxResponseSize: 4096)
                _ = try? framer.feed(mutated)
            }
        }
    }

    func testArgumentsAreQuotedOrSentAsLiterals() {
        guard case .text(let quoted) = IMAPSyntax.astring("pa\"ss\\word") else { return XCTFail() }
        XCTAssertEqual(quoted, "\"pa\\\"ss\\\\word\"")
        guard case .literal(let bytes) = IMAPSyntax.astring("päss") else { return XCTFail() }
        XCTAssertEqual(bytes, Array("päss".utf8))
        guard case .text(let box) = IMAPSyntax.mailbox("Entwürfe") else { return XCTFail() }
        XCTAssertEqual(box, "\"Entw&APw-rfe\"")
    }
}
