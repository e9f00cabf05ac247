import PluginAPI
@testable import PosternFilterAttachmentsCore
import XCTest

/// The inspector on whole messages, byte for byte: verdicts and reply texts, file names in
/// every encoding, malformed structure, uuencode, and cleansed messages parsed again.
final class MIMEFixtureTests: XCTestCase {
    let exe64 = Fixture.base64(Fixture.windowsExecutable)

    func inspect(_ bytes: [UInt8], _ settings: AttachmentSettings = AttachmentSettings(), recipients: [String] = ["rcpt@example.org"],
                 truncated: Bool = false) async -> (FilterVerdict, [FilterModification]) {
        var message = Fixture.message(bytes, recipients: recipients)
        if truncated { message.isTruncated = true }
        return await Fixture.inspector(settings).inspect(message)
    }

    func mixed(_ attachmentHeader: String, body: String? = nil, boundary: String = "XyZ") -> [UInt8] {
        Fixture.latin1("""
            From: a@remote.example
            To: rcpt@example.org
            Subject: files
            MIME-Version: 1.0
            Content-Type: multipart/mixed; boundary="\(boundary)"

            preamble
            --\(boundary)
            Content-Type: text/plain; charset=us-ascii

            See the attachment.
            --\(boundary)
            \(attachmentHeader)
            Content-Transfer-Encoding: base64

            \(body ?? exe64)
            --\(boundary)--
            epilogue

            """)
    }

    func reply(_ verdict: FilterVerdict) -> String? {
        if case .reject(let r) = verdict { return r.description }
        return nil
    }

    func testDoubleExtensionIsRejectedWithTheFileAndTheReason() async {
        let (verdict, mods) = await inspect(mixed("Content-Type: application/pdf; name=\"invoice.pdf.exe\"\nContent-Disposition: attachment; filename=\"invoice.pdf.exe\""))
        XCTAssertEqual(reply(verdict), "554 5.7.1 attachment \"invoice.pdf.exe\" refused: executable file type")
        XCTAssertEqual(mods, [])
    }

    func testCleanMessagePassesUntouched() async {
        let (verdict, mods) = await inspect(mixed("Content-Type: application/pdf\nContent-Disposition: attachment; filename=report.pdf",
                                                  body: Fixture.base64(Fixture.pdf)))
        XCTAssertEqual(verdict, .continue)
        XCTAssertEqual(mods, [])
    }

    func testRFC2231FileNamesAndContinuations() async {
        let utf8 = mixed("Content-Type: application/octet-stream\nContent-Disposition: attachment; filename*=UTF-8''%E2%82%AC-Rechnung.pdf.EXE")
        let (v1, _) = await inspect(utf8)
        XCTAssertEqual(reply(v1), "554 5.7.1 attachment \"?-Rechnung.pdf.EXE\" refused: executable file type")
        // Sections, one of them percent-encoded, and a charset that is not UTF-8.
        let sections = mixed("Content-Type: application/octet-stream\nContent-Disposition: attachment;\n filename*0*=iso-8859-1''r%E9sum;\n filename*1=\"e.pdf.s\";\n filename*2=\"cr\"")
        let (v2, _) = await inspect(sections)
        XCTAssertEqual(reply(v2), "554 5.7.1 attachment \"r?sume.pdf.scr\" refused: executable file type")
        // RFC 2047 in a plain parameter (what many clients send), on Content-Type's name.
        let encodedWord = mixed("Content-Type: application/octet-stream; name=\"=?UTF-8?B?SW52b2ljZS5iYXQ=?=\"")
        let (v3, _) = await inspect(encodedWord)
        XCTAssertEqual(reply(v3), "554 5.7.1 attachment \"Invoice.bat\" refused: executable file type")
    }

    func testTrailingDotsAndSpacesDoNotHideTheExtension() async {
        let (verdict, _) = await inspect(mixed("Content-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"setup.exe. . \""))
        XCTAssertEqual(reply(verdict), "554 5.7.1 attachment \"setup.exe. . \" refused: executable file type")
    }

    func testLatin1FileNameWithoutRFC2231() async {
        // Raw Latin-1 bytes in a quoted string: no charset said, so not UTF-8 means Latin-1.
        let bytes = mixed("Content-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"r\u{e9}sum\u{e9}.cmd\"")
        XCTAssertTrue(bytes.contains(0xe9))
        let (verdict, _) = await inspect(bytes)
        XCTAssertEqual(reply(verdict), "554 5.7.1 attachment \"r?sum?.cmd\" refused: executable file type")
    }

