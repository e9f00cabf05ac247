import PluginAPI

// The evaluation of one check_host() (RFC 7208 §4.6 to §6): record selection, the mechanisms in
// order, redirect and exp. The counters of §4.6.4 live here because they span the whole check,
// every include and redirect of it included.

/// One check in progress. Not shared between tasks: `SPFEvaluator` makes one per check.
final class SPFHostCheck {
    let resolver: any DNSResolver
    let limits: SPFLimits
    /// The macro values with `domain` as check_host() was first called; each record expands
    /// against its own domain (`with(domain:)`).
    let values: SPFMacroValues
    private let deadline: ContinuousClock.Instant
    /// Terms that asked DNS so far (include, a, mx, ptr, exists, redirect).
    private var dnsTerms = 0
    /// Answers without records (NODATA or NXDOMAIN) so far.
    private var voidLookups = 0
    /// The client's validated PTR names (§5.5), looked up once for `ptr` and `%{p}`.
    private var validatedNames: [String]?

    init(resolver: any DNSResolver, limits: SPFLimits, values: SPFMacroValues) {
        self.resolver = resolver
        self.limits = limits
        self.values = values
        deadline = ContinuousClock.now.advanced(by: limits.timeLimit)
    }

    private var client: SPFAddress { values.client }

    // MARK: Records

    /// check_host() for `domain`: the record there, evaluated. A domain without a record is
    /// `none` (the caller decides what that means for an include or redirect).
    func evaluate(domain: String) async throws(SPFStop) -> SPFRecordEvaluation {
        let answer = try await lookup(domain, .txt)
        let records = answer.values.filter(SPFRecord.isSPF)
        if records.isEmpty {
            return SPFRecordEvaluation(result: .none, problem: "no SPF record at \(domain)")
        }
        guard records.count == 1 else {
            throw .permerror("\(domain) has \(records.count) SPF records (RFC 7208 §4.5: exactly one)")
        }
        let record: SPFRecord
        do {
            record = try SPFRecord(parsing: records[0])
        } catch {
            throw .permerror("syntax error in the record of \(domain): \(error.message)")
        }
        for directive in record.directives {
            if directive.mechanism.queriesDNS { try countTerm(directive.text) }
            if try await matches(directive.mechanism, domain: domain, term: directive.text) {
                return SPFRecordEvaluation(result: directive.qualifier.result, mechanism: directive.text,
                                           explanation: record.explanation.map { ($0, domain) })
            }
        }
        if let redirect = record.redirect {
            // §6.1: only when no mechanism matched; the target's record decides, its exp with it.
            try countTerm("redirect=" + redirect.text)
            let target = try await expandDomain(redirect, domain: domain)
            guard SPFEvaluator.isCheckableDomain(target) else {
                throw .permerror("redirect=\(redirect.text): '\(target)' is not a valid domain")
            }
            let evaluation = try await evaluate(domain: target)
            if evaluation.result == .none { throw .permerror("redirect=\(target): no SPF record there") }
            return evaluation
        }
        return SPFRecordEvaluation(result: .neutral, problem: "no mechanism matched in the record of \(domain)")
    }

    /// The explanation of a fail (§6.2): the one TXT record at the expanded `exp=` domain,
    /// expanded in turn. Any trouble (DNS, no or several records, bad syntax) gives none.
    func explanation(_ spec: SPFMacroString, domain: String) async -> String? {
        guard let target = try? await expandDomain(spec, domain: domain), SPFEvaluator.isCheckableDomain(target),
              ContinuousClock.now < deadline,
              case .found(let texts)? = try? await resolver.records(target, .txt), texts.count == 1,
              let text = try? SPFMacroString(parsing: Substring(texts[0]), kind: .explanation, term: "the explanation at \(target)")
        else { return nil }
        let validated = text.usesValidatedName ? await validatedName(for: domain) : "unknown"
        return text.expand(values.with(domain: domain), validatedName: validated)
    }

    // MARK: Mechanisms

    private func matches(_ mechanism: SPFMechanism, domain: String, term: String) async throws(SPFStop) -> Bool {
        switch mechanism {
        case .all:
            return true
        case .ip4(let network, let prefix), .ip6(let network, let prefix):
            // Each matches its own family only; a mapped client was unmapped already (§5).
            return network.matches(client, prefix: prefix)
        case .include(let spec):
            let target = try await expandDomain(spec, domain: domain)
            guard SPFEvaluator.isCheckableDomain(target) else {
                throw .permerror("\(term): '\(target)' is not a valid domain")
            }
            // §5.2: pass matches; fail, softfail and neutral do not; errors and none end the check.
            switch try await evaluate(domain: target).result {
            case .pass: return true
            case .fail, .softfail, .neutral: return false
            case .none: throw .permerror("\(term): no SPF record at \(target)")
            case .temperror, .permerror: throw .permerror("\(term): unexpected error result")
            }
        case .a(let spec, let cidr):
            let target = try await targetDomain(spec, domain: domain)
            return try await addressesMatch(of: target, cidr: cidr)
        case .mx(let spec, let cidr):
            let target = try await targetDomain(spec, domain: domain)
            let exchanges = try await lookup(target, .mx, void: true).values.filter { $0 != "." && !$0.isEmpty }
            guard exchanges.count <= limits.mxNames else {
                throw .permerror("\(term): \(target) has \(exchanges.count) MX names, more than \(limits.mxNames) (RFC 7208 §4.6.4)")
            }
            for exchange in exchanges where try await addressesMatch(of: exchange, cidr: cidr) { return true }
            return false
        case .ptr(let spec):
            let target = try await targetDomain(spec, domain: domain).lowercased()
            return await validatedPTRNames().contains { $0 == target || $0.hasSuffix("." + target) }
        case .exists(let spec):
            // §5.7: always an A question, whatever the client's family.
            let target = try await expandDomain(spec, domain: domain)
            return !(try await lookup(target, .a, void: true).values.isEmpty)
        }
    }

