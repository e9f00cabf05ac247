import Foundation
import PluginAPI

// check_host() of RFC 7208 §4 for the MAIL FROM and HELO identities, over PluginAPI's DNSResolver.
// One `SPFHostCheck` holds the state of one check (the counters of §4.6.4 span every include and
// redirect of it); `SPFEvaluator` is the reusable, Sendable front.

/// The processing limits of RFC 7208 §4.6.4 (the defaults are the RFC's).
package struct SPFLimits: Sendable, Equatable {
    /// Terms that query DNS (include, a, mx, ptr, exists, redirect) per check.
    package var dnsTerms: Int
    /// DNS answers with no records (NODATA) or no name (NXDOMAIN) per check.
    package var voidLookups: Int
    /// MX names an `mx` mechanism may have (more is a permerror).
    package var mxNames: Int
    /// PTR names a `ptr` mechanism or `%{p}` looks at (the rest are ignored).
    package var ptrNames: Int
    /// Wall-clock time for the whole check; past it, temperror.
    package var timeLimit: Duration

    package init(dnsTerms: Int = 10, voidLookups: Int = 2, mxNames: Int = 10, ptrNames: Int = 10,
                 timeLimit: Duration = .seconds(20)) {
        self.dnsTerms = dnsTerms
        self.voidLookups = voidLookups
        self.mxNames = mxNames
        self.ptrNames = ptrNames
        self.timeLimit = timeLimit
    }
}

/// What one check came to, with what Received-SPF and Authentication-Results need.
package struct SPFOutcome: Sendable, Equatable {
    /// The identity checked (RFC 7208 §2.3, §2.4; `identity=` of Received-SPF).
    package enum Identity: String, Sendable {
        case mailfrom, helo
    }

    package var result: SPFResult
    package var identity: Identity
    /// The domain check_host() started from: the MAIL FROM domain, or the HELO name.
    package var domain: String
    package var clientIP: String
    /// The sender checked: the MAIL FROM address, `postmaster@<helo>` for the null sender and for
    /// the HELO identity.
    package var envelopeFrom: String
    package var helo: String
    package var receiver: String
    /// The domain's explanation (`exp=`), for fail only, when it could be had.
    package var explanation: String?
    /// The directive that decided (`-all`, `include:_spf.example.org`); nil when none matched.
    package var mechanism: String?
    /// Why, for none, neutral by default, temperror and permerror.
    package var problem: String?
}

package struct SPFEvaluator: Sendable {
    package let resolver: any DNSResolver
    package let limits: SPFLimits

    package init(resolver: any DNSResolver, limits: SPFLimits = SPFLimits()) {
        self.resolver = resolver
        self.limits = limits
    }

    /// The MAIL FROM identity (§2.4): `mailFrom` without angle brackets, empty for the null
    /// sender (then `postmaster@<helo>` is checked, §2.4).
    package func check(ip: String, mailFrom: String, helo: String, receiver: String) async -> SPFOutcome {
        var sender = mailFrom
        if sender.hasPrefix("<") && sender.hasSuffix(">") && sender.count >= 2 { sender = String(sender.dropFirst().dropLast()) }
        if sender.isEmpty { sender = "postmaster@" + helo }
        let domain = sender.lastIndex(of: "@").map { String(sender[sender.index(after: $0)...]) } ?? sender
        return await checkHost(ip: ip, domain: domain, sender: sender, helo: helo, receiver: receiver, identity: .mailfrom)
    }

    /// The HELO identity (§2.3): `postmaster@<helo>` checked against the HELO name's record.
    package func checkHELO(ip: String, helo: String, receiver: String) async -> SPFOutcome {
        await checkHost(ip: ip, domain: helo, sender: "postmaster@" + helo, helo: helo, receiver: receiver, identity: .helo)
    }

    /// check_host() itself (§4): `domain` is where the search starts, `sender` what the `s`, `l`
    /// and `o` macros see (a sender without a local-part is `postmaster@<its domain>`, §4.3).
    package func checkHost(ip: String, domain: String, sender: String, helo: String, receiver: String,
                           identity: SPFOutcome.Identity = .mailfrom) async -> SPFOutcome {
        var domain = domain
        if domain.hasSuffix(".") { domain.removeLast() }
        var localPart = "postmaster", senderDomain = domain
        if let at = sender.lastIndex(of: "@") {
            senderDomain = String(sender[sender.index(after: at)...])
            if at != sender.startIndex { localPart = String(sender[..<at]) }
        } else if !sender.isEmpty {
            senderDomain = sender
        }
        if senderDomain.hasSuffix(".") { senderDomain.removeLast() }
        var outcome = SPFOutcome(result: .none, identity: identity, domain: domain, clientIP: ip,
                                 envelopeFrom: localPart + "@" + senderDomain, helo: helo, receiver: receiver)
        guard let client = SPFAddress(ip)?.unmapped else {
            outcome.result = .permerror
            outcome.problem = "the client address '\(ip)' is not an IP address"
            return outcome
        }
        outcome.clientIP = client.description
        guard Self.isCheckableDomain(domain) else {
            outcome.problem = "'\(domain)' is not a fully qualified domain name (RFC 7208 §4.3)"
            return outcome
        }
        let values = SPFMacroValues(sender: outcome.envelopeFrom, localPart: localPart, senderDomain: senderDomain, domain: domain,
                                    client: client, helo: helo, receiver: receiver.isEmpty ? "unknown" : receiver,
                                    timestamp: Int(Date().timeIntervalSince1970))
        let check = SPFHostCheck(resolver: resolver, limits: limits, values: values)
        do {
            let evaluation = try await check.evaluate(domain: domain)
            outcome.result = evaluation.result
            outcome.mechanism = evaluation.mechanism
            outcome.problem = evaluation.problem
            if evaluation.result == .fail, let (spec, expDomain) = evaluation.explanation {
                outcome.explanation = await check.explanation(spec, domain: expDomain)
            }
        } catch {
            switch error {
            case .temperror(let why): outcome.result = .temperror; outcome.problem = why
            case .permerror(let why): outcome.result = .permerror; outcome.problem = why
            }
        }
        return outcome
    }

    /// §4.3: a domain check_host() can start from: multi-label, labels of 1 to 63 octets, at most
    /// 253 octets, no spaces or controls, and not an address literal.
    package static func isCheckableDomain(_ domain: String) -> Bool {
        let bytes = Array(domain.utf8)
        guard !bytes.isEmpty, bytes.count <= 253, bytes.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else { return false }
        guard !domain.hasPrefix("["), SPFAddress(domain) == nil else { return false }
        let labels = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        return labels.count >= 2 && labels.allSatisfy { !$0.isEmpty && $0.count <= 63 }
    }
}

/// Ends a check early with temperror or permerror, from any depth of include and redirect.
enum SPFStop: Error {
    case temperror(String)
    case permerror(String)
}

/// What one record came to: `explanation` is its `exp=` with the domain it expands against,
/// kept for a fail (and passed up through redirect, not include: §6.2).
struct SPFRecordEvaluation {
    var result: SPFResult
    var mechanism: String?
    var explanation: (SPFMacroString, String)?
    var problem: String?
}
