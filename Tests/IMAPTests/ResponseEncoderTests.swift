import PosternTestSupport
import PluginAPI
import XCTest
@testable import PosternIMAPCore

/// Responses to exact bytes, from RFC 3501 §8 and the extensions' examples.
final class ResponseEncoderTests: XCTestCase {
    private let encoder = IMAPResponseEncoder()

    private func text(_ response: IMAPResponse, _ encoder: IMAPResponseEncoder = IMAPResponseEncoder()) -> String {
        String(decoding: encoder.encode(response), as: UTF8.self)
    }

    private func data(_ data: IMAPResponseData, _ encoder: IMAPResponseEncoder = IMAPResponseEncoder()) -> String {
        text(.data(data), encoder)
    }

    func testRFC3501Section8Transcript() {
        XCTAssertEqual(text(.status(.untagged(.ok, "IMAP4rev1 Service Ready"))), "* OK IMAP4rev1 Service Ready\r\n")
        XCTAssertEqual(text(.status(.tagged("a001", .ok, "LOGIN completed"))), "a001 OK LOGIN completed\r\n")
        XCTAssertEqual(data(.exists(18)), "* 18 EXISTS\r\n")
        XCTAssertEqual(data(.flags([.answered, .flagged, .deleted, .seen, .draft])), "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n")
        XCTAssertEqual(data(.recent(2)), "* 2 RECENT\r\n")
        XCTAssertEqual(text(.status(.untagged(.ok, .unseen(17), "Message 17 is the first unseen message"))), "* OK [UNSEEN 17] Message 17 is the first unseen message\r\n")
        XCTAssertEqual(text(.status(.untagged(.ok, .uidValidity(3857529045), "UIDs valid"))), "* OK [UIDVALIDITY 3857529045] UIDs valid\r\n")
        XCTAssertEqual(text(.status(.tagged("a002", .ok, .readWrite, "SELECT completed"))), "a002 OK [READ-WRITE] SELECT completed\r\n")
        let envelope = "(\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev1 WG mtg summary and minutes\" ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((NIL NIL \"imap\" \"cac.washington.edu\")) ((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL \"<B27397-0100000@cac.washington.edu>\")"
        let body = "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92)"
        let when = IMAPDateTime(date: IMAPDate(year: 1996, month: 7, day: 17)!, hour: 2, minute: 44, second: 25, zoneMinutes: -420)!
        XCTAssertEqual(data(.fetch(12, [.flags([.seen]), .internalDate(when), .rfc822Size(4286), .envelope(raw: b(envelope)), .bodyStructureBasic(raw: b(body))])),
                       "* 12 FETCH (FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 4286 ENVELOPE \(envelope) BODY \(body))\r\n")
        let header = String(repeating: "H", count: 340) + "\r\n"
        XCTAssertEqual(data(.fetch(12, [.body(IMAPBodySection(.header), origin: nil, b(header))])), "* 12 FETCH (BODY[HEADER] {342}\r\n\(header))\r\n")
        XCTAssertEqual(data(.fetch(12, [.flags([.seen, .deleted])])), "* 12 FETCH (FLAGS (\\Seen \\Deleted))\r\n")
        XCTAssertEqual(text(.status(.untagged(.bye, "IMAP4rev1 server logging out"))), "* BYE IMAP4rev1 server logging out\r\n")
        XCTAssertEqual(text(.status(.untagged(.preauth, "IMAP4rev1 server logged in as Smith"))), "* PREAUTH IMAP4rev1 server logged in as Smith\r\n")
    }

