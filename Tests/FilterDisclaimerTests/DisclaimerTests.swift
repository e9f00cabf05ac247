import PluginAPI
import XCTest

@testable import PosternFilterDisclaimerCore

/// The disclaimer on byte-level fixtures: each charset and transfer encoding, HTML, every
/// multipart shape, signed and encrypted messages, replies that carry it, broken boundaries.
final class DisclaimerTests: XCTestCase {
    static let text = "This e-mail is confidential.\nIf you are not the addressee, delete it."
    static let profile = DisclaimerProfile(name: "corp", senderDomains: ["example.org"], text: text)

    func stamp(_ bytes: [UInt8], profile: DisclaimerProfile = profile, sender: String = "alice@example.org",
               recipients: [String] = ["bob@remote.example"], direction: FilterDirection = .outbound)
        -> (DisclaimerInspector.Outcome, [UInt8]) {
        let inspector = DisclaimerInspector(profiles: [profile])
        let (outcome, modifications) = inspector.stamp(Fixture.message(bytes, sender: sender, recipients: recipients, direction: direction))
        return (outcome, Fixture.applied(modifications, to: bytes))
    }

    let head = "From: alice@example.org\nTo: bob@remote.example\nSubject: hi\nMIME-Version: 1.0\n"

    func testPlainUSASCII7bitGetsTheTextAfterAnEmptyLineAndNothingElseChanges() {
        let original = Fixture.crlf(head + "Content-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 7bit\n\nHello Bob.\n")
        let (outcome, result) = stamp(original)
        XCTAssertEqual(outcome, .stamped(profile: "corp", parts: 1))
        XCTAssertEqual(Fixture.string(result), Fixture.string(original)
            + "\r\nThis e-mail is confidential.\r\nIf you are not the addressee, delete it.\r\n")
    }

    func testISO88591QuotedPrintableKeepsItsCharsetWhenTheTextFits() throws {
        let profile = DisclaimerProfile(name: "de", text: "Vertraulich: für den Empfänger bestimmt.")
        let original = Fixture.crlf(head + "Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nGr=FC=DFe aus K=F6ln.\n")
        let (_, result) = stamp(original, profile: profile)
        let root = try Fixture.part(result, 0)
        XCTAssertEqual(root.contentType.charset, "iso-8859-1")
        XCTAssertEqual(root.contentTransferEncoding, "quoted-printable")
        XCTAssertEqual(root.decodedBody(in: result), Fixture.crlf(latin1: [UInt8]("Grüße aus Köln.\n\nVertraulich: für den Empfänger bestimmt.\n".unicodeScalars.map { UInt8($0.value) })))
        XCTAssertTrue(Fixture.string(result).contains("f=FCr den Empf=E4nger"), Fixture.string(result))
        // The header block is the one received.
        XCTAssertTrue(result.starts(with: original[..<MailHeaderBlock(parsing: original).bodyOffset]))
    }

    func testTextThatDoesNotFitThePartsCharsetTurnsThePartIntoUTF8() throws {
        let profile = DisclaimerProfile(name: "eur", text: "Prices in € only.")
        let original = Fixture.crlf(head + "Content-Type: text/plain; charset=\"iso-8859-1\"; format=flowed\nContent-Transfer-Encoding: quoted-printable\n\nK=F6ln.\n")
        let (_, result) = stamp(original, profile: profile)
        let root = try Fixture.part(result, 0)
        XCTAssertEqual(root.field("Content-Type")?.text, "text/plain; charset=utf-8; format=flowed")
        XCTAssertEqual(root.contentTransferEncoding, "quoted-printable")
        XCTAssertEqual(root.text(in: result), "Köln.\r\n\r\nPrices in € only.\r\n")
        XCTAssertEqual(MailHeaderBlock(parsing: result).all("Content-Type").count, 1)
    }

