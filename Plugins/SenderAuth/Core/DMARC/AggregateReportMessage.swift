import Foundation

// The mail that carries an aggregate report (RFC 7489 §7.2.1.1): a multipart/mixed message
// whose subject names the report and whose attachment is the gzip-compressed XML.

extension DMARCAggregateReport {
    /// The whole message, CRLF line ends: From the reporter, To every `rua` address, the
    /// report's subject, a short text part, and the `.xml.gz` attachment in base64.
    /// The report ID (`begin.policy-domain@submitter`) is the Message-ID too.
    package func reportMessage(from reporter: DMARCReporterInfo, date: Date = Date()) -> [UInt8] {
        // "=_" cannot occur in base64 or in the text part, so the boundary needs no randomness.
        let boundary = "=_dmarc_report_\(begin)"
        var lines = [
            "From: \(reporter.email)",
            "To: \(rua.joined(separator: ", "))",
            "Date: \(Self.rfc5322Date(date))",
            "Subject: \(subject)",
            "Message-ID: <\(reportID)>",
            "MIME-Version: 1.0",
            "Content-Type: multipart/mixed; boundary=\"\(boundary)\"",
            "",
            "This is a DMARC aggregate report (RFC 7489) in MIME format.",
            "",
            "--\(boundary)",
            "Content-Type: text/plain; charset=us-ascii",
            "Content-Transfer-Encoding: 7bit",
            "",
            "DMARC aggregate report for \(policyDomain) from \(reporter.domain), covering \(begin) to \(end) (seconds since 1970, UTC).",
            "",
            "--\(boundary)",
            "Content-Type: application/gzip; name=\"\(fileName)\"",
            "Content-Transfer-Encoding: base64",
            "Content-Disposition: attachment; filename=\"\(fileName)\"",
            "",
        ]
        let encoded = Data(attachment).base64EncodedString()
        var index = encoded.startIndex
        while index < encoded.endIndex {
            let next = encoded.index(index, offsetBy: 76, limitedBy: encoded.endIndex) ?? encoded.endIndex
            lines.append(String(encoded[index..<next]))
            index = next
        }
        lines += ["", "--\(boundary)--", ""]
        return Array(lines.joined(separator: "\r\n").utf8)
    }

    /// `Tue, 14 Nov 2023 22:13:20 +0000` (RFC 5322 §3.3), in UTC.
    static func rfc5322Date(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        return formatter.string(from: date)
    }
}
