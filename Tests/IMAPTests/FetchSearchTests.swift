import PosternTestSupport
import PluginAPI
import XCTest
@testable import PosternIMAPCore

/// FETCH items and SEARCH keys, down to each grammar rule.
final class FetchSearchTests: XCTestCase {
    private func fetch(_ items: String, uid: Bool = false) -> [Event] {
        events("a1 \(uid ? "UID " : "")FETCH 1 \(items)\r\n")
    }

    private func assertFetch(_ items: String, _ attributes: [IMAPFetchAttribute], changedSince: UInt64? = nil, vanished: Bool = false,
                             uid: Bool = false, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(fetch(items, uid: uid), [.command(IMAPTaggedCommand(tag: "a1", command: .fetch(IMAPFetchCommand(
            set: set("1"), attributes: attributes, changedSince: changedSince, vanished: vanished, byUID: uid))))], file: file, line: line)
    }

    func testFetchMacrosExpand() {
        assertFetch("ALL", [.flags, .internalDate, .rfc822Size, .envelope])
        assertFetch("fast", [.flags, .internalDate, .rfc822Size])
        assertFetch("FULL", [.flags, .internalDate, .rfc822Size, .envelope, .bodyStructureBasic])
    }

    func testFetchSimpleItems() {
        assertFetch("(ENVELOPE FLAGS INTERNALDATE RFC822 RFC822.HEADER RFC822.SIZE RFC822.TEXT BODY BODYSTRUCTURE UID MODSEQ)",
                    [.envelope, .flags, .internalDate, .rfc822, .rfc822Header, .rfc822Size, .rfc822Text, .bodyStructureBasic, .bodyStructure, .uid, .modSeq])
        assertFetch("flags", [.flags])
    }

    func testFetchBodySections() {
        assertFetch("BODY[]", [.body(IMAPBodySection(), partial: nil, peek: false)])
        assertFetch("BODY.PEEK[HEADER]", [.body(IMAPBodySection(.header), partial: nil, peek: true)])
        assertFetch("(BODY[TEXT]<0.2048> BODY[1.2.3] BODY[2.MIME] BODY[4.1.HEADER] BODY[3.TEXT])", [
            .body(IMAPBodySection(.text), partial: IMAPPartialRange(origin: 0, count: 2048), peek: false),
            .body(IMAPBodySection(part: [1, 2, 3]), partial: nil, peek: false),
            .body(IMAPBodySection(part: [2], .mime), partial: nil, peek: false),
            .body(IMAPBodySection(part: [4, 1], .header), partial: nil, peek: false),
            .body(IMAPBodySection(part: [3], .text), partial: nil, peek: false),
        ])
        assertFetch("(UID BODY.PEEK[HEADER.FIELDS (DATE From \"Subject\")])", [.uid, .body(IMAPBodySection(.headerFields(["DATE", "From", "Subject"])), partial: nil, peek: true)])
        assertFetch("BODY[1.HEADER.FIELDS.NOT (X-Spam)]<10.5>", [.body(IMAPBodySection(part: [1], .headerFieldsNot(["X-Spam"])), partial: IMAPPartialRange(origin: 10, count: 5), peek: false)])
        assertFetch("(BINARY[1.2] BINARY.PEEK[]<0.100> BINARY.SIZE[3])", [
            .binary(part: [1, 2], partial: nil, peek: false),
            .binary(part: [], partial: IMAPPartialRange(origin: 0, count: 100), peek: true),
            .binarySize(part: [3]),
        ])
    }