    func testRFC3501ResponseExamples() {
        XCTAssertEqual(text(.status(.untagged(.ok, .permanentFlags([.deleted, .seen, .mayCreateKeywords]), "Limited"))), "* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n")
        XCTAssertEqual(text(.status(.untagged(.ok, .alert, "System shutdown in 10 minutes"))), "* OK [ALERT] System shutdown in 10 minutes\r\n")
        XCTAssertEqual(text(.status(.untagged(.no, "Disk is 98% full, please delete unnecessary data"))), "* NO Disk is 98% full, please delete unnecessary data\r\n")
        XCTAssertEqual(data(.capability(["IMAP4rev1", "STARTTLS", "AUTH=GSSAPI", "LOGINDISABLED"])), "* CAPABILITY IMAP4rev1 STARTTLS AUTH=GSSAPI LOGINDISABLED\r\n")
        XCTAssertEqual(data(.list(IMAPListResponse(attributes: ["\\Noselect"], delimiter: "/", name: "~/Mail/foo"))), "* LIST (\\Noselect) \"/\" ~/Mail/foo\r\n")
        XCTAssertEqual(data(.list(IMAPListResponse(attributes: [], delimiter: ".", name: "#news.comp.mail.misc"))), "* LIST () \".\" #news.comp.mail.misc\r\n")
        XCTAssertEqual(data(.list(IMAPListResponse(attributes: ["\\Noselect"], delimiter: "/", name: ""))), "* LIST (\\Noselect) \"/\" \"\"\r\n")
        XCTAssertEqual(data(.list(IMAPListResponse(attributes: ["\\Noselect"], delimiter: nil, name: "Flat"))), "* LIST (\\Noselect) NIL Flat\r\n")
        XCTAssertEqual(data(.list(IMAPListResponse(attributes: [], delimiter: "\\", name: "a\\b"))), "* LIST () \"\\\\\" \"a\\\\b\"\r\n")
        XCTAssertEqual(data(.lsub(IMAPListResponse(attributes: [], delimiter: ".", name: "#news.comp.mail.mime"))), "* LSUB () \".\" #news.comp.mail.mime\r\n")
        XCTAssertEqual(data(.status(mailbox: "blurdybloop", [IMAPStatusValue(.messages, 231), IMAPStatusValue(.uidNext, 44292)])), "* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n")
        XCTAssertEqual(data(.search([2, 84, 882], modSeq: nil)), "* SEARCH 2 84 882\r\n")
        XCTAssertEqual(data(.search([], modSeq: nil)), "* SEARCH\r\n")
        XCTAssertEqual(data(.expunge(3)), "* 3 EXPUNGE\r\n")
        XCTAssertEqual(text(.continuation("Ready for additional command text")), "+ Ready for additional command text\r\n")
        XCTAssertEqual(text(.challenge(b("\0user"))), "+ AHVzZXI=\r\n")
        XCTAssertEqual(text(.challenge([])), "+ \r\n")
        XCTAssertEqual(text(.status(.tagged("A001", .no, .tryCreate, "Mailbox doesn't exist"))), "A001 NO [TRYCREATE] Mailbox doesn't exist\r\n")
        XCTAssertEqual(text(.status(.tagged("A1", .ok, .readOnly, "EXAMINE completed"))), "A1 OK [READ-ONLY] EXAMINE completed\r\n")
        XCTAssertEqual(text(.status(.untagged(.ok, .uidNext(4392), "Predicted next UID"))), "* OK [UIDNEXT 4392] Predicted next UID\r\n")
        XCTAssertEqual(text(.status(.tagged("a", .ok, .capability(["IMAP4rev1", "IDLE"]), "Logged in"))), "a OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n")
        XCTAssertEqual(text(.status(.tagged("a", .no, .badCharset(["UTF-8", "US-ASCII"]), "Unsupported charset"))), "a NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset\r\n")
        XCTAssertEqual(text(.status(.tagged("a", .no, .badCharset([]), "x"))), "a NO [BADCHARSET] x\r\n")
    }