    func testContentThatContradictsItsDeclaredType() async {
        let (verdict, _) = await inspect(mixed("Content-Type: image/png; name=photo.png\nContent-Disposition: inline; filename=photo.png"))
        XCTAssertEqual(reply(verdict), "554 5.7.1 attachment \"photo.png\" refused: content does not match its declared type (content is a Windows executable, not the image it claims to be)")
        let (fine, _) = await inspect(mixed("Content-Type: image/png; name=photo.png", body: Fixture.base64(Fixture.png)))
        XCTAssertEqual(fine, .continue)
    }

    func testBrokenBoundariesStillExposeTheAttachment() async {
        // No close delimiter, and a preamble line that only looks like a boundary.
        let noClose = Fixture.crlf("""
            From: a@remote.example
            MIME-Version: 1.0
            Content-Type: multipart/mixed; boundary="b1"

            --b1x not a delimiter
            --b1
            Content-Type: text/plain

            text
            --b1
            Content-Type: application/octet-stream; name="run.vbs"

            MsgBox "hi"

            """)
        let (v1, _) = await inspect(noClose)
        XCTAssertEqual(reply(v1), "554 5.7.1 attachment \"run.vbs\" refused: executable file type")
        // A multipart without a boundary parameter is one leaf: its declared type is all there is.
        let noBoundary = Fixture.crlf("""
            From: a@remote.example
            MIME-Version: 1.0
            Content-Type: multipart/mixed

            --zz
            Content-Type: application/octet-stream; name="run.exe"

            \(exe64)
            --zz--

            """)
        let (v2, _) = await inspect(noBoundary)
        XCTAssertEqual(v2, .continue, "nothing in it is a part: no file name, no type of a program")
    }

    func testZipAttachmentWithAnExecutableAndAnEncryptedOne() async throws {
        let zip = try Fixture.zip([("docs/a.txt", [65]), ("docs/b.js", Array("x()".utf8))])
        let (v1, _) = await inspect(mixed("Content-Type: application/zip; name=docs.zip", body: Fixture.base64(zip)))
        XCTAssertEqual(reply(v1), "554 5.7.1 attachment \"docs.zip\" refused: executable file type in archive (member docs/b.js)")
        let locked = Fixture.markedEncrypted(try Fixture.zip([("a.txt", [65])], compressed: false))
        let (v2, _) = await inspect(mixed("Content-Type: application/zip; name=locked.zip", body: Fixture.base64(locked)))
        XCTAssertEqual(v2, .quarantine(reason: "attachment \"locked.zip\" (rule unreadable-archive): archive cannot be checked: archive has encrypted members"))
        var rejectUnreadable = AttachmentSettings()
        rejectUnreadable.unreadableArchiveAction = .reject
        let (v3, _) = await inspect(mixed("Content-Type: application/zip; name=locked.zip", body: Fixture.base64(locked)), rejectUnreadable)
        XCTAssertEqual(reply(v3), "554 5.7.1 attachment \"locked.zip\" refused: archive cannot be checked: archive has encrypted members")
    }

    func testRejectOutweighsRemove() async {
        let settings = AttachmentSettings(rules: [AttachmentRule(name: "strip-docm", extensions: ["docm"], action: .remove)] + AttachmentRule.defaults)
        let bytes = Fixture.crlf("""
            Content-Type: multipart/mixed; boundary=b

            --b
            Content-Type: application/octet-stream; name=macro.docm

            x
            --b
            Content-Type: application/octet-stream; name=run.exe

            x
            --b--

            """)
        let (verdict, mods) = await inspect(bytes, settings)
        XCTAssertEqual(reply(verdict), "554 5.7.1 attachment \"run.exe\" refused: executable file type")
        XCTAssertEqual(mods, [])
    }

    func testQuarantineRule() async {
        let settings = AttachmentSettings(rules: [AttachmentRule(name: "hold-exe", extensions: ["exe"], action: .quarantine, reason: "program for review")])
        let (verdict, _) = await inspect(mixed("Content-Type: application/octet-stream; name=tool.exe"), settings)
        XCTAssertEqual(verdict, .quarantine(reason: "attachment \"tool.exe\" (rule hold-exe): program for review"))
    }

    // MARK: cleansing

    static let strip = AttachmentSettings(rules: [AttachmentRule(name: "strip", extensions: ["exe", "scr"], action: .remove,
                                                                 reason: "executable file type")])

