import PosternTestSupport
import PluginAPI
import XCTest
@testable import PosternIMAPCore

/// The session's pure helpers: SEARCH translation, body sections and partial ranges, LIST
/// patterns and the mailbox tree.
final class SearchTranslationTests: XCTestCase {
    let view = MailboxView(MailboxSelection(uidValidity: 1, uidNext: 31, highestModseq: 5, uids: [10, 11, 12, 20, 30], firstUnseen: nil, keywords: []),
                           recent: [20, 30])

    func translate(_ command: String, saved: [UInt32]? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> SearchQuery {
        guard case .command(let c)? = events("a1 \(command)\r\n", file: file, line: line).first, case .search(let s) = c.command else {
            XCTFail("not a SEARCH: \(command)", file: file, line: line)
            return .all
        }
        return try SearchTranslator(view: view, savedResult: saved).translate(s)
    }

    func testFlagsAndNegations() throws {
        XCTAssertEqual(try translate("SEARCH SEEN"), .flag("\\Seen"))
        XCTAssertEqual(try translate("SEARCH UNANSWERED DRAFT"), .and([.not(.flag("\\Answered")), .flag("\\Draft")]))
        XCTAssertEqual(try translate("SEARCH KEYWORD $Junk"), .flag("$Junk"))
        XCTAssertEqual(try translate("SEARCH UNKEYWORD $Junk"), .not(.flag("$Junk")))
        XCTAssertEqual(try translate("SEARCH NOT DELETED"), .not(.flag("\\Deleted")))
    }

    func testAddressesAndTextBecomeHeaderCriteria() throws {
        XCTAssertEqual(try translate("SEARCH FROM alice"), .header(name: "From", value: "alice"))
        XCTAssertEqual(try translate("SEARCH TO \"Bob B\" CC c BCC d SUBJECT \"hello world\""), .and([
            .header(name: "To", value: "Bob B"), .header(name: "Cc", value: "c"), .header(name: "Bcc", value: "d"),
            .header(name: "Subject", value: "hello world")]))
        XCTAssertEqual(try translate("SEARCH HEADER X-Mailer \"\""), .header(name: "X-Mailer", value: ""))
        XCTAssertEqual(try translate("SEARCH CHARSET UTF-8 BODY {4+}\r\nK\u{00e4}s TEXT x"),
                       .and([.body("K\u{00e4}s"), .text("x")]))
    }

    func testCharsets() throws {
        XCTAssertEqual(try translate("SEARCH CHARSET US-ASCII ALL"), .all)
        XCTAssertThrowsError(try translate("SEARCH CHARSET ISO-8859-1 ALL")) { error in
            XCTAssertEqual(error as? SearchTranslationError, .badCharset("ISO-8859-1"))
        }
    }

    func testDatesBecomeDayNumbers() throws {
        // 1 February 1994 is day 8797 after 1970-01-01.
        XCTAssertEqual(try translate("SEARCH SINCE 1-Feb-1994"), .internalDate(.since, day: 8797))
        XCTAssertEqual(try translate("SEARCH BEFORE 1-Feb-1994 ON 2-Feb-1994"),
                       .and([.internalDate(.before, day: 8797), .internalDate(.on, day: 8798)]))
        XCTAssertEqual(try translate("SEARCH SENTSINCE 1-Jan-1970 SENTBEFORE 2-Jan-1970 SENTON 1-Jan-1970"),
                       .and([.sentDate(.since, day: 0), .sentDate(.before, day: 1), .sentDate(.on, day: 0)]))
    }

    func testSequenceSetsBecomeUIDRanges() throws {
        XCTAssertEqual(try translate("SEARCH 1:3"), .uids([10...12]))
        XCTAssertEqual(try translate("SEARCH 2,4:*"), .uids([11...11, 20...30]))
        XCTAssertEqual(try translate("SEARCH UID 12:*"), .uids([12...30]))
        XCTAssertEqual(try translate("SEARCH UID 99:*"), .uids([30...30]))
        XCTAssertThrowsError(try translate("SEARCH 6")) { XCTAssertEqual($0 as? SearchTranslationError, .invalidSequenceSet) }
        XCTAssertEqual(try translate("SEARCH $", saved: [12, 11, 30]), .uids([11...12, 30...30]))
        XCTAssertEqual(try translate("SEARCH UID $"), .uids([]), "no saved result: the empty set (RFC 5182)")
    }

    func testRecentNewOldUseTheSessionsSet() throws {
        XCTAssertEqual(try translate("SEARCH RECENT"), .uids([20...20, 30...30]))
        XCTAssertEqual(try translate("SEARCH NEW"), .and([.uids([20...20, 30...30]), .not(.flag("\\Seen"))]))
        XCTAssertEqual(try translate("SEARCH OLD"), .not(.uids([20...20, 30...30])))
    }

    func testNestedOrAndNot() throws {
        XCTAssertEqual(try translate("SEARCH OR (SEEN FLAGGED) NOT OR 1 UID 30 LARGER 100"),
                       .and([.or(.and([.flag("\\Seen"), .flag("\\Flagged")]), .not(.or(.uids([10...10]), .uids([30...30])))), .larger(100)]))
        XCTAssertEqual(try translate("SEARCH SMALLER 5 MODSEQ 7"), .and([.smaller(5), .modseqAtLeast(7)]))
    }

    func testModSeqIsNoticed() throws {
        XCTAssertTrue(SearchTranslator.mentionsModSeq(.not(.or(.all, .modSeq(nil, 3)))))
        XCTAssertFalse(SearchTranslator.mentionsModSeq(.and([.all, .seen])))
    }
}

final class BodySectionTests: XCTestCase {
    static let nested = Array("""
        From: a@example.org\r
        To: b@example.org\r
        Subject: nested\r
        MIME-Version: 1.0\r
        Content-Type: multipart/mixed; boundary="outer"\r
        \r
        preamble\r
        --outer\r
        Content-Type: text/plain\r
        \r
        part one\r
        --outer\r
        Content-Type: multipart/alternative; boundary="inner"\r
        \r
        --inner\r
        Content-Type: text/plain\r
        \r
        two dot one\r
        --inner\r
        Content-Type: text/html\r
        \r
        <p>two dot two</p>\r
        --inner--\r
        --outer\r
        Content-Type: message/rfc822\r
        \r
        Subject: attached\r
        X-Folded: first\r
         second\r
        \r
        attached body\r
        --outer--\r

        """.utf8)