    func testEveryResponseCode() {
        let codes: [(IMAPResponseCode, String)] = [
            (.parse, "PARSE"), (.uidNotSticky, "UIDNOTSTICKY"), (.noModSeq, "NOMODSEQ"), (.closed, "CLOSED"),
            (.unavailable, "UNAVAILABLE"), (.authenticationFailed, "AUTHENTICATIONFAILED"), (.authorizationFailed, "AUTHORIZATIONFAILED"),
            (.expired, "EXPIRED"), (.privacyRequired, "PRIVACYREQUIRED"), (.contactAdmin, "CONTACTADMIN"), (.noPerm, "NOPERM"),
            (.inUse, "INUSE"), (.expungeIssued, "EXPUNGEISSUED"), (.corruption, "CORRUPTION"), (.serverBug, "SERVERBUG"),
            (.clientBug, "CLIENTBUG"), (.cannot, "CANNOT"), (.limit, "LIMIT"), (.overQuota, "OVERQUOTA"), (.alreadyExists, "ALREADYEXISTS"),
            (.nonExistent, "NONEXISTENT"), (.tooBig, "TOOBIG"), (.useAttr, "USEATTR"), (.unknownCTE, "UNKNOWN-CTE"),
            (.compressionActive, "COMPRESSIONACTIVE"), (.hasChildren, "HASCHILDREN"), (.notSaved, "NOTSAVED"),
            (.highestModSeq(715194045007), "HIGHESTMODSEQ 715194045007"), (.modified(set("7,9")), "MODIFIED 7,9"),
            (.appendUID(uidValidity: 38505, uids: set("3955")), "APPENDUID 38505 3955"),
            (.copyUID(uidValidity: 38505, source: set("304,319:320"), destination: set("3956:3958")), "COPYUID 38505 304,319:320 3956:3958"),
            (.other("X-FOO", nil), "X-FOO"), (.other("X-BAR", "a]b"), "X-BAR ab"),
        ]
        for (code, wire) in codes {
            XCTAssertEqual(text(.status(.tagged("t", .no, code, "text"))), "t NO [\(wire)] text\r\n")
        }
        XCTAssertEqual(text(.status(.untagged(.ok, .closed, ""))), "* OK [CLOSED]\r\n")
        XCTAssertEqual(text(.status(.tagged("t", .ok, "line\r\nbreak"))), "t OK line  break\r\n")
    }

    func testUIDPLUSSetsAreCompressed() {
        // COPYUID keeps the pairing order; each ascending run becomes a range.
        let source = IMAPSequenceSet(numbers: [304, 319, 320])!
        let destination = IMAPSequenceSet(numbers: [3956, 3957, 3958])!
        XCTAssertEqual(text(.status(.tagged("A004", .ok, .copyUID(uidValidity: 38505, source: source, destination: destination), "Done"))),
                       "A004 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n")
        XCTAssertEqual(IMAPSequenceSet(numbers: [5, 3, 4, 1, 2])!.description, "5,3:4,1:2")
        XCTAssertEqual(IMAPSequenceSet(sorting: [5, 3, 4, 1, 2, 2])!.description, "1:5")
        XCTAssertEqual(IMAPSequenceSet(sorting: [1, 2, 3, 5])!.description, "1:3,5")
        XCTAssertNil(IMAPSequenceSet(numbers: []))
        XCTAssertEqual(IMAPSequenceSet(numbers: [UInt32.max - 1, UInt32.max])!.description, "4294967294:4294967295")
    }

    func testCondstoreAndQresyncData() {
        XCTAssertEqual(data(.vanished(earlier: true, IMAPSequenceSet(sorting: [41] + Array(43...116) + [118] + Array(120...211) + Array(214...540))!)),
                       "* VANISHED (EARLIER) 41,43:116,118,120:211,214:540\r\n")
        XCTAssertEqual(data(.vanished(earlier: false, set("405,407,410"))), "* VANISHED 405,407,410\r\n")
        XCTAssertEqual(data(.fetch(1, [.uid(4), .modSeq(65402), .flags([.seen])])), "* 1 FETCH (UID 4 MODSEQ (65402) FLAGS (\\Seen))\r\n")
        XCTAssertEqual(data(.search([2, 5, 6, 7, 11, 12, 18, 19, 20, 23], modSeq: 917162500)), "* SEARCH 2 5 6 7 11 12 18 19 20 23 (MODSEQ 917162500)\r\n")
        XCTAssertEqual(text(.status(.tagged("d105", .ok, .modified(set("7,9")), "Conditional STORE failed"))), "d105 OK [MODIFIED 7,9] Conditional STORE failed\r\n")
    }