    /// Whether `name`'s addresses of the client's family include the client under `cidr`.
    private func addressesMatch(of name: String, cidr: SPFDualCIDR) async throws(SPFStop) -> Bool {
        let answer = try await lookup(name, client.isIPv6 ? .aaaa : .a, void: true)
        let prefix = client.isIPv6 ? cidr.ip6 : cidr.ip4
        return answer.values.contains { SPFAddress($0).map { $0.matches(client, prefix: prefix) } ?? false }
    }

    /// §5.5: the PTR names of the client (at most `ptrNames` of them) whose own addresses include
    /// the client, lowercased without the trailing dot. DNS errors here mean no match, not
    /// temperror (§5.5).
    private func validatedPTRNames() async -> [String] {
        if let validatedNames { return validatedNames }
        var names: [String] = []
        if let answer = try? await lookup(client.description, .ptr, void: true) {
            for name in answer.values.prefix(limits.ptrNames) {
                var name = name.lowercased()
                if name.hasSuffix(".") { name.removeLast() }
                if (try? await addressesMatch(of: name, cidr: SPFDualCIDR())) == true { names.append(name) }
            }
        }
        validatedNames = names
        return names
    }

    /// The `p` macro (§7.3): a validated name equal to `domain`, else one under it, else any,
    /// else `unknown`.
    private func validatedName(for domain: String) async -> String {
        let names = await validatedPTRNames()
        let domain = domain.lowercased()
        return names.first { $0 == domain } ?? names.first { $0.hasSuffix("." + domain) } ?? names.first ?? "unknown"
    }

    // MARK: Names and lookups

    private func targetDomain(_ spec: SPFMacroString?, domain: String) async throws(SPFStop) -> String {
        guard let spec else { return domain }
        return try await expandDomain(spec, domain: domain)
    }

    /// A domain-spec expanded against the record of `domain`; longer than 253 octets, labels
    /// come off the left until it fits (§7.3). The trailing dot is dropped.
    private func expandDomain(_ spec: SPFMacroString, domain: String) async throws(SPFStop) -> String {
        let validated = spec.usesValidatedName ? await validatedName(for: domain) : "unknown"
        var name = Substring(spec.expand(values.with(domain: domain), validatedName: validated))
        if name.hasSuffix(".") { name = name.dropLast() }
        while name.utf8.count > 253, let dot = name.firstIndex(of: ".") { name = name[name.index(after: dot)...] }
        if name.utf8.count > 253 { name = name.suffix(253) }
        return String(name)
    }

    private func countTerm(_ term: String) throws(SPFStop) {
        dnsTerms += 1
        guard dnsTerms <= limits.dnsTerms else {
            throw .permerror("\(term): more than \(limits.dnsTerms) DNS-querying terms (RFC 7208 §4.6.4)")
        }
    }

    /// One question. DNS failures are temperror (§4.4); a name that cannot be asked (an empty
    /// or too long label) is answered as one that does not exist. With `void`, an empty answer
    /// counts against the void lookup limit (§4.6.4).
    private func lookup(_ name: String, _ type: DNSQuestionType, void: Bool = false) async throws(SPFStop) -> DNSRecords {
        guard ContinuousClock.now < deadline else {
            throw .temperror("the check took longer than \(limits.timeLimit) (RFC 7208 §4.6.4)")
        }
        let answer: DNSRecords
        do {
            answer = try await resolver.records(name, type)
        } catch let error as DNSError {
            switch error {
            case .temporary(let why): throw .temperror("DNS \(type.rawValue) lookup of \(name) failed: \(why)")
            case .notFound, .invalidName: answer = .nameError
            }
        } catch {
            throw .temperror("DNS \(type.rawValue) lookup of \(name) failed: \(error)")
        }
        if void, answer.values.isEmpty {
            voidLookups += 1
            guard voidLookups <= limits.voidLookups else {
                throw .permerror("more than \(limits.voidLookups) void DNS lookups, the last for \(name) \(type.rawValue) (RFC 7208 §4.6.4)")
            }
        }
        return answer
    }
}

extension SPFMacroValues {
    /// The same values with `d` set to the domain of the record being evaluated.
    func with(domain: String) -> SPFMacroValues {
        var copy = self
        copy.domain = domain
        return copy
    }
}
