import PluginAPI
import XCTest
@testable import PosternSenderAuthCore

/// The extended examples of RFC 7208 Appendix B (numbered Appendix A in RFC 4408): the example
/// zone given there, each record of B.1 served at example.com in turn and checked from the
/// client addresses the RFC says it permits, and from others it does not. Then B.3's DNSBL-style
/// use of macros, with names of the form given there. In memory: exact answers, no server.
final class SPFExampleTests: XCTestCase {
    /// The zone of Appendix B, without example.com's SPF record.
    static var zone: SPFZoneResolver {
        var zone = SPFZoneResolver()
        zone.add("example.com", .a, "192.0.2.10", "192.0.2.11")
        zone.add("amy.example.com", .a, "192.0.2.65")
        zone.add("bob.example.com", .a, "192.0.2.66")
        zone.add("mail-a.example.com", .a, "192.0.2.129")
        zone.add("mail-b.example.com", .a, "192.0.2.130")
        zone.add("www.example.com", .a, "192.0.2.10", "192.0.2.11")  // a CNAME to example.com there
        zone.add("example.com", .mx, "mail-a.example.com", "mail-b.example.com")
        zone.add("example.org", .mx, "mail-c.example.org")
        zone.add("mail-c.example.org", .a, "192.0.2.140")
        zone.add("192.0.2.10", .ptr, "example.com")
        zone.add("192.0.2.11", .ptr, "example.com")
        zone.add("192.0.2.65", .ptr, "amy.example.com")
        zone.add("192.0.2.66", .ptr, "bob.example.com")
        zone.add("192.0.2.129", .ptr, "mail-a.example.com")
        zone.add("192.0.2.130", .ptr, "mail-b.example.com")
        zone.add("192.0.2.140", .ptr, "mail-c.example.org")
        zone.add("10.0.0.10", .ptr, "bob.example.com")
        return zone
    }

    static let clients = ["192.0.2.10", "192.0.2.11", "192.0.2.65", "192.0.2.66", "192.0.2.128", "192.0.2.129", "192.0.2.130",
                          "192.0.2.131", "192.0.2.140", "192.0.2.143", "192.0.2.144", "10.0.0.10"]

    /// Appendix B.1: each record, and the clients the RFC's text says it permits.
    func testAppendixB1SimpleExamples() async {
        let examples: [(String, Set<String>)] = [
            ("v=spf1 +all", Set(Self.clients)),
            ("v=spf1 a -all", ["192.0.2.10", "192.0.2.11"]),
            ("v=spf1 a:example.org -all", []),
            ("v=spf1 mx -all", ["192.0.2.129", "192.0.2.130"]),
            ("v=spf1 mx:example.org -all", ["192.0.2.140"]),
            ("v=spf1 mx mx:example.org -all", ["192.0.2.129", "192.0.2.130", "192.0.2.140"]),
            ("v=spf1 mx/30 mx:example.org/30 -all", ["192.0.2.128", "192.0.2.129", "192.0.2.130", "192.0.2.131",
                                                     "192.0.2.140", "192.0.2.143"]),
            // 10.0.0.10 names bob.example.com, whose address is another: not validated.
            ("v=spf1 ptr -all", ["192.0.2.10", "192.0.2.11", "192.0.2.65", "192.0.2.66", "192.0.2.129", "192.0.2.130"]),
            ("v=spf1 ip4:192.0.2.128/28 -all", ["192.0.2.128", "192.0.2.129", "192.0.2.130", "192.0.2.131",
                                                "192.0.2.140", "192.0.2.143"]),
        ]
        for (record, permitted) in examples {
            var zone = Self.zone
            zone.add("example.com", .txt, record)
            let evaluator = SPFEvaluator(resolver: zone)
            for client in Self.clients {
                let outcome = await evaluator.check(ip: client, mailFrom: "sender@example.com", helo: "h.example.net", receiver: "mx")
                XCTAssertEqual(outcome.result, permitted.contains(client) ? .pass : .fail, "\(record) from \(client): \(outcome)")
            }
        }
    }

    /// Appendix B.2: example.org's record includes example.com's and example.net's; example.net
    /// has none, which is a permerror only when evaluation gets that far.
    func testAppendixB2MultipleDomains() async {
        var zone = Self.zone
        zone.add("example.com", .txt, "v=spf1 mx -all")
        zone.add("example.org", .txt, "v=spf1 include:example.com include:example.net -all")
        let evaluator = SPFEvaluator(resolver: zone)
        let passed = await evaluator.check(ip: "192.0.2.129", mailFrom: "sender@example.org", helo: "h", receiver: "mx")
        XCTAssertEqual(passed.result, .pass)
        XCTAssertEqual(passed.mechanism, "include:example.com")
        let other = await evaluator.check(ip: "192.0.2.140", mailFrom: "sender@example.org", helo: "h", receiver: "mx")
        XCTAssertEqual(other.result, .permerror, "\(other)")
    }