    func testESearch() {
        XCTAssertEqual(data(.esearch(IMAPESearchResponse(tag: "A282", byUID: false, min: 2, count: 3))), "* ESEARCH (TAG \"A282\") MIN 2 COUNT 3\r\n")
        XCTAssertEqual(data(.esearch(IMAPESearchResponse(tag: "A283", byUID: false, all: set("2,10:11")))), "* ESEARCH (TAG \"A283\") ALL 2,10:11\r\n")
        XCTAssertEqual(data(.esearch(IMAPESearchResponse(tag: "A285", byUID: true, min: 7, max: 3800))), "* ESEARCH (TAG \"A285\") UID MIN 7 MAX 3800\r\n")
        XCTAssertEqual(data(.esearch(IMAPESearchResponse(tag: "A286", byUID: false, count: 0))), "* ESEARCH (TAG \"A286\") COUNT 0\r\n")
        XCTAssertEqual(data(.esearch(IMAPESearchResponse(tag: nil, byUID: true, all: set("1:3"), modSeq: 99))), "* ESEARCH UID ALL 1:3 MODSEQ 99\r\n")
    }

    func testNamespaceQuotaACLEnabledID() {
        XCTAssertEqual(data(.namespace(personal: [IMAPNamespaceDescription(prefix: "", delimiter: "/")], otherUsers: nil, shared: nil)),
                       "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n")
        XCTAssertEqual(data(.namespace(personal: [IMAPNamespaceDescription(prefix: "", delimiter: "/")],
                                       otherUsers: [IMAPNamespaceDescription(prefix: "~", delimiter: "/")],
                                       shared: [IMAPNamespaceDescription(prefix: "#shared/", delimiter: "/"), IMAPNamespaceDescription(prefix: "#news.", delimiter: ".")])),
                       "* NAMESPACE ((\"\" \"/\")) ((\"~\" \"/\")) ((\"#shared/\" \"/\")(\"#news.\" \".\"))\r\n")
        XCTAssertEqual(data(.quotaRoot(mailbox: "INBOX", roots: [""])), "* QUOTAROOT INBOX \"\"\r\n")
        XCTAssertEqual(data(.quotaRoot(mailbox: "comp.mail.mime", roots: [])), "* QUOTAROOT comp.mail.mime\r\n")
        XCTAssertEqual(data(.quota(root: "", [IMAPQuotaResource("STORAGE", usage: 10, limit: 512)])), "* QUOTA \"\" (STORAGE 10 512)\r\n")
        XCTAssertEqual(data(.quota(root: "#user/alice", [IMAPQuotaResource("STORAGE", usage: 54, limit: 111), IMAPQuotaResource("MESSAGE", usage: 42, limit: 1000)])),
                       "* QUOTA #user/alice (STORAGE 54 111 MESSAGE 42 1000)\r\n")
        XCTAssertEqual(data(.acl(mailbox: "INBOX", [IMAPACLEntry("Fred", "rwipsldexta")])), "* ACL INBOX Fred rwipsldexta\r\n")
        XCTAssertEqual(data(.acl(mailbox: "INBOX", [IMAPACLEntry("Fred", "rwipslxetad"), IMAPACLEntry("-Fred", "wetd")])), "* ACL INBOX Fred rwipslxetad -Fred wetd\r\n")
        XCTAssertEqual(data(.listRights(mailbox: "~/Mail/saved", identifier: "smith", required: "la", optional: ["r", "swicdkxte"])),
                       "* LISTRIGHTS ~/Mail/saved smith la r swicdkxte\r\n")
        XCTAssertEqual(data(.listRights(mailbox: "INBOX", identifier: "x", required: "", optional: ["l"])), "* LISTRIGHTS INBOX x \"\" l\r\n")
        XCTAssertEqual(data(.myRights(mailbox: "INBOX", rights: "rwiptsldaex")), "* MYRIGHTS INBOX rwiptsldaex\r\n")
        XCTAssertEqual(data(.enabled(["CONDSTORE", "QRESYNC"])), "* ENABLED CONDSTORE QRESYNC\r\n")
        XCTAssertEqual(data(.enabled([])), "* ENABLED\r\n")
        XCTAssertEqual(data(.id([IMAPIDField("name", "Cyrus"), IMAPIDField("version", "1.5"), IMAPIDField("support-url", "mailto:cyrus-bugs+@andrew.cmu.edu"), IMAPIDField("os", nil)])),
                       "* ID (\"name\" \"Cyrus\" \"version\" \"1.5\" \"support-url\" \"mailto:cyrus-bugs+@andrew.cmu.edu\" \"os\" NIL)\r\n")
        XCTAssertEqual(data(.id(nil)), "* ID NIL\r\n")
    }

