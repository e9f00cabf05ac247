import PosternTestSupport
import XCTest
@testable import PosternDNSCore

/// What a response means for the question asked: records at the end of a CNAME chain, NODATA,
/// NXDOMAIN, failures, and the TTLs the cache keeps them for.
final class AnswerTests: XCTestCase {
    private func response(rcode: UInt8 = 0, question: String, type: DNSRecordType,
                          answers: [DNSResourceRecord] = [], soa: (ttl: UInt32, minimum: UInt32)? = nil) -> DNSMessage {
        DNSMessage(
            header: DNSHeader(id: 1, isResponse: true, recursionDesired: true, recursionAvailable: true, rcode: rcode),
            questions: [DNSQuestion(name: dnsName(question), type: type)],
            answers: answers,
            authorities: soa.map {
                [DNSResourceRecord(name: dnsName("example.test"), type: .soa, ttl: $0.ttl, data: .soa(DNSSOA(
                    primaryServer: dnsName("ns.example.test"), responsibleMailbox: dnsName("h.example.test"),
                    serial: 1, refresh: 2, retry: 3, expire: 4, minimum: $0.minimum)))]
            } ?? [])
    }

    private func a(_ owner: String, _ ttl: UInt32, _ last: UInt8) -> DNSResourceRecord {
        DNSResourceRecord(name: dnsName(owner), type: .a, ttl: ttl, data: .a([192, 0, 2, last]))
    }

    private func cname(_ owner: String, _ ttl: UInt32, _ target: String) -> DNSResourceRecord {
        DNSResourceRecord(name: dnsName(owner), type: .cname, ttl: ttl, data: .cname(dnsName(target)))
    }

    func testRecordsTakeTheSmallestTTL() {
        let r = response(question: "h.example.test", type: .a, answers: [a("h.example.test", 300, 1), a("H.EXAMPLE.TEST", 200, 2)])
        XCTAssertEqual(DNSAnswer.interpret(r, name: dnsName("h.example.test"), type: .a, maxHops: 8),
                       .records([a("h.example.test", 300, 1), a("h.example.test", 200, 2)], ttl: 200))
    }

    func testCNAMEChainInOneResponse() {
        let r = response(question: "www.example.test", type: .a, answers: [
            cname("www.example.test", 100, "web.example.test"),
            cname("web.example.test", 50, "host.example.test"),
            a("host.example.test", 300, 7),
            a("other.example.test", 1, 8),
        ])
        XCTAssertEqual(DNSAnswer.interpret(r, name: dnsName("www.example.test"), type: .a, maxHops: 8),
                       .records([a("host.example.test", 300, 7)], ttl: 50), "the chain's TTLs count, unrelated records do not")
        XCTAssertEqual(DNSAnswer.interpret(r, name: dnsName("www.example.test"), type: .a, maxHops: 1),
                       .failure("CNAME chain from www.example.test longer than 1"))
    }

    func testCNAMELeavingTheResponseIsFollowedElsewhere() {
        let r = response(question: "alias1.example.test", type: .a, answers: [cname("alias1.example.test", 300, "alias2.example.test")])
        XCTAssertEqual(DNSAnswer.interpret(r, name: dnsName("alias1.example.test"), type: .a, maxHops: 8),
                       .alias(target: dnsName("alias2.example.test"), ttl: 300, hops: 1))
        XCTAssertEqual(DNSAnswer.interpret(r, name: dnsName("alias1.example.test"), type: .a, maxHops: 0),
                       .failure("CNAME chain from alias1.example.test longer than 0"))
        // The captured unbound answer says the same.
        XCTAssertEqual(DNSAnswer.interpret(try! DNSWire.decode(Captured.cname), name: dnsName("alias1.example.test"), type: .a, maxHops: 8),
                       .alias(target: dnsName("alias2.example.test"), ttl: 300, hops: 1))
    }

    func testCNAMELoopIsBounded() {
        let r = response(question: "l1.example.test", type: .a, answers: [
            cname("l1.example.test", 300, "l2.example.test"), cname("l2.example.test", 300, "l1.example.test"),
        ])
        XCTAssertEqual(DNSAnswer.interpret(r, name: dnsName("l1.example.test"), type: .a, maxHops: 8),
                       .failure("CNAME chain from l1.example.test longer than 8"))
    }

    func testAskingForCNAMEItselfDoesNotFollow() {
        let r = response(question: "www.example.test", type: .cname, answers: [cname("www.example.test", 30, "x.example.test")])
        XCTAssertEqual(DNSAnswer.interpret(r, name: dnsName("www.example.test"), type: .cname, maxHops: 8),
                       .records([cname("www.example.test", 30, "x.example.test")], ttl: 30))
    }

    func testNegativeAnswersAndTheirTTL() {
        XCTAssertEqual(DNSAnswer.interpret(response(rcode: 3, question: "n.example.test", type: .a, soa: (600, 60)),
                                           name: dnsName("n.example.test"), type: .a, maxHops: 8),
                       .nameError(ttl: 60), "RFC 2308 §5: the smaller of the SOA's TTL and MINIMUM")
        XCTAssertEqual(DNSAnswer.interpret(response(rcode: 3, question: "n.example.test", type: .a, soa: (30, 3600)),
                                           name: dnsName("n.example.test"), type: .a, maxHops: 8),
                       .nameError(ttl: 30))
        XCTAssertEqual(DNSAnswer.interpret(response(question: "example.test", type: .txt, soa: (600, 60)),
                                           name: dnsName("example.test"), type: .txt, maxHops: 8),
                       .noData(ttl: 60))
        XCTAssertEqual(DNSAnswer.interpret(response(rcode: 3, question: "n.example.test", type: .a),
                                           name: dnsName("n.example.test"), type: .a, maxHops: 8),
                       .nameError(ttl: nil), "no SOA: not cached")
        // NXDOMAIN at the end of a chain: the chain's TTL bounds the negative TTL too.
        XCTAssertEqual(DNSAnswer.interpret(response(rcode: 3, question: "w.example.test", type: .a,
                                                    answers: [cname("w.example.test", 10, "gone.example.test")], soa: (600, 60)),
                                           name: dnsName("w.example.test"), type: .a, maxHops: 8),
                       .nameError(ttl: 10))
        XCTAssertEqual(DNSAnswer.interpret(try! DNSWire.decode(Captured.nxdomain), name: dnsName("nope.example.test"), type: .a, maxHops: 8),
                       .nameError(ttl: 60))
        XCTAssertEqual(DNSAnswer.interpret(try! DNSWire.decode(Captured.nodata), name: dnsName("example.test"), type: .txt, maxHops: 8),
                       .noData(ttl: 60))
    }

    func testServerFailuresAreFailures() {
        for rcode: UInt8 in [1, 2, 4, 5] {
            guard case .failure = DNSAnswer.interpret(response(rcode: rcode, question: "x.test", type: .a),
                                                      name: dnsName("x.test"), type: .a, maxHops: 8)
            else { return XCTFail("rcode \(rcode) must be a failure") }
        }
        XCTAssertEqual(DNSAnswer.interpret(try! DNSWire.decode(Captured.refused), name: dnsName("x.refused.test"), type: .a, maxHops: 8),
                       .failure("REFUSED for x.refused.test A"))
    }
}
