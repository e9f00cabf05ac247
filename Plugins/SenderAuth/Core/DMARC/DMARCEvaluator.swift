import PluginAPI

// DMARC evaluation (RFC 7489 §6.6): the author domain, its policy record, identifier
// alignment of the SPF and DKIM results the other verifiers reached, and what to do.

/// What DMARC came to for one message.
package struct DMARCOutcome: Sendable, Equatable {
    package var result: DMARCResult
    /// What the policy asks for this message after `pct` sampling; `.none` for every result
    /// but `fail` (a receiver's own choices, such as rejecting on `permerror`, are not here).
    package var disposition: DMARCPolicy
    /// The RFC5322.From domain (lowercase ASCII); nil when it could not be found.
    package var fromDomain: String?
    /// Where the record was found: the From domain, or its Organizational Domain.
    package var policyDomain: String?
    package var record: DMARCRecord?
    /// Whether the policy came from `sp=` (or `p=` standing in for it): the record is the
    /// Organizational Domain's and the From domain is below it (§6.6.3).
    package var subdomainPolicyApplied: Bool
    /// The policy that applied before sampling, for `fail`.
    package var requestedPolicy: DMARCPolicy?
    /// `pct=` left this message out, so `disposition` is the next less strict policy (§6.6.4).
    package var sampledOut: Bool
    /// An SPF pass for a domain aligned with the From domain.
    package var spfAligned: Bool
    /// A DKIM pass for a domain aligned with the From domain.
    package var dkimAligned: Bool
    /// Why, for `none`, `temperror` and `permerror` (for Authentication-Results and logs).
    package var reason: String?

    package init(result: DMARCResult, disposition: DMARCPolicy = .none, fromDomain: String? = nil, policyDomain: String? = nil,
                 record: DMARCRecord? = nil, subdomainPolicyApplied: Bool = false, requestedPolicy: DMARCPolicy? = nil,
                 sampledOut: Bool = false, spfAligned: Bool = false, dkimAligned: Bool = false, reason: String? = nil) {
        self.result = result
        self.disposition = disposition
        self.fromDomain = fromDomain
        self.policyDomain = policyDomain
        self.record = record
        self.subdomainPolicyApplied = subdomainPolicyApplied
        self.requestedPolicy = requestedPolicy
        self.sampledOut = sampledOut
        self.spfAligned = spfAligned
        self.dkimAligned = dkimAligned
        self.reason = reason
    }
}