    func testExtendedListData() {
        XCTAssertEqual(data(.list(IMAPListResponse(attributes: [], delimiter: "/", name: "Foo", childInfo: ["SUBSCRIBED"]))),
                       "* LIST () \"/\" Foo (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n")
        XCTAssertEqual(data(.list(IMAPListResponse(attributes: ["\\HasNoChildren", "\\Sent"], delimiter: "/", name: "Sent Mail"))),
                       "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent Mail\"\r\n")
        XCTAssertEqual(data(.list(IMAPListResponse(attributes: ["\\NonExistent"], delimiter: "/", name: "New", oldName: "Old Name"))),
                       "* LIST (\\NonExistent) \"/\" New (\"OLDNAME\" (\"Old Name\"))\r\n")
        XCTAssertEqual(data(.list(IMAPListResponse(attributes: [], delimiter: "/", name: "N", childInfo: ["SUBSCRIBED"], oldName: "O"))),
                       "* LIST () \"/\" N (\"CHILDINFO\" (\"SUBSCRIBED\") \"OLDNAME\" (O))\r\n")
    }

    func testMailboxNamesAreEncoded() {
        XCTAssertEqual(data(.list(IMAPListResponse(attributes: [], delimiter: "/", name: "~peter/mail/台北/日本語"))),
                       "* LIST () \"/\" ~peter/mail/&U,BTFw-/&ZeVnLIqe-\r\n")
        XCTAssertEqual(data(.status(mailbox: "A & B", [IMAPStatusValue(.unseen, 0)])), "* STATUS \"A &- B\" (UNSEEN 0)\r\n")
        let utf8 = IMAPResponseEncoder(utf8Accept: true)
        XCTAssertEqual(data(.list(IMAPListResponse(attributes: [], delimiter: "/", name: "Entwürfe & Co")), utf8), "* LIST () \"/\" \"Entwürfe & Co\"\r\n")
        XCTAssertEqual(data(.list(IMAPListResponse(attributes: [], delimiter: "/", name: "INBOX")), utf8), "* LIST () \"/\" INBOX\r\n")
        XCTAssertEqual(data(.status(mailbox: "50%", [IMAPStatusValue(.unseen, 1)])), "* STATUS \"50%\" (UNSEEN 1)\r\n")
    }

    func testStringForms() {
        func astring(_ value: [UInt8], _ encoder: IMAPResponseEncoder = IMAPResponseEncoder()) -> String {
            var out: [UInt8] = []
            encoder.astring(value, into: &out)
            return String(decoding: out, as: UTF8.self)
        }
        func nstring(_ value: [UInt8]?) -> String {
            var out: [UInt8] = []
            IMAPResponseEncoder().nstring(value, into: &out)
            return String(decoding: out, as: UTF8.self)
        }
        XCTAssertEqual(astring(b("atom")), "atom")
        XCTAssertEqual(astring(b("with]bracket")), "with]bracket")
        XCTAssertEqual(astring(b("")), "\"\"")
        XCTAssertEqual(astring(b("NIL")), "\"NIL\"")
        XCTAssertEqual(astring(b("two words")), "\"two words\"")
        XCTAssertEqual(astring(b("q\"b\\")), "\"q\\\"b\\\\\"")
        XCTAssertEqual(astring(b("a{1}")), "\"a{1}\"")
        XCTAssertEqual(astring(b("line\r\nbreak")), "{11}\r\nline\r\nbreak")
        XCTAssertEqual(astring(b("tab\there")), "{8}\r\ntab\there")
        XCTAssertEqual(astring(b("grüße")), "{7}\r\ngrüße")
        XCTAssertEqual(astring(b("grüße"), IMAPResponseEncoder(utf8Accept: true)), "\"grüße\"")
        XCTAssertEqual(astring([0x61, 0xFF], IMAPResponseEncoder(utf8Accept: true)), "{2}\r\na\u{FF}".replacingOccurrences(of: "\u{FF}", with: "\u{FFFD}"))
        XCTAssertEqual(astring(b("a\0b")), "{5}\r\na\u{FFFD}b")
        let long = String(repeating: "x ", count: 600)
        XCTAssertEqual(astring(b(long)), "{1200}\r\n\(long)")
        XCTAssertEqual(nstring(nil), "NIL")
        XCTAssertEqual(nstring(b("NIL")), "\"NIL\"")
        XCTAssertEqual(nstring(b("x")), "\"x\"")
    }