    func testFetchMalformedSections() {
        func refused(_ items: String, _ text: String, file: StaticString = #filePath, line: UInt = #line) {
            assertRefused("a1 FETCH 1 \(items)\r\n", "a1 BAD \(text)\r\n", file: file, line: line)
        }
        refused("BODY[MIME]", "MIME needs a part number")
        refused("BODY[0]", "A part number must not be 0")
        refused("BODY[1.]", "Expected a section, found ']'")
        refused("BODY[HEADERS]", "Invalid section HEADERS")
        refused("BODY[HEADER.FIELDS ()]", "Expected a header field name, found ')'")
        refused("BODY[HEADER.FIELDS (Sub:ject)]", "Invalid header field name")
        refused("BODY[TEXT", "Missing ']'")
        refused("BODY[]<0.0>", "A partial length must not be 0")
        refused("BODY[]<5>", "Expected '.' and a partial length, found '>'")
        refused("BODY.PEEK", "Missing '[' after BODY.PEEK")
        refused("(FLAGS", "Missing ')'")
        refused("(FLAGS]", "Expected ')' or a space before a FETCH item, found ']'")
        refused("()", "Expected a FETCH item, found ')'")
        refused("(ALL)", "Unknown FETCH item ALL")
        refused("BOGUS", "Unknown FETCH item BOGUS")
        refused("FLAGS (CHANGEDSINCE)", "Expected a space before a mod-sequence, found ')'")
        refused("FLAGS (VANISHED)", "VANISHED needs UID FETCH with CHANGEDSINCE")
        refused("FLAGS (CHANGEDSINCE 5 VANISHED)", "VANISHED needs UID FETCH with CHANGEDSINCE")
    }

    func testFetchCondstoreModifiers() {
        assertFetch("(FLAGS) (CHANGEDSINCE 12345)", [.flags], changedSince: 12345)
        assertFetch("(FLAGS) (CHANGEDSINCE 12345 VANISHED)", [.flags], changedSince: 12345, vanished: true, uid: true)
        assertFetch("FLAGS (VANISHED CHANGEDSINCE 0)", [.flags], changedSince: 0, vanished: true, uid: true)
    }

    func testSequenceSetsInFetch() {
        XCTAssertEqual(events("a1 FETCH 1:*,*:4,7 FLAGS\r\n"), [.command(IMAPTaggedCommand(tag: "a1", command: .fetch(IMAPFetchCommand(
            set: IMAPSequenceSet([.init(.number(1), .largest), .init(.largest, .number(4)), .init(7)]), attributes: [.flags]))))])
        assertRefused("a1 FETCH 0 FLAGS\r\n", "a1 BAD Invalid sequence set 0: 0 is not a valid number\r\n")
        assertRefused("a1 FETCH 1:0 FLAGS\r\n", "a1 BAD Invalid sequence set 1:0: 0 is not a valid number\r\n")
        assertRefused("a1 FETCH 1,,2 FLAGS\r\n", "a1 BAD Invalid sequence set 1,,2\r\n")
        assertRefused("a1 FETCH 1:2:3 FLAGS\r\n", "a1 BAD Invalid sequence set 1:2:3\r\n")
        assertRefused("a1 FETCH 4294967296 FLAGS\r\n", "a1 BAD Invalid sequence set 4294967296\r\n")
        assertRefused("a1 FETCH x FLAGS\r\n", "a1 BAD Invalid sequence set x\r\n")
        assertRefused("a1 FETCH 1,$ FLAGS\r\n", "a1 BAD Invalid sequence set 1,$\r\n")
        // Client text in a reply is cut short.
        assertRefused("a1 FETCH 1:x\(String(repeating: "9", count: 100)) FLAGS\r\n", "a1 BAD Invalid sequence set 1:x\(String(repeating: "9", count: 37))...\r\n")
    }

    // MARK: SEARCH

    private func assertSearch(_ criteria: String, _ key: IMAPSearchKey, charset: String? = nil, returning: [IMAPSearchReturnOption]? = nil,
                              uid: Bool = false, options: IMAPParserOptions = IMAPParserOptions(), file: StaticString = #filePath, line: UInt = #line) {
        assertCommand("a1 \(uid ? "UID " : "")SEARCH \(criteria)\r\n",
                      .search(IMAPSearchCommand(returnOptions: returning, charset: charset, key: key, byUID: uid)), options: options, file: file, line: line)
    }

