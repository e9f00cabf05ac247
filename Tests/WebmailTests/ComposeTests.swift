import Foundation
import PluginAPI
import XCTest
@testable import PosternWebmailCore

/// What compose writes and reads: the message bytes (read back with the MIME parser the read
/// page uses), form uploads, typed address lists, search commands and quoting.
final class ComposeTests: XCTestCase {
    func message(attachments: [OutgoingMessage.Attachment] = []) -> OutgoingMessage {
        OutgoingMessage(from: "alice@example.org", fromName: "Alice Müller", to: ["bob@example.net"], cc: ["carol@example.net"],
                        bcc: ["dave@example.net"], subject: "Grüße aus Köln", body: "Hallo Bob,\nbis bald.\n.\nEnde",
                        inReplyTo: "<m1@example.net>", references: ["<m0@example.net>", "<m1@example.net>"],
                        attachments: attachments, messageID: "<new@example.org>", date: Date(timeIntervalSince1970: 1_780_000_000))
    }

    func testAMessageReadsBackAsWritten() {
        let pdf = OutgoingMessage.Attachment(filename: "Bericht für Q4.pdf", mimeType: "application/pdf", data: Array("%PDF-1.4 data".utf8))
        let raw = message(attachments: [pdf]).rendered(includeBcc: false)
        let text = String(decoding: raw, as: UTF8.self)
        XCTAssertFalse(text.contains("dave@example.net"), "the sent copy never carries Bcc")
        XCTAssertTrue(raw.allSatisfy { $0 < 0x80 }, "8-bit text is encoded")
        XCTAssertFalse(text.split(separator: "\r\n", omittingEmptySubsequences: false).contains { $0.utf8.count > 998 })
        let view = MessageView(raw: raw)
        XCTAssertEqual(view.subject, "Grüße aus Köln")
        XCTAssertEqual(view.from, "Alice Müller <alice@example.org>")
        XCTAssertEqual(view.toAddresses, ["bob@example.net"])
        XCTAssertEqual(view.ccAddresses, ["carol@example.net"])
        XCTAssertEqual(view.messageID, "<new@example.org>")
        XCTAssertEqual(view.body, MessageView.Body.plain("Hallo Bob,\r\nbis bald.\r\n.\r\nEnde\r\n"))
        XCTAssertEqual(view.attachments.map(\.filename), ["Bericht für Q4.pdf"])
        XCTAssertEqual(view.attachments.first?.mimeType, "application/pdf")
        XCTAssertTrue(text.contains("In-Reply-To: <m1@example.net>\r\n"))
        XCTAssertTrue(text.contains("References: <m0@example.net>\r\n <m1@example.net>\r\n"))
        let part = MessageView.part(view.attachments[0].part, of: raw)!
        XCTAssertEqual(MessageView.decodedBody(part, raw), Array("%PDF-1.4 data".utf8))
    }

    func testDraftCopiesKeepBccAndRecipientsAreUnique() {
        var m = message()
        XCTAssertTrue(String(decoding: m.rendered(includeBcc: true), as: UTF8.self).contains("Bcc: dave@example.net\r\n"))
        m.cc = ["BOB@example.net"]
        XCTAssertEqual(m.recipients, ["bob@example.net", "dave@example.net"])
    }

    func testHeaderInjectionIsImpossible() {
        var m = message()
        m.subject = "hi\r\nBcc: victim@example.com"
        m.fromName = "Eve\r\nX-Evil: 1"
        let text = String(decoding: m.rendered(includeBcc: false), as: UTF8.self)
        XCTAssertFalse(text.contains("\r\nBcc: victim"))
        XCTAssertFalse(text.contains("\r\nX-Evil"))
        XCTAssertEqual(OutgoingMessage.nameParameter("filename", "a\"b\r\n.txt"), "; filename=\"a\\\"b.txt\"")
        XCTAssertEqual(OutgoingMessage.safeType("text/html; charset=x"), "application/octet-stream")
        XCTAssertEqual(OutgoingMessage.safeType("Image/PNG"), "image/png")
    }

