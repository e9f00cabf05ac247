import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest

/// The filter-disclaimer and filter-dlp plugins through the real binary: a `postern serve` with
/// both loaded on an outbound listener (`filters = ["dlp", "disclaimer"]`) and an inbound one,
/// Python's smtplib as the client, the queue read back with `postern queue` byte for byte. One
/// server for the class.
final class FilterContentInteropTests: XCTestCase {
    nonisolated(unsafe) static var server: FilterServer?
    nonisolated(unsafe) static var setupError: (any Error)?

    static let disclaimer = "This e-mail is confidential.\nIf you are not the addressee, delete it."

    static let pluginConfig = """
        [plugin.filter-disclaimer]
        [[plugin.filter-disclaimer.profiles]]
        name = "corp"
        sender_domains = ["example.org"]
        text = \"\"\"
        This e-mail is confidential.
        If you are not the addressee, delete it.\"\"\"

        [plugin.filter-dlp]
        [[plugin.filter-dlp.policies]]
        name = "pci"
        detectors = ["credit_card"]
        action = "reject"
        [[plugin.filter-dlp.policies]]
        name = "ids"
        detectors = ["es_dni", "nl_bsn"]
        action = "quarantine"
        [[plugin.filter-dlp.policies]]
        name = "banking"
        detectors = ["iban"]
        action = "notify"
        notify = "compliance@audit.example"

        """

    override class func setUp() {
        super.setUp()
        do {
            server = try FilterServer("content-filters", plugins: pluginConfig, listeners: [
                ("submission", "filters = [\"dlp\", \"disclaimer\"]\ndirection = \"outbound\""),
                ("mx", "filters = [\"dlp\", \"disclaimer\"]"),
            ])
        } catch {
            setupError = error
        }
    }

    override class func tearDown() {
        server?.stop()
        super.tearDown()
    }

    func running() throws -> FilterServer {
        if let e = Self.setupError { throw e }
        return try XCTUnwrap(Self.server)
    }

    /// The queue entry whose message contains `marker`.
    func queued(_ s: FilterServer, _ marker: String) throws -> (summary: [String: Any], message: [UInt8]) {
        try XCTUnwrap(try s.queuedEntry(containing: marker), "nothing queued with \(marker)")
    }

    func testOutboundMessageIsStampedOnceInBothAlternatives() throws {
        let s = try running()
        let message = """
            From: alice@example.org
            To: bob@remote.example
            Subject: stamp-alternative
            MIME-Version: 1.0
            Content-Type: multipart/alternative; boundary="alt"

            --alt
            Content-Type: text/plain; charset=iso-8859-1
            Content-Transfer-Encoding: quoted-printable

            Gr=FC=DFe.
            --alt
            Content-Type: text/html; charset=utf-8

            <html><body><p>Gr\u{FC}\u{DF}e.</p></body></html>
            --alt--

            """
        let output = try s.send("submission", from: "alice@example.org", message: message)
        XCTAssertTrue(output.contains("DATA 250"), output)
        let bytes = try queued(s, "stamp-alternative").message
        let mime = MIMEMessage(parsing: bytes)
        XCTAssertEqual(mime.problems, [])
        XCTAssertEqual(mime.root.children.count, 2)
        let plain = mime.root.children[0].text(in: bytes), html = mime.root.children[1].text(in: bytes)
        XCTAssertEqual(plain, "Grüße.\r\n\r\nThis e-mail is confidential.\r\nIf you are not the addressee, delete it.")
        XCTAssertEqual(html.components(separatedBy: "This e-mail is confidential.").count, 2, html)
        XCTAssertTrue(html.hasSuffix("delete it.</p></div>\r\n</body></html>"), html)
        // Python's email package reads the same two parts with one disclaimer each.
        let check = s.dir.write("parse.py", """
            import email, sys
            from email import policy
            m = email.message_from_bytes(open(sys.argv[1], "rb").read(), policy=policy.default)
            for p in m.walk():
                if p.get_content_maintype() == "text":
                    print(p.get_content_type(), p.get_content().count("If you are not the addressee"))
            """)
        let file = s.dir.write("stamped.eml", bytes)
        XCTAssertEqual(Build.run(try Build.tool("python3"), [check, file]).output, "text/plain 1\ntext/html 1\n")

        // Sent again as a reply quoting it: no second disclaimer, the message as it came.
        let reply = "From: alice@example.org\nTo: bob@remote.example\nSubject: stamp-reply\n\nThanks.\n\n> This e-mail is confidential.\n> If you are not the addressee, delete it.\n"
        XCTAssertTrue(try s.send("submission", from: "alice@example.org", message: reply).contains("DATA 250"))
        XCTAssertEqual(try receivedRemoved(queued(s, "stamp-reply").message), Array(reply.replacingOccurrences(of: "\n", with: "\r\n").utf8))
    }

