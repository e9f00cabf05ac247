import Foundation
import PluginAPI
@testable import PosternFilterRulesCore
import XCTest

/// Every condition kind on byte-level messages: what hits, what does not, malformed input.
final class ConditionTests: XCTestCase {
    func testHeaderPatternOnDecodedUnfoldedValue() throws {
        // An RFC 2047 subject, folded: the pattern sees "Cheap casino chips today".
        let m = Fixture.message("""
            From: a@example.net
            Subject: =?UTF-8?B?Q2hlYXAgY2FzaW5v?=
             chips today

            Body.

            """)
        XCTAssertTrue(try Fixture.hits("header = \"Subject\"\npattern = '\\bcasino chips\\b'", m))
        XCTAssertTrue(try Fixture.hits("header = \"subject\"\npattern = 'CHEAP'", m), "field name and pattern ignore case")
        XCTAssertFalse(try Fixture.hits("header = \"Subject\"\npattern = '(?-i)CHEAP'", m), "(?-i) makes it case-sensitive")
        XCTAssertFalse(try Fixture.hits("header = \"X-Mailer\"\npattern = '.'", m), "a missing field does not match")
        // "*": any field, e.g. an address in From.
        XCTAssertTrue(try Fixture.hits("header = \"*\"\npattern = 'a@example\\.net'", m))
        XCTAssertTrue(try Fixture.hits("header = \"From\"\npattern = 'a@example\\.net'\nnegate = false", m))
        XCTAssertFalse(try Fixture.hits("header = \"From\"\npattern = 'a@example\\.net'\nnegate = true", m))
    }

    func testHeaderPatternOnEveryFieldOfThatName() throws {
        let m = Fixture.message("Received: from a\nReceived: from evil.example\nSubject: x\n\nBody\n")
        XCTAssertTrue(try Fixture.hits("header = \"Received\"\npattern = 'evil\\.example'", m))
    }

    func testBodyPhraseInDecodedTextPartsIgnoringCase() throws {
        // Quoted-printable in a multipart, the phrase split by a soft line break.
        let m = Fixture.message("""
            From: a@example.net
            MIME-Version: 1.0
            Content-Type: multipart/alternative; boundary="b1"

            --b1
            Content-Type: text/plain; charset=utf-8
            Content-Transfer-Encoding: quoted-printable

            Claim your FREE PRI=
            ZE now =E2=82=AC
            --b1
            Content-Type: text/html; charset=utf-8
            Content-Transfer-Encoding: base64

            PHA+WW91ciA8Yj5hY2NvdW50PC9iPiB3aWxsIGJlIGNsb3NlZDwvcD4=
            --b1--

            """)
        XCTAssertTrue(try Fixture.hits("body = \"free prize now €\"", m))
        // HTML: "<p>Your <b>account</b> will be closed</p>": tags out, words kept.
        XCTAssertTrue(try Fixture.hits("body = \"account will be closed\"", m))
        XCTAssertTrue(try Fixture.hits("body = \"your\taccount\"", m), "white space in the phrase is any white space")
        XCTAssertFalse(try Fixture.hits("body = \"<b>\"", m), "tags are not text")
        XCTAssertFalse(try Fixture.hits("body = \"PRI=\"", m), "the transfer encoding is undone")
    }

    func testBodyInLatin1Charset() throws {
        // ISO-8859-1 bytes: "Gr\xfc\xdfe" is "Grüße".
        var bytes = Fixture.bytes("From: a@example.net\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\nViele ")
        bytes += [0x47, 0x72, 0xfc, 0xdf, 0x65, 13, 10]
        let m = FilterMessage(bytes: bytes, sender: "a@example.net", recipients: ["u@example.org"], connection: Fixture.connection())
        XCTAssertTrue(try Fixture.hits("body = \"GRÜßE\"", m))
        XCTAssertTrue(try Fixture.hits("body_regex = 'gr\\x{fc}\\x{df}e'", m))
    }

    func testBodySkipsAttachmentsAndNonTextParts() throws {
        let m = Fixture.message("""
            From: a@example.net
            Content-Type: multipart/mixed; boundary=outer

            --outer
            Content-Type: text/plain

            Hello.
            --outer
            Content-Type: text/plain; name="notes.txt"
            Content-Disposition: attachment; filename*=UTF-8''notes%20v2.txt

            secret phrase in an attachment
            --outer
            Content-Type: application/octet-stream

            secret phrase in binary
            --outer--

            """)
        XCTAssertFalse(try Fixture.hits("body = \"secret phrase\"", m))
        XCTAssertTrue(try Fixture.hits("body = \"hello\"", m))
        // A phrase wrapped over two lines.
        XCTAssertTrue(try Fixture.hits("body = \"hello. secret\"", Fixture.message("From: a@example.net\n\nHello.\n  Secret\n")))
    }