    func section(_ text: String, _ bytes: [UInt8] = BodySectionTests.nested, file: StaticString = #filePath, line: UInt = #line) -> String? {
        guard case .command(let c)? = events("a1 FETCH 1 \(text)\r\n", file: file, line: line).first,
              case .fetch(let f) = c.command, case .body(let s, let partial, _)? = f.attributes.first else {
            XCTFail("not a section: \(text)", file: file, line: line)
            return nil
        }
        var m = ServedMessage(stored: bytes)
        return BodySections.extract(s, from: &m).map { String(decoding: BodySections.partial($0, partial), as: UTF8.self) }
    }

    func testPartsOfNestedMultiparts() {
        XCTAssertEqual(section("BODY[1]"), "part one")
        XCTAssertEqual(section("BODY[2.1]"), "two dot one")
        XCTAssertEqual(section("BODY[2.2]"), "<p>two dot two</p>")
        XCTAssertEqual(section("BODY[2.2.MIME]"), "Content-Type: text/html\r\n\r\n")
        XCTAssertEqual(section("BODY[1.MIME]"), "Content-Type: text/plain\r\n\r\n")
        XCTAssertNil(section("BODY[4]"))
        XCTAssertNil(section("BODY[1.1]"), "a text part has no subparts")
        XCTAssertNil(section("BODY[2.3]"))
    }

