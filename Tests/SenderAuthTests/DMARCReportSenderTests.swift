import Foundation
import Logging
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest
@testable import PosternSenderAuthCore

/// The daily report job: yesterday's evaluations become one report mail per policy domain, queued
/// through the real queue plugin (loaded as `postern admin` loads it) to the `rua` addresses its
/// domain authorised (RFC 7489 §7.1, asked of a real unbound through the DNS plugin), once.
final class DMARCReportSenderTests: XCTestCase {
    func testYesterdaysReportsAreQueuedOnceToAuthorisedDestinations() async throws {
        let dir = TempDir("dmarc-sender")
        let source = """
            data_dir = "\(dir.path)/data"
            user = "root"
            [plugin.store-sqlite]
            [plugin.queue]
            hostname = "mx.receiver.example"

            """
        let context: AdminContext
        switch HostConfig.parse(source: source, file: dir.path + "/postern.toml") {
        case .success(let config): context = try AdminContext(config: config)
        case .failure(let d): throw SystemError.message("\(d.all)")
        }
        let queue = try context.queue()
        // thirdparty.example authorises reports on example.com; elsewhere.example does not.
        let dns = try UnboundServer(zones: [
            #"local-zone: "thirdparty.example." static"#,
            #"local-data: 'example.com._report._dmarc.thirdparty.example. 300 IN TXT "v=DMARC1"'"#,
            #"local-zone: "elsewhere.example." static"#,
        ].map { "  " + $0 }.joined(separator: "\n"))
        defer { dns.stop() }
        let resolver = try DNSPluginFile.resolver(DNSPluginFile.config(nameservers: [dns.address]))

        let settings = DMARCReportSettings(organization: "Receiver", address: "dmarc-reports@receiver.example",
                                           directory: dir.path + "/dmarc", maxReportBytes: 10 << 20)
        let store = try DMARCReportStore(directory: settings.directory)
        let now = Date(timeIntervalSince1970: 1_700_050_000)      // 2023-11-15; yesterday began at 1699920000
        let record = DMARCRecord.parse(Array("v=DMARC1; p=reject; rua=mailto:agg@example.com,mailto:agg@thirdparty.example,mailto:agg@elsewhere.example".utf8))
        guard case .record(let published) = record else { return XCTFail("\(record)") }
        let outcome = DMARCOutcome(result: .fail, disposition: .reject, fromDomain: "example.com", policyDomain: "example.com",
                                   record: published)
        for (offset, ip) in [(100.0, "192.0.2.1"), (200, "192.0.2.1"), (86_500, "192.0.2.9")] {
            try store.record(try XCTUnwrap(DMARCEvaluationRecord(outcome: outcome, sourceIP: ip, envelopeFrom: "x@spoof.example",
                                                                 spf: (.fail, "spoof.example"), dkim: [],
                                                                 date: Date(timeIntervalSince1970: 1_699_920_000 + offset))))
        }
        let sender = DMARCReportSender(store: store, settings: settings, resolver: { resolver }, queue: { queue },
                                       publicSuffixes: try PublicSuffixList.shared(), logger: Logger(label: "test"))

        let sent = await sender.sendDue(now: now)
        XCTAssertEqual(sent, 1)
        let listed = try await queue.list()
        XCTAssertEqual(listed.count, 1)
        let entry = try XCTUnwrap(listed.first)
        XCTAssertEqual(entry.sender, "dmarc-reports@receiver.example")
        XCTAssertEqual(Set(entry.pending.map(\.address)), ["agg@example.com", "agg@thirdparty.example"])
        let shown = try await queue.show(id: entry.id)
        let (_, bytes) = try XCTUnwrap(shown)
        let text = String(decoding: bytes, as: UTF8.self)
        XCTAssertTrue(text.contains("Subject: Report Domain: example.com Submitter: receiver.example Report-ID: <1699920000.example.com@receiver.example>"), text)
        XCTAssertTrue(text.contains("receiver.example!example.com!1699920000!1700006399.xml.gz"), text)

        // Once a day: a second run (another worker, a restart) sends nothing more.
        let again = await sender.sendDue(now: now.addingTimeInterval(3600))
        XCTAssertNil(again)
        let after = try await queue.list()
        XCTAssertEqual(after.count, 1)
        // The reported day's evaluations are gone; the next day's stay for its own report.
        XCTAssertEqual(try store.reports(for: Date(timeIntervalSince1970: 1_699_920_000), reporter: DMARCReporterInfo(
            orgName: "R", email: "r@receiver.example", domain: "receiver.example")).count, 0)
        XCTAssertEqual(try store.reports(for: now, reporter: DMARCReporterInfo(
            orgName: "R", email: "r@receiver.example", domain: "receiver.example")).count, 1)
    }
}