    func testBodyInNestedMultipartWithBrokenBoundary() throws {
        // The inner multipart never closes, the outer close is missing: the text is still read.
        let m = Fixture.message("""
            From: a@example.net
            Content-Type: multipart/mixed; boundary=outer

            --outer
            Content-Type: multipart/alternative; boundary=inner

            --inner
            Content-Type: text/plain

            Visit our online casino
            --outer

            """)
        XCTAssertTrue(try Fixture.hits("body = \"online casino\"", m))
        XCTAssertTrue(try Fixture.hits("body_regex = 'online\\s+casino'", m))
    }

    func testBodyScanIsBounded() throws {
        let m = Fixture.message("From: a@example.net\n\n" + String(repeating: "x", count: 5000) + " needle\n")
        let rule = try Fixture.rule("body = \"needle\"")
        XCTAssertEqual(RuleEvaluator.hits([rule], facts: Fixture.facts(m, maxScanBytes: 1000), listed: []).count, 0)
        XCTAssertEqual(RuleEvaluator.hits([rule], facts: Fixture.facts(m, maxScanBytes: 10000), listed: []).count, 1)
    }

    func testEmptyBodyAndHTMLOnly() throws {
        let empty = Fixture.message("From: a@example.net\nSubject: hi\n\n\n  \n")
        XCTAssertTrue(try Fixture.hits("body_regex = '\\S'\nnegate = true", empty))
        XCTAssertFalse(try Fixture.hits("body_regex = '\\S'\nnegate = true", Fixture.message(Fixture.plain)))
        let html = Fixture.message("From: a@example.net\nContent-Type: text/html\n\n<p>Hi</p>\n")
        XCTAssertTrue(try Fixture.hits("html_only = true", html))
        XCTAssertFalse(try Fixture.hits("html_only = true", Fixture.message(Fixture.plain)))
        let alternative = Fixture.message("""
            From: a@example.net
            Content-Type: multipart/alternative; boundary=b

            --b
            Content-Type: text/plain

            Hi
            --b
            Content-Type: text/html

            <p>Hi</p>
            --b--

            """)
        XCTAssertFalse(try Fixture.hits("html_only = true", alternative))
    }

    func testClientNetworkHostnameAndHelo() throws {
        let m = Fixture.message(Fixture.plain, connection: Fixture.connection(peer: "::ffff:198.51.100.7", hostname: "dsl-7.dynamic.example.com",
                                                                              helo: "[198.51.100.7]"))
        XCTAssertTrue(try Fixture.hits("client_network = [\"198.51.100.0/24\"]", m), "an IPv4-mapped peer is IPv4")
        XCTAssertFalse(try Fixture.hits("client_network = [\"198.51.101.0/24\", \"2001:db8::/32\"]", m))
        XCTAssertTrue(try Fixture.hits("client_hostname = '\\bdynamic\\b'", m))
        XCTAssertTrue(try Fixture.hits("helo = '^\\[[0-9.]+\\]$'", m))
        let v6 = Fixture.message(Fixture.plain, connection: Fixture.connection(peer: "2001:db8::25", hostname: nil))
        XCTAssertTrue(try Fixture.hits("client_network = [\"2001:db8::/32\"]", v6))
        XCTAssertTrue(try Fixture.hits("client_hostname = '^$'", v6), "no verified hostname is the empty string")
    }

    func testSenderRecipientsSizeAndCount() throws {
        let m = Fixture.message(Fixture.plain, sender: "promo@bulk.example", recipients: ["a@example.org", "sales@example.org", "c@example.org"])
        XCTAssertTrue(try Fixture.hits("sender = '@bulk\\.example$'", m))
        XCTAssertTrue(try Fixture.hits("recipient = '^sales@'", m))
        XCTAssertFalse(try Fixture.hits("recipient = '^ceo@'", m))
        XCTAssertTrue(try Fixture.hits("recipients_over = 2", m))
        XCTAssertFalse(try Fixture.hits("recipients_over = 3", m))
        let size = Fixture.bytes(Fixture.plain).count
        XCTAssertTrue(try Fixture.hits("size_over = \(size - 1)", m))
        XCTAssertFalse(try Fixture.hits("size_over = \(size)", m))
        XCTAssertTrue(try Fixture.hits("size_over = \"1K\"", Fixture.message("From: a@b.example\n\n" + String(repeating: "y", count: 2000) + "\n")))
    }