    func testUTF8Base64IsEncodedAgainInLinesOfAtMost76() throws {
        let text = String(repeating: "Grüße aus Köln – 日本語のテキスト. ", count: 6) + "\r\n"
        let encoded = Fixture.string(Base64Encoder.encode(Array(text.utf8)))
        let original = Fixture.crlf(head + "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n")
            + Array(encoded.utf8) + [13, 10]
        let (_, result) = stamp(original)
        let root = try Fixture.part(result, 0)
        XCTAssertEqual(root.text(in: result), text + "\r\n" + Self.text.replacingOccurrences(of: "\n", with: "\r\n") + "\r\n")
        let lines = Fixture.string(Array(root.rawBody(in: result))).components(separatedBy: "\r\n")
        XCTAssertGreaterThan(lines.count, 3)
        XCTAssertTrue(lines.allSatisfy { $0.count <= 76 }, "\(lines)")
        XCTAssertEqual(lines.last, "", "the body still ends with its line end")
    }

    func testSevenBitPartWithANonASCIIDisclaimerBecomesQuotedPrintableUTF8() throws {
        let profile = DisclaimerProfile(name: "de", text: "Vertraulich – für den Empfänger.")
        let original = Fixture.crlf("From: alice@example.org\nTo: bob@remote.example\nSubject: no MIME fields\n\nHello =Bob=.\n")
        let (_, result) = stamp(original, profile: profile)
        let root = try Fixture.part(result, 0)
        XCTAssertEqual(root.field("Content-Type")?.text, "text/plain; charset=utf-8")
        XCTAssertEqual(root.contentTransferEncoding, "quoted-printable")
        XCTAssertEqual(root.text(in: result), "Hello =Bob=.\r\n\r\nVertraulich – für den Empfänger.\r\n")
        XCTAssertTrue(result.allSatisfy { $0 < 0x80 }, "7bit transport stays 7bit")
    }

    func testHTMLGetsItsDisclaimerBeforeTheLastBodyCloseTag() throws {
        let original = Fixture.crlf(head + "Content-Type: text/html; charset=us-ascii\n\n<html><body><p>Hi &amp; bye</p></BODY></html>\n")
        let (_, result) = stamp(original)
        let html = try Fixture.part(result, 0).text(in: result)
        XCTAssertEqual(html, "<html><body><p>Hi &amp; bye</p><div class=\"disclaimer\"><p>This e-mail is confidential.<br>\r\n"
            + "If you are not the addressee, delete it.</p></div>\r\n</BODY></html>\r\n")
    }

    func testHTMLWithoutABodyTagGetsItAtTheEndAndANonFittingCharacterAsAReference() throws {
        let profile = DisclaimerProfile(name: "eur", text: "Prices in € only.", html: "<p>Prices in € only.</p>")
        let original = Fixture.crlf(head + "Content-Type: text/html; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\n<p>Hi</p>\n")
        let (_, result) = stamp(original, profile: profile)
        let root = try Fixture.part(result, 0)
        XCTAssertEqual(root.contentType.charset, "iso-8859-1", "an HTML part keeps its charset")
        XCTAssertEqual(root.text(in: result), "<p>Hi</p>\r\n\r\n<p>Prices in &#x20ac; only.</p>\r\n")
    }

    func testBothPartsOfMultipartAlternative() throws {
        let original = Fixture.crlf(head + """
            Content-Type: multipart/alternative; boundary="alt"

            --alt
            Content-Type: text/plain; charset=utf-8
            Content-Transfer-Encoding: quoted-printable

            Hello =E2=80=93 Bob.
            --alt
            Content-Type: text/html; charset=utf-8
            Content-Transfer-Encoding: base64

            \(Fixture.string(Base64Encoder.encode(Array("<html><body>Hello – Bob.</body></html>".utf8))))
            --alt--

            """)
        let (outcome, result) = stamp(original)
        XCTAssertEqual(outcome, .stamped(profile: "corp", parts: 2))
        let mime = MIMEMessage(parsing: result)
        XCTAssertEqual(mime.problems, [])
        XCTAssertEqual(mime.root.children.count, 2)
        XCTAssertEqual(mime.root.children[0].text(in: result),
                       "Hello – Bob.\r\n\r\nThis e-mail is confidential.\r\nIf you are not the addressee, delete it.")
        XCTAssertEqual(mime.root.children[1].text(in: result), "<html><body>Hello – Bob.<div class=\"disclaimer\"><p>This e-mail is confidential.<br>\r\n"
            + "If you are not the addressee, delete it.</p></div>\r\n</body></html>")
    }

