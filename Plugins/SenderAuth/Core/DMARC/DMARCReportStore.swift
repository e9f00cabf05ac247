import Foundation
import GRDB

// The evaluations DMARC aggregate reports are built from, kept in SQLite (GRDB) in the
// plugin's directory: many sessions record at once (WAL, one short transaction each), reports
// read one day by one index, and old days are deleted by the same index.

/// One aggregate report, ready to mail.
package struct DMARCAggregateReport: Sendable, Equatable {
    package var policyDomain: String
    package var reportID: String
    /// The period, seconds since 1970 UTC, both ends included.
    package var begin: Int64
    package var end: Int64
    package var xml: String
    /// The `mailto:` addresses of the policy's `rua=` that take a report this size (`!size`).
    package var rua: [String]
    /// `submitter!policy-domain!begin!end.xml.gz` (§7.2.1.1).
    package var fileName: String
    /// `Report Domain: <domain> Submitter: <submitter> Report-ID: <id>` (§7.2.1.1).
    package var subject: String
    /// The gzip-compressed XML, the attachment.
    package var attachment: [UInt8]
}

package final class DMARCReportStore: Sendable {
    let pool: DatabasePool
    package let path: String

    /// Opens (or creates) `directory/dmarc-reports.sqlite`.
    package init(directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        path = (directory as NSString).appendingPathComponent("dmarc-reports.sqlite")
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        pool = try DatabasePool(path: path, configuration: configuration)
        try pool.write { db in
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS dmarc_evaluation (
                    id INTEGER PRIMARY KEY, time INTEGER NOT NULL, policy_domain TEXT NOT NULL, json TEXT NOT NULL);
                CREATE INDEX IF NOT EXISTS dmarc_evaluation_time ON dmarc_evaluation(time, policy_domain);
                """)
        }
    }

    /// Records one evaluation (`DMARCEvaluationRecord(outcome:...)`).
    package func record(_ evaluation: DMARCEvaluationRecord) throws {
        let json = String(decoding: try JSONEncoder().encode(evaluation), as: UTF8.self)
        try pool.write { db in
            try db.execute(sql: "INSERT INTO dmarc_evaluation (time, policy_domain, json) VALUES (?, ?, ?)",
                           arguments: [evaluation.time, evaluation.policyDomain, json])
        }
    }

    /// The UTC day holding `date`: its first and last second.
    package static func dayRange(of date: Date) -> (begin: Int64, end: Int64) {
        let seconds = Int64(date.timeIntervalSince1970.rounded(.down))
        let begin = seconds - ((seconds % 86_400) + 86_400) % 86_400
        return (begin, begin + 86_399)
    }

    /// The aggregate reports of the UTC day holding `day`, one per policy domain that has a
    /// `mailto:` aggregate address (reports are sent daily whatever `ri=` asks; §7.2 lets a
    /// receiver do so). An evaluation that fails to decode (a row from a newer version) is
    /// skipped.
    package func reports(for day: Date, reporter: DMARCReporterInfo) throws -> [DMARCAggregateReport] {
        let (begin, end) = Self.dayRange(of: day)
        let rows = try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT policy_domain, json FROM dmarc_evaluation WHERE time BETWEEN ? AND ? ORDER BY policy_domain, id",
                             arguments: [begin, end]).map { (domain: $0["policy_domain"] as String, json: $0["json"] as String) }
        }
        var byDomain: [(String, [DMARCEvaluationRecord])] = []
        let decoder = JSONDecoder()
        for row in rows {
            guard let evaluation = try? decoder.decode(DMARCEvaluationRecord.self, from: Data(row.json.utf8)) else { continue }
            if byDomain.last?.0 == row.domain { byDomain[byDomain.count - 1].1.append(evaluation) }
            else { byDomain.append((row.domain, [evaluation])) }
        }
        return byDomain.compactMap { domain, evaluations in
            let destinations = evaluations.last?.record.aggregateReportURIs.filter { $0.mailtoAddress != nil } ?? []
            guard !destinations.isEmpty else { return nil }
            let reportID = "\(begin).\(domain)@\(reporter.domain)"
            let xml = AggregateReportXML.build(policyDomain: domain, evaluations: evaluations, reporter: reporter,
                                               reportID: reportID, begin: begin, end: end)
            guard let attachment = Gzip.compress(Array(xml.utf8)) else { return nil }
            // A destination with a size limit the report exceeds gets none (§6.4 `!size`).
            let rua = destinations.filter { ($0.maxSize ?? .max) >= UInt64(attachment.count) }.compactMap(\.mailtoAddress)
            return DMARCAggregateReport(policyDomain: domain, reportID: reportID, begin: begin, end: end, xml: xml, rua: rua,
                                        fileName: "\(reporter.domain)!\(domain)!\(begin)!\(end).xml.gz",
                                        subject: "Report Domain: \(domain) Submitter: \(reporter.domain) Report-ID: <\(reportID)>",
                                        attachment: attachment)
        }
    }

    /// Deletes the evaluations older than `date` (reports sent, nothing more to build from them).
    @discardableResult
    package func removeEvaluations(before date: Date) throws -> Int {
        try pool.write { db in
            try db.execute(sql: "DELETE FROM dmarc_evaluation WHERE time < ?", arguments: [Int64(date.timeIntervalSince1970.rounded(.down))])
            return db.changesCount
        }
    }
}
