#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// IP addresses and CIDR networks, for plugins that match a client against networks (smtp's
// `mynetworks`, filter-rules' `trusted_networks` and `client_network`) or ask a DNSBL about it.
// Here rather than in a plugin because a plugin's core is linked into that plugin's image only.

/// An IP address as bytes: 4 for IPv4, 16 for IPv6. An IPv4-mapped IPv6 address
/// (`::ffff:192.0.2.1`) is the IPv4 address, so it equals `192.0.2.1`, lies in `192.0.2.0/24`
/// and is asked of a DNSBL as 192.0.2.1.
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]

    /// Parses `192.0.2.1` or `2001:db8::1`. The address may also come in brackets (`[2001:db8::1]`,
    /// as in a URI or a peer description) or with an IPv6 zone (`fe80::1%eth0`), which is dropped.
    /// Nil for anything else, host names included.
    public init?(_ text: String) {
        var text = text
        if text.hasPrefix("[") && text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
        if let percent = text.firstIndex(of: "%") { text = String(text[..<percent]) }
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            bytes = withUnsafeBytes(of: v4.s_addr) { Array($0) }
            return
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        let raw = withUnsafeBytes(of: v6) { Array($0) }
        let isIPv4Mapped = raw[0..<10].allSatisfy { $0 == 0 } && raw[10] == 0xff && raw[11] == 0xff
        bytes = isIPv4Mapped ? Array(raw[12...]) : raw
    }

    /// `bytes` in network order, 4 or 16 of them.
    public init(bytes: [UInt8]) { self.bytes = bytes }

    public var isIPv4: Bool { bytes.count == 4 }

    /// 127.0.0.0/8 or ::1.
    public var isLoopback: Bool {
        isIPv4 ? bytes[0] == 127 : bytes == [UInt8](repeating: 0, count: 15) + [1]
    }

    /// The canonical text (`192.0.2.1`, `2001:db8::1`).
    public var description: String {
        if isIPv4 { return bytes.map(String.init).joined(separator: ".") }
        var storage = in6_addr()
        withUnsafeMutableBytes(of: &storage) { $0.copyBytes(from: bytes) }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        _ = inet_ntop(AF_INET6, &storage, &buffer, socklen_t(buffer.count))
        return String(cString: buffer)
    }

    /// The address with every bit past `prefix` cleared.
    public func masked(_ prefix: Int) -> IPAddress {
        var out = bytes
        for i in out.indices {
            let bitsHere = max(0, min(8, prefix - i * 8))
            out[i] &= bitsHere == 0 ? 0 : UInt8(truncatingIfNeeded: 0xff << (8 - bitsHere))
        }
        return IPAddress(bytes: out)
    }

    /// The name to ask under a DNSBL `zone` (RFC 5782 §2.1 and §2.4): the IPv4 octets reversed,
    /// or for IPv6 the 32 nibbles reversed, in lower-case hex, dot-separated (as in ip6.arpa).
    public func dnsblName(zone: String) -> String {
        if isIPv4 { return bytes.reversed().map(String.init).joined(separator: ".") + "." + zone }
        let digits = Array("0123456789abcdef")
        var labels: [String] = []
        labels.reserveCapacity(32)
        for byte in bytes.reversed() {
            labels.append(String(digits[Int(byte & 0x0f)]))
            labels.append(String(digits[Int(byte >> 4)]))
        }
        return labels.joined(separator: ".") + "." + zone
    }
}

/// A network in CIDR notation (`192.0.2.0/24`, `2001:db8::/32`), or one address (all its bits).
public struct IPNetwork: Sendable, Equatable, CustomStringConvertible {
    /// The network's address, every bit past `prefix` cleared (`192.0.2.77/24` gives 192.0.2.0).
    public let network: IPAddress
    /// The prefix length, in the bits of `network` (IPv4 bits for an IPv4-mapped network).
    public let prefix: Int

    /// Parses `address/prefix` or a lone address (the address as `IPAddress` takes it). Nil for a
    /// prefix longer than the address or negative, and for anything that is not an address.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(String(parts[0])) else { return nil }
        let bits = address.bytes.count * 8
        var prefix = bits
        if parts.count == 2 {
            // An IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`) is counted in IPv4 bits.
            let mappedOffset = parts[0].contains(":") && address.isIPv4 ? 96 : 0
            guard let p = Int(parts[1]), p - mappedOffset >= 0, p - mappedOffset <= bits else { return nil }
            prefix = p - mappedOffset
        }
        network = address.masked(prefix)
        self.prefix = prefix
    }

    /// Whether `address` lies in the network; an IPv4 address is never in an IPv6 network, nor
    /// the other way round.
    public func contains(_ address: IPAddress) -> Bool {
        address.bytes.count == network.bytes.count && address.masked(prefix) == network
    }

    /// `192.0.2.0/24`.
    public var description: String { "\(network)/\(prefix)" }
}
