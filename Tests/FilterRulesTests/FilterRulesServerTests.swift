import Foundation
import PosternHost
import PosternTestSupport
import XCTest

/// The rules filter through the real binary: smtplib sends, the queue shows what was kept, unbound
/// answers the block lists. One server and one unbound for the class.
final class FilterRulesServerTests: XCTestCase {
    nonisolated(unsafe) static var dns: UnboundServer?
    nonisolated(unsafe) static var server: FilterServer?
    nonisolated(unsafe) static var setupError: (any Error)?

    /// Set "tagged" for a.example (the default rules, SUBJECT_SPAM_WORDS off, and three of its
    /// own), set "quiet" for
    /// b.example (headers only on tagged mail); the outbound listener has no set.
    static let plugin = """
        trusted_networks = []
        [[plugin.filter-rules.sets]]
        name = "tagged"
        domains = ["a.example"]
        tag = 5.0
        quarantine = 10.0
        reject = 15.0
        subject_prefix = "[SPAM] "
        default_rules = true
        [[plugin.filter-rules.sets.rules]]
        name = "CASINO"
        score = 6.0
        description = "casino in the subject"
        header = "Subject"
        pattern = '\\bcasino\\b'
        [[plugin.filter-rules.sets.rules]]
        name = "SUBJECT_SPAM_WORDS"
        score = 0.0
        header = "Subject"
        pattern = 'off'
        [[plugin.filter-rules.sets.rules]]
        name = "IN_DNSBL"
        score = 4.0
        dnsbl = "dnsbl.test"
        [[plugin.filter-rules.sets.rules]]
        name = "IN_URIBL"
        score = 5.0
        uribl = "uribl.test"
        [[plugin.filter-rules.sets]]
        name = "quiet"
        domains = ["b.example"]
        tag = 5.0
        add_headers = "tagged"
        [[plugin.filter-rules.sets.rules]]
        name = "CASINO"
        score = 6.0
        header = "Subject"
        pattern = 'casino'
        """

    override class func setUp() {
        super.setUp()
        do {
            let dns = try UnboundServer(zones: RulesServer.zones)
            self.dns = dns
            server = try RulesServer.start("filter-rules", dns: dns, plugin: plugin,
                                           listeners: [("mx", ""), ("out", "direction = \"outbound\"")])
        } catch {
            setupError = error
        }
    }

    override class func tearDown() {
        server?.stop()
        dns?.stop()
        super.tearDown()
    }

    func running() throws -> FilterServer {
        if let e = Self.setupError { throw e }
        return try XCTUnwrap(Self.server)
    }

    func testCleanMailGetsNoHeadersAndStaysOtherwiseUnchanged() throws {
        let s = try running()
        let marker = "clean-\(UUID().uuidString)"
        let message = RulesServer.message(subject: "Lunch", body: marker)
        let output = try s.send("mx", to: ["rcpt@a.example"], message: message)
        XCTAssertTrue(output.contains("DATA 250"), output)
        let queued = try XCTUnwrap(s.queued(containing: marker), output)
        XCTAssertNil(queued.summary["holdReason"] as? String)
        // The two fields added after the last one, nothing else changed.
        let sent = RulesServer.crlf(message)
        let headerEnd = try XCTUnwrap(sent.range(of: "\r\n\r\n"))
        let expected = String(sent[..<headerEnd.lowerBound]) + "\r\nX-Spam-Score: 0.0\r\nX-Spam-Status: No, score=0.0 required=5.0 tests=none"
            + String(sent[headerEnd.lowerBound...])
        XCTAssertEqual(RulesServer.withoutReceived(queued.message), expected)
    }

    func testQuietSetAndUnjudgedDirectionPassMailByteForByte() throws {
        let s = try running()
        for (listener, recipient) in [("mx", "rcpt@b.example"), ("out", "rcpt@a.example")] {
            let marker = "unchanged-\(UUID().uuidString)"
            let message = RulesServer.message(subject: "Minutes", body: marker)
            let output = try s.send(listener, to: [recipient], message: message)
            XCTAssertTrue(output.contains("DATA 250"), output)
            let queued = try XCTUnwrap(s.queued(containing: marker), output)
            XCTAssertEqual(RulesServer.withoutReceived(queued.message), RulesServer.crlf(message), "\(listener) \(recipient)")
        }
    }

    func testTaggedMailGetsPrefixAndYesAndForgedHeadersGo() throws {
        let s = try running()
        let marker = "tagged-\(UUID().uuidString)"
        let message = RulesServer.message(subject: "Casino night", body: marker,
                                          extraFields: "X-Spam-Status: No, forged by the sender\n")
        let output = try s.send("mx", to: ["rcpt@a.example"], message: message)
        XCTAssertTrue(output.contains("DATA 250"), output)
        let text = try XCTUnwrap(s.queued(containing: marker)?.message, output)
        XCTAssertTrue(text.contains("\r\nSubject: [SPAM] Casino night\r\n"), text)
        XCTAssertTrue(text.contains("\r\nX-Spam-Score: 6.0\r\nX-Spam-Status: Yes, score=6.0 required=5.0 tests=CASINO\r\n\r\n"), text)
        XCTAssertFalse(text.contains("forged"), text)
        // Quiet set: tagged mail gets the headers there too.
        let quietMarker = "quiet-\(UUID().uuidString)"
        let quiet = RulesServer.message(subject: "casino", body: quietMarker)
        XCTAssertTrue(try s.send("mx", to: ["rcpt@b.example"], message: quiet).contains("DATA 250"))
        let quietText = try XCTUnwrap(s.queued(containing: quietMarker)?.message)
        XCTAssertTrue(quietText.contains("X-Spam-Status: Yes, score=6.0 required=5.0 tests=CASINO\r\n"), quietText)
    }