    func testFetchItemsInOrderWithLiteralBodies() {
        XCTAssertEqual(data(.fetch(3, [.uid(9), .rfc822Size(44), .body(IMAPBodySection(), origin: 0, b("ab")), .rfc822Header(nil)])),
                       "* 3 FETCH (UID 9 RFC822.SIZE 44 BODY[]<0> {2}\r\nab RFC822.HEADER NIL)\r\n")
        XCTAssertEqual(data(.fetch(1, [.rfc822(b("x")), .rfc822Text(b("")), .bodyStructure(raw: b("(\"TEXT\")"))])),
                       "* 1 FETCH (RFC822 {1}\r\nx RFC822.TEXT {0}\r\n BODYSTRUCTURE (\"TEXT\"))\r\n")
        XCTAssertEqual(data(.fetch(1, [.body(IMAPBodySection(part: [1, 2], .headerFields(["From", "X Odd"])), origin: nil, b("F"))])),
                       "* 1 FETCH (BODY[1.2.HEADER.FIELDS (From \"X Odd\")] {1}\r\nF)\r\n")
        XCTAssertEqual(data(.fetch(1, [.body(IMAPBodySection(part: [2], .mime), origin: nil, nil), .body(IMAPBodySection(.text), origin: nil, b("t")),
                                       .body(IMAPBodySection(.headerFieldsNot(["A"])), origin: nil, b("")), .body(IMAPBodySection(part: [3]), origin: nil, b("p"))])),
                       "* 1 FETCH (BODY[2.MIME] NIL BODY[TEXT] {1}\r\nt BODY[HEADER.FIELDS.NOT (A)] {0}\r\n BODY[3] {1}\r\np)\r\n")
        XCTAssertEqual(data(.fetch(1, [.binary(part: [1], origin: nil, [0, 1]), .binary(part: [], origin: 5, b("ab")), .binarySize(part: [1, 2], 77)])),
                       "* 1 FETCH (BINARY[1] ~{2}\r\n\0\u{1} BINARY[]<5> {2}\r\nab BINARY.SIZE[1.2] 77)\r\n")
    }

    func testErrorReplies() {
        XCTAssertEqual(IMAPCommandError(tag: "a1", text: "Unknown command FROB").responseBytes, b("a1 BAD Unknown command FROB\r\n"))
        XCTAssertEqual(IMAPCommandError(tag: nil, text: "Missing tag").responseBytes, b("* BAD Missing tag\r\n"))
        XCTAssertEqual(IMAPCommandError(tag: "a", status: .no, code: .tooBig, text: "Too big").responseBytes, b("a NO [TOOBIG] Too big\r\n"))
    }

    func testByteBufferOutput() {
        var buffer = ByteBuffer()
        encoder.encode(.data(.exists(1)), into: &buffer)
        encoder.encode(.status(.tagged("a", .ok, "done")), into: &buffer)
        XCTAssertEqual(buffer.readString(length: buffer.readableBytes), "* 1 EXISTS\r\na OK done\r\n")
    }
}
