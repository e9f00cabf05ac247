import XCTest
@testable import PosternSenderAuthCore

/// The DMARC record parser (RFC 7489 §6.3, §6.4) on byte fixtures, malformed ones included.
final class DMARCRecordTests: XCTestCase {
    func parse(_ text: String) -> DMARCRecord.Parsed { DMARCRecord.parse(Array(text.utf8)) }

    func record(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> DMARCRecord? {
        guard case .record(let record) = parse(text) else {
            XCTFail("not a record: \(parse(text))", file: file, line: line)
            return nil
        }
        return record
    }

    func testRFCExampleWithEveryTag() throws {
        // RFC 7489 §6.3's tags, all given.
        let r = try XCTUnwrap(record("v=DMARC1; p=quarantine; sp=reject; pct=20; adkim=s; aspf=s; "
                                     + "rua=mailto:dmarc-feedback@example.com,mailto:tld-test@thirdparty.example.net!10m; "
                                     + "ruf=mailto:auth-reports@thirdparty.example.net; fo=1:d; rf=afrf; ri=3600"))
        XCTAssertEqual(r.policy, .quarantine)
        XCTAssertEqual(r.subdomainPolicy, .reject)
        XCTAssertEqual(r.percent, 20)
        XCTAssertEqual(r.dkimAlignment, .strict)
        XCTAssertEqual(r.spfAlignment, .strict)
        XCTAssertEqual(r.aggregateReportURIs, [.init(uri: "mailto:dmarc-feedback@example.com"),
                                               .init(uri: "mailto:tld-test@thirdparty.example.net", maxSize: 10 << 20)])
        XCTAssertEqual(r.failureReportURIs.map(\.mailtoAddress), ["auth-reports@thirdparty.example.net"])
        XCTAssertEqual(r.failureOptions, ["1", "d"])
        XCTAssertEqual(r.reportFormats, ["afrf"])
        XCTAssertEqual(r.reportInterval, 3600)
    }

    func testDefaults() throws {
        let r = try XCTUnwrap(record("v=DMARC1; p=none"))
        XCTAssertEqual(r.policy, DMARCPolicy.none)
        XCTAssertNil(r.subdomainPolicy)
        XCTAssertEqual(r.percent, 100)
        XCTAssertEqual(r.dkimAlignment, .relaxed)
        XCTAssertEqual(r.spfAlignment, .relaxed)
        XCTAssertEqual(r.aggregateReportURIs, [])
        XCTAssertEqual(r.failureOptions, ["0"])
        XCTAssertEqual(r.reportFormats, ["afrf"])
        XCTAssertEqual(r.reportInterval, 86_400)
    }

    func testBadValuesTakeDefaults() throws {
        let r = try XCTUnwrap(record("v=DMARC1;p=reject;pct=150;adkim=x;aspf=;fo=9;rf=;ri=-5;rua=notauri,mailto:a@b.example!5q"))
        XCTAssertEqual(r.policy, .reject)
        XCTAssertEqual(r.percent, 100)
        XCTAssertEqual(r.dkimAlignment, .relaxed)
        XCTAssertEqual(r.spfAlignment, .relaxed)
        XCTAssertEqual(r.failureOptions, ["0"])
        XCTAssertEqual(r.reportFormats, ["afrf"])
        XCTAssertEqual(r.reportInterval, 86_400)
        XCTAssertEqual(r.aggregateReportURIs, [])
        XCTAssertEqual(try XCTUnwrap(record("v=DMARC1; p=none; pct=0")).percent, 0)
        XCTAssertEqual(try XCTUnwrap(record("v=DMARC1; p=none; pct=0100")).percent, 100)
        XCTAssertEqual(try XCTUnwrap(record("v=DMARC1; p=none; pct=+5")).percent, 100)
    }

    func testReportURISizesAndSpaces() throws {
        let r = try XCTUnwrap(record("v=DMARC1; p=none; rua = mailto:a@example.com!1k , https://r.example/x!2 ,mailto:b%40x@example.org!3T"))
        XCTAssertEqual(r.aggregateReportURIs, [.init(uri: "mailto:a@example.com", maxSize: 1024),
                                               .init(uri: "https://r.example/x", maxSize: 2),
                                               .init(uri: "mailto:b%40x@example.org", maxSize: 3 << 40)])
        XCTAssertEqual(r.aggregateReportURIs.map(\.mailtoAddress), ["a@example.com", nil, "b@x@example.org"])
        XCTAssertNil(DMARCRecord.ReportURI(uri: "mailto:bad%zz@example.org").mailtoAddress)
        XCTAssertEqual(DMARCRecord.ReportURI(uri: "MAILTO:r@example.org?subject=x").mailtoAddress, "r@example.org")
        XCTAssertEqual(try XCTUnwrap(record("v=DMARC1; p=none; rua=mailto:a@example.com!99999999999999999999t")).aggregateReportURIs, [])
        XCTAssertEqual(try XCTUnwrap(record("v=DMARC1; p=none; rua=mailto:a@example.com!9999999999999t")).aggregateReportURIs.first?.maxSize,
                       UInt64.max)
    }

    func testNamesAndKeywordsIgnoreCaseButTheVersionDoesNot() throws {
        XCTAssertEqual(try XCTUnwrap(record("V=DMARC1; P=Reject; ADKIM=S")).policy, .reject)
        XCTAssertEqual(try XCTUnwrap(record("v=DMARC1; p=reject; adkim=S")).dkimAlignment, .strict)
        XCTAssertEqual(parse("v=dmarc1; p=reject"), .notDMARC)
        XCTAssertEqual(parse("v=DMARC2; p=reject"), .notDMARC)
    }

    func testVersionMustComeFirst() {
        XCTAssertEqual(parse("p=reject; v=DMARC1"), .notDMARC)
        XCTAssertEqual(parse("v=spf1 -all"), .notDMARC)
        XCTAssertEqual(parse(""), .notDMARC)
        XCTAssertEqual(parse("google-site-verification=abc"), .notDMARC)
    }

    func testUnknownTagsAreIgnored() throws {
        XCTAssertEqual(try XCTUnwrap(record("v=DMARC1; p=reject; np=none; future_tag=some value with spaces;")).policy, .reject)
    }

    func testMissingOrBadPolicyCountsAsNoneOnlyWithAReportURI() throws {
        guard case .invalid = parse("v=DMARC1; sp=reject") else { return XCTFail("no p, no rua") }
        guard case .invalid = parse("v=DMARC1; p=block") else { return XCTFail("bad p, no rua") }
        guard case .invalid = parse("v=DMARC1; p=reject; sp=maybe") else { return XCTFail("bad sp, no rua") }
        guard case .invalid = parse("v=DMARC1; p=block; rua=bogus") else { return XCTFail("bad p, no valid rua") }
        let rescued = try XCTUnwrap(record("v=DMARC1; p=block; sp=reject; rua=mailto:r@example.com"))
        XCTAssertEqual(rescued.policy, DMARCPolicy.none)
        XCTAssertNil(rescued.subdomainPolicy)
    }

    func testByteFixtures() {
        // Folded (CR LF then white space), tabs, a trailing and empty specs.
        let folded: [UInt8] = Array("v=DMARC1;\r\n\tp=reject;;  ;\tpct = 50 ;".utf8)
        guard case .record(let r) = DMARCRecord.parse(folded) else { return XCTFail("folded record") }
        XCTAssertEqual(r.policy, .reject)
        XCTAssertEqual(r.percent, 50)

        let malformed: [(String, [UInt8])] = [
            ("bare CR", Array("v=DMARC1; p=reject;\r pct=5".utf8)),
            ("LF without white space", Array("v=DMARC1;\np=reject".utf8)),
            ("ends in a line break", Array("v=DMARC1; p=reject\r\n".utf8)),
            ("NUL in a value", Array("v=DMARC1; p=re".utf8) + [0] + Array("ject".utf8)),
            ("8-bit byte", Array("v=DMARC1; p=reject; rua=mailto:".utf8) + [0xC3, 0xA9] + Array("@example.com".utf8)),
            ("tag without =", Array("v=DMARC1; p".utf8)),
            ("name starting with a digit", Array("v=DMARC1; 1p=reject".utf8)),
            ("space inside a name", Array("v=DMARC1; p p=reject".utf8)),
            ("duplicate tag", Array("v=DMARC1; p=reject; p=none".utf8)),
            ("equals in a name", Array("v=DMARC1; =reject".utf8)),
        ]
        for (label, bytes) in malformed {
            guard case .invalid(let reason) = DMARCRecord.parse(bytes) else {
                XCTFail("\(label): \(DMARCRecord.parse(bytes))")
                continue
            }
            XCTAssertTrue(reason.hasPrefix("bad tag-list"), "\(label): \(reason)")
        }
        // Broken before a v= is visible: someone else's TXT record.
        XCTAssertEqual(DMARCRecord.parse([0xFF, 0x00]), .notDMARC)
    }


    func testPolicyStepsDown() {
        XCTAssertEqual(DMARCPolicy.reject.lessStrict, .quarantine)
        XCTAssertEqual(DMARCPolicy.quarantine.lessStrict, DMARCPolicy.none)
        XCTAssertEqual(DMARCPolicy.none.lessStrict, DMARCPolicy.none)
    }
}
