#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A client address as bytes (4 for IPv4, 16 for IPv6); IPv4-mapped IPv6 addresses count as IPv4,
/// so `::ffff:192.0.2.1` is in `192.0.2.0/24` and is looked up in a DNSBL as 192.0.2.1.
struct IPAddress: Sendable, Equatable {
    let bytes: [UInt8]

    init?(_ text: String) {
        // A peer address may come bracketed or with an IPv6 zone.
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
        bytes = raw[0..<10].allSatisfy { $0 == 0 } && raw[10] == 0xff && raw[11] == 0xff ? Array(raw[12...]) : raw
    }

    init(bytes: [UInt8]) { self.bytes = bytes }

    /// The address with every bit past `prefix` cleared.
    func masked(_ prefix: Int) -> IPAddress {
        var out = bytes
        for i in out.indices {
            let bits = max(0, min(8, prefix - i * 8))
            out[i] &= bits == 0 ? 0 : UInt8(truncatingIfNeeded: 0xff << (8 - bits))
        }
        return IPAddress(bytes: out)
    }

    /// The name to ask under a DNSBL `zone` (RFC 5782 §2.1, §2.4): IPv4 octets reversed, or the
    /// 32 nibbles of an IPv6 address reversed, in lower-case hex.
    func blocklistName(zone: String) -> String {
        if bytes.count == 4 { return bytes.reversed().map(String.init).joined(separator: ".") + "." + zone }
        let digits = Array("0123456789abcdef")
        var labels: [String] = []
        for byte in bytes.reversed() {
            labels.append(String(digits[Int(byte & 0x0f)]))
            labels.append(String(digits[Int(byte >> 4)]))
        }
        return labels.joined(separator: ".") + "." + zone
    }
}

/// A network in CIDR notation (`192.0.2.0/24`, `2001:db8::/32`, or one address).
struct IPNetwork: Sendable, Equatable {
    let network: IPAddress
    let prefix: Int

    init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(String(parts[0])) else { return nil }
        let bits = address.bytes.count * 8
        var prefix = bits
        if parts.count == 2 {
            // An IPv4-mapped IPv6 network is counted in IPv4 bits.
            let mappedOffset = parts[0].contains(":") && address.bytes.count == 4 ? 96 : 0
            guard let p = Int(parts[1]), p - mappedOffset >= 0, p - mappedOffset <= bits else { return nil }
            prefix = p - mappedOffset
        }
        network = address.masked(prefix)
        self.prefix = prefix
    }

    func contains(_ address: IPAddress) -> Bool {
        address.bytes.count == network.bytes.count && address.masked(prefix) == network
    }
}