    func testSearchRFC3501Examples() {
        assertSearch("FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"", .and([.flagged, .since(date(1994, 2, 1)), .not(.from(b("Smith")))]))
        assertSearch("TEXT \"string not in mailbox\"", .text(b("string not in mailbox")))
        XCTAssertEqual(events("A284 SEARCH CHARSET UTF-8 TEXT {6}\r\nXXXXXX\r\n"), [.continuationRequest,
            .command(IMAPTaggedCommand(tag: "A284", command: .search(IMAPSearchCommand(charset: "UTF-8", key: .text(b("XXXXXX"))))))])
    }

    func testEverySearchKey() {
        let keys = "ALL ANSWERED BCC b BEFORE 1-Jan-2000 BODY x CC c DELETED DRAFT FLAGGED FROM f HEADER X-Foo v KEYWORD $Junk LARGER 100 NEW "
            + "NOT SEEN OLD ON \"29-Feb-2024\" OR SEEN UNSEEN RECENT SEEN SENTBEFORE 2-Mar-2001 SENTON 03-Apr-2002 SENTSINCE 4-may-2003 SINCE 5-Jun-2004 "
            + "SMALLER 4294967296 SUBJECT \"s s\" TEXT t TO {2+}\r\nto UID 1:5,9 UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNKEYWORD $Junk UNSEEN 1:* $ (DRAFT)"
        assertSearch(keys, .and([
            .all, .answered, .bcc(b("b")), .before(date(2000, 1, 1)), .body(b("x")), .cc(b("c")), .deleted, .draft, .flagged, .from(b("f")),
            .header("X-Foo", b("v")), .keyword(IMAPFlag("$Junk")), .larger(100), .new, .not(.seen), .old, .on(date(2024, 2, 29)),
            .or(.seen, .unseen), .recent, .seen, .sentBefore(date(2001, 3, 2)), .sentOn(date(2002, 4, 3)), .sentSince(date(2003, 5, 4)),
            .since(date(2004, 6, 5)), .smaller(4294967296), .subject(b("s s")), .text(b("t")), .to(b("to")), .uid(set("1:5,9")),
            .unanswered, .undeleted, .undraft, .unflagged, .unkeyword(IMAPFlag("$Junk")), .unseen, .sequenceSet(set("1:*")),
            .sequenceSet(.savedResult), .draft,
        ]))
    }

    func testSearchParenthesesOrAndNot() {
        assertSearch("OR (FROM a TO b) NOT (SEEN)", .or(.and([.from(b("a")), .to(b("b"))]), .not(.seen)))
        assertSearch("((SEEN))", .seen)
        assertSearch("OR OR SEEN DRAFT FLAGGED", .or(.or(.seen, .draft), .flagged))
        assertSearch("HEADER Message-ID \"\"", .header("Message-ID", []))
    }

    func testSearchReturnAndModseq() {
        assertSearch("RETURN (MIN MAX COUNT) UNSEEN", .unseen, returning: [.min, .max, .count])
        assertSearch("RETURN () ALL", .all, returning: [.all])
        assertSearch("RETURN (SAVE) CHARSET us-ascii SEEN", .seen, charset: "US-ASCII", returning: [.save], uid: true)
        assertSearch("MODSEQ 620162338", .modSeq(nil, 620162338))
        assertSearch("MODSEQ \"/flags/\\\\draft\" all 620162338", .modSeq(IMAPModSeqEntry(name: "/flags/\\draft", type: .all), 620162338))
        XCTAssertEqual(IMAPModSeqEntry(name: "/flags/\\draft", type: .all).flag, .draft)
        assertRefused("a1 SEARCH RETURN (BOGUS) ALL\r\n", "a1 BAD Unknown SEARCH return option BOGUS\r\n")
        assertRefused("a1 SEARCH MODSEQ \"/flags/\\\\draft\" most 5\r\n", "a1 BAD Invalid entry type most\r\n")
    }

    func testSearchRefusals() {
        func refused(_ criteria: String, _ text: String, file: StaticString = #filePath, line: UInt = #line) {
            assertRefused("a1 SEARCH \(criteria)\r\n", "a1 BAD \(text)\r\n", file: file, line: line)
        }
        refused("BOGUS", "Unknown search key BOGUS")
        refused("SINCE 31-Feb-2020", "Invalid date 31-Feb-2020 (expected d-Mon-yyyy)")
        refused("SINCE 29-Feb-2023", "Invalid date 29-Feb-2023 (expected d-Mon-yyyy)")
        refused("ON 1-Foo-2000", "Invalid date 1-Foo-2000 (expected d-Mon-yyyy)")
        refused("ON 1-Jan-20", "Invalid date 1-Jan-20 (expected d-Mon-yyyy)")
        refused("ON 001-Jan-2000", "Invalid date 001-Jan-2000 (expected d-Mon-yyyy)")
        refused("BEFORE \"1-Jan-2000", "Unterminated quoted string")
        refused("ON 0-Jan-2000", "Invalid date 0-Jan-2000 (expected d-Mon-yyyy)")
        refused("OR SEEN", "Missing arguments for SEARCH (expected a second search key)")
        refused("NOT", "Missing arguments for SEARCH (expected a search key)")
        refused("(SEEN", "Missing ')'")
        refused("()", "Expected a search key, found ')'")
        refused("SEEN  DRAFT", "Unexpected extra space (expected a search key)")
        refused("LARGER x", "Expected a size, found 'x'")
        refused("UID 0", "Invalid sequence set 0: 0 is not a valid number")
        refused("HEADER \"a b\" x", "Invalid header field name")
        refused("FROM", "Missing arguments for SEARCH (expected a string)")
        assertRefused("a1 SEARCH\r\n", "a1 BAD Missing arguments for SEARCH (expected search criteria)\r\n")
    }

    func testSearchNestingIsBoundedWithoutDeepRecursion() {
        // 1,000 nested parentheses, NOTs and ORs: refused at the 33rd level, no stack overflow.
        let depth = 1000
        assertRefused("a1 SEARCH \(String(repeating: "(", count: depth))SEEN\(String(repeating: ")", count: depth))\r\n",
                      "a1 BAD Command nested too deeply (more than 32 levels)\r\n")
        assertRefused("a1 SEARCH \(String(repeating: "NOT ", count: depth))SEEN\r\n", "a1 BAD Command nested too deeply (more than 32 levels)\r\n")
        assertRefused("a1 SEARCH \(String(repeating: "OR SEEN ", count: depth))SEEN\r\n", "a1 BAD Command nested too deeply (more than 32 levels)\r\n")
        // 100,000 levels (a 200 KB line within a raised line limit) are refused just the same.
        let big = IMAPParserOptions(limits: IMAPParserLimits(maxLineLength: 1 << 20))
        var parser = IMAPCommandParser(options: big)
        let deep = b("a1 SEARCH \(String(repeating: "(", count: 100_000))SEEN\(String(repeating: ")", count: 100_000))\r\n")
        XCTAssertEqual(transcript(parser.feed(deep)), ["a1 BAD Command nested too deeply (more than 32 levels)\r\n"])
        // Exactly at the limit is fine; the limit is configurable.
        let atLimit = "\(String(repeating: "(", count: 31))SEEN\(String(repeating: ")", count: 31))"
        assertSearch(atLimit, .seen)
        let shallow = IMAPParserOptions(limits: IMAPParserLimits(maxNestingDepth: 2))
        assertSearch("NOT SEEN", .not(.seen), options: shallow)
        assertRefused("a1 SEARCH NOT NOT SEEN\r\n", "a1 BAD Command nested too deeply (more than 2 levels)\r\n", options: shallow)
    }
}
