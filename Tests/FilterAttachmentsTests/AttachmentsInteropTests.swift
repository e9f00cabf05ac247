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
    nonisolated(unsafe) static var server: AttachmentServer?
    nonisolated(unsafe) static var setupError: (any Error)?

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
        do {
            server = try AttachmentServer("attachments-interop", pluginConfig: pluginConfig)
        } catch {
            setupError = error
        }
    }

    override class func tearDown() {
        server?.stop()
        super.tearDown()
    }

    func running() throws -> AttachmentServer {
        if let e = Self.setupError { throw e }
        return try XCTUnwrap(Self.server)
    }

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
        let output = try s.send(message(subject: "invoice", attachment: "Content-Type: application/pdf; name=\"invoice.pdf.exe\"", body: exe64))
        XCTAssertTrue(output.contains("DATA 554 5.7.1 attachment \"invoice.pdf.exe\" refused: executable file type\n"), output)
        XCTAssertEqual(try s.queuedEntries().count, before, "nothing queued")
        XCTAssertTrue(s.server.log.contains("attachment rejected"), s.server.log)
    }

    func testZipWithAnExecutableInsideIsRefused() throws {
        let s = try running()
        let zip = try Fixture.zip([("readme.txt", Array("read me".utf8)), ("bin/setup.exe", Fixture.windowsExecutable)])
        let output = try s.send(message(subject: "zip", attachment: "Content-Type: application/zip; name=\"files.zip\"",
                                        body: Fixture.base64(zip)))
        XCTAssertTrue(output.contains("DATA 554 5.7.1 attachment \"files.zip\" refused: executable file type in archive (member bin/setup.exe)\n"), output)
    }

    func testMessageThatPassesIsQueuedByteForByte() throws {
        let s = try running()
        let original = message(subject: "report", attachment: "Content-Type: application/pdf; name=\"report.pdf\"", body: Fixture.base64(Fixture.pdf))
        let output = try s.send(original)
        XCTAssertTrue(output.contains("DATA 250"), output)
        let queued = try XCTUnwrap(try s.queuedEntries().first { $0.message.contains("Subject: report\r\n") }).message
        XCTAssertEqual(Array(queued.dropFirst(AttachmentServer.receivedFieldSize(queued))), original, "only Postern's Received: field added")
    }

    func testRemovedAttachmentLeavesAValidMessageWithANotice() throws {
        let s = try running()
        let original = message(subject: "cleanse", attachment: "Content-Type: application/octet-stream; name=\"tool.exe\"", body: exe64)
        let output = try s.send(original, to: ["someone@cleanse.example"])
        XCTAssertTrue(output.contains("DATA 250"), output)
        let queued = try XCTUnwrap(try s.queuedEntries().first { $0.message.contains("Subject: cleanse\r\n") }).message
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
        let output = try s.send(original, to: ["someone@hold.example"])
        XCTAssertTrue(output.contains("DATA 250"), output)
        let entry = try XCTUnwrap(try s.queuedEntries().first { $0.message.contains("Subject: hold\r\n") })
        XCTAssertEqual(entry.summary["holdReason"] as? String, "attachment \"tool.exe\" (rule hold-for-review): program held for review")
        XCTAssertEqual(Array(entry.message.dropFirst(AttachmentServer.receivedFieldSize(entry.message))), original, "held as received")
    }

    func testREADMEExampleIsAcceptedAndBadRulesAreExplained() throws {
        let readme = try String(contentsOfFile: Build.packageRoot + "/Plugins/FilterAttachments/README.md", encoding: .utf8)
        let blocks = readme.components(separatedBy: "```toml\n").dropFirst().map { $0.components(separatedBy: "```")[0] }
        let example = try XCTUnwrap(blocks.first { $0.contains("[[plugin.filter-attachments.rules]]") }, "README has a TOML example with rules")
        let dir = TempDir("attachments-check")
        defer { try? FileManager.default.removeItem(atPath: dir.path) }
        // The plugin's part of it; the base config brings its own listener.
        let plugin = example.components(separatedBy: "[[listener]]")[0]
        let good = dir.write("good.toml", AttachmentServer.baseConfig(port: freePort()) + plugin)
        let (status, output) = Build.run(Build.postern, ["check-config", "-c", good], cwd: dir.path)
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("filter-attachments 1.0.0"), output)
        // check-config checks keys and types; what a rule means is checked when a worker
        // activates the plugin, and a bad rule stops the server from starting.
        let bad = AttachmentServer.baseConfig(port: freePort()) + """
            [[plugin.filter-attachments.rules]]
            name = "nothing"
            action = "remove"

            """
        XCTAssertThrowsError(try ServerProcess.start(TempDir("attachments-bad"), bad)) { error in
            XCTAssertTrue("\(error)".contains("filter-attachments rule 'nothing': give at least one of extensions"), "\(error)")
        }
        let (typeStatus, typeOutput) = Build.run(Build.postern, ["check-config", "-c", dir.write("type.toml", AttachmentServer.baseConfig(port: freePort()) + """
            [[plugin.filter-attachments.rules]]
            extensions = ["exe"]
            action = "delete"

            """)], cwd: dir.path)
        XCTAssertNotEqual(typeStatus, 0, typeOutput)
        XCTAssertTrue(typeOutput.contains("action"), typeOutput)
    }
}