    /// Appendix B.3's DNSBL style: users who may send from anywhere are listed by local-part
    /// (`%{l1r+}` drops a `+detail`), remote users by address and local-part.
    func testAppendixB3DNSBLStyle() async {
        var zone = Self.zone
        zone.add("example.com", .txt,
                 "v=spf1 mx exists:%{l1r+}.mobile-users._spf.%{d} "
                 + "exists:%{i}.%{l1r+}.remote-users._spf.%{d} -all exp=explain._spf.%{d}")
        zone.add("explain._spf.example.com", .txt, "%{l} is not allowed to send from %{i}: see https://%{d}/why")
        zone.add("mary.mobile-users._spf.example.com", .a, "127.0.0.2")
        zone.add("fred.mobile-users._spf.example.com", .a, "127.0.0.2")
        zone.add("192.168.15.15.joel.remote-users._spf.example.com", .a, "127.0.0.2")
        let evaluator = SPFEvaluator(resolver: zone)
        let cases: [(String, String, SPFResult)] = [
            ("203.0.113.7", "mary@example.com", .pass),
            ("203.0.113.7", "fred+bulk@example.com", .pass),
            ("192.168.15.15", "joel@example.com", .pass),
            ("192.168.15.16", "joel@example.com", .fail),
            ("192.0.2.129", "anyone@example.com", .pass),
        ]
        for (ip, sender, expected) in cases {
            let outcome = await evaluator.check(ip: ip, mailFrom: sender, helo: "h", receiver: "mx")
            XCTAssertEqual(outcome.result, expected, "\(sender) from \(ip): \(outcome)")
        }
        let refused = await evaluator.check(ip: "192.168.15.16", mailFrom: "joel@example.com", helo: "h", receiver: "mx")
        XCTAssertEqual(refused.explanation, "joel is not allowed to send from 192.168.15.16: see https://example.com/why")
        XCTAssertEqual(refused.mechanism, "-all")
        let mobile = await evaluator.check(ip: "203.0.113.7", mailFrom: "fred+bulk@example.com", helo: "h", receiver: "mx")
        XCTAssertEqual(mobile.mechanism, "exists:%{l1r+}.mobile-users._spf.%{d}")
    }

    /// Edges of §4 and §5 the interop table cannot reach with a real server.
    func testEdges() async {
        var zone = Self.zone
        zone.add("example.com", .txt, "v=spf1 ip4:192.0.2.0/24 -all")
        zone.failing = ["broken.example.net"]
        let evaluator = SPFEvaluator(resolver: zone)
        let bad = await evaluator.check(ip: "not-an-ip", mailFrom: "a@example.com", helo: "h", receiver: "mx")
        XCTAssertEqual(bad.result, .permerror)
        let single = await evaluator.check(ip: "192.0.2.1", mailFrom: "a@localhost", helo: "h", receiver: "mx")
        XCTAssertEqual(single.result, .none)
        let literal = await evaluator.check(ip: "192.0.2.1", mailFrom: "a@[192.0.2.1]", helo: "h", receiver: "mx")
        XCTAssertEqual(literal.result, .none)
        let noLocal = await evaluator.check(ip: "192.0.2.1", mailFrom: "@example.com", helo: "h", receiver: "mx")
        XCTAssertEqual(noLocal.envelopeFrom, "postmaster@example.com")
        XCTAssertEqual(noLocal.result, .pass)
        let temp = await evaluator.check(ip: "192.0.2.1", mailFrom: "a@broken.example.net", helo: "h", receiver: "mx")
        XCTAssertEqual(temp.result, .temperror)
        let mapped = await evaluator.check(ip: "::ffff:192.0.2.1", mailFrom: "a@example.com", helo: "h", receiver: "mx")
        XCTAssertEqual(mapped.result, .pass)
        XCTAssertEqual(mapped.clientIP, "192.0.2.1")
        let host = await evaluator.checkHost(ip: "198.51.100.1", domain: "example.com", sender: "a@example.org", helo: "h", receiver: "mx")
        XCTAssertEqual(host.result, .fail)
        XCTAssertEqual(host.envelopeFrom, "a@example.org")
        // A time limit already spent is temperror, as a slow DNS would be.
        let late = await SPFEvaluator(resolver: zone, limits: SPFLimits(timeLimit: .zero))
            .check(ip: "192.0.2.1", mailFrom: "a@example.com", helo: "h", receiver: "mx")
        XCTAssertEqual(late.result, .temperror)
        // Lower limits are honoured: two terms allowed, the third a permerror.
        zone.add("limits.example.com", .txt, "v=spf1 a a a +all")
        let limited = await SPFEvaluator(resolver: zone, limits: SPFLimits(dnsTerms: 2))
            .check(ip: "198.51.100.1", mailFrom: "a@limits.example.com", helo: "h", receiver: "mx")
        XCTAssertEqual(limited.result, .permerror)
    }
}
