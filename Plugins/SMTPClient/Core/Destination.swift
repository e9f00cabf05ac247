import PluginAPI

/// Where a delivery goes, from the queue's next hop or the recipients' domain. Pure.
///
/// SMTP next hops follow Postfix: `host` and `host:port` are looked up as mail domains (MX
/// records, else the name's own addresses); brackets, `[host]` or `[host]:port`, skip the MX
/// look-up; `[1.2.3.4]` and `[IPv6:2001:db8::1]` (or `[2001:db8::1]`) are addresses. LMTP next
/// hops are `unix:/path` (or an absolute path), `[host]:port`, `host:port`, `inet:host:port`;
/// LMTP never looks up MX records.
enum Destination: Sendable, Equatable, CustomStringConvertible {
    /// Look up the MX records of `domain`, and connect to `port` on each exchanger.
    case mailDomain(String, port: Int)
    /// Connect to the addresses of `host` (a name or an address literal), no MX look-up.
    case host(String, port: Int)
    /// A Unix-domain socket (LMTP).
    case unixSocket(String)

    struct Invalid: Error, Sendable, Equatable, CustomStringConvertible {
        var nextHop: String
        var why: String
        var description: String { "invalid next hop \"\(nextHop)\": \(why)" }
    }

    var description: String {
        switch self {
        case .mailDomain(let domain, let port): return port == 25 ? domain : "\(domain):\(port)"
        case .host(let host, let port): return "[\(host)]:\(port)"
        case .unixSocket(let path): return "unix:\(path)"
        }
    }

    /// An SMTP next hop; `defaultPort` applies when it names none.
    static func smtp(nextHop: String, defaultPort: Int) throws -> Destination {
        let text = nextHop.trimmingBlanks()
        guard !text.isEmpty else { throw Invalid(nextHop: nextHop, why: "empty") }
        if text.hasPrefix("[") {
            let (host, port) = try bracketed(text, original: nextHop, defaultPort: defaultPort)
            return .host(host, port: port)
        }
        let (host, port) = try hostAndPort(text, original: nextHop, defaultPort: defaultPort)
        return .mailDomain(host.lowercased(), port: port)
    }

    /// The destination of mail for `domain` without a next hop: its MX records, or for an
    /// address literal domain (`user@[192.0.2.1]`) that address.
    static func smtp(domain: String, port: Int) throws -> Destination {
        if domain.hasPrefix("[") {
            let (host, _) = try bracketed(domain, original: domain, defaultPort: port)
            return .host(host, port: port)
        }
        guard !domain.isEmpty else { throw Invalid(nextHop: domain, why: "no domain") }
        return .mailDomain(domain.lowercased(), port: port)
    }

    /// An LMTP next hop; `defaultPort` (24) applies to a host without a port.
    static func lmtp(nextHop: String, defaultPort: Int) throws -> Destination {
        var text = nextHop.trimmingBlanks()
        if text.lowercased().hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard path.hasPrefix("/") else { throw Invalid(nextHop: nextHop, why: "a Unix socket path must be absolute") }
            return .unixSocket(path)
        }
        if text.hasPrefix("/") { return .unixSocket(text) }
        if text.lowercased().hasPrefix("inet:") { text = String(text.dropFirst(5)) }
        guard !text.isEmpty else { throw Invalid(nextHop: nextHop, why: "empty") }
        if text.hasPrefix("[") {
            let (host, port) = try bracketed(text, original: nextHop, defaultPort: defaultPort)
            return .host(host, port: port)
        }
        let (host, port) = try hostAndPort(text, original: nextHop, defaultPort: defaultPort)
        return .host(host, port: port)
    }

    /// `[host]` or `[host]:port`; `IPv6:` inside the brackets is dropped.
    private static func bracketed(_ text: String, original: String, defaultPort: Int) throws -> (String, Int) {
        guard let close = text.firstIndex(of: "]") else { throw Invalid(nextHop: original, why: "missing ]") }
        var host = String(text[text.index(after: text.startIndex)..<close])
        if host.lowercased().hasPrefix("ipv6:") { host = String(host.dropFirst(5)) }
        guard !host.isEmpty, !host.contains(where: { $0 == " " || $0 == "[" || $0 == "/" }) else {
            throw Invalid(nextHop: original, why: "bad host inside the brackets")
        }
        let rest = text[text.index(after: close)...]
        if rest.isEmpty { return (host, defaultPort) }
        guard rest.first == ":", let port = port(rest.dropFirst()) else { throw Invalid(nextHop: original, why: "expected :port after ]") }
        return (host, port)
    }

    /// `host` or `host:port` (a name: an unbracketed IPv6 address is ambiguous and refused).
    private static func hostAndPort(_ text: String, original: String, defaultPort: Int) throws -> (String, Int) {
        let pieces = text.split(separator: ":", omittingEmptySubsequences: false)
        guard pieces.count <= 2 else { throw Invalid(nextHop: original, why: "an IPv6 address needs brackets: [2001:db8::1]:25") }
        let host = String(pieces[0])
        guard !host.isEmpty, host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_" }) else {
            throw Invalid(nextHop: original, why: "bad host name")
        }
        guard pieces.count == 2 else { return (host, defaultPort) }
        guard let port = port(pieces[1]) else { throw Invalid(nextHop: original, why: "bad port") }
        return (host, port)
    }

    private static func port<S: StringProtocol>(_ text: S) -> Int? {
        guard !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(text), (1...65535).contains(n) else { return nil }
        return n
    }
}

extension String {
    fileprivate func trimmingBlanks() -> String {
        var s = Substring(self)
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" { s.removeLast() }
        return String(s)
    }
}
