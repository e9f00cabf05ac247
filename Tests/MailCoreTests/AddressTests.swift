import XCTest
import PluginAPI

final class AddressTests: XCTestCase {
    func testSMTPPaths() throws {
        let p = try SMTPPath.parse("<user@example.org>")
        XCTAssertEqual(p.localPart, "user")
        XCTAssertEqual(p.domain, .name("example.org"))
        XCTAssertFalse(p.isNull)
        XCTAssertTrue(try SMTPPath.parse("<>").isNull)

        let routed = try SMTPPath.parse("<@a.example,@b.example:u@d.example>")
        XCTAssertEqual(routed.sourceRoute, ["a.example", "b.example"])
        XCTAssertTrue(routed.hasSourceRoute)
        XCTAssertEqual(routed.address, "u@d.example")

        let quoted = try SMTPPath.parse(#"<"john \"q\" doe"@example.org>"#)
        XCTAssertEqual(quoted.localPart, #"john "q" doe"#)
        XCTAssertEqual(quoted.address, #""john \"q\" doe"@example.org"#)

        XCTAssertEqual(try SMTPPath.parse("<a@[192.0.2.1]>").domain, .ipv4("192.0.2.1"))
        XCTAssertEqual(try SMTPPath.parse("<a@[IPv6:2001:db8::1]>").domain, .ipv6("2001:db8::1"))
        XCTAssertEqual(try SMTPPath.parse("<a@[x-tag:value]>").domain, .general(tag: "x-tag", value: "value"))
        XCTAssertEqual(try SMTPPath.parse("<postmaster>").localPart, "postmaster")

        let utf8 = try SMTPPath.parse("<δοκιμή@παράδειγμα.δοκιμή>")
        XCTAssertTrue(utf8.needsSMTPUTF8)
        XCTAssertEqual(try utf8.asciiDomainAddress(), "δοκιμή@xn--hxajbheg2az3al.xn--jxalpdlp")
        XCTAssertEqual(try SMTPPath.parse("bare@example.org", requireBrackets: false).localPart, "bare")
    }

    func testSMTPPathErrors() {
        let cases: [(String, AddressError)] = [
            ("user@example.org", .missingAngleBrackets),
            ("<user@example.org", .unterminatedAngleAddress),
            ("<userexample.org>", .missingDomain),
            ("<@example.org>", .invalidSourceRoute),
            ("<a..b@example.org>", .invalidLocalPart),
            ("<.a@example.org>", .invalidLocalPart),
            ("<\"open@example.org>", .unterminatedQuotedString),
            ("<a@[300.1.1.1]>", .invalidAddressLiteral),
            ("<a@[IPv6:zz::1]>", .invalidAddressLiteral),
            ("<a@exa mple.org>", .invalidDomain(.invalidCharacter("exa mple"))),
            ("<a@example..org>", .invalidDomain(.emptyLabel)),
            ("<" + String(repeating: "x", count: 65) + "@example.org>", .localPartTooLong),
            ("<a@" + String(repeating: "x", count: 64) + ".org>", .invalidDomain(.labelTooLong(String(repeating: "x", count: 64)))),
            ("<a@b.org> junk", .unexpected(offset: 9)),
            ("<ü@example.org>", .utf8NotAllowed),
        ]
        for (input, expected) in cases {
            XCTAssertThrowsError(try SMTPPath.parse(input, allowUTF8: !input.hasPrefix("<ü")), input) { error in
                XCTAssertEqual(error as? AddressError, expected, input)
            }
        }
        let longDomain = (0..<5).map { _ in String(repeating: "d", count: 60) }.joined(separator: ".")
        XCTAssertThrowsError(try IDNA.toASCII(longDomain)) { XCTAssertEqual($0 as? DomainError, .domainTooLong) }
    }

    func testAddressLists() {
        let list = MailAddressList(parsing: #""Doe, John" <john@example.org>, jane@example.com (Jane Roe), =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= <g@x.example>, <@r1,@r2:route@y.example>"#)
        XCTAssertEqual(list.errors, [])
        XCTAssertEqual(list.mailboxes.map(\.address), ["john@example.org", "jane@example.com", "g@x.example", "route@y.example"])
        XCTAssertEqual(list.mailboxes.map(\.displayName), ["Doe, John", "Jane Roe", "Grüße", nil])
        XCTAssertEqual(list.mailboxes[2].rawDisplayName, bytes("=?UTF-8?Q?Gr=C3=BC=C3=9Fe?="))
        XCTAssertEqual(list.mailboxes[3].route, "@r1,@r2")

        let groups = MailAddressList(parsing: "undisclosed-recipients:;, Team: a@x.example, \"B\" <b@x.example>;")
        XCTAssertEqual(groups.errors, [])
        XCTAssertEqual(groups.entries.count, 2)
        guard case .group(let name, _, let members) = groups.entries[1] else { return XCTFail() }
        XCTAssertEqual(name, "Team")
        XCTAssertEqual(members.map(\.address), ["a@x.example", "b@x.example"])
        XCTAssertEqual(text(MessageEnvelope(fields: [MailHeaderField(name: "To", rawValue: bytes(" undisclosed-recipients:;"))]).imapString),
                       "(NIL NIL NIL NIL NIL ((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) NIL NIL NIL NIL)")

        let quotedEncoded = MailAddressList(parsing: #""=?ISO-8859-1?Q?Andr=E9?= Pirard" <pirard@example.be>"#)
        XCTAssertEqual(quotedEncoded.mailboxes.first?.displayName, "André Pirard")
        XCTAssertEqual(MailAddressList(parsing: "John Q. Public <jqp@example.org>").mailboxes.first?.displayName, "John Q. Public")
        XCTAssertEqual(MailAddressList(parsing: "\"a b\"@example.org").mailboxes.first?.localPart, "a b")
    }

    func testMalformedAddressLists() {
        XCTAssertEqual(MailAddressList(parsing: "").errors, [.empty])
        XCTAssertEqual(MailAddressList(parsing: "(only a comment)").errors, [.empty])
        XCTAssertTrue(MailAddressList(parsing: "Name <a@b.example").errors.contains(.unterminatedAngleAddress))
        XCTAssertTrue(MailAddressList(parsing: "Team: a@b.example").errors.contains(.unterminatedGroup))
        XCTAssertTrue(MailAddressList(parsing: "\"unterminated <a@b.example>").errors.contains(.unterminatedQuotedString))
        XCTAssertTrue(MailAddressList(parsing: "a@b (open").errors.contains(.unterminatedComment))
        let bare = MailAddressList(parsing: "justaname")
        XCTAssertEqual(bare.errors, [.missingDomain])
        XCTAssertEqual(bare.mailboxes.first?.localPart, "justaname")
        XCTAssertEqual(text(MessageEnvelope.addressesForTest(bare)), "((NIL NIL \"justaname\" \"MISSING_DOMAIN\"))")
        XCTAssertFalse(MailAddressList(parsing: "@@@,,;;<<>>").errors.isEmpty)
    }

    /// RFC 3492 §7.1 sample strings, both ways.
    func testPunycodeSamples() {
        let samples: [([UInt32], String)] = [
            ([0x0644, 0x064A, 0x0647, 0x0645, 0x0627, 0x0628, 0x062A, 0x0643, 0x0644, 0x0645, 0x0648, 0x0634, 0x0639, 0x0631,
              0x0628, 0x064A, 0x061F], "egbpdaj6bu4bxfgehfvwxn"),
            ([0x4ED6, 0x4EEC, 0x4E3A, 0x4EC0, 0x4E48, 0x4E0D, 0x8BF4, 0x4E2D, 0x6587], "ihqwcrb4cv8a8dqg056pqjye"),
            ([0x4ED6, 0x5011, 0x7232, 0x4EC0, 0x9EBD, 0x4E0D, 0x8AAA, 0x4E2D, 0x6587], "ihqwctvzc91f659drss3x8bo0yb"),
            ([0x50, 0x72, 0x6F, 0x010D, 0x70, 0x72, 0x6F, 0x73, 0x74, 0x011B, 0x6E, 0x65, 0x6D, 0x6C, 0x75, 0x76, 0x00ED,
              0x010D, 0x65, 0x73, 0x6B, 0x79], "Proprostnemluvesky-uyb24dma41a"),
            ([0x05DC, 0x05DE, 0x05D4, 0x05D4, 0x05DD, 0x05E4, 0x05E9, 0x05D5, 0x05D8, 0x05DC, 0x05D0, 0x05DE, 0x05D3, 0x05D1,
              0x05E8, 0x05D9, 0x05DD, 0x05E2, 0x05D1, 0x05E8, 0x05D9, 0x05EA], "4dbcagdahymbxekheh6e0a7fei0b"),
            ([0x092F, 0x0939, 0x0932, 0x094B, 0x0917, 0x0939, 0x093F, 0x0928, 0x094D, 0x0926, 0x0940, 0x0915, 0x094D, 0x092F,
              0x094B, 0x0902, 0x0928, 0x0939, 0x0940, 0x0902, 0x092C, 0x094B, 0x0932, 0x0938, 0x0915, 0x0924, 0x0947, 0x0939,
              0x0948, 0x0902], "i1baa7eci9glrd9b2ae1bj0hfcgg6iyaf8o0a1dig0cd"),
            (Array("-> $1.00 <-".unicodeScalars.map(\.value)), "-> $1.00 <--"),
        ]
        for (cps, encoded) in samples {
            let s = String(String.UnicodeScalarView(cps.map { Unicode.Scalar($0)! }))
            XCTAssertEqual(Punycode.encode(s), encoded)
            XCTAssertEqual(Punycode.decode(encoded), s)
        }
        XCTAssertEqual(Punycode.encode("bücher"), "bcher-kva")
        XCTAssertNil(Punycode.decode("99999999999999999"))
        XCTAssertNil(Punycode.decode("a-ü"))
        XCTAssertEqual(try IDNA.toASCII("Bücher.Example"), "xn--bcher-kva.example")
        XCTAssertEqual(try IDNA.toUnicode("xn--bcher-kva.example"), "bücher.example")
        XCTAssertThrowsError(try IDNA.toASCII("xn--99999999999999999.example"))
    }
}

extension MessageEnvelope {
    static func addressesForTest(_ list: MailAddressList) -> [UInt8] {
        let f = MailHeaderField(name: "To", rawValue: [])
        var e = MessageEnvelope(fields: [f])
        e.to = list
        let s = text(e.imapString)
        // The To list is the sixth item: cut it out of "(NIL NIL NIL NIL NIL <to> NIL NIL NIL NIL)".
        let start = s.index(s.startIndex, offsetBy: 21)
        let end = s.index(s.endIndex, offsetBy: -17)
        return bytes(String(s[start..<end]))
    }
}

/// EnvelopeAddress: the one split of `local@domain` every plugin uses.
final class EnvelopeAddressTests: XCTestCase {
    func testSplitsAndNormalisesTheDomainOnly() {
        let a = EnvelopeAddress("Alice.Smith+tag@Example.ORG")
        XCTAssertEqual(a?.local, "Alice.Smith+tag")
        XCTAssertEqual(a?.domain, "example.org")
        XCTAssertEqual(a?.description, "Alice.Smith+tag@example.org")
        XCTAssertEqual(EnvelopeAddress("\"quoted local\"@x.example")?.local, nil, "a space in the local part is no mailbox name here")
    }

    func testRefusesWhatCannotBeAMailbox() {
        for bad in ["", "alice", "@example.org", "alice@", "a@b@example.org", "a\0b@example.org", "a b@example.org"] {
            XCTAssertNil(EnvelopeAddress(bad), bad)
        }
    }

    func testDomainOfAnything() {
        XCTAssertEqual(EnvelopeAddress.domain(of: "x@Example.Org"), "example.org")
        XCTAssertEqual(EnvelopeAddress.domain(of: ""), "")
        XCTAssertEqual(EnvelopeAddress.domain(of: "postmaster"), "")
    }
}