    func testCardNumberIsRejectedWithAReplyTheSenderUnderstands() throws {
        let s = try running()
        let before = try s.queuedEntries().count
        let output = try s.send("submission", from: "alice@example.org",
                                message: "From: alice@example.org\nTo: bob@remote.example\nSubject: card\n\nMy card is 4111 1111 1111 1111.\n")
        XCTAssertTrue(output.contains("DATA 550 5.7.1 message refused by the data protection policy 'pci': it contains payment card numbers; "
                                      + "remove that data (or send it by an approved channel) and try again"), output)
        XCTAssertFalse(output.contains("4111"), "the reply never repeats the data")
        XCTAssertEqual(try s.queuedEntries().count, before, "nothing queued")
    }

    func testNationalIDGoesToTheHoldQueue() throws {
        let s = try running()
        let output = try s.send("submission", from: "alice@example.org",
                                message: "From: alice@example.org\nTo: bob@remote.example\nSubject: held-id\n\nDNI 12345678Z.\n")
        XCTAssertTrue(output.contains("DATA 250"), output)
        let entry = try queued(s, "held-id")
        XCTAssertEqual(entry.summary["holdReason"] as? String, "DLP policy ids")
        let text = String(decoding: entry.message, as: UTF8.self)
        XCTAssertTrue(text.contains("X-DLP-Match: policy=ids; action=quarantine; detectors=es_dni:1\r\n"), text)
        XCTAssertEqual(text.components(separatedBy: "12345678Z").count, 2, "the value is in the body only, never in the header")
    }

    /// The event log names the filter that stopped a message, for the console's count of what
    /// each filter stopped.
    func testTheEventLogNamesTheFilterThatStoppedAMessage() throws {
        let s = try running()
        _ = try s.send("submission", from: "alice@example.org",
                       message: "From: alice@example.org\nTo: bob@remote.example\nSubject: event-card\n\nCard 4111 1111 1111 1111.\n")
        _ = try s.send("submission", from: "alice@example.org",
                       message: "From: alice@example.org\nTo: bob@remote.example\nSubject: event-id\n\nDNI 12345678Z.\n")
        _ = try s.send("submission", from: "alice@example.org",
                       message: "From: alice@example.org\nTo: bob@remote.example\nSubject: event-clean\n\nNothing here.\n")
        let events = MailEventLog(dataDirectory: s.dir.path + "/var").events(from: 0, to: Int64(Date().timeIntervalSince1970) + 10)
        let rejected = events.filter { $0.kind == .rejected && $0.stage == "DATA" && ($0.reason ?? "").contains("'pci'") }
        XCTAssertFalse(rejected.isEmpty, "\(events)")
        XCTAssertTrue(rejected.allSatisfy { $0.filter == "dlp" }, "\(rejected)")
        let held = events.filter { $0.kind == .quarantined && $0.reason == "DLP policy ids" }
        XCTAssertFalse(held.isEmpty)
        XCTAssertTrue(held.allSatisfy { $0.filter == "dlp" }, "\(held)")
        XCTAssertTrue(events.filter { $0.kind == .received }.allSatisfy { $0.filter == nil }, "a message no filter stopped names none")
    }