    func testUnqualifiedSenderDomainOnlyFromOutside() throws {
        for sender in ["root@localhost", "root", "a@.example", "a@example."] {
            XCTAssertTrue(try Fixture.hits("unqualified_sender_domain = true", Fixture.message(Fixture.plain, sender: sender)), sender)
        }
        for sender in ["a@example.net", "a@[192.0.2.1]", ""] {
            XCTAssertFalse(try Fixture.hits("unqualified_sender_domain = true", Fixture.message(Fixture.plain, sender: sender)), sender)
        }
        // Inside the network: a trusted address, or an authenticated client.
        let inside = Fixture.message(Fixture.plain, sender: "root@localhost", connection: Fixture.connection(peer: "127.0.0.1"))
        XCTAssertFalse(try Fixture.hits("unqualified_sender_domain = true", inside))
        XCTAssertTrue(try Fixture.hits("unqualified_sender_domain = true", inside, trusted: []))
        let authenticated = Fixture.message(Fixture.plain, sender: "root@localhost", connection: Fixture.connection(user: "alice"))
        XCTAssertFalse(try Fixture.hits("unqualified_sender_domain = true", authenticated))
    }

    func testMissingAndMalformedDateAndMessageID() throws {
        let good = Fixture.message(Fixture.plain)
        for lines in ["missing_header = \"Date\"", "missing_header = \"message-id\"", "malformed_date = true", "malformed_message_id = true"] {
            XCTAssertFalse(try Fixture.hits(lines, good), lines)
        }
        let none = Fixture.message("From: a@example.net\nSubject: x\n\nBody\n")
        XCTAssertTrue(try Fixture.hits("missing_header = \"Date\"", none))
        XCTAssertTrue(try Fixture.hits("missing_header = \"Message-ID\"", none))
        XCTAssertFalse(try Fixture.hits("malformed_date = true", none), "missing is not malformed")
        XCTAssertFalse(try Fixture.hits("malformed_message_id = true", none))
        for date in ["yesterday", "Tue, 41 Jul 2003 10:52:37 +0200", "1 Foo 2003 10:52 +0000", ""] {
            let m = Fixture.message("Date: \(date)\nMessage-ID: <a@b>\n\nBody\n")
            XCTAssertTrue(try Fixture.hits("malformed_date = true", m), date)
        }
        // Obsolete but valid forms are not malformed; two Date fields are.
        XCTAssertFalse(try Fixture.hits("malformed_date = true", Fixture.message("Date: 1 Jul 03 10:52 GMT (comment)\n\nBody\n")))
        XCTAssertTrue(try Fixture.hits("malformed_date = true", Fixture.message("Date: 1 Jul 2003 10:52 GMT\nDate: 2 Jul 2003 10:52 GMT\n\nBody\n")))
        for id in ["1234@host", "<1234>", "<@host>", "<a@>", "<a b@host>", "<a@b@c>", "<<a@b>>"] {
            XCTAssertTrue(try Fixture.hits("malformed_message_id = true", Fixture.message("Message-ID: \(id)\n\nBody\n")), id)
        }
        for id in ["<a.b@host.example>", "  <x@y> (added by relay)"] {
            XCTAssertFalse(try Fixture.hits("malformed_message_id = true", Fixture.message("Message-ID: \(id)\n\nBody\n")), id)
        }
        XCTAssertTrue(try Fixture.hits("malformed_message_id = true", Fixture.message("Message-ID: <a@b>\nMessage-Id: <c@d>\n\nBody\n")))
    }

    func testMalformedHeaderBlockStillGivesFields() throws {
        // A line without a colon in the header block and a field with 8-bit junk: the rest is read.
        var bytes = Fixture.bytes("Subject: ok\nthis line is not a field\nFrom: ")
        bytes += [0xff, 0xfe, 0x41, 13, 10, 13, 10] + Fixture.bytes("Body\n")
        let m = FilterMessage(bytes: bytes, sender: "a@example.net", recipients: ["u@example.org"], connection: Fixture.connection())
        XCTAssertTrue(try Fixture.hits("header = \"Subject\"\npattern = '^ok$'", m))
        XCTAssertTrue(try Fixture.hits("missing_header = \"Date\"", m))
    }

    func testURIHostsFromPlainAndHTML() {
        let hosts = URIHosts.find(in: """
            See https://www.Spam.example/offer?x=1 and HTTP://user:pw@evil.example:8080/p, also
            <a href="http://[2001:db8::1]/x">v6</a> <a href='https://shop.example.'>shop</a> http://localhost/ mailto:a@b.example
            https://www.spam.example/again http://192.0.2.66/
            """)
        XCTAssertEqual(hosts, ["www.spam.example", "evil.example", "[2001:db8::1]", "shop.example", "192.0.2.66"])
        XCTAssertEqual(Blocklists.uriNames(host: "www.spam.example", zone: "uribl.test"), ["www.spam.example.uribl.test", "spam.example.uribl.test"])
        XCTAssertEqual(Blocklists.uriNames(host: "192.0.2.66", zone: "uribl.test"), ["66.2.0.192.uribl.test"])
    }
}
