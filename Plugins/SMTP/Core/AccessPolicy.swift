import PluginAPI

/// A decision from a Postfix-style access table.
enum AccessAction: Sendable, Equatable {
    /// Passes: the remaining access, DNSBL and reverse-DNS checks of this client are skipped.
    case ok
    /// As `ok`, and (for `client:` and `to:` keys only) relaying is allowed.
    case relay
    case reject(String?)
    case tempfail(String?)
    /// Accept the message, then drop it.
    case discard

    /// Parses a table value: `OK`, `RELAY`, `REJECT [text]`, `TEMPFAIL [text]` (or `DEFER`),
    /// `DISCARD`; `DUNNO` is no decision (the next key is tried). Nil for `DUNNO`; an unknown
    /// action is a configuration error and fails safe as a temporary refusal.
    static func parse(_ value: String) -> AccessAction? {
        let trimmed = value.trimmingSpaces
        let word = trimmed.prefix { $0 != " " && $0 != "\t" }.uppercased()
        let rest = trimmed.dropFirst(word.count).trimmingSpaces
        let text = rest.isEmpty ? nil : rest
        switch word {
        case "OK": return .ok
        case "RELAY": return .relay
        case "REJECT": return .reject(text)
        case "TEMPFAIL", "DEFER": return .tempfail(text)
        case "DISCARD": return .discard
        case "DUNNO": return nil
        default: return .tempfail("access table misconfigured")
        }
    }
}

/// The access table keys of RFC 5321 objects, most specific first, and the lookups through the
/// directory. Key forms (documented in README.md):
///
/// - `client:192.0.2.7`, then `client:192.0.2.0/24` for every prefix from /31 down to /8 (IPv6:
///   /128, /64, /56, /48, /32); `client:mail.example.net`, `client:.example.net`, `client:.net`
///   for a verified client host name;
/// - `helo:NAME`, `helo:.PARENT`...;
/// - `from:user@example.com`, `from:example.com`, `from:.com`, `from:user@`; `from:<>` for the
///   null sender;
/// - `to:` like `from:`.
struct AccessPolicy: Sendable {
    let directory: Directory
    let tables: [String]

    var isEmpty: Bool { tables.isEmpty }

    /// The first decision among `keys` (each looked up in every table in order), with its key.
    func decide(_ keys: [String]) async -> (key: String, action: AccessAction)? {
        guard !tables.isEmpty else { return nil }
        for key in keys {
            let values: [String]?
            do {
                values = try await directory.lookup(key, in: tables)
            } catch {
                return (key, .tempfail("access table lookup failed"))
            }
            guard let values, !values.isEmpty else { continue }
            if let action = AccessAction.parse(values.joined(separator: ", ")) { return (key, action) }
        }
        return nil
    }

    static func clientKeys(address: IPAddress?, hostname: String?) -> [String] {
        var keys: [String] = []
        if let address {
            keys.append("client:\(address)")
            let prefixes = address.isIPv4 ? Array((8...31).reversed()) : [64, 56, 48, 32]
            for p in prefixes { keys.append("client:\(address.masked(p))/\(p)") }
        }
        if let hostname { keys += domainKeys("client:", hostname) }
        return keys
    }

    /// `PREFIX:name`, then `PREFIX:.parent` for each parent domain.
    static func domainKeys(_ prefix: String, _ name: String) -> [String] {
        let lower = name.lowercased()
        var keys = [prefix + lower]
        var labels = lower.split(separator: ".", omittingEmptySubsequences: false)
        while labels.count > 1 {
            labels.removeFirst()
            keys.append(prefix + "." + labels.joined(separator: "."))
        }
        return keys
    }

    /// Keys for an address: the whole address, its domain and parents, then `local@`.
    static func addressKeys(_ prefix: String, _ address: String) -> [String] {
        guard !address.isEmpty else { return [prefix + "<>"] }
        guard let parsed = EnvelopeAddress(address) else { return [prefix + address.lowercased()] }
        return [prefix + parsed.description] + domainKeys(prefix, parsed.domain) + [prefix + parsed.local + "@"]
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }
}