    static let attachment = """
        --mix
        Content-Type: application/pdf
        Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.pdf
        Content-Transfer-Encoding: base64

        JVBERi0xLjQKJcfsj6IK
        """

    func testMultipartMixedStampsItsFirstTextPartAndLeavesTheAttachmentByteForByte() throws {
        let original = Fixture.crlf(head + "Content-Type: multipart/mixed; boundary=mix\n\nPreamble.\n--mix\nContent-Type: text/plain\n\nSee attached.\n"
            + Self.attachment + "\n--mix--\nEpilogue.\n")
        let (_, result) = stamp(original)
        let before = MIMEMessage(parsing: original).root.children[1], after = MIMEMessage(parsing: result).root.children[1]
        XCTAssertEqual(after.fileName, "résumé.pdf")
        XCTAssertEqual(Array(result[after.headerOffset..<(after.bodyOffset + after.bodySize)]),
                       Array(original[before.headerOffset..<(before.bodyOffset + before.bodySize)]))
        XCTAssertEqual(try Fixture.part(result, 1).text(in: result), "See attached.\r\n\r\n" + Self.text.replacingOccurrences(of: "\n", with: "\r\n"))
        XCTAssertTrue(Fixture.string(result).hasSuffix("--mix--\r\nEpilogue.\r\n"))
        XCTAssertTrue(Fixture.string(result).contains("\r\n\r\nPreamble.\r\n--mix\r\n"))
    }

    func testMultipartMixedWithoutATextPartFirstGetsANewPart() throws {
        let original = Fixture.crlf(head + "Content-Type: multipart/mixed; boundary=mix\n\n" + Self.attachment + "\n--mix--\n")
        let (outcome, result) = stamp(original)
        XCTAssertEqual(outcome, .stamped(profile: "corp", parts: 1))
        let mime = MIMEMessage(parsing: result)
        XCTAssertEqual(mime.problems, [])
        XCTAssertEqual(mime.root.children.count, 2)
        XCTAssertEqual(mime.root.children[0].decodedBody(in: result), Array("%PDF-1.4\n%\u{C7}\u{EC}\u{8F}\u{A2}\n".unicodeScalars.map { UInt8($0.value) }))
        XCTAssertEqual(mime.root.children[1].contentType.mimeType, "text/plain")
        XCTAssertEqual(mime.root.children[1].text(in: result), Self.text.replacingOccurrences(of: "\n", with: "\r\n"))
    }

    func testNestedMixedAlternativeRelated() throws {
        let original = Fixture.crlf(head + """
            Content-Type: multipart/mixed; boundary=outer

            --outer
            Content-Type: multipart/alternative; boundary=alt

            --alt
            Content-Type: text/plain

            Plain.
            --alt
            Content-Type: multipart/related; boundary=rel

            --rel
            Content-Type: text/html

            <body>Rich.</body>
            --rel
            Content-Type: image/png
            Content-ID: <logo>

            iVBORw0KGgo=
            --rel--
            --alt--
            --outer--

            """)
        let (outcome, result) = stamp(original)
        XCTAssertEqual(outcome, .stamped(profile: "corp", parts: 2))
        let parts = MIMEMessage(parsing: result).root.allParts
        XCTAssertEqual(parts.map(\.contentType.mimeType), ["multipart/mixed", "multipart/alternative", "text/plain",
                                                           "multipart/related", "text/html", "image/png"])
        XCTAssertTrue(parts[2].text(in: result).hasSuffix("delete it."))
        XCTAssertTrue(parts[4].text(in: result).hasSuffix("delete it.</p></div>\r\n</body>"))
        XCTAssertEqual(Array(parts[5].rawBody(in: result)), Array("iVBORw0KGgo=".utf8))
    }

