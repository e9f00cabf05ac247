import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest

/// The plugin whole: `postern serve` with filter-attachments on an SMTP listener, mail sent with
/// Python's smtplib, replies and the queue read back. One server for the class. Rules scoped by
/// recipient domain give one configuration every action: remove for cleanse.example, quarantine
/// for hold.example, the built-in rules (reject) for the rest.
final class AttachmentsInteropTests: XCTestCase {
    static let rig = PeerRig("attachments-interop")

    /// The one listener, running the filter.
    static let mx = (name: "mx", options: "filters = [\"attachments\"]")

    static let pluginConfig = """
        [plugin.filter-attachments]
        default_rules = true

        [[plugin.filter-attachments.rules]]
        name = "strip-for-cleanse"
        recipient_domains = ["cleanse.example"]
        extensions = ["exe", "scr"]
        action = "remove"
        reason = "executable file type"

        [[plugin.filter-attachments.rules]]
        name = "hold-for-review"
        recipient_domains = ["hold.example"]
        extensions = ["exe"]
        action = "quarantine"
        reason = "program held for review"

        """

    override class func setUp() {
        super.setUp()
        rig.start { try FilterServer("attachments-interop", plugins: pluginConfig, listeners: [mx]) }
    }

    override class func tearDown() {
        rig.tearDown()
        super.tearDown()
    }

    func running() throws -> FilterServer { try Self.rig.running() }

    let exe64 = Fixture.base64(Fixture.windowsExecutable)

    func message(subject: String, attachment: String, body: String) -> [UInt8] {
        Fixture.crlf("""
            From: sender@remote.example
            To: rcpt@remote.example
            Subject: \(subject)
            Message-ID: <\(UUID().uuidString)@remote.example>
            MIME-Version: 1.0
            Content-Type: multipart/mixed; boundary="=_b"

            --=_b
            Content-Type: text/plain; charset=utf-8

            Hello.
            --=_b
            \(attachment)
            Content-Transfer-Encoding: base64

            \(body)
            --=_b--

            """)
    }

    func testExecutableIsRefusedWithTheFileAndTheReason() throws {
        let s = try running()
        let before = try s.queuedEntries().count
        let output = try s.send("mx", message: message(subject: "invoice", attachment: "Content-Type: application/pdf; name=\"invoice.pdf.exe\"", body: exe64))
        XCTAssertTrue(output.contains("DATA 554 5.7.1 attachment \"invoice.pdf.exe\" refused: executable file type\n"), output)
        XCTAssertEqual(try s.queuedEntries().count, before, "nothing queued")
        XCTAssertTrue(s.server.log.contains("attachment rejected"), s.server.log)
    }

    func testZipWithAnExecutableInsideIsRefused() throws {
        let s = try running()
        let zip = try Fixture.zip([("readme.txt", Array("read me".utf8)), ("bin/setup.exe", Fixture.windowsExecutable)])
        let output = try s.send("mx", message: message(subject: "zip", attachment: "Content-Type: application/zip; name=\"files.zip\"",
                                                     body: Fixture.base64(zip)))
        XCTAssertTrue(output.contains("DATA 554 5.7.1 attachment \"files.zip\" refused: executable file type in archive (member bin/setup.exe)\n"), output)
    }

    func testMessageThatPassesIsQueuedByteForByte() throws {
        let s = try running()
        let original = message(subject: "report", attachment: "Content-Type: application/pdf; name=\"report.pdf\"", body: Fixture.base64(Fixture.pdf))
        let output = try s.send("mx", message: original)
        XCTAssertTrue(output.contains("DATA 250"), output)
        let queued = try XCTUnwrap(s.queuedEntry(containing: "Subject: report\r\n")).message
        XCTAssertEqual(Array(queued.dropFirst(Fixture.receivedFieldSize(queued))), original, "only Postern's Received: field added")
    }

