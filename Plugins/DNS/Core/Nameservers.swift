#if canImport(Glibc)
import Glibc
#endif

// Nameserver addresses as configured (`127.0.0.1:53`, `[::1]:53`, `::1`) or read from
// /etc/resolv.conf, and the address text conversions the resolver needs (reverse names for PTR,
// A/AAAA data as text). No I/O besides reading resolv.conf.

/// A nameserver: an IP address (never a host name: the resolver cannot resolve its own servers)
/// and a port.
struct NameserverAddress: Equatable, Sendable, CustomStringConvertible {
    var ip: String
    var port: Int

    var isIPv6: Bool { ip.contains(":") }
    var description: String { isIPv6 ? "[\(ip)]:\(port)" : "\(ip):\(port)" }

    /// `ADDRESS`, `ADDRESS:PORT`, `[IPV6]` or `[IPV6]:PORT`; a bare IPv6 address takes port 53.
    init(parsing text: String) throws {
        func invalid(_ why: String) -> DNSConfigError { DNSConfigError("nameserver '\(text)': \(why)") }
        var host = Substring(text)
        var port = 53
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { throw invalid("missing ']'") }
            let rest = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if !rest.isEmpty {
                guard rest.hasPrefix(":"), let p = Int(rest.dropFirst()) else { throw invalid("expected ':PORT' after ']'") }
                port = p
            }
        } else if host.filter({ $0 == ":" }).count == 1, let colon = host.firstIndex(of: ":") {
            guard let p = Int(host[host.index(after: colon)...]) else { throw invalid("the port is not a number") }
            port = p
            host = host[..<colon]
        }
        guard (1...65535).contains(port) else { throw invalid("port \(port) is not in 1...65535") }
        guard let bytes = IPAddressText.parse(String(host)) else {
            throw invalid("'\(host)' is not an IPv4 or IPv6 address")
        }
        self.ip = IPAddressText.format(bytes)
        self.port = port
    }
}

/// A setting the plugin cannot use; activation fails with this text.
struct DNSConfigError: Error, Equatable, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

enum ResolvConf {
    /// glibc's answer when resolv.conf names no server.
    static let fallback = [try! NameserverAddress(parsing: "127.0.0.1:53")]

    /// The `nameserver` lines of a resolv.conf text, in order. Lines that do not parse (a
    /// link-local address with a `%zone`, say) are skipped and returned in `skipped`.
    static func nameservers(in text: String) -> (servers: [NameserverAddress], skipped: [String]) {
        var servers: [NameserverAddress] = []
        var skipped: [String] = []
        for line in text.split(whereSeparator: \.isNewline) {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, fields[0] == "nameserver" else { continue }
            let address = String(fields[1])
            // resolv.conf takes no ports; a bracketed or host:port form would be misread.
            if let server = try? NameserverAddress(parsing: address), !address.hasPrefix("["),
               server.isIPv6 || !address.contains(":") {
                servers.append(server)
            } else {
                skipped.append(address)
            }
        }
        return (servers, skipped)
    }

    static func read(path: String = "/etc/resolv.conf") -> (servers: [NameserverAddress], skipped: [String]) {
        guard let file = fopen(path, "r") else { return ([], []) }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        // resolv.conf is small; stop at 1 MiB rather than read an endless file.
        while bytes.count < 1 << 20 {
            let n = fread(&buffer, 1, buffer.count, file)
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        return nameservers(in: String(decoding: bytes, as: UTF8.self))
    }
}

enum IPAddressText {
    /// The 4 or 16 octets of an IPv4 or IPv6 address in text, or nil.
    static func parse(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }

    /// The text of 4 or 16 octets (IPv6 in RFC 5952's compressed lower-case form).
    static func format(_ bytes: [UInt8]) -> String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        let ok = bytes.withUnsafeBytes { raw in inet_ntop(family, raw.baseAddress, &text, socklen_t(text.count)) != nil }
        precondition(ok && (bytes.count == 4 || bytes.count == 16), "IPAddressText.format takes 4 or 16 octets")
        return String(cString: text)
    }

    /// The PTR name of an address: `4.3.2.1.in-addr.arpa` (RFC 1035 §3.5) or the 32 reversed
    /// nibbles under `ip6.arpa` (RFC 3596 §2.5). Nil when `text` is not an address.
    static func reverseName(_ text: String) -> DNSName? {
        guard let bytes = parse(text) else { return nil }
        let hex = Array("0123456789abcdef".utf8)
        var labels: [[UInt8]]
        if bytes.count == 4 {
            labels = bytes.reversed().map { Array(String($0).utf8) } + [Array("in-addr".utf8)]
        } else {
            labels = bytes.reversed().flatMap { [[hex[Int($0 & 0x0F)]], [hex[Int($0 >> 4)]]] } + [Array("ip6".utf8)]
        }
        labels.append(Array("arpa".utf8))
        return DNSName(validLabels: labels)
    }
}