    static let signed = """
        Content-Type: multipart/signed; protocol="application/pgp-signature"; micalg=pgp-sha256; boundary="sig"

        --sig
        Content-Type: text/plain

        Signed text.
        --sig
        Content-Type: application/pgp-signature

        -----BEGIN PGP SIGNATURE-----
        iQEzBAEBCAAdFiEE
        -----END PGP SIGNATURE-----
        --sig--

        """

    func testSignedMessageIsLeftAloneWhenTheProfileSaysSkip() {
        let original = Fixture.crlf(head + Self.signed)
        let (outcome, result) = stamp(original)
        XCTAssertEqual(outcome, .signedSkipped(profile: "corp"))
        XCTAssertEqual(result, original)
    }

    func testSignedMessageIsWrappedUntouchedWhenTheProfileSaysWrap() throws {
        var profile = Self.profile
        profile.signed = .wrap
        let original = Fixture.crlf(head + Self.signed)
        let (outcome, result) = stamp(original, profile: profile)
        XCTAssertEqual(outcome, .wrapped(profile: "corp"))
        let mime = MIMEMessage(parsing: result)
        XCTAssertEqual(mime.problems, [])
        XCTAssertEqual(mime.root.contentType.mimeType, "multipart/mixed")
        XCTAssertEqual(MailHeaderBlock(parsing: result).all("Content-Type").count, 1)
        let signedPart = mime.root.children[0]
        XCTAssertEqual(signedPart.contentType.mimeType, "multipart/signed")
        // The signed entity: the same Content-Type field and the same body, byte for byte.
        let originalRoot = MIMEMessage(parsing: original).root
        XCTAssertEqual(Array(signedPart.rawBody(in: result)), Array(original[originalRoot.bodyOffset...]))
        XCTAssertEqual(signedPart.field("Content-Type")?.rawValue, originalRoot.field("Content-Type")?.rawValue)
        XCTAssertEqual(mime.root.children[1].text(in: result), Self.text.replacingOccurrences(of: "\n", with: "\r\n"))
    }

    func testSMIMEAndInlinePGPAreSignedToo() {
        let smime = Fixture.crlf(head + "Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\nContent-Transfer-Encoding: base64\n\nMIIBCgYJKoZIhvcNAQcDoIIB+zCCAfcCAQAx\n")
        XCTAssertEqual(stamp(smime).0, .signedSkipped(profile: "corp"))
        let pgp = Fixture.crlf(head + "\n-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nHello.\n-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n")
        XCTAssertEqual(stamp(pgp).0, .signedSkipped(profile: "corp"))
        // A signed message forwarded as an attachment is not: the text outside it is stamped.
        let forwarded = Fixture.crlf(head + "Content-Type: multipart/mixed; boundary=mix\n\n--mix\nContent-Type: text/plain\n\nFYI.\n--mix\nContent-Type: message/rfc822\n\nFrom: x@y.example\n" + Self.signed + "--mix--\n")
        XCTAssertEqual(stamp(forwarded).0, .stamped(profile: "corp", parts: 1))
    }

    func testAReplyQuotingTheDisclaimerGetsNoSecondOne() {
        let reply = Fixture.crlf(head + "Content-Type: text/plain\n\nThanks.\n\nOn Monday Bob wrote:\n> Hello.\n>\n> This e-mail is\n>   confidential. If you are not the\n> addressee, delete it.\n")
        let (outcome, result) = stamp(reply)
        XCTAssertEqual(outcome, .alreadyPresent(profile: "corp"))
        XCTAssertEqual(result, reply)
        // An HTML-only reply carrying it (escaped, with tags between the words) too.
        let html = Fixture.crlf(head + "Content-Type: text/html\n\n<p>Thanks.</p><blockquote>This e-mail is <b>confidential</b>.<br>If you are not the addressee, delete&nbsp;it.</blockquote>\n")
        XCTAssertEqual(stamp(html).0, .alreadyPresent(profile: "corp"))
    }