    func testEnclosedMessage() {
        XCTAssertEqual(section("BODY[3]"), "Subject: attached\r\nX-Folded: first\r\n second\r\n\r\nattached body")
        XCTAssertEqual(section("BODY[3.HEADER]"), "Subject: attached\r\nX-Folded: first\r\n second\r\n\r\n")
        XCTAssertEqual(section("BODY[3.TEXT]"), "attached body")
        XCTAssertEqual(section("BODY[3.1]"), "attached body", "a single-part message's part 1 is its body")
        XCTAssertEqual(section("BODY[3.HEADER.FIELDS (x-folded)]"), "X-Folded: first\r\n second\r\n\r\n")
        XCTAssertEqual(section("BODY[3.MIME]"), "Content-Type: message/rfc822\r\n\r\n")
        XCTAssertNil(section("BODY[1.HEADER]"), "HEADER needs a message/rfc822 part")
    }

    func testTopLevelHeaderTextAndFields() {
        XCTAssertEqual(section("BODY[HEADER.FIELDS (SUBJECT from)]"), "From: a@example.org\r\nSubject: nested\r\n\r\n")
        XCTAssertEqual(section("BODY[HEADER.FIELDS.NOT (Content-Type MIME-Version To)]"), "From: a@example.org\r\nSubject: nested\r\n\r\n")
        XCTAssertEqual(section("BODY[HEADER.FIELDS (X-None)]"), "\r\n")
        XCTAssertTrue(section("BODY[TEXT]")!.hasPrefix("preamble\r\n--outer\r\n"))
        XCTAssertTrue(section("BODY[HEADER]")!.hasSuffix("boundary=\"outer\"\r\n\r\n"))
        XCTAssertEqual(section("BODY[]"), String(decoding: Self.nested, as: UTF8.self))
    }

    func testSinglePartMessage() {
        let m = Array("Subject: x\r\n\r\nbody\r\n".utf8)
        XCTAssertEqual(section("BODY[1]", m), "body\r\n")
        XCTAssertEqual(section("BODY[TEXT]", m), "body\r\n")
        XCTAssertNil(section("BODY[2]", m))
    }

    func testPartialRanges() {
        let m = Array("Subject: x\r\n\r\n0123456789".utf8)
        XCTAssertEqual(section("BODY[TEXT]<2.3>", m), "234")
        XCTAssertEqual(section("BODY[TEXT]<8.100>", m), "89", "the count is clipped at the end")
        XCTAssertEqual(section("BODY[TEXT]<10.1>", m), "", "an origin at the end: empty")
        XCTAssertEqual(section("BODY[TEXT]<4000000000.1>", m), "", "far beyond: empty")
        XCTAssertEqual(section("BODY[]<0.7>", m), "Subject")
    }

    func testBareLineFeedsAreServedAsCRLF() {
        let stored = Array("Subject: lf\n\nline one\nline two\r\n".utf8)
        let served = ServedMessage(stored: stored)
        XCTAssertEqual(String(decoding: served.bytes, as: UTF8.self), "Subject: lf\r\n\r\nline one\r\nline two\r\n")
        XCTAssertEqual(ServedMessage.servedSize(stored), served.bytes.count)
        XCTAssertEqual(section("BODY[TEXT]", stored), "line one\r\nline two\r\n")
        let clean = Array("a\r\n".utf8)
        XCTAssertEqual(ServedMessage(stored: clean).bytes, clean)
    }

