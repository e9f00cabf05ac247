import Foundation
import PluginAPI
import PosternTestSupport
import XCTest
@testable import PosternFilterArchiveCore

/// The rules, the journal report and the .eml writer on their own.
final class ArchiveUnitTests: XCTestCase {
    let connection = FilterConnection(peerAddress: "203.0.113.7", peerHostname: "client.remote.example", listener: "mx",
                                      direction: .inbound, localHostname: "mx.example.org", isSecure: false)

    func message(_ text: String, sender: String = "anna@remote.example", recipients: [String] = ["bob@example.org"],
                 direction: FilterDirection = .inbound) -> FilterMessage {
        var c = connection
        c.direction = direction
        c.transactionID = "T1"
        return FilterMessage(bytes: Array(text.replacingOccurrences(of: "\n", with: "\r\n").utf8), sender: sender,
                             recipients: recipients, connection: c)
    }

    func rules(_ toml: [String: [String: ConfigValue]]) throws -> [ArchiveRule] {
        try ArchiveConfig.rules(ConfigSection(toml.mapValues { .table($0) }))
    }

    func testAddressConditionsAreAlternativesAndDirectionAndHeaderMustHold() throws {
        let r = try rules(["dept": ["addresses": .array([.string("Anna@Remote.Example")]), "recipient_domains": .array([.string("sales.example.org")]),
                                    "directions": .array([.string("inbound")]), "copy_to": .string("archive@example.org")]])[0]
        XCTAssertTrue(r.matches(message("Subject: a\n\nx\n")), "sender in the list")
        XCTAssertTrue(r.matches(message("Subject: a\n\nx\n", sender: "x@y.example", recipients: ["c@example.org", "d@SALES.example.org"])))
        XCTAssertFalse(r.matches(message("Subject: a\n\nx\n", sender: "x@y.example")), "no condition holds")
        XCTAssertFalse(r.matches(message("Subject: a\n\nx\n", direction: .outbound)), "other direction")

        let all = try rules(["all": ["journal_to": .string("j@example.org")]])[0]
        XCTAssertTrue(all.matches(message("Subject: a\n\nx\n", sender: "")), "no condition: every message, the null sender too")

        let legal = try rules(["legal": ["header": .string("x-legal-hold"), "header_contains": .string("YES"), "directory": .string("/tmp/x")]])[0]
        XCTAssertTrue(legal.matches(message("X-Legal-Hold: yes, case 12\n\nx\n")))
        XCTAssertFalse(legal.matches(message("X-Legal-Hold: no\n\nx\n")))
        XCTAssertFalse(legal.matches(message("Subject: yes\n\nx\n")))
    }

    func testConfigErrorsSayWhatToFix() {
        XCTAssertThrowsError(try rules(["r": ["addresses": .array([])]])) { XCTAssertEqual("\($0)", "archive rule 'r': give exactly one of copy_to, journal_to or directory (found 0)") }
        XCTAssertThrowsError(try rules(["r": ["copy_to": .string("a@b"), "directory": .string("/x")]])) { XCTAssertTrue("\($0)".contains("found 2")) }
        XCTAssertThrowsError(try rules(["r": ["directory": .string("archive")]])) { XCTAssertTrue("\($0)".contains("must be an absolute path")) }
        XCTAssertThrowsError(try rules(["r": ["copy_to": .string("a@b"), "header": .string("X")]])) { XCTAssertTrue("\($0)".contains("go together")) }
    }

    /// The journal names every envelope recipient (BCC ones included) and carries the original
    /// byte for byte as a message/rfc822 part.
    func testJournalReportKeepsTheEnvelopeAndTheOriginal() throws {
        let original = message("From: anna@remote.example\nTo: bob@example.org\nSubject: =?utf-8?q?Caf=C3=A9?=\nMessage-ID: <m1@remote.example>\n\nbody\n",
                               recipients: ["bob@example.org", "hidden@example.org"])
        let report = JournalReport.make(for: original, to: "journal@example.org", from: "Journal <postmaster@example.org>", now: 1_700_000_000, random: 42)
        let mime = MIMEMessage(parsing: report)
        XCTAssertEqual(mime.problems, [])
        XCTAssertEqual(mime.root.contentType.mimeType, "multipart/mixed")
        XCTAssertEqual(mime.root.children.map(\.contentType.mimeType), ["text/plain", "message/rfc822"])
        let text = mime.root.children[0].text(in: report).replacingOccurrences(of: "\r\n", with: "\n")
        XCTAssertTrue(text.contains("Sender: anna@remote.example\n"), text)
        XCTAssertTrue(text.contains("Recipients: bob@example.org, hidden@example.org\n"), text)
        XCTAssertTrue(text.contains("Subject: Café\n"), text)
        XCTAssertTrue(text.contains("Client: 203.0.113.7 (client.remote.example)\n"), text)
        XCTAssertTrue(text.contains("Direction: inbound\n"), text)
        let attached = mime.root.children[1]
        let inner = Array(report[attached.bodyOffset..<(attached.bodyOffset + attached.bodySize)])
        XCTAssertEqual(inner, original.bytes.dropLast(2).map { $0 }, "the original, byte for byte (its last line end belongs to the delimiter)")
        let header = MailHeaderBlock(parsing: report)
        XCTAssertEqual(header.first("To")?.text, "<journal@example.org>")
        XCTAssertEqual(header.first("X-Postern-Journal")?.text, "1")
        XCTAssertEqual(EncodedWords.decode(header.first("Subject")!.text), "Journal: Café")
    }

