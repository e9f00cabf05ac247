import PosternTestSupport
import XCTest
@testable import PosternDNSCore

/// The codec byte by byte: queries encoded exactly, captured responses decoded field by field,
/// and every kind of malformed packet refused with its own error.
final class WireTests: XCTestCase {
    // MARK: Queries

    func testQueryBytes() {
        let query = DNSMessage.query(id: 0x1234, name: dnsName("Example.test."), type: .mx)
        XCTAssertEqual(DNSWire.encode(query), hex("""
            1234 0100 0001 0000 0000 0001
            07 4578616d706c65 04 74657374 00 000f 0001
            00 0029 04d0 00000000 0000
            """), "header with RD only, one question, one OPT record advertising 1232 octets, no DO bit")
    }

    func testQueryRoundTrip() throws {
        let query = DNSMessage.query(id: 7, name: dnsName("a.b.c"), type: .aaaa, udpPayloadSize: 4096)
        let decoded = try DNSWire.decode(DNSWire.encode(query))
        XCTAssertEqual(decoded, query)
        XCTAssertEqual(decoded.opt?.recordClass, 4096)
        XCTAssertTrue(decoded.header.recursionDesired)
        XCTAssertFalse(decoded.header.isResponse)
    }

    // MARK: Captured responses

    func testCapturedMXWithCompression() throws {
        let message = try DNSWire.decode(Captured.mx)
        XCTAssertEqual(message.header.id, 0xbd61)
        XCTAssertTrue(message.header.isResponse)
        XCTAssertTrue(message.header.authoritative)
        XCTAssertTrue(message.header.recursionDesired)
        XCTAssertTrue(message.header.recursionAvailable)
        XCTAssertEqual(message.responseCode, .noError)
        XCTAssertEqual(message.questions, [DNSQuestion(name: dnsName("example.test"), type: .mx)])
        XCTAssertEqual(message.answers.map(\.data), [
            .mx(preference: 10, exchange: dnsName("mx1.example.test")),
            .mx(preference: 10, exchange: dnsName("mx2.example.test")),
            .mx(preference: 20, exchange: dnsName("backup.example.test")),
        ])
        XCTAssertEqual(message.answers.map(\.ttl), [300, 300, 300])
        XCTAssertEqual(message.answers.map(\.name.description), ["example.test", "example.test", "example.test"])
        XCTAssertEqual(message.opt?.recordClass, 1232)
        XCTAssertEqual(message.opt?.data, .opt([]))
    }

    func testCapturedNegativeAnswers() throws {
        let nx = try DNSWire.decode(Captured.nxdomain)
        XCTAssertEqual(nx.responseCode, .nameError)
        XCTAssertEqual(nx.answers, [])
        XCTAssertEqual(nx.authorities.count, 1)
        XCTAssertEqual(nx.authorities[0].ttl, 60)
        XCTAssertEqual(nx.authorities[0].data, .soa(DNSSOA(
            primaryServer: dnsName("ns.example.test"), responsibleMailbox: dnsName("hostmaster.example.test"),
            serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: 60)))
        let nodata = try DNSWire.decode(Captured.nodata)
        XCTAssertEqual(nodata.responseCode, .noError)
        XCTAssertEqual(nodata.answers, [])
        XCTAssertEqual(DNSAnswer.negativeCacheTTL(nodata), 60)
        XCTAssertEqual(try DNSWire.decode(Captured.refused).responseCode, .refused)
    }

    func testCapturedRecordTypes() throws {
        XCTAssertEqual(try DNSWire.decode(Captured.aaaa).answers.map(\.data), [.aaaa(hex("20010db8000000000000000000000025"))])
        let ptr = try DNSWire.decode(Captured.ptr)
        XCTAssertEqual(ptr.questions[0].name.description, "25.0.0.127.in-addr.arpa")
        XCTAssertEqual(ptr.answers.map(\.data), [.ptr(dnsName("mail.example.test"))])
        XCTAssertEqual(ptr.answers[0].ttl, 3600)
        XCTAssertEqual(try DNSWire.decode(Captured.cname).answers.map(\.data), [.cname(dnsName("alias2.example.test"))])
        let txt = try DNSWire.decode(Captured.longTXT)
        XCTAssertEqual(txt.answers.map(\.data), [.txt([Array(repeating: 0x61, count: 200), Array(repeating: 0x62, count: 100)])])
        let truncated = try DNSWire.decode(Captured.truncated)
        XCTAssertTrue(truncated.header.truncated)
        XCTAssertEqual(truncated.answers, [])
    }