    func testBinaryDecodesTransferEncodings() {
        let message = Array("""
            Content-Type: multipart/mixed; boundary=b\r
            \r
            --b\r
            Content-Transfer-Encoding: base64\r
            \r
            aGVsbG8=\r
            --b\r
            Content-Transfer-Encoding: quoted-printable\r
            \r
            caf=C3=A9\r
            --b\r
            Content-Transfer-Encoding: x-uuencode\r
            \r
            begin\r
            --b--\r

            """.utf8)
        var m = ServedMessage(stored: message)
        XCTAssertEqual(IMAPSession.binary([1], of: &m), .some(Array("hello".utf8)))
        XCTAssertEqual(IMAPSession.binary([2], of: &m), .some(Array("café".utf8)))
        XCTAssertTrue(IMAPSession.binary([3], of: &m) == nil, "unknown encoding")
        XCTAssertEqual(IMAPSession.binary([9], of: &m), .some(nil), "no such part")
    }
}

final class MailboxListingTests: XCTestCase {
    func testWildcards() {
        let star = MailboxPattern("*"), percent = MailboxPattern("%")
        XCTAssertTrue(star.matches("a/b/c"))
        XCTAssertTrue(percent.matches("a"))
        XCTAssertFalse(percent.matches("a/b"))
        XCTAssertTrue(MailboxPattern("a/%").matches("a/b"))
        XCTAssertFalse(MailboxPattern("a/%").matches("a/b/c"))
        XCTAssertTrue(MailboxPattern("a/*").matches("a/b/c"))
        XCTAssertFalse(MailboxPattern("a/*").matches("a"))
        XCTAssertTrue(MailboxPattern("*b*").matches("xxbyy/z"))
        XCTAssertTrue(MailboxPattern("%/%").matches("Other Users/alice"))
        XCTAssertTrue(MailboxPattern("S%t").matches("Sent"))
        XCTAssertFalse(MailboxPattern("S%t").matches("Sen/t"))
        XCTAssertTrue(MailboxPattern("").matches(""))
        XCTAssertFalse(MailboxPattern("Sent").matches("sent"), "names other than INBOX keep their case")
    }

    func testINBOXMatchesWithoutCase() {
        XCTAssertTrue(MailboxPattern("inbox").matches("INBOX"))
        XCTAssertTrue(MailboxPattern("InB%").matches("INBOX"))
        XCTAssertTrue(MailboxPattern("inbox/*").matches("INBOX/sub"))
        XCTAssertFalse(MailboxPattern("inboxes").matches("INBOXES"))
    }

    func testReferenceIsJoined() {
        XCTAssertTrue(MailboxPattern(reference: "Archive/", pattern: "%").matches("Archive/2024"))
        XCTAssertTrue(MailboxPattern(reference: "Archive/", pattern: "/2024").matches("Archive/2024"))
        XCTAssertTrue(MailboxPattern(reference: "Arch", pattern: "ive").matches("Archive"))
        XCTAssertEqual(MailboxPattern(reference: "a/", pattern: "b%c").literalPrefix, "a/b")
    }

    func testManyWildcardsStayCheap() {
        let pattern = MailboxPattern(String(repeating: "*a", count: 500) + "b")
        let name = String(repeating: "a", count: 1000)
        let start = Date()
        XCTAssertFalse(pattern.matches(name))
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
        XCTAssertFalse(MailboxPattern(String(repeating: "*", count: 2000)).matches("x"), "over the length limit: no match")
    }

    func testTreeHasIntermediateNamesAndChildren() {
        let tree = MailboxTree([
            MailboxInfo(name: "INBOX"), MailboxInfo(name: "Sent", attributes: ["\\Sent"]), MailboxInfo(name: "Archive"),
            MailboxInfo(name: "Archive/2024"), MailboxInfo(name: "Other Users/alice@example.org/Shared/Deep", owner: "alice@example.org"),
        ])
        XCTAssertEqual(tree.nodes.map(\.name), ["INBOX", "Archive", "Archive/2024", "Sent", "Other Users", "Other Users/alice@example.org",
                                                "Other Users/alice@example.org/Shared", "Other Users/alice@example.org/Shared/Deep"])
        XCTAssertEqual(tree.node("Archive")?.hasChildren, true)
        XCTAssertEqual(tree.node("Archive/2024")?.hasChildren, false)
        XCTAssertEqual(tree.node("Other Users")?.exists, false)
        XCTAssertEqual(tree.node("Other Users/alice@example.org/Shared")?.exists, false)
        XCTAssertEqual(tree.node("inbox")?.exists, true)
        XCTAssertEqual(tree.node("Sent")?.specialUse, ["\\Sent"])
        XCTAssertTrue(MailboxTree.hasDescendant("Archive", in: ["Archive/2024"]))
        XCTAssertFalse(MailboxTree.hasDescendant("Arch", in: ["Archive/2024"]))
    }
}