    func testDirectoryCopyIsCompleteWithItsEnvelope() throws {
        let dir = TempDir("archive-dir")
        let m = message("Subject: a\n\nbody\n", recipients: ["bob@example.org", "hidden@example.org"])
        let path = try EMLDirectory(path: dir.path + "/eml").write(m, now: 1_700_000_000, random: 7)
        XCTAssertTrue(path.hasPrefix(dir.path + "/eml/20231114/1700000000-T1-"), path)
        let bytes = try XCTUnwrap(FileManager.default.contents(atPath: path))
        XCTAssertEqual(String(decoding: bytes, as: UTF8.self),
                       "X-Postern-Envelope-From: <anna@remote.example>\r\nX-Postern-Envelope-To: <bob@example.org>, <hidden@example.org>\r\nSubject: a\r\n\r\nbody\r\n")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/eml/20231114").filter { $0.hasPrefix(".") }
        XCTAssertEqual(leftovers, [], "no temporary file left")
        // A directory that cannot be written refuses the message for now, naming the problem.
        chmod(dir.path + "/eml/20231114", 0o500)
        defer { chmod(dir.path + "/eml/20231114", 0o700) }
        if getuid() == 0 { return }  // root writes anyway; the server test covers a failing write
        XCTAssertThrowsError(try EMLDirectory(path: dir.path + "/eml").write(m, now: 1_700_000_000, random: 8))
    }

    func testInspectorRefusesWhatItCannotCopyWhole() async throws {
        let dir = TempDir("archive-inspector")
        let r = try rules(["all": ["journal_to": .string("j@example.org")], "files": ["directory": .string(dir.path + "/x/y")]])
        let inspector = ArchiveInspector(rules: r, copySender: "", journalFrom: "J <p@example.org>", maxBufferedBytes: 1000,
                                         logger: Logger(label: "t"), copies: Counter(label: "c"), failures: Counter(label: "f"))
        var m = message("Subject: a\n\nbody\n")
        let (verdict, changes) = await inspector.inspect(m)
        XCTAssertEqual(verdict, .continue)
        guard case .addMessage(let sender, let recipients, let content)? = changes.first, changes.count == 1 else { return XCTFail("\(changes)") }
        XCTAssertEqual(sender, "")
        XCTAssertEqual(recipients, ["j@example.org"])
        XCTAssertTrue(String(decoding: content, as: UTF8.self).contains("Subject: Journal: a"))
        XCTAssertEqual(try FileManager.default.subpathsOfDirectory(atPath: dir.path + "/x/y").filter { $0.hasSuffix(".eml") }.count, 1)

        m.isTruncated = true
        let (big, none) = await inspector.inspect(m)
        XCTAssertEqual(big, .reject(MailReply(552, "5.3.4", "message too big to archive (limit 1000 bytes)")))
        XCTAssertEqual(none, [])

        // The directory is a file: the write fails and the message is refused for now.
        let blocked = try rules(["files": ["directory": .string(dir.path + "/file")]])
        FileManager.default.createFile(atPath: dir.path + "/file", contents: Data())
        let failing = ArchiveInspector(rules: blocked, copySender: "", journalFrom: "", maxBufferedBytes: 1000, logger: Logger(label: "t"),
                                       copies: Counter(label: "c"), failures: Counter(label: "f"))
        let (refused, _) = await failing.inspect(message("Subject: a\n\nbody\n"))
        XCTAssertEqual(refused, .tempfail(MailReply(451, "4.3.0", "cannot archive the message, try again later")))
    }
}
