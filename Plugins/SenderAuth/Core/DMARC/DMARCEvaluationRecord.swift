import Foundation

// What the aggregate reports need of one evaluated message (RFC 7489 §7.2, Appendix C): who
// sent it, which domains it claimed, the policy published and what was done.

package struct DMARCEvaluationRecord: Sendable, Equatable, Codable {
    /// One DKIM signature's result, uninterpreted by DMARC (`auth_results/dkim`).
    package struct DKIMEntry: Sendable, Hashable, Codable {
        package var domain: String
        package var selector: String?
        /// A DKIM result name (`DKIMResult.rawValue`).
        package var result: String
    }

    /// Seconds since 1970, UTC.
    package var time: Int64
    package var sourceIP: String
    /// The RFC5322.From domain.
    package var headerFrom: String
    /// The RFC5321.MailFrom domain; empty for the null sender.
    package var envelopeFrom: String
    /// The RFC5321.RcptTo domain, when the receiver chooses to report it.
    package var envelopeTo: String?
    package var policyDomain: String
    /// The record that applied: `policy_published`, and where reports go.
    package var record: DMARCRecord
    package var disposition: DMARCPolicy
    package var dkimAligned: Bool
    package var spfAligned: Bool
    package var sampledOut: Bool
    package var dkim: [DKIMEntry]
    /// The domain SPF checked, whether it was MAIL FROM's (`mfrom`) or HELO's (`helo`), and
    /// the SPF result name.
    package var spfDomain: String
    package var spfScope: String
    package var spfResult: String

    /// The record of one evaluation; nil when there is nothing to report (no policy record
    /// applied: `none`, `temperror`, `permerror`). `envelopeFrom` is the MAIL FROM address or
    /// domain (empty for `<>`, then SPF's domain was HELO's).
    package init?(outcome: DMARCOutcome, sourceIP: String, envelopeFrom: String, envelopeTo: String? = nil,
                  spf: (result: SPFResult, domain: String), dkim: [DKIMSignatureOutcome], date: Date) {
        guard let record = outcome.record, let policyDomain = outcome.policyDomain, let headerFrom = outcome.fromDomain,
              outcome.result == .pass || outcome.result == .fail else { return nil }
        let mailFromDomain = envelopeFrom.split(separator: "@", omittingEmptySubsequences: false).last.map(String.init) ?? ""
        time = Int64(date.timeIntervalSince1970.rounded(.down))
        self.sourceIP = sourceIP
        self.headerFrom = headerFrom
        self.envelopeFrom = mailFromDomain.lowercased()
        self.envelopeTo = envelopeTo?.lowercased()
        self.policyDomain = policyDomain
        self.record = record
        disposition = outcome.disposition
        dkimAligned = outcome.dkimAligned
        spfAligned = outcome.spfAligned
        sampledOut = outcome.sampledOut
        self.dkim = dkim.compactMap { signature in
            signature.domain.map { DKIMEntry(domain: $0.lowercased(), selector: signature.selector, result: signature.result.rawValue) }
        }
        spfDomain = spf.domain.lowercased()
        spfScope = mailFromDomain.isEmpty ? "helo" : "mfrom"
        spfResult = spf.result.rawValue
    }
}
