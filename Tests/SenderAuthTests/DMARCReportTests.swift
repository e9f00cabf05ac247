import Foundation
import PluginAPI
import XCTest
@testable import PosternSenderAuthCore

/// Aggregate reports (RFC 7489 §7.2): the store, the XML checked against the RFC's schema with
/// xmllint (package libxml2-utils), the gzip attachment read back by gzip, and the report mail.
final class DMARCReportTests: XCTestCase {
    static let schema = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/rfc7489-aggregate-report.xsd").path
    static let reporter = DMARCReporterInfo(orgName: "Receiver & Co <test>", email: "dmarc-reports@receiver.example",
                                            domain: "receiver.example", extraContactInfo: "https://receiver.example/dmarc")
    // 2023-11-14 22:13:20 UTC; its day runs from 1699920000 to 1700006399.
    static let day = Date(timeIntervalSince1970: 1_700_000_000)

    var directory: String!

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "dmarc-report-tests-\(UUID().uuidString)"
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs a tool from PATH; a missing tool fails the test.
    func run(_ tool: String, _ arguments: [String], input: [UInt8]? = nil) throws -> (status: Int32, output: [UInt8], error: String) {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
            .map { "\($0)/\(tool)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let path else {
            XCTFail("\(tool) is not installed (scripts/install-deps.sh test)")
            throw CocoaError(.fileNoSuchFile)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        if let input { stdin.fileHandleForWriting.write(Data(input)) }
        try stdin.fileHandleForWriting.close()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        let error = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, [UInt8](output), String(decoding: error, as: UTF8.self))
    }

    func assertValidAgainstSchema(_ xml: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let path = directory + "/report-\(UUID().uuidString).xml"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Data(xml.utf8).write(to: URL(fileURLWithPath: path))
        let result = try run("xmllint", ["--noout", "--schema", Self.schema, path])
        XCTAssertEqual(result.status, 0, "xmllint: \(result.error)\n\(xml)", file: file, line: line)
    }

    /// Evaluations of three kinds for example.com (two alike), one for example.org.
    func fillStore() async throws -> DMARCReportStore {
        let resolver = ZoneResolver(txt: [
            "_dmarc.example.com": ["v=DMARC1; p=reject; pct=50; adkim=s; fo=1:d; rua=mailto:agg@example.com,mailto:tiny@example.com!1,https://ignored.example/"],
            "_dmarc.example.org": ["v=DMARC1; p=none; rua=mailto:agg@example.org!10m"],
            "_dmarc.noreports.example": ["v=DMARC1; p=reject"],
        ])
        let evaluator = DMARCEvaluator(resolver: resolver, publicSuffixes: try PublicSuffixList.shared(), sample: { 75 })
        let store = try DMARCReportStore(directory: directory)
        let signed = [DKIMSignatureOutcome(result: .pass, domain: "example.com", selector: "s1"),
                      DKIMSignatureOutcome(result: .fail, domain: "esp.example", selector: "x")]
        let cases: [(from: String, ip: String, mailFrom: String, spf: (result: SPFResult, domain: String), dkim: [DKIMSignatureOutcome], offset: Double)] = [
            ("a@example.com", "192.0.2.1", "bounce@example.com", (.pass, "example.com"), signed, 0),
            ("b@example.com", "192.0.2.1", "bounce@example.com", (.pass, "example.com"), signed, 60),
            ("c@example.com", "2001:db8::25", "", (.fail, "helo.spoof.example"), [], 120),
            ("d@example.org", "198.51.100.7", "x@mail.example.org", (.softfail, "mail.example.org"), [], 180),
            ("e@noreports.example", "198.51.100.8", "e@noreports.example", (.pass, "noreports.example"), [], 240),
        ]
        for c in cases {
            let outcome = await evaluator.evaluate(fromFields: [c.from], spf: c.spf, dkim: c.dkim)
            let record = try XCTUnwrap(DMARCEvaluationRecord(outcome: outcome, sourceIP: c.ip, envelopeFrom: c.mailFrom,
                                                             spf: c.spf, dkim: c.dkim, date: Self.day.addingTimeInterval(c.offset)))
            try store.record(record)
        }
        // The next day's evaluation is not in this day's report.
        let next = await evaluator.evaluate(fromFields: ["a@example.com"], spf: (.pass, "example.com"), dkim: [])
        try store.record(try XCTUnwrap(DMARCEvaluationRecord(outcome: next, sourceIP: "192.0.2.99", envelopeFrom: "a@example.com",
                                                              spf: (.pass, "example.com"), dkim: [], date: Self.day.addingTimeInterval(86_400))))
        return store
    }

