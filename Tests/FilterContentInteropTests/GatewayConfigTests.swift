import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest

/// The shipped `Config/gateway.toml`, served as it is (ports and data directory moved), with swaks
/// as the client: inbound mail is scored and refused executables, outbound mail gets the
/// disclaimer and card numbers are held for review.
final class GatewayConfigTests: XCTestCase {
    nonisolated(unsafe) static var server: ServerProcess?
    nonisolated(unsafe) static var ports: [Int: Int] = [:]
    nonisolated(unsafe) static var setupError: (any Error)?
    static let dir = TempDir("gateway-config")

    override class func setUp() {
        super.setUp()
        do {
            server = try ServerProcess.start(dir, try shippedConfig("gateway.toml", ports: &ports))
        } catch {
            setupError = error
        }
    }

    override class func tearDown() {
        server?.stop()
        try? FileManager.default.removeItem(atPath: dir.path)
        super.tearDown()
    }

    func running() throws -> ServerProcess {
        if let setupError = Self.setupError { throw setupError }
        return try XCTUnwrap(Self.server)
    }

    /// Sends `message` with swaks to the shipped port `port`; returns swaks' transcript.
    func swaks(_ port: Int, from: String, to: String, message: String) throws -> String {
        let file = Self.dir.write("m-\(UUID().uuidString.prefix(6)).eml", message.replacingOccurrences(of: "\n", with: "\r\n"))
        let (_, output) = Build.run(try Build.tool("swaks"), ["--server", "127.0.0.1:\(try XCTUnwrap(Self.ports[port]))", "--from", from,
                                                              "--to", to, "--helo", "client.test.example", "--data", file])
        return output
    }

    /// The queued message whose text contains `marker`, with its summary.
    func queued(_ marker: String) throws -> (summary: [String: Any], text: String)? {
        let s = try running()
        let (code, output) = Build.run(Build.postern, ["queue", "list", "--json", "-c", s.configFile], cwd: Self.dir.path)
        guard code == 0, let list = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [[String: Any]] else {
            throw SystemError.message("postern queue list: \(output)")
        }
        for entry in list {
            let (_, text) = Build.run(Build.postern, ["queue", "show", entry["id"] as? String ?? "", "-c", s.configFile], cwd: Self.dir.path)
            if text.contains(marker) { return (entry, text) }
        }
        return nil
    }

    func testInboundMailIsScoredAndExecutablesAreRefused() throws {
        _ = try running()
        let clean = try swaks(2526, from: "anna@remote.example", to: "bob@example.org", message: """
            From: anna@remote.example
            To: bob@example.org
            Subject: lunch on friday
            Date: Mon, 07 Dec 2026 10:00:00 +0000
            Message-ID: <gw-clean@remote.example>

            Shall we meet at noon?
            """)
        XCTAssertTrue(clean.contains("<~  250") || clean.contains("<-  250 2.0.0 ok: queued"), clean)
        let scored = try XCTUnwrap(try queued("<gw-clean@remote.example>"))
        XCTAssertTrue(scored.text.contains("X-Spam-Status: No, score="), scored.text)

        let exe = try swaks(2526, from: "anna@remote.example", to: "bob@example.org", message: """
            From: anna@remote.example
            To: bob@example.org
            Subject: invoice
            Date: Mon, 07 Dec 2026 10:00:00 +0000
            Message-ID: <gw-exe@remote.example>
            MIME-Version: 1.0
            Content-Type: multipart/mixed; boundary="b"

            --b
            Content-Type: text/plain

            Please pay.
            --b
            Content-Type: application/pdf; name="invoice.pdf.exe"
            Content-Disposition: attachment; filename="invoice.pdf.exe"
            Content-Transfer-Encoding: base64

            TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAgAAAAA==
            --b--
            """)
        XCTAssertTrue(exe.contains("<** 554 5.7.1 attachment \"invoice.pdf.exe\" refused"), exe)
        XCTAssertNil(try queued("<gw-exe@remote.example>"), "not queued")
    }

    func testOutboundMailGetsTheDisclaimerAndCardNumbersAreHeld() throws {
        _ = try running()
        let out = try swaks(2527, from: "alice@example.org", to: "carol@remote.example", message: """
            From: alice@example.org
            To: carol@remote.example
            Subject: minutes
            Message-ID: <gw-out@example.org>

            The minutes are attached.
            """)
        XCTAssertTrue(out.contains("<-  250 2.0.0 ok: queued"), out)
        let stamped = try XCTUnwrap(try queued("<gw-out@example.org>"))
        XCTAssertTrue(stamped.text.contains("The minutes are attached.\r\n\r\nThis message is confidential."), stamped.text)

        let cards = try swaks(2527, from: "alice@example.org", to: "carol@remote.example", message: """
            From: alice@example.org
            To: carol@remote.example
            Subject: the numbers
            Message-ID: <gw-cards@example.org>

            4111 1111 1111 1111
            5500 0000 0000 0004
            3400 000000 00009
            """)
        XCTAssertTrue(cards.contains("<-  250 2.0.0 ok: queued"), cards)
        let held = try XCTUnwrap(try queued("<gw-cards@example.org>"))
        XCTAssertEqual(held.summary["queue"] as? String, "hold")
        XCTAssertEqual(held.summary["holdReason"] as? String, "DLP policy payment-data")
    }

    /// check-config runs each plugin's own check, not only its schema: a DLP policy naming a
    /// detector that does not exist and an archive rule without a destination are reported,
    /// each under its plugin's section, with what to fix.
    func testCheckConfigReportsWhatOnlyThePluginKnows() throws {
        var ports: [Int: Int] = [:]
        var config = try shippedConfig("gateway.toml", ports: &ports)
        config = config.replacingOccurrences(of: "detectors = [\"credit_card\", \"iban\"]", with: "detectors = [\"credit_card\", \"ibna\"]")
        config += "\n[plugin.filter-archive.rules.nowhere]\naddresses = [\"ceo@example.org\"]\n"
        let file = Self.dir.write("broken-gateway.toml", config)
        let (code, output) = Build.run(Build.postern, ["check-config", "-c", file], cwd: Self.dir.path)
        XCTAssertNotEqual(code, 0, output)
        XCTAssertTrue(output.contains("plugin.filter-dlp") && output.contains("ibna"), output)
        XCTAssertTrue(output.contains("plugin.filter-archive") && output.contains("archive rule 'nowhere': give exactly one of copy_to, journal_to or directory"), output)
        let (good, goodOutput) = Build.run(Build.postern, ["check-config", "-c", Build.packageRoot + "/Config/gateway.toml"], cwd: Self.dir.path)
        XCTAssertEqual(good, 0, goodOutput)
    }
}
