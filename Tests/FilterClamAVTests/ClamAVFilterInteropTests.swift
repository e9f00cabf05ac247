import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest

// The real `postern` with the filter-clamav plugin in front of a real clamd (ClamdFixture), mail
// sent with Python's smtplib: one listener per direction, each direction with its own action
// (inbound rejects, outbound quarantines, internal cleanses). clamd not installed fails the
// class (scripts/install-deps.sh test installs it), never skips it.

final class ClamAVFilterInteropTests: XCTestCase {
    static let rig = PeerRig("clamav-filter")
    static var work: TempDir { rig.work }

    override class func setUp() {
        super.setUp()
        do {
            let clamd = try ClamdFixture(work)
            rig.peers.append(clamd.process)
            // Over the Unix socket (the inspector tests use TCP).
            rig.server = try FilterServer("clamav-filter", plugins: """
                [plugin.filter-clamav]
                clamd = "unix:\(clamd.socket)"
                outbound_action = "quarantine"
                internal_action = "cleanse"
                """, listeners: [
                    ("mx", "filters = [\"clamav\"]\ndirection = \"inbound\""),
                    ("hold", "filters = [\"clamav\"]\ndirection = \"outbound\""),
                    ("cleanse", "filters = [\"clamav\"]\ndirection = \"internal\""),
                ])
        } catch {
            rig.setupError = error
        }
    }

    override class func tearDown() {
        rig.tearDown()
        super.tearDown()
    }

    func running() throws -> FilterServer { try Self.rig.running() }

    /// Sends on `listener`; asserts the DATA reply (this text, or starting with it when it ends
    /// in a space) and the number of messages queued by it; returns them.
    @discardableResult
    func send(_ listener: String, _ message: String, expect reply: String, queues: Int, file: StaticString = #filePath, line: UInt = #line) throws -> [[UInt8]] {
        let s = try running()
        let before = try s.queued().count
        let output = try s.send(listener, message: message)
        if reply.hasSuffix(" ") {
            XCTAssertTrue(dataLine(output).hasPrefix(reply), output, file: file, line: line)
        } else {
            XCTAssertEqual(dataLine(output), reply, output, file: file, line: line)
        }
        let queued = try s.queued()
        XCTAssertEqual(queued.count, before + queues, "queued", file: file, line: line)
        return Array(queued.suffix(queues))
    }

    // MARK: - Found, whatever the encoding

    func testEICARInAPlainBodyIsRejected() throws {
        try send("mx", Fixtures.plain("plain", body: "Hello.\n\(Signatures.eicar)\nBye."),
                 expect: "DATA 554 5.7.1 message refused: virus Eicar-Test-Signature.UNOFFICIAL found", queues: 0)
    }

    func testEICARBase64AttachmentIsRejected() throws {
        try send("mx", Fixtures.withAttachment("invoice", bytes: Array(Signatures.eicar.utf8)),
                 expect: "DATA 554 5.7.1 message refused: virus Eicar-Test-Signature.UNOFFICIAL found", queues: 0)
    }

    func testEICARQuotedPrintableIsRejected() throws {
        let message = Fixtures.headers("qp", extra: "MIME-Version: 1.0\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n")
            + "\n" + Fixtures.eicarQuotedPrintable + "\n"
        XCTAssertFalse(message.contains(Signatures.eicar), "the fixture must hide EICAR's bytes")
        try send("mx", message, expect: "DATA 554 5.7.1 message refused: virus Eicar-Test-Signature.UNOFFICIAL found", queues: 0)
    }

    func testUUEncodedEICARInTheBodyIsRejected() throws {
        let message = Fixtures.plain("uu", body: "An old-style attachment:\n\n" + Fixtures.uuencode(Array(Signatures.eicar.utf8), name: "eicar.com") + "\nRegards.")
        XCTAssertFalse(message.contains(Signatures.eicar))
        try send("mx", message, expect: "DATA 554 5.7.1 message refused: virus Eicar-Test-Signature.UNOFFICIAL found", queues: 0)
    }

