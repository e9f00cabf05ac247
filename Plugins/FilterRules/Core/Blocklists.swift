import PluginAPI

/// The DNS block list questions of one message, asked together: every `dnsbl` rule's client
/// name and every `uribl` rule's link-host names, each asked once, at most `concurrency` at a time
/// through the host's DNS resolver. A name is listed when it has an A record in 127.0.0.0/8 (RFC
/// 5782 §2.3); no answer, NXDOMAIN or a failed lookup is "not listed" (a block list that is down
/// must not stop mail; failures are logged).
enum Blocklists {
    /// The names to ask for `rules` about `facts`.
    static func questions(for rules: [Rule], facts: MessageFacts) -> Set<String> {
        var names = Set<String>()
        for rule in rules where rule.score != 0 {
            switch rule.condition {
            case .dnsbl(let zone):
                if let address = facts.clientAddress { names.insert(address.dnsblName(zone: zone)) }
            case .uribl(let zone):
                for host in facts.uriHosts { names.formUnion(uriNames(host: host, zone: zone)) }
            default:
                break
            }
        }
        return names
    }

    /// The names asked for one link host: an address literal reversed as for a DNSBL; a name as
    /// it stands and each parent domain down to two labels (`www.spam.example` and
    /// `spam.example`), since URI lists mostly list registered domains.
    static func uriNames(host: String, zone: String) -> [String] {
        var literal = host
        if literal.hasPrefix("[") && literal.hasSuffix("]") { literal = String(literal.dropFirst().dropLast()) }
        if let address = IPAddress(literal) { return [address.dnsblName(zone: zone)] }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2, !labels.contains(where: \.isEmpty) else { return [] }
        return (0...(labels.count - 2)).map { labels[$0...].joined(separator: ".") + "." + zone }
    }

    /// Whether a rule's condition holds, given which names were found listed.
    static func isListed(_ condition: RuleCondition, facts: MessageFacts, listed: Set<String>) -> Bool {
        switch condition {
        case .dnsbl(let zone):
            return facts.clientAddress.map { listed.contains($0.dnsblName(zone: zone)) } ?? false
        case .uribl(let zone):
            return facts.uriHosts.contains { uriNames(host: $0, zone: zone).contains(where: listed.contains) }
        default:
            return false
        }
    }

    /// Asks every name, `concurrency` at a time; returns the listed ones and the failures.
    static func lookUp(_ names: Set<String>, resolver: any DNSResolver, concurrency: Int) async -> (listed: Set<String>, failures: [String]) {
        var listed = Set<String>(), failures: [String] = []
        await withTaskGroup(of: (String, Result<Bool, any Error>).self) { group in
            var pending = names.sorted()[...]
            func startNext() {
                guard let name = pending.popFirst() else { return }
                group.addTask {
                    do {
                        let answers = try await resolver.addresses(name)
                        return (name, .success(answers.contains { $0.hasPrefix("127.") }))
                    } catch DNSError.notFound {
                        return (name, .success(false))
                    } catch {
                        return (name, .failure(error))
                    }
                }
            }
            for _ in 0..<max(1, concurrency) { startNext() }
            while let (name, result) = await group.next() {
                switch result {
                case .success(true): listed.insert(name)
                case .success(false): break
                case .failure(let error): failures.append("\(name): \(error)")
                }
                startNext()
            }
        }
        return (listed, failures.sorted())
    }
}
