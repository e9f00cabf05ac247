import XCTest
@testable import PosternSenderAuthCore

/// The Received-SPF field (RFC 7208 §9.1).
final class ReceivedSPFTests: XCTestCase {
    func outcome(_ result: SPFResult, ip: String = "192.0.2.1", mechanism: String? = nil, problem: String? = nil) -> SPFOutcome {
        SPFOutcome(result: result, identity: .mailfrom, domain: "example.com", clientIP: ip, envelopeFrom: "myname@example.com",
                   helo: "foo.example.com", receiver: "mybox.example.org", explanation: nil, mechanism: mechanism, problem: problem)
    }

    func testPassAsInTheRFCExample() {
        // The first example of RFC 7208 §9.1 (envelope-from quoted there too: `@` is no atext), with
        // identity and mechanism added.
        XCTAssertEqual(ReceivedSPFField(outcome(.pass, mechanism: "ip4:192.0.2.0/24")).field, """
            Received-SPF: pass (mybox.example.org: domain of myname@example.com designates 192.0.2.1 as permitted sender)\r
            \treceiver=mybox.example.org;\r
            \tclient-ip=192.0.2.1;\r
            \tenvelope-from="myname@example.com";\r
            \thelo=foo.example.com;\r
            \tidentity=mailfrom;\r
            \tmechanism="ip4:192.0.2.0/24";
            """)
    }

    func testCommentsPerResult() {
        let comments: [SPFResult: String] = [
            .fail: "mybox.example.org: domain of myname@example.com does not designate 192.0.2.1 as permitted sender",
            .softfail: "mybox.example.org: transitioning domain of myname@example.com does not designate 192.0.2.1 as permitted sender",
            .neutral: "mybox.example.org: 192.0.2.1 is neither permitted nor denied by domain of myname@example.com",
            .none: "mybox.example.org: domain of myname@example.com does not provide an SPF record",
            .temperror: "mybox.example.org: error in processing during lookup of domain of myname@example.com",
            .permerror: "mybox.example.org: permanent error in processing domain of myname@example.com",
        ]
        for (result, comment) in comments { XCTAssertEqual(ReceivedSPFField(outcome(result)).comment, comment) }
    }

    func testValuesThatAreNoDotAtomAreQuoted() {
        let field = ReceivedSPFField(outcome(.permerror, ip: "2001:db8::1", mechanism: nil,
                                             problem: "syntax error in 'a:\"x\"' (bad)\r\nInjected: yes"))
        XCTAssertTrue(field.value.contains("client-ip=\"2001:db8::1\";"), field.value)
        XCTAssertTrue(field.value.contains("problem=\"syntax error in 'a:\\\"x\\\"' (bad)Injected: yes\";"), field.value)
        XCTAssertFalse(field.value.contains("\r\nInjected"))
        // Only temperror and permerror carry a problem.
        XCTAssertFalse(ReceivedSPFField(outcome(.neutral, problem: "no match")).value.contains("problem="))
    }

    func testCommentCannotBeClosedBySender() {
        var weird = outcome(.fail)
        weird.envelopeFrom = "a)(b\\c@example.com"
        XCTAssertTrue(ReceivedSPFField(weird).value.contains("domain of a\\)\\(b\\\\c@example.com does not"))
        XCTAssertTrue(ReceivedSPFField(weird).value.contains("envelope-from=\"a)(b\\\\c@example.com\";"))
    }
}