/// A `postern serve` with the store, the queue and filter-attachments on one SMTP listener
/// (`filters = ["attachments"]`). Remote mail stays in the queue (no smtp-client is loaded).
struct AttachmentServer {
    let dir: TempDir
    let port = freePort()
    let server: ServerProcess

    static func baseConfig(port: Int) -> String {
        """
        data_dir = "./var"
        workers = 1
        [plugin.store-sqlite]
        [plugin.queue]
        min_backoff = "1h"
        max_backoff = "1h"
        [plugin.smtp]
        hostname = "mx.test.example"
        [[listener]]
        name = "mx"
        address = "127.0.0.1"
        port = \(port)
        protocol = "smtp"
        [listener.options]
        trust_loopback = true
        filters = ["attachments"]

        """
    }

    init(_ name: String, pluginConfig: String) throws {
        dir = TempDir(name)
        server = try ServerProcess.start(dir, Self.baseConfig(port: port) + pluginConfig)
    }

    func stop() {
        server.stop()
        try? FileManager.default.removeItem(atPath: dir.path)
    }

    /// Sends `message` with smtplib; prints `MAIL 250 ...`, `RCPT ...`, `DATA CODE TEXT` lines.
    func send(_ message: [UInt8], from: String = "sender@remote.example", to: [String] = ["rcpt@remote.example"]) throws -> String {
        let script = dir.write("send-\(UUID().uuidString.prefix(6)).py", """
            import smtplib, sys
            s = smtplib.SMTP("127.0.0.1", \(port), timeout=60)
            s.ehlo("client.test.example")
            code, text = s.mail(sys.argv[1])
            print("MAIL", code, text.decode())
            for r in sys.argv[2].split(","):
                code, text = s.rcpt(r)
                print("RCPT", code, text.decode())
            try:
                code, text = s.data(open(sys.argv[3], "rb").read())
            except smtplib.SMTPResponseException as e:
                code, text = e.smtp_code, e.smtp_error
            print("DATA", code, text.decode())
            s.quit()
            """)
        let file = dir.write("message-\(UUID().uuidString.prefix(6)).eml", message)
        let (_, output) = Build.run(try Build.tool("python3"), [script, from, to.joined(separator: ","), file])
        return output
    }

    /// Every queue entry as `postern queue list --json` gives it, with its message.
    func queuedEntries() throws -> [(summary: [String: Any], message: [UInt8])] {
        let (code, output) = Build.run(Build.postern, ["queue", "list", "--json", "-c", server.configFile], cwd: dir.path)
        guard code == 0, let list = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [[String: Any]] else {
            throw SystemError.message("postern queue list: \(output)")
        }
        return list.map { entry in
            let id = entry["id"] as? String ?? ""
            return (entry, [UInt8](Build.runBytes(Build.postern, ["queue", "show", id, "-c", server.configFile], cwd: dir.path,
                                                  environment: ProcessInfo.processInfo.environment).stdout))
        }
    }

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