    func testEICARInsideAForwardedMessageInsideMultipartIsRejected() throws {
        let message = Fixtures.headers("fwd", extra: "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"outer\"\n") + """

            --outer
            Content-Type: text/plain

            Forwarded below.
            --outer
            Content-Type: message/rfc822

            \(Fixtures.withAttachment("the original", bytes: Array(Signatures.eicar.utf8)))
            --outer--

            """
        try send("mx", message, expect: "DATA 554 5.7.1 message refused: virus Eicar-Test-Signature.UNOFFICIAL found", queues: 0)
    }

    func testTheTestsOwnPatternAndFileHashAreFound() throws {
        try send("mx", Fixtures.plain("pattern", body: "text \(Signatures.pattern) text"),
                 expect: "DATA 554 5.7.1 message refused: virus Postern.Test.Pattern.UNOFFICIAL found", queues: 0)
        // A file-hash signature matches only the attachment's exact decoded bytes.
        try send("mx", Fixtures.withAttachment("hashed", name: "report.bin", bytes: Signatures.hashedFile),
                 expect: "DATA 554 5.7.1 message refused: virus Postern.Test.FileHash.UNOFFICIAL found", queues: 0)
    }

    // MARK: - Clean mail

    func testCleanMessagePassesByteForByteWithTheScanHeaders() throws {
        let message = Fixtures.withAttachment("clean", name: "notes.txt", bytes: Array("nothing to see\n".utf8), type: "text/plain")
        let queued = try XCTUnwrap(try send("mx", message, expect: "DATA 250 ", queues: 1).first)
        let sent = Array(message.replacingOccurrences(of: "\n", with: "\r\n").utf8)
        let headerEnd = try XCTUnwrap(find(sent, [13, 10, 13, 10]))
        // Postern's Received field, the message's fields as sent, the two fields added last, the body as sent.
        let expected = Array(sent[..<(headerEnd + 2)]) + Array("X-Virus-Scanned: ClamAV at mx.test.example\r\nX-Virus-Status: Clean\r\n".utf8)
            + Array(sent[(headerEnd + 2)...])
        let start = try XCTUnwrap(find(queued, Array("From: sender@remote.example\r\n".utf8)))
        XCTAssertTrue(queued.starts(with: Array("Received: ".utf8)))
        XCTAssertEqual(String(decoding: queued[start...], as: UTF8.self), String(decoding: expected, as: UTF8.self))
        XCTAssertEqual(Array(queued[start...]), expected)
    }

    func testFieldsTheSenderWroteAreReplaced() throws {
        let message = Fixtures.headers("forged", extra: "X-Virus-Status: Clean\nX-Virus-Scanned: by the sender\n") + "\nhello\n"
        let queued = String(decoding: try XCTUnwrap(try send("mx", message, expect: "DATA 250 ", queues: 1).first), as: UTF8.self)
        XCTAssertFalse(queued.contains("by the sender"), queued)
        XCTAssertEqual(queued.components(separatedBy: "X-Virus-Status:").count, 2, queued)
        XCTAssertTrue(queued.contains("X-Virus-Scanned: ClamAV at mx.test.example\r\nX-Virus-Status: Clean\r\n\r\nhello\r\n"), queued)
    }

    // MARK: - Actions