    func testIBANIsDeliveredAndCopiedToCompliance() throws {
        let s = try running()
        let output = try s.send("submission", from: "alice@example.org",
                                message: "From: alice@example.org\nTo: bob@remote.example\nSubject: notify-iban\n\nPay to GB82 WEST 1234 5698 7654 32.\n")
        XCTAssertTrue(output.contains("DATA 250"), output)
        let entry = try queued(s, "notify-iban")
        XCTAssertNil(entry.summary["holdReason"] as? String)
        let recipients = (entry.summary["pending"] as? [[String: Any]])?.compactMap { $0["address"] as? String } ?? []
        XCTAssertEqual(Set(recipients), ["rcpt@remote.example", "compliance@audit.example"])
        let text = String(decoding: entry.message, as: UTF8.self)
        XCTAssertTrue(text.contains("X-DLP-Match: policy=banking; action=notify; detectors=iban:1\r\n"), text)
        XCTAssertTrue(text.hasSuffix("Pay to GB82 WEST 1234 5698 7654 32.\r\n\r\nThis e-mail is confidential.\r\nIf you are not the addressee, delete it.\r\n"), text)
    }

    func testInboundMessagePassesByteForByte() throws {
        let s = try running()
        // Inbound: neither filter's profile or policies apply, so even a card number passes.
        let message = "From: carol@remote.example\nTo: rcpt@remote.example\nSubject: pass-through\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nCard 4111 1111 1111 1111, caf\u{E9}.\n \n.leading dot\n"
        let output = try s.send("mx", from: "carol@remote.example", message: message)
        XCTAssertTrue(output.contains("DATA 250"), output)
        XCTAssertEqual(receivedRemoved(try queued(s, "pass-through").message), Array(message.replacingOccurrences(of: "\n", with: "\r\n").utf8))
    }

    func testSignedOutboundMessageIsNotTouched() throws {
        let s = try running()
        let message = """
            From: alice@example.org
            To: rcpt@remote.example
            Subject: signed-outbound
            MIME-Version: 1.0
            Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="s"

            --s
            Content-Type: text/plain

            Signed.
            --s
            Content-Type: application/pkcs7-signature; name=smime.p7s
            Content-Transfer-Encoding: base64

            MIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQMEAgEFADCABgkqhkiG9w0BBwEAAKCAMIID
            --s--

            """
        XCTAssertTrue(try s.send("submission", from: "alice@example.org", message: message).contains("DATA 250"))
        XCTAssertEqual(receivedRemoved(try queued(s, "signed-outbound").message), Array(message.replacingOccurrences(of: "\n", with: "\r\n").utf8))
    }

    func testExampleConfigPassesCheckConfig() throws {
        let s = try running()
        let (code, output) = Build.run(Build.postern, ["check-config", "-c", s.server.configFile], cwd: s.dir.path)
        XCTAssertEqual(code, 0, output)
        // The schema's errors, with the line: check-config does not activate plugins, so what
        // only activation can see (a detector nobody defined) is the worker's refusal instead.
        let bad = s.dir.write("bad.toml", "data_dir = \"./var\"\n[plugin.filter-dlp]\n[[plugin.filter-dlp.policies]]\ndetectors = [\"iban\"]\naction = \"bounce\"\n"
            + "[plugin.filter-disclaimer]\n[[plugin.filter-disclaimer.profiles]]\ntext = \"x\"\nsigned = \"sign\"\n")
        let (badCode, badOutput) = Build.run(Build.postern, ["check-config", "-c", bad], cwd: s.dir.path)
        XCTAssertNotEqual(badCode, 0, badOutput)
        XCTAssertTrue(badOutput.contains("bad.toml:5: plugin.filter-dlp.policies[0].action: expected one of \"reject\", \"quarantine\", \"notify\""), badOutput)
        XCTAssertTrue(badOutput.contains("plugin.filter-disclaimer.profiles[0].signed: expected one of \"skip\", \"wrap\""), badOutput)
    }

    /// The message without the `Received:` field Postern put first.
    func receivedRemoved(_ bytes: [UInt8]) -> [UInt8] {
        let block = MailHeaderBlock(parsing: bytes)
        guard let first = block.fields.first, first.hasName("Received") else { return bytes }
        return Array(bytes[(first.offset + first.name.utf8.count + 1 + first.rawValue.count + 2)...])
    }

}