    func testURIBlocklistHitAndCasinoQuarantine() throws {
        let s = try running()
        let marker = "q-\(UUID().uuidString)"
        let message = RulesServer.message(subject: "casino", body: "Visit https://www.spam.example/deal now. \(marker)")
        let output = try s.send("mx", to: ["rcpt@a.example"], message: message)
        XCTAssertTrue(output.contains("DATA 250"), output)
        let entry = try XCTUnwrap(s.queued(containing: marker), output)
        XCTAssertEqual(entry.summary["holdReason"] as? String, "spam score 11.0 (rule set tagged: CASINO,IN_URIBL)")
        XCTAssertTrue(entry.message.contains("X-Spam-Status: Yes, score=11.0 required=5.0 tests=CASINO,IN_URIBL\r\n"), entry.message)
    }

    func testDNSBLListedClient() throws {
        let s = try running()
        // From 127.0.0.2, listed in dnsbl.test; 127.0.0.3 is not.
        let listedMarker = "dnsbl-\(UUID().uuidString)"
        let listed = RulesServer.message(subject: "Hello", body: listedMarker)
        XCTAssertTrue(try s.send("mx", to: ["rcpt@a.example"], message: listed, source: "127.0.0.2").contains("DATA 250"))
        let text = try XCTUnwrap(s.queued(containing: listedMarker)?.message)
        XCTAssertTrue(text.contains("X-Spam-Status: No, score=4.0 required=5.0 tests=IN_DNSBL\r\n"), text)
        let cleanMarker = "nodnsbl-\(UUID().uuidString)"
        let clean = RulesServer.message(subject: "Hello", body: cleanMarker)
        XCTAssertTrue(try s.send("mx", to: ["rcpt@a.example"], message: clean, source: "127.0.0.3").contains("DATA 250"))
        let cleanText = try XCTUnwrap(s.queued(containing: cleanMarker)?.message)
        XCTAssertTrue(cleanText.contains("X-Spam-Status: No, score=0.0 required=5.0 tests=none\r\n"), cleanText)
    }

    func testRejectAboveThresholdQueuesNothing() throws {
        let s = try running()
        let marker = "gtube-\(UUID().uuidString)"
        let message = RulesServer.message(subject: "test", body: "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X \(marker)")
        let output = try s.send("mx", to: ["rcpt@a.example"], message: message)
        XCTAssertTrue(output.contains("DATA 550 5.7.1 message refused as spam (score 1000.0)"), output)
        XCTAssertNil(try s.queued(containing: marker))
        // Default rules on a bare message from outside: 1.5 + 1.0 + 2.5 (MISSING_DATE,
        // MISSING_MESSAGE_ID, UNQUALIFIED_SENDER_DOMAIN) + the casino subject = 11.0: quarantined.
        let bareMarker = "bare-\(UUID().uuidString)"
        let bare = "From: x@remote.example\nSubject: casino\n\n\(bareMarker)\n"
        let bareOutput = try s.send("mx", from: "root@localhost", to: ["rcpt@a.example"], message: bare)
        XCTAssertTrue(bareOutput.contains("DATA 250"), bareOutput)
        let entry = try XCTUnwrap(s.queued(containing: bareMarker), bareOutput)
        XCTAssertEqual(entry.summary["holdReason"] as? String,
                       "spam score 11.0 (rule set tagged: MISSING_DATE,MISSING_MESSAGE_ID,UNQUALIFIED_SENDER_DOMAIN,CASINO)")
    }

    func testExampleConfigPassesCheckConfig() throws {
        let s = try running()
        let (code, output) = Build.run(Build.postern, ["check-config", "-c", s.server.configFile], cwd: s.dir.path)
        XCTAssertEqual(code, 0, output)
        // A key or type mistake in an inline rule is refused with its place (the deeper checks,
        // one condition per rule and valid regexes, run when a worker activates the plugin:
        // FilterRulesReloadTests shows a reload refused for them).
        let bad = s.dir.write("bad.toml", (try String(contentsOfFile: s.server.configFile, encoding: .utf8))
            .replacingOccurrences(of: "score = 4.0", with: "score = \"four\""))
        let (badCode, badOutput) = Build.run(Build.postern, ["check-config", "-c", bad], cwd: s.dir.path)
        XCTAssertNotEqual(badCode, 0, badOutput)
        XCTAssertTrue(badOutput.contains("plugin.filter-rules.sets[0].rules[2].score: expected float, found string \"four\""), badOutput)
    }
}