    func testRemovedPartIsReplacedByANoticeAndTheRestIsUnchanged() async throws {
        let original = mixed("Content-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"invoice.pdf.exe\"")
        let (verdict, mods) = await inspect(original, Self.strip)
        XCTAssertEqual(verdict, .continue)
        let cleansed = Fixture.applying(mods, to: original)
        let mime = MIMEMessage(parsing: cleansed)
        XCTAssertEqual(mime.problems, [])
        let parts = mime.root.allParts
        XCTAssertEqual(parts.map(\.contentType.mimeType), ["multipart/mixed", "text/plain", "text/plain"])
        XCTAssertEqual(parts[1].text(in: cleansed), "See the attachment.")
        XCTAssertEqual(parts[2].text(in: cleansed),
                       "The attachment \"invoice.pdf.exe\" was removed from this message by the mail system: executable file type (rule strip).")
        XCTAssertEqual(parts[2].contentType.charset, "utf-8")
        XCTAssertNil(parts[2].fileName)
        // The header gains one field; everything around the replaced part is byte for byte the same.
        XCTAssertTrue(cleansed.contains("X-Postern-Attachments: removed \"invoice.pdf.exe\": executable file type\r\n"), cleansed.text)
        XCTAssertTrue(cleansed.text.hasSuffix("\r\n--XyZ--\r\nepilogue\r\n"), cleansed.text)
        XCTAssertTrue(cleansed.contains("\r\n\r\npreamble\r\n--XyZ\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nSee the attachment.\r\n--XyZ\r\n"))
        XCTAssertFalse(cleansed.contains(String(exe64.prefix(20))))
    }

    func testNestedMultipartsAndAnAttachedMessageAreCleansedAtEveryLevel() async throws {
        let original = Fixture.crlf("""
            From: a@remote.example
            MIME-Version: 1.0
            Content-Type: multipart/mixed; boundary="outer"

            --outer
            Content-Type: multipart/alternative; boundary="alt"

            --alt
            Content-Type: text/plain

            plain
            --alt
            Content-Type: text/html

            <p>html</p>
            --alt--

            --outer
            Content-Type: message/rfc822

            From: b@remote.example
            Subject: forwarded
            Content-Type: multipart/mixed; boundary="inner"

            --inner
            Content-Type: text/plain

            inner text
            --inner
            Content-Type: application/octet-stream; name="screensaver.scr"
            Content-Transfer-Encoding: base64

            \(exe64)
            --inner--

            --outer
            Content-Type: application/pdf; name="real.pdf"
            Content-Transfer-Encoding: base64

            \(Fixture.base64(Fixture.pdf))
            --outer
            Content-Type: application/octet-stream; name="tool.exe"
            Content-Transfer-Encoding: base64

            \(exe64)
            --outer--

            """)
        let (verdict, mods) = await inspect(original, Self.strip)
        XCTAssertEqual(verdict, .continue)
        let cleansed = Fixture.applying(mods, to: original)
        let mime = MIMEMessage(parsing: cleansed)
        XCTAssertEqual(mime.problems, [])
        let parts = mime.root.allParts
        XCTAssertEqual(parts.map(\.contentType.mimeType), [
            "multipart/mixed", "multipart/alternative", "text/plain", "text/html",
            "message/rfc822", "multipart/mixed", "text/plain", "text/plain", "application/pdf", "text/plain",
        ])
        XCTAssertTrue(parts[7].text(in: cleansed).hasPrefix("The attachment \"screensaver.scr\" was removed"))
        XCTAssertTrue(parts[9].text(in: cleansed).hasPrefix("The attachment \"tool.exe\" was removed"))
        XCTAssertEqual(parts[8].decodedBody(in: cleansed), Fixture.pdf)
        XCTAssertTrue(cleansed.contains("\r\n\r\nFrom: b@remote.example\r\nSubject: forwarded\r\n"), "the forwarded header stays")
        XCTAssertEqual(mods.filter { if case .addHeader = $0 { return true } else { return false } }.count, 2, "a field per removed file")
    }