    func testFormDataFromBytes() throws {
        let body = Array(("--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\ntok\r\n"
            + "--XyZ\r\nContent-Disposition: form-data; name=\"body\"\r\n\r\nline 1\r\nline 2 ü\r\n"
            + "--XyZ\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n")
            .utf8) + [0, 1, 2, 13, 10, 255] + Array(("\r\n--XyZ\r\nContent-Disposition: form-data; name=\"files\"; filename=\"\"\r\n"
            + "Content-Type: application/octet-stream\r\n\r\n\r\n--XyZ--\r\n").utf8)
        let form = try XCTUnwrap(FormData(contentType: "multipart/form-data; boundary=XyZ", body: body))
        XCTAssertEqual(form.fields["csrf"], "tok")
        XCTAssertEqual(form.fields["body"], "line 1\r\nline 2 ü")
        XCTAssertEqual(form.files.count, 1, "an empty file input is no file")
        XCTAssertEqual(form.files.first?.data, [0, 1, 2, 13, 10, 255])
        XCTAssertEqual(form.files.first?.filename, "a.bin")
        XCTAssertNil(FormData(contentType: "application/x-www-form-urlencoded", body: body))
        XCTAssertNil(FormData(contentType: "multipart/form-data", body: body), "no boundary")
        // Truncated and garbled bodies parse to what can be read, never crash.
        for n in stride(from: 0, to: body.count, by: 7) { _ = FormData(contentType: "multipart/form-data; boundary=XyZ", body: Array(body[..<n])) }
        XCTAssertEqual(MessageView.filename(fromUpload: "C:\\Users\\x\\..\\evil.exe"), "evil.exe")
        XCTAssertEqual(MessageView.filename(fromUpload: "../"), "attachment")
    }

    func testAddressFields() {
        XCTAssertEqual(try AddressField.parse("Bob <bob@example.net>, carol@example.net; ").get(), ["bob@example.net", "carol@example.net"])
        XCTAssertEqual(try AddressField.parse("").get(), [])
        XCTAssertEqual(AddressField.parse("bob@example.net, not an address"), .failure(AddressFieldError(text: "not an address")))
        XCTAssertEqual(AddressField.parse("bob"), .failure(AddressFieldError(text: "bob")), "a domain is required")
    }

    func testSearchCommands() {
        func text(_ parts: [IMAPCommandPart]) -> String {
            parts.map { part -> String in
                switch part {
                case .text(let t): return t
                case .literal(let b): return "{\(b.count)}" + String(decoding: b, as: UTF8.self)
                }
            }.joined()
        }
        XCTAssertEqual(text(MailSearch(text: "", field: .all).arguments), "UID SEARCH CHARSET UTF-8 ALL")
        XCTAssertEqual(text(MailSearch(text: "hello", field: .subject).arguments), "UID SEARCH CHARSET UTF-8 SUBJECT \"hello\"")
        XCTAssertEqual(text(MailSearch(text: "a b", field: .from, since: "1-Dec-2026", before: nil).arguments),
                       "UID SEARCH CHARSET UTF-8 FROM \"a\" FROM \"b\" SINCE 1-Dec-2026")
        XCTAssertEqual(text(MailSearch(text: "grüße", field: .body).arguments), "UID SEARCH CHARSET UTF-8 BODY {7}grüße")
        XCTAssertEqual(text(MailSearch(text: "x", field: .all).arguments),
                       "UID SEARCH CHARSET UTF-8 OR OR OR SUBJECT \"x\" FROM \"x\" TO \"x\" BODY \"x\"")
        XCTAssertEqual(Webmail.imapDate("2026-12-05"), "5-Dec-2026")
        XCTAssertNil(Webmail.imapDate("2026-13-05"))
        XCTAssertNil(Webmail.imapDate("12/05/2026"))
    }

    func testQuotingAndTheTextOfHTML() {
        XCTAssertEqual(Webmail.quoted("a\n> b\n"), "> a\n>> b\n> ")
        XCTAssertEqual(Webmail.prefixed("Re:", "RE: x"), "RE: x")
        XCTAssertEqual(Webmail.prefixed("Re:", "x"), "Re: x")
        XCTAssertEqual(HTMLText.text(of: "<style>p{}</style><p>Hello <b>you</b></p><div>Line 2<br>Line 3</div><script>x()</script>"),
                       "Hello you\nLine 2\nLine 3")
    }
}
