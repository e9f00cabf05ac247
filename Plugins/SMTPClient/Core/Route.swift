import PluginAPI

/// One address to try for a delivery, with the name it was found under (for the logs, the
/// outcome texts and TLS: the name is what a certificate is checked against).
struct Candidate: Sendable, Equatable, CustomStringConvertible {
    var host: String
    var address: String
    var port: Int

    var description: String { "\(host)[\(address)]:\(port)" }
}

/// The addresses to try for a destination, in order, or why there are none.
enum Route: Sendable, Equatable {
    /// `notes` say what was skipped on the way (MX hosts without addresses, look-ups that failed).
    case candidates([Candidate], notes: [String])
    /// No address to try: the reply says whether that is permanent (no such domain, null MX) or
    /// temporary (DNS trouble).
    case failed(MailReply)
}

/// MX and address look-ups through the worker's `DNSResolver` (RFC 5321 §5.1). Pure apart from
/// the resolver, so it is tested with a scripted one.
struct RouteResolver: Sendable {
    let resolver: (any DNSResolver)?
    /// The most addresses tried for one delivery (over all MX hosts), as Postfix's
    /// `smtp_mx_address_limit`.
    let maxAddresses: Int

    func resolve(_ destination: Destination) async -> Route {
        switch destination {
        case .unixSocket(let path):
            return .candidates([Candidate(host: path, address: path, port: 0)], notes: [])
        case .host(let host, let port):
            return await addressesOf(hosts: [host], port: port, domain: nil)
        case .mailDomain(let domain, let port):
            guard let resolver else { return .failed(MailReply(451, "4.3.5", "no DNS resolver loaded: cannot look up the MX records of \(domain)")) }
            let records: [MXRecord]
            do {
                records = try await resolver.mxOrNotFound(domain)
            } catch DNSError.notFound {
                return .failed(MailReply(550, "5.1.2", "Host or domain name not found: \(domain) does not exist (NXDOMAIN)"))
            } catch DNSError.invalidName(let why) {
                return .failed(MailReply(550, "5.1.2", "Host or domain name not valid: \(domain): \(why)"))
            } catch {
                return .failed(MailReply(451, "4.4.3", "MX look-up of \(domain) failed: \(error)"))
            }
            // RFC 7505: a lone "." exchanger says the domain takes no mail. Next to real
            // exchangers (a misconfiguration the RFC forbids) it is skipped.
            let exchangers = records.filter { $0.host != "." && !$0.host.isEmpty }
            if exchangers.isEmpty && !records.isEmpty {
                return .failed(MailReply(556, "5.1.10", "Domain \(domain) does not accept mail (null MX)"))
            }
            // No MX: the domain itself is the implicit exchanger (RFC 5321 §5.1).
            return await addressesOf(hosts: exchangers.isEmpty ? [domain] : exchangers.map(\.host), port: port,
                                     domain: exchangers.isEmpty ? nil : domain)
        }
    }

    /// The addresses of `hosts` in order, up to `maxAddresses`. `domain` is set when the hosts
    /// are MX exchangers of it (for the failure texts).
    private func addressesOf(hosts: [String], port: Int, domain: String?) async -> Route {
        var candidates: [Candidate] = []
        var notes: [String] = []
        var temporary = false
        for host in hosts where candidates.count < maxAddresses {
            if Self.isAddressLiteral(host) {
                candidates.append(Candidate(host: host, address: host, port: port))
                continue
            }
            guard let resolver else {
                notes.append("\(host): no DNS resolver loaded")
                temporary = true
                continue
            }
            do {
                let addresses = try await resolver.addresses(host)
                if addresses.isEmpty { notes.append("\(host): no address (A/AAAA) records") }
                for address in addresses where candidates.count < maxAddresses {
                    candidates.append(Candidate(host: host, address: address, port: port))
                }
            } catch DNSError.temporary(let why) {
                notes.append("\(host): temporary DNS failure: \(why)")
                temporary = true
            } catch {
                notes.append("\(host): \(error)")
            }
        }
        if !candidates.isEmpty { return .candidates(candidates, notes: notes) }
        let detail = notes.joined(separator: "; ")
        if temporary { return .failed(MailReply(451, "4.4.3", "cannot find an address to deliver to: \(detail)")) }
        if let domain { return .failed(MailReply(550, "5.4.4", "no MX host of \(domain) has an address: \(detail)")) }
        return .failed(MailReply(550, "5.4.4", "Host or domain name not found: \(detail)"))
    }

    /// Whether `host` is an IPv4 or IPv6 address rather than a name.
    static func isAddressLiteral(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }
}