    func testEveryRecordTypeRoundTrips() throws {
        let soa = DNSSOA(primaryServer: dnsName("ns.x"), responsibleMailbox: dnsName("h.x"), serial: 1, refresh: 2, retry: 3, expire: 4, minimum: 5)
        let message = DNSMessage(
            header: DNSHeader(id: 0xffff, isResponse: true, opcode: 0, authoritative: true, truncated: true,
                              recursionDesired: true, recursionAvailable: true, authenticData: true, checkingDisabled: true, rcode: 3),
            questions: [DNSQuestion(name: dnsName("x"), type: .a)],
            answers: [
                DNSResourceRecord(name: dnsName("x"), type: .a, ttl: 1, data: .a([1, 2, 3, 4])),
                DNSResourceRecord(name: dnsName("x"), type: .aaaa, ttl: 2, data: .aaaa(Array(0..<16))),
                DNSResourceRecord(name: dnsName("x"), type: .mx, ttl: 3, data: .mx(preference: 0, exchange: .root)),
                DNSResourceRecord(name: dnsName("x"), type: .txt, ttl: 4, data: .txt([[], [0x41], Array(repeating: 0x42, count: 255)])),
                DNSResourceRecord(name: dnsName("x"), type: .ptr, ttl: 5, data: .ptr(dnsName("p.x"))),
                DNSResourceRecord(name: dnsName("x"), type: .cname, ttl: 6, data: .cname(dnsName("c.x"))),
                DNSResourceRecord(name: dnsName("x"), type: .ns, ttl: 7, data: .ns(dnsName("n.x"))),
                DNSResourceRecord(name: dnsName("x"), type: DNSRecordType(rawValue: 99), ttl: 8, data: .unknown([9, 9])),
            ],
            authorities: [DNSResourceRecord(name: dnsName("x"), type: .soa, ttl: 9, data: .soa(soa))],
            additionals: [DNSResourceRecord(name: .root, type: .opt, recordClass: 512, ttl: 0x0100_8000,
                                            data: .opt([EDNSOption(code: 10, data: [1, 2, 3, 4, 5, 6, 7, 8])]))])
        let decoded = try DNSWire.decode(DNSWire.encode(message))
        XCTAssertEqual(decoded, message)
        XCTAssertEqual(decoded.responseCode.rawValue, 0x10 | 3, "the OPT record's upper RCODE bits are added")
    }

    func testTTLWithTopBitIsZero() throws {
        var bytes = DNSWire.encode(DNSMessage(header: DNSHeader(id: 1, isResponse: true),
                                              answers: [DNSResourceRecord(name: dnsName("x"), type: .a, ttl: 5, data: .a([1, 1, 1, 1]))]))
        bytes[12 + 3 + 4] = 0x80   // the TTL's first octet, after the name "x" and type and class
        XCTAssertEqual(try DNSWire.decode(bytes).answers[0].ttl, 0, "RFC 2181 §8")
    }

    // MARK: Names as text

    func testNamesFromText() throws {
        XCTAssertEqual(try DNSName("mx.example.org.").labels.count, 3)
        XCTAssertEqual(try DNSName("").labels, [])
        XCTAssertEqual(try DNSName(".").description, ".")
        XCTAssertEqual(try DNSName("MX.Example.ORG"), try DNSName("mx.example.org"), "compared without case")
        XCTAssertEqual(try DNSName("a.b").wireLength, 5)
        XCTAssertThrowsError(try DNSName("a..b")) { XCTAssertEqual($0 as? DNSWireError, .emptyLabel("a..b")) }
        XCTAssertThrowsError(try DNSName(String(repeating: "x", count: 64) + ".org")) {
            XCTAssertEqual($0 as? DNSWireError, .labelTooLong(length: 64, offset: nil))
        }
        XCTAssertNoThrow(try DNSName(String(repeating: "x", count: 63) + ".org"))
        // 4 labels of 63 plus their length octets and the root: 257 > 255; 3 of 63 and one of 61: 255.
        let label63 = String(repeating: "y", count: 63)
        XCTAssertThrowsError(try DNSName([label63, label63, label63, label63].joined(separator: "."))) {
            XCTAssertEqual($0 as? DNSWireError, .nameTooLong(offset: nil))
        }
        XCTAssertEqual(try DNSName([label63, label63, label63, String(repeating: "z", count: 61)].joined(separator: ".")).wireLength, 255)
        XCTAssertEqual(DNSName(validLabels: [[0x61, 0x2E, 0x5C, 0x20, 0xFF]]).description, "a\\046\\092\\032\\255")
    }

