import Foundation

// The XML of a DMARC aggregate report (RFC 7489 §7.2, the schema of Appendix C): one report
// per policy domain and period, one <record> per distinct source and result.

/// Who sends the reports (`report_metadata`, the report mail's From and Submitter).
package struct DMARCReporterInfo: Sendable, Equatable {
    /// `org_name`: the receiving organisation.
    package var orgName: String
    /// `email`, and the From address of report mail.
    package var email: String
    /// The Submitter of §7.2.1.1: the receiver's domain.
    package var domain: String
    package var extraContactInfo: String?

    package init(orgName: String, email: String, domain: String, extraContactInfo: String? = nil) {
        self.orgName = orgName
        self.email = email
        self.domain = domain
        self.extraContactInfo = extraContactInfo
    }
}

enum AggregateReportXML {
    /// What evaluations share to become one `<record>` with a `count`.
    struct RowKey: Hashable {
        var sourceIP: String
        var disposition: DMARCPolicy
        var dkimAligned: Bool
        var spfAligned: Bool
        var sampledOut: Bool
        var envelopeTo: String?
        var envelopeFrom: String
        var headerFrom: String
        var dkim: [DMARCEvaluationRecord.DKIMEntry]
        var spfDomain: String
        var spfScope: String
        var spfResult: String

        init(_ e: DMARCEvaluationRecord) {
            sourceIP = e.sourceIP; disposition = e.disposition; dkimAligned = e.dkimAligned; spfAligned = e.spfAligned
            sampledOut = e.sampledOut; envelopeTo = e.envelopeTo; envelopeFrom = e.envelopeFrom; headerFrom = e.headerFrom
            dkim = e.dkim; spfDomain = e.spfDomain; spfScope = e.spfScope; spfResult = e.spfResult
        }
    }

    /// The report of one policy domain. `evaluations` are that domain's, oldest first; the
    /// policy published is the newest one's record (a record changed during the period is
    /// reported as it was last seen).
    static func build(policyDomain: String, evaluations: [DMARCEvaluationRecord], reporter: DMARCReporterInfo,
                      reportID: String, begin: Int64, end: Int64) -> String {
        var rows: [RowKey: Int] = [:]
        var order: [RowKey] = []
        for evaluation in evaluations {
            let key = RowKey(evaluation)
            if rows[key] == nil { order.append(key) }
            rows[key, default: 0] += 1
        }
        let record = evaluations.last?.record ?? DMARCRecord(policy: DMARCPolicy.none)
        let policy = record.policy ?? .none
        var x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n  <version>1.0</version>\n"
        x += "  <report_metadata>\n"
        x += element("org_name", reporter.orgName, 4) + element("email", reporter.email, 4)
        if let extra = reporter.extraContactInfo { x += element("extra_contact_info", extra, 4) }
        x += element("report_id", reportID, 4)
        x += "    <date_range>\n" + element("begin", String(begin), 6) + element("end", String(end), 6) + "    </date_range>\n"
        x += "  </report_metadata>\n"
        x += "  <policy_published>\n"
        x += element("domain", policyDomain, 4) + element("adkim", record.dkimAlignment.rawValue, 4)
            + element("aspf", record.spfAlignment.rawValue, 4) + element("p", policy.rawValue, 4)
            + element("sp", (record.subdomainPolicy ?? policy).rawValue, 4) + element("pct", String(record.percent), 4)
            + element("fo", record.failureOptions.joined(separator: ":"), 4)
        x += "  </policy_published>\n"
        for key in order {
            x += "  <record>\n    <row>\n"
            x += element("source_ip", schemaAddress(key.sourceIP), 6) + element("count", String(rows[key] ?? 0), 6)
            x += "      <policy_evaluated>\n"
            x += element("disposition", key.disposition.rawValue, 8) + element("dkim", key.dkimAligned ? "pass" : "fail", 8)
                + element("spf", key.spfAligned ? "pass" : "fail", 8)
            if key.sampledOut { x += "        <reason>\n" + element("type", "sampled_out", 10) + "        </reason>\n" }
            x += "      </policy_evaluated>\n    </row>\n"
            x += "    <identifiers>\n"
            if let to = key.envelopeTo { x += element("envelope_to", to, 6) }
            x += element("envelope_from", key.envelopeFrom, 6) + element("header_from", key.headerFrom, 6)
            x += "    </identifiers>\n    <auth_results>\n"
            for signature in key.dkim {
                x += "      <dkim>\n" + element("domain", signature.domain, 8)
                if let selector = signature.selector { x += element("selector", selector, 8) }
                x += element("result", signature.result, 8) + "      </dkim>\n"
            }
            x += "      <spf>\n" + element("domain", key.spfDomain, 8) + element("scope", key.spfScope, 8)
                + element("result", key.spfResult, 8) + "      </spf>\n"
            x += "    </auth_results>\n  </record>\n"
        }
        return x + "</feedback>\n"
    }

    private static func element(_ name: String, _ text: String, _ indent: Int) -> String {
        String(repeating: " ", count: indent) + "<\(name)>\(escaped(text))</\(name)>\n"
    }

    /// Text content: markup characters as references, and the control characters XML 1.0 does
    /// not allow at all left out.
    static func escaped(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default:
                if scalar.value < 0x20 && scalar != "\t" && scalar != "\n" && scalar != "\r" { continue }
                if scalar.value == 0xFFFE || scalar.value == 0xFFFF { continue }
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// The address as the schema's `IPAddress` pattern takes it: dotted IPv4, or IPv6 with all
    /// eight groups (the pattern has no `::`). Text that is neither is kept as given.
    static func schemaAddress(_ address: String) -> String {
        var v4 = in_addr()
        if inet_pton(AF_INET, address, &v4) == 1 { return address }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, address, &v6) == 1 else { return address }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        return stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
            .joined(separator: ":")
    }
}