    func testQuarantineHoldsTheMessageWithTheVirusAsReason() throws {
        let s = try running()
        let before = try s.queuedEntries().count
        let output = try s.send("hold", message: Fixtures.withAttachment("outgoing", bytes: Array(Signatures.eicar.utf8)))
        XCTAssertTrue(dataLine(output).hasPrefix("DATA 250 "), output)
        let entries = try s.queuedEntries()
        XCTAssertEqual(entries.count, before + 1)
        let entry = try XCTUnwrap(entries.first { ($0.summary["holdReason"] as? String)?.contains("Eicar") == true })
        XCTAssertEqual(entry.summary["holdReason"] as? String, "virus Eicar-Test-Signature.UNOFFICIAL found")
        let text = String(decoding: entry.message, as: UTF8.self)
        XCTAssertTrue(text.contains("X-Virus-Status: Infected (Eicar-Test-Signature.UNOFFICIAL)\r\n"), text)
        // Held as received: the attachment is still there for the administrator.
        XCTAssertTrue(text.contains(Fixtures.base64(Array(Signatures.eicar.utf8)).replacingOccurrences(of: "\n", with: "\r\n")), text)
    }

    func testCleanseRemovesTheInfectedAttachmentAndLeavesValidMIME() throws {
        let message = Fixtures.headers("cleanse", extra: "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n") + """

            --b1
            Content-Type: text/plain; charset=us-ascii

            Two attachments, one infected.
            --b1
            Content-Type: application/octet-stream
            Content-Disposition: attachment; filename*=utf-8''%C3%A9icar%20copy.com
            Content-Transfer-Encoding: base64

            \(Fixtures.base64(Array(Signatures.eicar.utf8)))
            --b1
            Content-Type: text/plain; name="keep.txt"
            Content-Disposition: attachment; filename="keep.txt"

            kept
            --b1--

            """
        let queued = try XCTUnwrap(try send("cleanse", message, expect: "DATA 250 ", queues: 1).first)
        let text = String(decoding: queued, as: UTF8.self)
        XCTAssertFalse(text.contains(Fixtures.base64(Array(Signatures.eicar.utf8)).trimmingCharacters(in: .newlines)), text)
        XCTAssertTrue(text.contains("X-Virus-Status: Cleaned (Eicar-Test-Signature.UNOFFICIAL removed)\r\n"), text)
        // Python's email package finds no defect, and the parts are the text, the notice, the kept file.
        let parts = try pythonParts(queued)
        XCTAssertEqual(parts, [
            "multipart/mixed None defects=0",
            "text/plain None defects=0 Two attachments, one infected.",
            "text/plain None defects=0 The attachment \"\u{e9}icar copy.com\" (application/octet-stream) was removed by the mail server's virus scanner: it contained the virus Eicar-Test-Signature.UNOFFICIAL.",
            "text/plain keep.txt defects=0 kept",
        ], text)
        // Scanned again, the queued message is clean.
        let again = try send("mx", String(decoding: queued, as: UTF8.self).replacingOccurrences(of: "\r\n", with: "\n"), expect: "DATA 250 ", queues: 1)
        XCTAssertEqual(again.count, 1)
    }

    func testCleanseInANestedMessageRemovesOnlyThatPart() throws {
        let message = Fixtures.headers("nested", extra: "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"outer\"\n") + """

            --outer
            Content-Type: text/plain

            Forwarded below.
            --outer
            Content-Type: message/rfc822

            \(Fixtures.withAttachment("the original", bytes: Array(Signatures.eicar.utf8)))
            --outer--

            """
        let queued = try XCTUnwrap(try send("cleanse", message, expect: "DATA 250 ", queues: 1).first)
        let parts = try pythonParts(queued)
        XCTAssertEqual(parts.map { $0.components(separatedBy: " defects=")[0] }, [
            "multipart/mixed None", "text/plain None", "message/rfc822 None", "multipart/mixed None", "text/plain None", "text/plain None",
        ], String(decoding: queued, as: UTF8.self))
        XCTAssertTrue(parts.allSatisfy { $0.contains("defects=0") }, "\(parts)")
        XCTAssertTrue(parts.last?.contains("The attachment \"eicar.com\"") == true, "\(parts)")
    }

