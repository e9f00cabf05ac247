import Foundation
import PosternHost
import PosternTestSupport
import XCTest

/// `postern ctl reload` with a changed rules file: sessions opened after the reload are judged by
/// the new rules, a session opened before it finishes its message under the old ones, and a
/// broken rules file is refused while the running rules go on.
final class FilterRulesReloadTests: XCTestCase {
    static func rules(score: Double, tag: Double) -> String {
        """
        [[sets]]
        name = "A"
        tag = \(tag)
        [[sets.rules]]
        name = "CASINO"
        score = \(score)
        header = "Subject"
        pattern = 'casino'
        """
    }

    func testReloadTakesNewRulesForNewSessionsAndKeepsOpenOnes() throws {
        let dns = try UnboundServer(zones: RulesServer.zones)
        defer { dns.stop() }
        let rulesDir = TempDir("filter-rules-file")
        let rulesFile = rulesDir.write("rules.toml", Self.rules(score: 6.0, tag: 5.0))
        let s = try RulesServer.start("filter-rules-reload", dns: dns, plugin: "rules_file = \"\(rulesFile)\"", listeners: [("mx", "")])
        defer { s.stop() }

        func sendCasino(_ marker: String) throws -> String {
            let output = try s.send("mx", to: ["rcpt@a.example"], message: RulesServer.message(subject: "casino", body: marker))
            XCTAssertTrue(output.contains("DATA 250"), output)
            return try XCTUnwrap(s.queued(containing: marker)?.message, output)
        }
        XCTAssertTrue(try sendCasino("before-reload").contains("X-Spam-Status: Yes, score=6.0 required=5.0 tests=CASINO\r\n"))

        // A session opened before the reload, its transaction begun.
        let open = try LineClient(port: s.ports["mx"]!, timeout: 30)
        XCTAssertTrue(try FilterServer.reply(open).hasPrefix("220"))
        XCTAssertTrue(try FilterServer.command(open, "EHLO client.test.example").hasPrefix("250 "))
        XCTAssertTrue(try FilterServer.command(open, "MAIL FROM:<sender@remote.example>").hasPrefix("250"))
        XCTAssertTrue(try FilterServer.command(open, "RCPT TO:<rcpt@a.example>").hasPrefix("250"))

        _ = rulesDir.write("rules.toml", Self.rules(score: 3.0, tag: 2.5))
        let response = try s.server.reload()
        XCTAssertTrue(response.ok, "\(response.message) \(response.errors)")
        XCTAssertTrue(try sendCasino("after-reload").contains("X-Spam-Status: Yes, score=3.0 required=2.5 tests=CASINO\r\n"),
                      "a new session sees the new rules")

        // The old session finishes its message, judged by the rules it started with.
        XCTAssertTrue(try FilterServer.command(open, "DATA").hasPrefix("354"))
        for line in RulesServer.message(subject: "casino", body: "open-session").split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            try open.send(String(line))
        }
        XCTAssertTrue(try FilterServer.command(open, ".").hasPrefix("250"))
        // The draining worker then ends the session (421, RFC 5321 §3.8) rather than take another message.
        let after = (try? FilterServer.command(open, "QUIT")) ?? "closed"
        XCTAssertTrue(after.hasPrefix("221") || after.hasPrefix("421") || after == "closed", after)
        let old = try XCTUnwrap(s.queued(containing: "open-session")?.message)
        XCTAssertTrue(old.contains("X-Spam-Status: Yes, score=6.0 required=5.0 tests=CASINO\r\n"), old)

        // A broken rules file: the new generation's worker cannot activate the plugin, so the
        // reload is refused; the log says what to fix; the rules in force stay.
        _ = rulesDir.write("rules.toml", Self.rules(score: 3.0, tag: 2.5) + "\nbody = \"two conditions\"\n")
        let refused = try s.server.reload()
        XCTAssertFalse(refused.ok, refused.message)
        XCTAssertTrue(s.server.log.contains("rules_file \(rulesFile): sets.0 (set 'A'): rules.0 (rule 'CASINO'): give exactly one condition"),
                      s.server.log)
        XCTAssertTrue(try sendCasino("after-refused").contains("X-Spam-Status: Yes, score=3.0 required=2.5 tests=CASINO\r\n"))
    }
}