    func testReportsPerPolicyDomainValidateAgainstTheRFCSchema() async throws {
        let store = try await fillStore()
        let reports = try store.reports(for: Self.day, reporter: Self.reporter)
        XCTAssertEqual(reports.map(\.policyDomain), ["example.com", "example.org"])
        for report in reports { try assertValidAgainstSchema(report.xml) }

        let com = reports[0]
        XCTAssertEqual(com.begin, 1_699_920_000)
        XCTAssertEqual(com.end, 1_700_006_399)
        XCTAssertEqual(com.reportID, "1699920000.example.com@receiver.example")
        XCTAssertEqual(com.fileName, "receiver.example!example.com!1699920000!1700006399.xml.gz")
        XCTAssertEqual(com.subject, "Report Domain: example.com Submitter: receiver.example Report-ID: <1699920000.example.com@receiver.example>")
        // The 1-byte limit leaves tiny@ out; the https URI is no mail destination.
        XCTAssertEqual(com.rua, ["agg@example.com"])
        XCTAssertEqual(reports[1].rua, ["agg@example.org"])

        let xml = com.xml
        XCTAssertTrue(xml.contains("<org_name>Receiver &amp; Co &lt;test&gt;</org_name>"), xml)
        XCTAssertTrue(xml.contains("<p>reject</p>") && xml.contains("<sp>reject</sp>") && xml.contains("<pct>50</pct>")
                      && xml.contains("<adkim>s</adkim>") && xml.contains("<aspf>r</aspf>") && xml.contains("<fo>1:d</fo>"), xml)
        // Two alike messages from 192.0.2.1 make one row counting 2.
        XCTAssertEqual(xml.components(separatedBy: "<record>").count - 1, 2)
        XCTAssertTrue(xml.contains("<source_ip>192.0.2.1</source_ip>\n      <count>2</count>"), xml)
        XCTAssertTrue(xml.contains("<dkim>\n        <domain>esp.example</domain>\n        <selector>x</selector>\n        <result>fail</result>"), xml)
        // The IPv6 source with all its groups (the schema's pattern has no ::), the null sender's
        // SPF in the helo scope, and the reject sampled out to quarantine.
        XCTAssertTrue(xml.contains("<source_ip>2001:db8:0:0:0:0:0:25</source_ip>"), xml)
        XCTAssertTrue(xml.contains("<envelope_from></envelope_from>"), xml)
        XCTAssertTrue(xml.contains("<scope>helo</scope>"), xml)
        XCTAssertTrue(xml.contains("<disposition>quarantine</disposition>\n        <dkim>fail</dkim>\n        <spf>fail</spf>\n        <reason>\n          <type>sampled_out</type>"), xml)
        XCTAssertFalse(xml.contains("192.0.2.99"))
    }

    func testAttachmentIsTheXMLGzipped() async throws {
        let store = try await fillStore()
        let report = try XCTUnwrap(try store.reports(for: Self.day, reporter: Self.reporter).first)
        XCTAssertEqual(Array(report.attachment.prefix(2)), [0x1F, 0x8B])
        let result = try run("gzip", ["-dc"], input: report.attachment)
        XCTAssertEqual(result.status, 0, result.error)
        XCTAssertEqual(String(decoding: result.output, as: UTF8.self), report.xml)
    }

