// What one response says about the name and type that were asked (RFC 1034 §3.6.2 for CNAMEs,
// RFC 2308 for negative answers). Pure: the resolver (Resolver.swift) asks again when a CNAME
// chain leaves the response, and caches by the TTLs computed here.

/// The meaning of one response to a query for (name, type).
enum DNSAnswerMeaning: Equatable, Sendable {
    /// Records of the type asked at the end of the CNAME chain. `ttl` is the smallest TTL of
    /// those records and of every CNAME followed to reach them.
    case records([DNSResourceRecord], ttl: UInt32)
    /// The chain continues outside this response: ask for `target`. `hops` CNAMEs were followed.
    case alias(target: DNSName, ttl: UInt32, hops: Int)
    /// The name exists without records of this type (NODATA). `ttl` is how long that may be
    /// cached (RFC 2308 §5), nil when the response carries no SOA to say it.
    case noData(ttl: UInt32?)
    /// The name (or the end of its CNAME chain) does not exist (NXDOMAIN).
    case nameError(ttl: UInt32?)
    /// The server could not answer (SERVFAIL, REFUSED, ...) or the answer is unusable.
    case failure(String)
}

enum DNSAnswer {
    /// How `response` answers a query for `name` and `type`, following at most `maxHops` CNAMEs.
    static func interpret(_ response: DNSMessage, name: DNSName, type: DNSRecordType, maxHops: Int) -> DNSAnswerMeaning {
        let rcode = response.responseCode
        guard rcode == .noError || rcode == .nameError else {
            return .failure("\(rcode) for \(name) \(type)")
        }
        var current = name
        var chainTTL = UInt32.max
        var hops = 0
        // Each pass either returns or follows one CNAME; hops bounds the passes (CNAME loops included).
        while true {
            let matching = response.answers.filter { $0.name == current && $0.type == type && $0.recordClass == dnsClassIN }
            if !matching.isEmpty {
                return .records(matching, ttl: min(chainTTL, matching.map(\.ttl).min()!))
            }
            guard type != .cname,
                  let alias = response.answers.first(where: { $0.name == current && $0.type == .cname }),
                  case .cname(let target) = alias.data
            else { break }
            hops += 1
            guard hops <= maxHops else { return .failure("CNAME chain from \(name) longer than \(maxHops)") }
            chainTTL = min(chainTTL, alias.ttl)
            current = target
        }
        let negativeTTL = negativeCacheTTL(response).map { min($0, chainTTL) }
        if rcode == .nameError { return .nameError(ttl: negativeTTL) }
        // A CNAME whose target the server did not resolve here (no records, no SOA saying there
        // are none): the chain goes on in another query.
        if hops > 0 && negativeTTL == nil {
            return .alias(target: current, ttl: chainTTL, hops: hops)
        }
        return .noData(ttl: negativeTTL)
    }

    /// RFC 2308 §5: a negative answer is cached for the smaller of the SOA record's own TTL and its
    /// MINIMUM field; without an SOA in the authority section it is not cached at all.
    static func negativeCacheTTL(_ response: DNSMessage) -> UInt32? {
        for record in response.authorities where record.type == .soa {
            if case .soa(let soa) = record.data { return min(record.ttl, soa.minimum) }
        }
        return nil
    }
}