package struct DMARCEvaluator: Sendable {
    let resolver: any DNSResolver
    let publicSuffixes: PublicSuffixList
    /// A number in 0..<100 per message, compared with `pct=`; tests fix it.
    let sample: @Sendable () -> Int

    package init(resolver: any DNSResolver, publicSuffixes: PublicSuffixList,
                 sample: @escaping @Sendable () -> Int = { Int.random(in: 0..<100) }) {
        self.resolver = resolver
        self.publicSuffixes = publicSuffixes
        self.sample = sample
    }

    /// Evaluates one message. `fromFields` are the values of its From fields; `spf` is the SPF
    /// result and the domain SPF checked (MAIL FROM's, or HELO's for a null sender); `dkim` are
    /// the outcomes of every DKIM signature. Only `pass` results count toward alignment.
    package func evaluate(fromFields: [String], spf: (result: SPFResult, domain: String),
                          dkim: [DKIMSignatureOutcome]) async -> DMARCOutcome {
        let fromDomain: String
        switch AuthorDomain.extract(fromFields: fromFields) {
        case .success(let domain): fromDomain = domain
        case .failure(let failure): return DMARCOutcome(result: .permerror, reason: failure.description)
        }

        // §6.6.3: the From domain's record, else the Organizational Domain's.
        var policyDomain = fromDomain
        var discovered: Discovery
        do {
            discovered = try await discover(at: fromDomain)
            let organizational = publicSuffixes.organizationalDomain(of: fromDomain)
            if case .nothing = discovered, organizational != fromDomain {
                policyDomain = organizational
                discovered = try await discover(at: organizational)
            }
        } catch {
            return DMARCOutcome(result: .temperror, fromDomain: fromDomain, policyDomain: policyDomain,
                                reason: "DNS lookup of _dmarc.\(policyDomain): \(error)")
        }
        let record: DMARCRecord
        switch discovered {
        case .nothing:
            return DMARCOutcome(result: .none, fromDomain: fromDomain, reason: "no DMARC record")
        case .several(let count):
            // §6.6.3 step 6: discovery ends, DMARC does not apply.
            return DMARCOutcome(result: .none, fromDomain: fromDomain, policyDomain: policyDomain,
                                reason: "\(count) DMARC records at _dmarc.\(policyDomain)")
        case .invalid(let why):
            return DMARCOutcome(result: .permerror, fromDomain: fromDomain, policyDomain: policyDomain,
                                reason: "DMARC record at _dmarc.\(policyDomain): \(why)")
        case .record(let found): record = found
        }

        let spfAligned = spf.result == .pass && aligned(spf.domain, fromDomain, record.spfAlignment)
        let dkimAligned = dkim.contains { $0.result == .pass && $0.domain.map { aligned($0, fromDomain, record.dkimAlignment) } == true }
        let subdomain = policyDomain != fromDomain
        var outcome = DMARCOutcome(result: spfAligned || dkimAligned ? .pass : .fail, fromDomain: fromDomain,
                                   policyDomain: policyDomain, record: record, subdomainPolicyApplied: subdomain,
                                   spfAligned: spfAligned, dkimAligned: dkimAligned)
        guard outcome.result == .fail else { return outcome }
        // `p` is always set on a parsed record (§6.6.3 step 6 makes it none when it was not).
        let requested = (subdomain ? record.subdomainPolicy : nil) ?? record.policy ?? .none
        outcome.requestedPolicy = requested
        outcome.disposition = requested
        if requested != .none && sample() >= record.percent {
            outcome.sampledOut = true
            outcome.disposition = requested.lessStrict
        }
        return outcome
    }

    /// Identifier alignment (§3.1): strict wants the same name, relaxed the same Organizational
    /// Domain.
    package func aligned(_ domain: String, _ fromDomain: String, _ mode: DMARCAlignment) -> Bool {
        guard let a = PublicSuffixList.asciiDomain(domain), let b = PublicSuffixList.asciiDomain(fromDomain) else { return false }
        switch mode {
        case .strict: return a == b
        case .relaxed: return publicSuffixes.organizationalDomain(of: a) == publicSuffixes.organizationalDomain(of: b)
        }
    }

    private enum Discovery {
        case nothing
        case several(Int)
        case invalid(String)
        case record(DMARCRecord)
    }

    /// The DMARC records at `_dmarc.<domain>`, other TXT records discarded (§6.6.3 step 3).
    /// A name that does not exist, or one too long for DNS, has no record; any other failure
    /// (SERVFAIL, timeouts, a cancelled lookup) throws and makes the result `temperror`.
    private func discover(at domain: String) async throws -> Discovery {
        let answer: DNSRecords
        do {
            answer = try await resolver.records("_dmarc." + domain, .txt)
        } catch DNSError.notFound {
            return .nothing
        } catch DNSError.invalidName {
            return .nothing
        }
        guard case .found(let texts) = answer else { return .nothing }
        var found: [DMARCRecord.Parsed] = []
        for text in texts {
            let parsed = DMARCRecord.parse(Array(text.utf8))
            if parsed != .notDMARC { found.append(parsed) }
        }
        switch found.count {
        case 0: return .nothing
        case 1:
            switch found[0] {
            case .record(let record): return .record(record)
            case .invalid(let why): return .invalid(why)
            case .notDMARC: return .nothing
            }
        default: return .several(found.count)
        }
    }
}