    // MARK: Malformed input

    /// A response header for one question and `answers` answers; the question name starts at 12.
    private func header(answers: UInt16 = 0, additionals: UInt16 = 0) -> [UInt8] {
        [0x12, 0x34, 0x81, 0x80, 0x00, 0x01, UInt8(answers >> 8), UInt8(answers & 0xff), 0, 0, UInt8(additionals >> 8), UInt8(additionals & 0xff)]
    }

    private func assertMalformed(_ bytes: [UInt8], _ expected: DNSWireError, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try DNSWire.decode(bytes), file: file, line: line) { error in
            XCTAssertEqual(error as? DNSWireError, expected, file: file, line: line)
            XCTAssertFalse("\(error)".isEmpty)
        }
    }

    func testTruncatedPackets() {
        assertMalformed([], .truncated(what: "header", offset: 0))
        assertMalformed(hex("1234 8180 0001"), .truncated(what: "header", offset: 6))
        assertMalformed(header() + hex("03 6d 78"), .truncated(what: "name", offset: 12))
        assertMalformed(header() + hex("01 78 00 00"), .truncated(what: "question type", offset: 15))
        assertMalformed(header(answers: 1) + hex("01 78 00 0001 0001") + hex("c00c 0001 0001 0000"),
                        .truncated(what: "record TTL", offset: 25))
        // Every proper prefix of every captured packet is refused (each ends with a counted OPT
        // record), none accepted or trapped on.
        for packet in Captured.all {
            for length in 0..<packet.count {
                XCTAssertThrowsError(try DNSWire.decode(Array(packet[0..<length])), "prefix of \(length) octets")
            }
        }
    }

    func testPointerLoops() {
        // The question name is a pointer to itself.
        assertMalformed(header() + hex("c00c 0001 0001"), .pointerLoop(offset: 12, target: 12))
        // A label, then a pointer back to that label: a.a.a... forever.
        assertMalformed(header() + hex("0161 c00c 0001 0001"), .pointerLoop(offset: 14, target: 12))
        // An answer name pointing back into the question name, which ends in a pointer to itself.
        assertMalformed(header(answers: 1) + hex("01 78 c00e 0001 0001") + hex("c00c 0001 0001 00000001 0000"),
                        .pointerLoop(offset: 14, target: 14))
        // Two names, each ending in a pointer into the other: caught at the forward one.
        assertMalformed(header(answers: 1) + hex("0178 c017 0001 0001") + hex("0179 c00c 0001 0001 00000000 0000"),
                        .pointerForward(offset: 14, target: 23))
    }

    func testPointersForwardAndOutOfRange() {
        assertMalformed(header() + hex("c0ff 0001 0001"), .pointerOutOfRange(offset: 12, target: 255))
        assertMalformed(header() + hex("ffff 0001 0001"), .pointerOutOfRange(offset: 12, target: 0x3fff))
        assertMalformed(header() + hex("c00e 0178 00 0001 0001"), .pointerForward(offset: 12, target: 14))
        // A pointer cut in half by the end of the packet.
        assertMalformed(header() + hex("c0"), .truncated(what: "name", offset: 12))
    }

    /// `count` labels of 63 copies of `octet`, with their length octets.
    private func labels63(_ count: Int, _ octet: UInt8) -> [UInt8] {
        var bytes: [UInt8] = []
        for _ in 0..<count { bytes += [63] + [UInt8](repeating: octet, count: 63) }
        return bytes
    }

    func testLabelAndNameLimits() {
        let label64: [UInt8] = [64] + [UInt8](repeating: 0x61, count: 64)
        assertMalformed(header() + label64 + hex("00 0001 0001"), .labelTooLong(length: 64, offset: 12))
        assertMalformed(header() + hex("80 00 0001 0001"), .labelTooLong(length: 0x80, offset: 12))
        // Five labels of 63: 5 × 64 + 1 = 321 octets.
        assertMalformed(header() + labels63(5, 0x61) + hex("00 0001 0001"), .nameTooLong(offset: 12))
        // Within 255 octets only through compression still counts the whole name: a 192-octet
        // first name, then a second one adding one more label of 63 in front of a pointer to it.
        let question: [UInt8] = labels63(3, 0x62) + hex("00 0001 0001")
        let answer: [UInt8] = labels63(1, 0x63) + hex("c00c 0001 0001 00000001 0000")
        assertMalformed(header(answers: 1) + question + answer, .nameTooLong(offset: 12 + question.count))
    }

    func testRDataLengths() {
        let question = hex("01 78 00 0001 0001")
        // RDLENGTH 10 with 4 octets left.
        assertMalformed(header(answers: 1) + question + hex("c00c 0001 0001 00000001 000a 01020304"),
                        .rdataPastEnd(type: "A", offset: 31, length: 10, available: 4))
        // An A record of 5 octets.
        assertMalformed(header(answers: 1) + question + hex("c00c 0001 0001 00000001 0005 0102030405"),
                        .badRData(type: "A", offset: 31, reason: "expected 4 octets, found 5"))
        // An MX whose exchange name runs past RDLENGTH although the packet goes on.
        assertMalformed(header(answers: 1, additionals: 0) + question + hex("c00c 000f 0001 00000001 0004 000a 036d78 00 ffff"),
                        .badRData(type: "MX", offset: 31, reason: "name runs past the end of the record data (RDLENGTH 4)"))
        // An MX that leaves octets of its RDLENGTH unused.
        assertMalformed(header(answers: 1) + question + hex("c00c 000f 0001 00000001 0005 000a c00c 00"),
                        .badRData(type: "MX", offset: 31, reason: "4 octets used of RDLENGTH 5"))
        // A TXT character-string longer than what is left of its record.
        assertMalformed(header(answers: 1) + question + hex("c00c 0010 0001 00000001 0003 05 6162"),
                        .badRData(type: "TXT", offset: 31, reason: "TXT string runs past the end of the record data (RDLENGTH 3)"))
        // An EDNS option longer than the OPT record.
        assertMalformed(header(additionals: 1) + question + hex("00 0029 04d0 00000000 0004 000a 0008"),
                        .badRData(type: "OPT", offset: 30, reason: "EDNS option runs past the end of the record data (RDLENGTH 4)"))
        // A SOA cut short inside its RDLENGTH.
        XCTAssertThrowsError(try DNSWire.decode(header(answers: 1) + question + hex("c00c 0006 0001 00000001 0006 c00c c00c 0000")))
    }

    // MARK: Matching replies to queries

    func testRepliesMustMatchIDAndQuestion() throws {
        let query = DNSMessage.query(id: 0xbd61, name: dnsName("example.test"), type: .mx)
        let reply = try DNSWire.decode(Captured.mx)
        XCTAssertTrue(reply.isResponse(to: query))
        XCTAssertTrue(reply.isResponse(to: DNSMessage.query(id: 0xbd61, name: dnsName("EXAMPLE.Test"), type: .mx)),
                      "names compare without case")
        XCTAssertFalse(reply.isResponse(to: DNSMessage.query(id: 0xbd62, name: dnsName("example.test"), type: .mx)), "wrong ID")
        XCTAssertFalse(reply.isResponse(to: DNSMessage.query(id: 0xbd61, name: dnsName("example.org"), type: .mx)), "other name")
        XCTAssertFalse(reply.isResponse(to: DNSMessage.query(id: 0xbd61, name: dnsName("example.test"), type: .a)), "other type")
        var noQR = reply
        noQR.header.isResponse = false
        XCTAssertFalse(noQR.isResponse(to: query), "a query is not a reply")
        var twoQuestions = reply
        twoQuestions.questions.append(twoQuestions.questions[0])
        XCTAssertFalse(twoQuestions.isResponse(to: query))
        var noQuestion = reply
        noQuestion.questions = []
        XCTAssertFalse(noQuestion.isResponse(to: query))
        var otherClass = reply
        otherClass.questions[0].recordClass = 3
        XCTAssertFalse(otherClass.isResponse(to: query))
    }
}
