import PluginAPI
import XCTest

/// What content filters build on: decoded part content, uuencoded files, and part changes turned
/// into filter modifications (checked by applying them the way the SMTP server does).
final class MIMERewriteTests: XCTestCase {
    func bytes(_ text: String) -> [UInt8] { Array(text.replacingOccurrences(of: "\n", with: "\r\n").utf8) }

    /// The message after `modifications`: header changes on the received block, then the body.
    func apply(_ modifications: [FilterModification], to message: [UInt8]) -> String {
        apply(byFilter: [("f", modifications)], to: message)
    }

    func apply(byFilter: [(filter: String, modifications: [FilterModification])], to message: [UInt8]) -> String {
        let block = MailHeaderBlock(parsing: message)
        let edits = MessageEdits(merging: byFilter)
        var out = ""
        for arranged in edits.arrange(receivedNames: block.fields.map(\.name)) {
            switch arranged {
            case .received(let i): out += block.fields[i].name + ":" + String(decoding: block.fields[i].rawValue, as: UTF8.self) + "\r\n"
            case .new(let f): out += f.name + ": " + f.value + "\r\n"
            }
        }
        return out + "\r\n" + String(decoding: edits.body(from: Array(message[block.bodyOffset...])), as: UTF8.self)
    }

    let mixed = """
        From: a@example.org
        Content-Type: multipart/mixed; boundary="outer"

        preamble
        --outer
        Content-Type: text/plain; charset=iso-8859-1
        Content-Transfer-Encoding: quoted-printable

        caf=E9
        --outer
        Content-Type: application/octet-stream; name="x.exe"
        Content-Disposition: attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf.exe
        Content-Transfer-Encoding: base64

        TVqQAAMAAAAEAAAA
        --outer--
        epilogue
        """

    func testDecodedContentTextAndFileNames() {
        let m = bytes(mixed)
        let mime = MIMEMessage(parsing: m)
        let text = mime.root.children[0], exe = mime.root.children[1]
        XCTAssertEqual(text.text(in: m), "café")
        XCTAssertEqual(Array(exe.decodedBody(in: m).prefix(2)), [0x4d, 0x5a], "MZ")
        XCTAssertEqual(exe.fileName, "résumé.pdf.exe", "RFC 2231 filename wins over name")
        XCTAssertNil(text.fileName)
        XCTAssertTrue(exe.isLeaf)
        XCTAssertFalse(mime.root.isLeaf)
    }

    func testRemovingAPartKeepsTheRestByteForByte() {
        let m = bytes(mixed)
        let mime = MIMEMessage(parsing: m)
        let changes = MIMERewrite.modifications([.replacePart(index: 2, bytes: MIMERewrite.textPart("removed: x.exe"))], message: m, mime: mime)
        let result = apply(changes, to: m)
        XCTAssertEqual(result, bytes("""
            From: a@example.org
            Content-Type: multipart/mixed; boundary="outer"

            preamble
            --outer
            Content-Type: text/plain; charset=iso-8859-1
            Content-Transfer-Encoding: quoted-printable

            caf=E9
            --outer
            Content-Type: text/plain; charset=utf-8
            Content-Transfer-Encoding: quoted-printable

            removed: x.exe
            --outer--
            epilogue
            """).map { String(Character(Unicode.Scalar($0))) }.joined())
        let again = MIMEMessage(parsing: Array(result.utf8))
        XCTAssertEqual(again.problems, [])
        XCTAssertEqual(again.root.children.map(\.contentType.mimeType), ["text/plain", "text/plain"])
    }

    func testAppendingAPartAndReplacingABody() {
        let m = bytes(mixed)
        let mime = MIMEMessage(parsing: m)
        let changes = MIMERewrite.modifications([.replaceBody(index: 1, bytes: Array("caf=E9 -- disclaimer".utf8)),
                                                 .appendPart(multipart: 0, bytes: MIMERewrite.textPart("notice"))], message: m, mime: mime)
        let again = MIMEMessage(parsing: Array(apply(changes, to: m).utf8))
        XCTAssertEqual(again.problems, [])
        XCTAssertEqual(again.root.children.map(\.contentType.mimeType), ["text/plain", "application/octet-stream", "text/plain"])
        let result = Array(apply(changes, to: m).utf8)
        XCTAssertEqual(again.root.children[0].text(in: result), "café -- disclaimer")
        XCTAssertEqual(again.root.children[2].text(in: result), "notice")
    }