    func testRemovedAttachmentLeavesAValidMessageWithANotice() throws {
        let s = try running()
        let original = message(subject: "cleanse", attachment: "Content-Type: application/octet-stream; name=\"tool.exe\"", body: exe64)
        let output = try s.send("mx", to: ["someone@cleanse.example"], message: original)
        XCTAssertTrue(output.contains("DATA 250"), output)
        let queued = try XCTUnwrap(s.queuedEntry(containing: "Subject: cleanse\r\n")).message
        let mime = MIMEMessage(parsing: queued)
        XCTAssertEqual(mime.problems, [])
        let parts = mime.root.allParts
        XCTAssertEqual(parts.map(\.contentType.mimeType), ["multipart/mixed", "text/plain", "text/plain"])
        XCTAssertEqual(parts[1].text(in: queued), "Hello.")
        XCTAssertEqual(parts[2].text(in: queued),
                       "The attachment \"tool.exe\" was removed from this message by the mail system: executable file type (rule strip-for-cleanse).")
        XCTAssertTrue(queued.contains("\r\nX-Postern-Attachments: removed \"tool.exe\": executable file type\r\n"), queued.text)
        XCTAssertFalse(queued.contains(String(exe64.prefix(24))))
        XCTAssertTrue(s.server.log.contains("attachment removed"), s.server.log)
    }

    func testQuarantinedMessageWaitsInTheHoldQueue() throws {
        let s = try running()
        let original = message(subject: "hold", attachment: "Content-Type: application/octet-stream; name=\"tool.exe\"", body: exe64)
        let output = try s.send("mx", to: ["someone@hold.example"], message: original)
        XCTAssertTrue(output.contains("DATA 250"), output)
        let entry = try XCTUnwrap(s.queuedEntry(containing: "Subject: hold\r\n"))
        XCTAssertEqual(entry.summary["holdReason"] as? String, "attachment \"tool.exe\" (rule hold-for-review): program held for review")
        XCTAssertEqual(Array(entry.message.dropFirst(Fixture.receivedFieldSize(entry.message))), original, "held as received")
    }

    func testREADMEExampleIsAcceptedAndBadRulesAreExplained() throws {
        let readme = try String(contentsOfFile: Build.packageRoot + "/Plugins/FilterAttachments/README.md", encoding: .utf8)
        let blocks = readme.components(separatedBy: "```toml\n").dropFirst().map { $0.components(separatedBy: "```")[0] }
        let example = try XCTUnwrap(blocks.first { $0.contains("[[plugin.filter-attachments.rules]]") }, "README has a TOML example with rules")
        let dir = TempDir("attachments-check")
        defer { try? FileManager.default.removeItem(atPath: dir.path) }
        // The plugin's part of it; the test server's config brings its own listener.
        let plugin = example.components(separatedBy: "[[listener]]")[0]
        let good = dir.write("good.toml", FilterServer.config(plugins: plugin, listeners: [Self.mx]).text)
        let (status, output) = Build.run(Build.postern, ["check-config", "-c", good], cwd: dir.path)
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("filter-attachments 1.0.0"), output)
        // check-config checks keys and types; what a rule means is checked when a worker
        // activates the plugin, and a bad rule stops the server from starting.
        let bad = FilterServer.config(plugins: """
            [[plugin.filter-attachments.rules]]
            name = "nothing"
            action = "remove"
            """, listeners: [Self.mx]).text
        XCTAssertThrowsError(try ServerProcess.start(TempDir("attachments-bad"), bad)) { error in
            XCTAssertTrue("\(error)".contains("filter-attachments rule 'nothing': give at least one of extensions"), "\(error)")
        }
        let (typeStatus, typeOutput) = Build.run(Build.postern, ["check-config", "-c", dir.write("type.toml", FilterServer.config(plugins: """
            [[plugin.filter-attachments.rules]]
            extensions = ["exe"]
            action = "delete"
            """, listeners: [Self.mx]).text)], cwd: dir.path)
        XCTAssertNotEqual(typeStatus, 0, typeOutput)
        XCTAssertTrue(typeOutput.contains("action"), typeOutput)
    }
}

extension Fixture {
    /// The size of the `Received:` field Postern puts first (with its folded lines).
    static func receivedFieldSize(_ message: [UInt8]) -> Int {
        guard message.starts(with: Array("Received:".utf8)) else { return 0 }
        var i = 0
        while i + 2 < message.count {
            if message[i] == 13 && message[i + 1] == 10 && message[i + 2] != 32 && message[i + 2] != 9 { return i + 2 }
            i += 1
        }
        return message.count
    }
}