    func testReportMessage() async throws {
        let store = try await fillStore()
        let report = try XCTUnwrap(try store.reports(for: Self.day, reporter: Self.reporter).first)
        let message = String(decoding: report.reportMessage(from: Self.reporter, date: Date(timeIntervalSince1970: 1_700_010_000)),
                             as: UTF8.self)
        let lines = message.components(separatedBy: "\r\n")
        XCTAssertEqual(Array(lines.prefix(7)), [
            "From: dmarc-reports@receiver.example",
            "To: agg@example.com",
            "Date: Wed, 15 Nov 2023 01:00:00 +0000",
            "Subject: Report Domain: example.com Submitter: receiver.example Report-ID: <1699920000.example.com@receiver.example>",
            "Message-ID: <1699920000.example.com@receiver.example>",
            "MIME-Version: 1.0",
            "Content-Type: multipart/mixed; boundary=\"=_dmarc_report_1699920000\"",
        ])
        XCTAssertTrue(message.contains("Content-Type: application/gzip; name=\"receiver.example!example.com!1699920000!1700006399.xml.gz\"\r\n"
                                       + "Content-Transfer-Encoding: base64\r\n"
                                       + "Content-Disposition: attachment; filename=\"receiver.example!example.com!1699920000!1700006399.xml.gz\"\r\n\r\n"))
        XCTAssertTrue(message.hasSuffix("\r\n--=_dmarc_report_1699920000--\r\n"))
        XCTAssertFalse(message.replacingOccurrences(of: "\r\n", with: "").contains("\n"), "bare LF")
        XCTAssertTrue(lines.allSatisfy { $0.utf8.count <= 998 })
        // The base64 lines decode back to the attachment.
        guard let start = lines.firstIndex(where: { $0.hasPrefix("Content-Disposition: attachment") }) else { return XCTFail("no attachment") }
        let base64 = lines[(start + 2)...].prefix { !$0.isEmpty }.joined()
        XCTAssertEqual(Data(base64Encoded: base64).map { [UInt8]($0) }, report.attachment)
    }

    func testOldEvaluationsAreRemovedAndTheStoreReopens() async throws {
        _ = try await fillStore()
        let reopened = try DMARCReportStore(directory: directory)
        XCTAssertEqual(try reopened.reports(for: Self.day, reporter: Self.reporter).count, 2)
        XCTAssertEqual(try reopened.removeEvaluations(before: Date(timeIntervalSince1970: 1_700_006_400)), 5)
        XCTAssertEqual(try reopened.reports(for: Self.day, reporter: Self.reporter), [])
        XCTAssertEqual(try reopened.reports(for: Self.day.addingTimeInterval(86_400), reporter: Self.reporter).count, 1)
    }

    func testNothingToReportWithoutAnAppliedRecord() {
        let permerror = DMARCOutcome(result: .permerror, reason: "no From field")
        XCTAssertNil(DMARCEvaluationRecord(outcome: permerror, sourceIP: "192.0.2.1", envelopeFrom: "", spf: (.none, "h.example"),
                                           dkim: [], date: Self.day))
        let none = DMARCOutcome(result: .none, fromDomain: "example.net")
        XCTAssertNil(DMARCEvaluationRecord(outcome: none, sourceIP: "192.0.2.1", envelopeFrom: "", spf: (.none, "h.example"),
                                           dkim: [], date: Self.day))
    }

    func testRowsWithoutDKIMAndTheSmallestReportValidate() throws {
        // One row, no DKIM signature, no extra contact: the schema's minimum.
        var evaluation = try XCTUnwrap(DMARCEvaluationRecord(
            outcome: DMARCOutcome(result: .fail, disposition: .reject, fromDomain: "example.net", policyDomain: "example.net",
                                  record: DMARCRecord(policy: .reject)),
            sourceIP: "::ffff:192.0.2.5", envelopeFrom: "x@example.net", spf: (.temperror, "example.net"), dkim: [], date: Self.day))
        evaluation.envelopeTo = "receiver.example"
        let xml = AggregateReportXML.build(policyDomain: "example.net", evaluations: [evaluation],
                                           reporter: DMARCReporterInfo(orgName: "R", email: "r@receiver.example", domain: "receiver.example"),
                                           reportID: "1", begin: 0, end: 86_399)
        try assertValidAgainstSchema(xml)
        XCTAssertTrue(xml.contains("<source_ip>0:0:0:0:0:ffff:c000:205</source_ip>"), xml)
    }

    func testXMLEscapesMarkupAndDropsControlCharacters() {
        XCTAssertEqual(AggregateReportXML.escaped("a<b>&\"'\u{1}\u{0}c\u{FFFE}"), "a&lt;b&gt;&amp;&quot;&apos;c")
        XCTAssertEqual(AggregateReportXML.schemaAddress("not an address"), "not an address")
        XCTAssertEqual(AggregateReportXML.schemaAddress("::"), "0:0:0:0:0:0:0:0")
    }
}