    /// A change inside a part another change replaces is dropped; replacing the message's own
    /// part changes its content fields and its body, and leaves the other fields.
    func testOuterChangesWinAndTheTopPartChangesItsContentFields() {
        let m = bytes(mixed)
        let mime = MIMEMessage(parsing: m)
        let nested = MIMERewrite.modifications([.replacePart(index: 0, bytes: MIMERewrite.textPart("all gone")),
                                                .replacePart(index: 2, bytes: MIMERewrite.textPart("ignored"))], message: m, mime: mime)
        let result = apply(nested, to: m)
        XCTAssertEqual(result, "From: a@example.org\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nall gone")
        XCTAssertEqual(MIMERewrite.modifications([], message: m, mime: mime), [])
    }

    /// Two filters changing different parts of one message both get their change (an attachment
    /// removed by one, a disclaimer added to the text by another); overlapping changes go to the
    /// filter first in the chain, and so does a whole-body replacement.
    func testPartChangesOfSeveralFiltersMerge() {
        let m = bytes(mixed)
        let mime = MIMEMessage(parsing: m)
        let cleanse = MIMERewrite.modifications([.replacePart(index: 2, bytes: MIMERewrite.textPart("removed"))], message: m, mime: mime)
        let stamp = MIMERewrite.modifications([.replaceBody(index: 1, bytes: Array("caf=E9 -- disclaimer".utf8))], message: m, mime: mime)
        let both = Array(apply(byFilter: [("attachments", cleanse), ("disclaimer", stamp)], to: m).utf8)
        let parsed = MIMEMessage(parsing: both)
        XCTAssertEqual(parsed.problems, [])
        XCTAssertEqual(parsed.root.children.map { $0.text(in: both) }, ["café -- disclaimer", "removed"])

        let other = MIMERewrite.modifications([.replacePart(index: 2, bytes: MIMERewrite.textPart("virus removed"))], message: m, mime: mime)
        let edits = MessageEdits(merging: [("attachments", cleanse), ("clamav", other)])
        XCTAssertEqual(edits.bodyEdits.count, 1)
        XCTAssertEqual(edits.conflicts.count, 1)
        XCTAssertTrue(edits.conflicts[0].hasPrefix("clamav: change of body bytes"), edits.conflicts[0])
        let whole = MessageEdits(merging: [("attachments", cleanse), ("milter", [.replaceBody(Array("x".utf8))])])
        XCTAssertNil(whole.body, "the earlier filter's part change wins over a later whole-body replacement")
        XCTAssertEqual(whole.conflicts, ["milter: body replacement (body changed by attachments)"])
    }

    func testContainsUTF8() {
        XCTAssertTrue("a café here".containsUTF8("café"))
        XCTAssertTrue("abc".containsUTF8(""))
        XCTAssertFalse("ab".containsUTF8("abc"))
        XCTAssertFalse("a cafe here".containsUTF8("café"))
        XCTAssertTrue(String(repeating: "x", count: 100_000).appending("needle").containsUTF8("xneedle"))
    }

    func testUUEncodedFilesInAText() {
        // "Cat" uuencoded: `#0V%T` (3 bytes), a block without `end` runs to the end of the text.
        let text = Array("hello\r\nbegin 644 cat.txt\r\n#0V%T\r\n`\r\nend\r\nbye\r\nbegin 600 two.exe\n#35H`\n".utf8)
        let files = UUEncodedFile.find(in: text)
        XCTAssertEqual(files.map(\.name), ["cat.txt", "two.exe"])
        XCTAssertEqual(files[0].content, Array("Cat".utf8))
        XCTAssertEqual(files[0].mode, "644")
        XCTAssertEqual(String(decoding: text[files[0].range], as: UTF8.self), "begin 644 cat.txt\r\n#0V%T\r\n`\r\nend\r\n")
        XCTAssertEqual(files[1].content, [0x4d, 0x5a, 0x00])
        XCTAssertEqual(files[1].range.upperBound, text.count)
        // Not a begin line: no mode, a mode that is not octal, no name.
        XCTAssertEqual(UUEncodedFile.find(in: Array("begin here\nbegin 999 x\nbegin 644 \n".utf8)), [])
    }
}