    func testCleanseCutsAUUEncodedFileOutOfThePlainBody() throws {
        let message = Fixtures.plain("uu", body: "Before.\n" + Fixtures.uuencode(Array(Signatures.eicar.utf8), name: "eicar.com") + "After.")
        let queued = String(decoding: try XCTUnwrap(try send("cleanse", message, expect: "DATA 250 ", queues: 1).first), as: UTF8.self)
        XCTAssertTrue(queued.hasSuffix("\r\n\r\nBefore.\r\n[uuencoded file eicar.com removed by the mail server's virus scanner: it contained Eicar-Test-Signature.UNOFFICIAL]\r\nAfter.\r\n"), queued)
        XCTAssertFalse(queued.contains("begin 644"), queued)
    }

    func testCleanseRefusesWhatCannotBeRemovedAlone() throws {
        // The message's only part.
        try send("cleanse", Fixtures.plain("single", body: Signatures.eicar),
                 expect: "DATA 554 5.7.1 message refused: virus Eicar-Test-Signature.UNOFFICIAL found", queues: 0)
        // Found in the message as a whole only (a header field): no part to remove.
        try send("cleanse", Fixtures.headers("raw", extra: "\(Signatures.headerOnly): yes\n") + "\nhello\n",
                 expect: "DATA 554 5.7.1 message refused: virus Postern.Test.HeaderMarker.UNOFFICIAL found", queues: 0)
    }

    // MARK: - clamd's limits, metrics

    func testOverClamdsStreamMaxLengthIsTempfailedAndLogged() throws {
        // clamd here takes 1 MiB: 1.5 MiB of text is refused by clamd, not by the filter.
        let line = String(repeating: "0123456789abcdef", count: 4) + "\n"
        try send("mx", Fixtures.plain("big", body: String(repeating: line, count: 24 * 1024)),
                 expect: "DATA 451 4.7.1 virus scanner unavailable, try again later", queues: 0)
        let log = try running().server.log
        XCTAssertTrue(log.contains("over its StreamMaxLength"), log)
    }

    func testVirusesAreCounted() throws {
        try send("mx", Fixtures.plain("count", body: Signatures.eicar), expect: "DATA 554 5.7.1 message refused: virus Eicar-Test-Signature.UNOFFICIAL found", queues: 0)
        let metrics = try running().metrics()
        let line = metrics.split(separator: "\n").first { $0.hasPrefix("postern_clamav_viruses_found_total{") && $0.contains("direction=\"inbound\"") }
        let value = try XCTUnwrap(line.flatMap { Double($0.split(separator: " ").last ?? "") }, metrics)
        XCTAssertGreaterThanOrEqual(value, 1)
        XCTAssertTrue(metrics.contains("postern_clamav_messages_scanned_total"), metrics)
    }

    // MARK: - Helpers

    func find(_ haystack: [UInt8], _ needle: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        return (0...(haystack.count - needle.count)).first { haystack[$0..<($0 + needle.count)].elementsEqual(needle) }
    }

    /// Each part as Python's email package sees it: type, file name, defects, first text line.
    func pythonParts(_ message: [UInt8]) throws -> [String] {
        let file = Self.work.write("parsed-\(UUID().uuidString.prefix(6)).eml", message)
        let script = Self.work.write("parts.py", """
            import email, sys
            m = email.message_from_bytes(open(sys.argv[1], "rb").read())
            for p in m.walk():
                line = "%s %s defects=%d" % (p.get_content_type(), p.get_filename(), len(p.defects))
                if not p.is_multipart() and p.get_content_maintype() == "text":
                    text = p.get_payload(decode=True).decode(p.get_content_charset() or "ascii", "replace").strip()
                    line += " " + text.splitlines()[0] if text else ""
                print(line)
            """)
        let (code, output) = Build.run(try Build.tool("python3"), [script, file])
        guard code == 0 else { throw SystemError.message("parts.py: \(output)") }
        return output.split(separator: "\n").map(String.init)
    }
}