    func testWholeMessageThatIsOneAttachmentBecomesTheNotice() async throws {
        let original = Fixture.crlf("""
            From: a@remote.example
            To: rcpt@example.org
            Subject: here
            MIME-Version: 1.0
            Content-Type: application/x-msdownload; name="update.exe"
            Content-Disposition: attachment; filename="update.exe"
            Content-Transfer-Encoding: base64

            \(exe64)

            """)
        let (verdict, mods) = await inspect(original, Self.strip)
        XCTAssertEqual(verdict, .continue)
        let cleansed = Fixture.applying(mods, to: original)
        let mime = MIMEMessage(parsing: cleansed)
        XCTAssertEqual(mime.problems, [])
        XCTAssertFalse(mime.root.isMultipart)
        XCTAssertEqual(mime.root.contentType.mimeType, "text/plain")
        XCTAssertNil(mime.root.contentDisposition)
        XCTAssertEqual(mime.root.contentTransferEncoding, "quoted-printable")
        XCTAssertTrue(mime.root.text(in: cleansed).hasPrefix("The attachment \"update.exe\" was removed"), cleansed.text)
        XCTAssertTrue(cleansed.text.hasPrefix("From: a@remote.example\r\nTo: rcpt@example.org\r\nSubject: here\r\nMIME-Version: 1.0\r\n"), cleansed.text)
    }

    func testUuencodedFileInALatin1TextIsCutOutOfTheText() async throws {
        let original = Fixture.latin1("""
            From: a@remote.example
            MIME-Version: 1.0
            Content-Type: text/plain; charset=iso-8859-1
            Content-Transfer-Encoding: 8bit

            Grüße vorher.
            \(Fixture.uuencode(Fixture.windowsExecutable, name: "game.exe"))Grüße nachher.

            """)
        XCTAssertTrue(original.contains(0xfc) && original.contains(0xdf), "Latin-1 bytes")
        // The default rules reject it, with the uuencoded name.
        let (rejected, _) = await inspect(original)
        XCTAssertEqual(reply(rejected), "554 5.7.1 attachment \"game.exe\" refused: executable file type")

        let (verdict, mods) = await inspect(original, Self.strip)
        XCTAssertEqual(verdict, .continue)
        let cleansed = Fixture.applying(mods, to: original)
        let mime = MIMEMessage(parsing: cleansed)
        XCTAssertEqual(mime.root.contentType.charset, "iso-8859-1")
        XCTAssertEqual(mime.root.text(in: cleansed), """
            Grüße vorher.\r
            The attachment "game.exe" was removed from this message by the mail system: executable file type (rule strip).\r
            Grüße nachher.\r

            """)
        XCTAssertTrue(UUEncodedFile.find(in: cleansed).isEmpty)
    }

    func testUuencodedFileInAQuotedPrintablePartIsReencoded() async throws {
        let uu = Fixture.uuencode(Fixture.windowsExecutable, name: "x.scr").replacingOccurrences(of: "=", with: "=3D")
        let original = Fixture.crlf("""
            Content-Type: multipart/mixed; boundary=b

            --b
            Content-Type: text/plain; charset=utf-8
            Content-Transfer-Encoding: quoted-printable

            caf=C3=A9
            \(uu)bye
            --b--

            """)
        let (_, mods) = await inspect(original, Self.strip)
        let cleansed = Fixture.applying(mods, to: original)
        let part = MIMEMessage(parsing: cleansed).root.children[0]
        XCTAssertEqual(part.contentTransferEncoding, "quoted-printable")
        XCTAssertEqual(part.text(in: cleansed), "café\r\nThe attachment \"x.scr\" was removed from this message by the mail system: executable file type (rule strip).\r\nbye")
    }

    func testTruncatedMessageIsQuarantinedRatherThanCleansed() async {
        let (verdict, mods) = await inspect(mixed("Content-Type: application/octet-stream; name=tool.exe"), Self.strip, truncated: true)
        XCTAssertEqual(verdict, .quarantine(reason: "attachment \"tool.exe\" (rule strip): executable file type (message too big to cleanse)"))
        XCTAssertEqual(mods, [])
    }

    func testScopedRuleFollowsTheEnvelope() async {
        let settings = AttachmentSettings(rules: [
            AttachmentRule(name: "strip-for-sales", extensions: ["exe"], scope: RuleScope(recipientDomains: ["sales.example.org"]), action: .remove),
        ])
        let bytes = mixed("Content-Type: application/octet-stream; name=tool.exe")
        let (_, forSales) = await inspect(bytes, settings, recipients: ["a@sales.example.org"])
        XCTAssertFalse(forSales.isEmpty)
        let (verdict, others) = await inspect(bytes, settings, recipients: ["a@example.org"])
        XCTAssertEqual(verdict, .continue)
        XCTAssertEqual(others, [])
    }
}
