import Foundation
import PluginAPI

/// Recipient classification and address rewriting: which domains are local, what aliases expand
/// to, where each final address is delivered. Asked by the SMTP session at RCPT time and by the
/// queue at enqueue (alias expansion) and delivery (transport choice).
///
/// Order for an address in a local domain (as Postfix's virtual alias maps, then the mailbox):
/// the virtual alias tables named in the config, the store's own alias, the account itself (with
/// the recipient delimiter's tag removed), the alias of the untagged address, the domain's
/// catch-all (`@domain`). Expansion recurses through aliases up to `maxDepth`, and an address seen
/// twice in one expansion is delivered once.
struct Router: MailRouter {
    let services: HostServices
    let relayDomains: Set<String>
    let aliasTables: [String]
    let recipientDelimiter: String
    /// `domain` (or `.parent.domain` for every subdomain) -> `transport[:nexthop]`.
    let transportMap: [String: String]
    let relayHost: String?
    let localTransport: String
    let remoteTransport: String
    /// Lookup tables of full address -> `transport[:nexthop]` (an LDAP `mailHost`), asked
    /// before the domain's transport map.
    var transportTables: [String] = []
    static let maxDepth = 10

    /// Fails closed (ARCHITECTURE.md, "Fail closed"): "not local" comes only from the store's
    /// answer, or from a process that has every plugin active and no store at all (a gateway).
    /// While plugins are still being activated the answer is unknown, and unknown is an error,
    /// which every caller turns into a temporary failure (451 at RCPT, a deferral in the queue),
    /// never into "remote" (which would bounce a local user's mail as NXDOMAIN).
    func isLocalDomain(_ domain: String) async throws -> Bool {
        guard services.isComplete else { throw QueueError.temporary("the plugins of this process are still starting: cannot tell whether \(domain) is local") }
        guard let accounts = services.accounts else { return false }
        return try await accounts.domains().contains(domain.lowercased())
    }

    func classify(_ recipient: String) async throws -> RecipientClass {
        guard let (_, domain) = Self.split(recipient) else { return .unknownUser }
        guard try await isLocalDomain(domain) else {
            return relayDomains.contains(domain) ? .relayDomain : .remote
        }
        var seen = Set<String>()
        switch try await expand(recipient, depth: 0, seen: &seen) {
        case .none: return .unknownUser
        case .some(let targets) where targets.isEmpty: return .disabled
        case .some(let targets): return .local(expandsTo: targets)
        }
    }

    /// The final addresses of a local-domain address: nil when nothing takes it, empty when the
    /// account is suspended.
    private func expand(_ address: String, depth: Int, seen: inout Set<String>) async throws -> [String]? {
        guard depth < Self.maxDepth, let (local, domain) = Self.split(address) else { return nil }
        let key = "\(local)@\(domain)"
        // A loop (a -> b -> a) ends at the address seen again, which is then delivered as itself
        // (and bounces when it is no account), as an alias loop must not swallow mail.
        guard seen.insert(key.lowercased()).inserted else { return nil }
        if let targets = try await aliasTargets(key) { return try await expandTargets(targets, depth: depth, seen: &seen) }
        if let store = services.store() {
            switch try await store.checkRecipient(key) {
            case .local(let account):
                // Per-account forwarding (a `.forward`): the targets, plus the account itself
                // when it keeps a copy.
                if let forward = try await services.accounts?.forwarding(account: account), !forward.to.isEmpty {
                    seen.insert(account.lowercased())
                    let targets = try await expandTargets(forward.to, depth: depth, seen: &seen)
                    return (forward.keepCopy ? [account] : []) + targets.filter { $0.caseInsensitiveCompare(account) != .orderedSame }
                        + (forward.keepCopy ? [] : targets.filter { $0.caseInsensitiveCompare(account) == .orderedSame })
                }
                return [account]
            case .disabled: return []
            case .unknownUser, .notLocal: break
            }
        }
        if !recipientDelimiter.isEmpty, let cut = local.range(of: recipientDelimiter) {
            let base = "\(local[..<cut.lowerBound])@\(domain)"
            if let targets = try await aliasTargets(base) { return try await expandTargets(targets, depth: depth, seen: &seen) }
        }
        if let targets = try await aliasTargets("@" + domain) { return try await expandTargets(targets, depth: depth, seen: &seen) }
        return nil
    }

    private func expandTargets(_ targets: [String], depth: Int, seen: inout Set<String>) async throws -> [String] {
        var out: [String] = []
        for target in targets {
            guard let (_, domain) = Self.split(target) else { continue }
            if try await isLocalDomain(domain) {
                // An unknown local target is kept as it is: its delivery fails and bounces,
                // which tells the sender, rather than the alias silently losing mail.
                let expanded = try await expand(target, depth: depth + 1, seen: &seen) ?? [target]
                out += expanded
            } else {
                out.append(target)
            }
        }
        var unique = Set<String>()
        return out.filter { unique.insert($0.lowercased()).inserted }
    }

    private func aliasTargets(_ key: String) async throws -> [String]? {
        if let values = try await services.directory.lookup(key.lowercased(), in: aliasTables) {
            return values.flatMap { $0.split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init) }
        }
        return try await services.accounts?.alias(key)
    }

    /// Where a final address goes: the transport and its next hop.
    func route(_ address: String) async throws -> (transport: String, nextHop: String?) {
        guard let (local, domain) = Self.split(address) else { return (remoteTransport, nil) }
        var perAddress: String?
        if !transportTables.isEmpty {
            perAddress = try await services.directory.lookup("\(local)@\(domain)".lowercased(), in: transportTables)?.first
        }
        if let mapped = perAddress ?? transportFor(domain) {
            let parts = mapped.split(separator: ":", maxSplits: 1).map(String.init)
            return (parts[0], parts.count > 1 && !parts[1].isEmpty ? parts[1] : nil)
        }
        if try await isLocalDomain(domain) { return (localTransport, nil) }
        return (remoteTransport, relayHost)
    }

    private func transportFor(_ domain: String) -> String? {
        if let exact = transportMap[domain] { return exact }
        var labels = domain.split(separator: ".")
        while labels.count > 1 {
            labels.removeFirst()
            if let parent = transportMap["." + labels.joined(separator: ".")] { return parent }
        }
        return nil
    }

    /// `local@domain` with the domain lower-cased (EnvelopeAddress).
    static func split(_ address: String) -> (local: String, domain: String)? {
        EnvelopeAddress(address).map { ($0.local, $0.domain) }
    }
}