    func testStampingTwiceStampsOnce() {
        let original = Fixture.crlf(head + "Content-Type: multipart/alternative; boundary=a\n\n--a\nContent-Type: text/plain\n\nHi.\n--a\nContent-Type: text/html\n\n<b>Hi.</b>\n--a--\n")
        let (_, once) = stamp(original)
        let (outcome, twice) = stamp(once)
        XCTAssertEqual(outcome, .alreadyPresent(profile: "corp"))
        XCTAssertEqual(twice, once)
    }

    func testBrokenBoundariesStillStampTheTextAndKeepTheRest() throws {
        // No close delimiter, a stray delimiter of another boundary, an attachment cut short.
        let original = Fixture.crlf(head + "Content-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\nContent-Type: text/plain\n\nBody.\n--b2\nnot a part\n--b1\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\nAAEC\n")
        let (outcome, result) = stamp(original)
        XCTAssertEqual(outcome, .stamped(profile: "corp", parts: 1))
        let mime = MIMEMessage(parsing: result)
        XCTAssertEqual(mime.root.children.count, 2)
        XCTAssertEqual(mime.root.children[0].text(in: result), "Body.\r\n--b2\r\nnot a part\r\n\r\n" + Self.text.replacingOccurrences(of: "\n", with: "\r\n"))
        XCTAssertEqual(mime.root.children[1].decodedBody(in: result), [0, 1, 2])
    }

    func testUnwritableTransferEncodingLeavesTheMessage() {
        let original = Fixture.crlf(head + "Content-Type: text/plain\nContent-Transfer-Encoding: x-uuencode\n\nbegin 644 a\n`\nend\n")
        XCTAssertEqual(stamp(original).0, .unwritable(profile: "corp"))
    }

    func testProfileMatching() {
        let original = Fixture.crlf(head + "\nHello.\n")
        XCTAssertEqual(stamp(original, direction: .inbound).0, .noProfile, "outbound by default")
        XCTAssertEqual(stamp(original, sender: "eve@other.example").0, .noProfile)
        XCTAssertEqual(stamp(original, sender: "alice@Sales.Example.ORG").0, .stamped(profile: "corp", parts: 1), "subdomains, any case")
        XCTAssertEqual(stamp(original, sender: "").0, .noProfile, "the null sender has no domain")
        let external = DisclaimerProfile(name: "ext", senderDomains: ["example.org"], onlyExternalRecipients: true,
                                         internalDomains: ["example.org", "example.net"], text: "External.")
        XCTAssertEqual(stamp(original, profile: external, recipients: ["b@example.org", "c@mail.example.net"]).0, .noProfile)
        XCTAssertEqual(stamp(original, profile: external, recipients: ["b@example.org", "c@remote.example"]).0, .stamped(profile: "ext", parts: 1))
        let any = DisclaimerProfile(name: "any", directions: [.inbound, .internal], text: "Any.")
        XCTAssertEqual(stamp(original, profile: any, sender: "x@y.example", direction: .internal).0, .stamped(profile: "any", parts: 1))
        XCTAssertEqual(stamp(original, profile: any, direction: .outbound).0, .noProfile)
    }

    func testTooBigMessagesPassUnchanged() {
        let inspector = DisclaimerInspector(profiles: [Self.profile])
        var message = Fixture.message(Fixture.crlf(head + "\nHello.\n"))
        message.isTruncated = true
        XCTAssertEqual(inspector.stamp(message).0, .tooBig)
    }

    func testTheFilterNeverRefuses() async {
        let filter = InspectingFilter(DisclaimerInspector(profiles: [Self.profile]))
        let transaction = filter.makeTransaction(Fixture.connection())
        _ = await transaction.mailFrom("alice@example.org", parameters: [:])
        _ = await transaction.rcptTo("bob@remote.example", parameters: [:])
        _ = await transaction.headers([("Subject", "hi")], raw: [" hi"])
        _ = await transaction.body(Array("Hello.\r\n".utf8))
        let (verdict, modifications) = await transaction.endOfMessage()
        XCTAssertEqual(verdict, .continue)
        XCTAssertEqual(modifications, [.editBody(range: 0..<8, bytes: Array("Hello.\r\n\r\nThis e-mail is confidential.\r\nIf you are not the addressee, delete it.\r\n".utf8))])
    }
}
