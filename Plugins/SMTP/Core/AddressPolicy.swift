#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import PluginAPI

/// An IP address as bytes (4 for IPv4, 16 for IPv6); IPv4-mapped IPv6 addresses count as IPv4.
struct IPAddress: Sendable, Equatable, Hashable, CustomStringConvertible {
    let bytes: [UInt8]

    init?(_ text: String) {
        var v4 = in_addr()
        if text.withCString({ inet_pton(AF_INET, $0, &v4) }) == 1 {
            bytes = withUnsafeBytes(of: v4.s_addr) { Array($0) }
            return
        }
        var v6 = in6_addr()
        guard text.withCString({ inet_pton(AF_INET6, $0, &v6) }) == 1 else { return nil }
        let raw = withUnsafeBytes(of: v6) { Array($0) }
        if raw[0..<10].allSatisfy({ $0 == 0 }) && raw[10] == 0xff && raw[11] == 0xff {
            bytes = Array(raw[12...])
        } else {
            bytes = raw
        }
    }

    init(bytes: [UInt8]) { self.bytes = bytes }

    var isIPv4: Bool { bytes.count == 4 }

    var isLoopback: Bool {
        isIPv4 ? bytes[0] == 127 : bytes == [UInt8](repeating: 0, count: 15) + [1]
    }

    /// The canonical text (`192.0.2.1`, `2001:db8::1`).
    var description: String {
        if isIPv4 { return bytes.map(String.init).joined(separator: ".") }
        var storage = in6_addr()
        withUnsafeMutableBytes(of: &storage) { $0.copyBytes(from: bytes) }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        _ = inet_ntop(AF_INET6, &storage, &buffer, socklen_t(buffer.count))
        return String(cString: buffer)
    }

    /// The address with every bit past `prefix` cleared.
    func masked(_ prefix: Int) -> IPAddress {
        var out = bytes
        for i in 0..<out.count {
            let bitsHere = max(0, min(8, prefix - i * 8))
            out[i] &= bitsHere == 0 ? 0 : UInt8(truncatingIfNeeded: 0xff << (8 - bitsHere))
        }
        return IPAddress(bytes: out)
    }

    /// The DNSBL query name under `zone` (RFC 5782 §2.1 and §2.4): the IPv4 octets reversed, or
    /// for IPv6 the 32 nibbles reversed, in lowercase hex, dot-separated (as in ip6.arpa).
    func dnsblName(zone: String) -> String {
        if isIPv4 { return bytes.reversed().map(String.init).joined(separator: ".") + "." + zone }
        let digits = Array("0123456789abcdef")
        var labels: [String] = []
        labels.reserveCapacity(32)
        for byte in bytes.reversed() {
            labels.append(String(digits[Int(byte & 0x0F)]))
            labels.append(String(digits[Int(byte >> 4)]))
        }
        return labels.joined(separator: ".") + "." + zone
    }
}

/// A network in CIDR notation (`192.0.2.0/24`, `2001:db8::/32`, or a single address).
struct CIDR: Sendable, Equatable, CustomStringConvertible {
    let network: IPAddress
    let prefix: Int

    init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(String(parts[0])) else { return nil }
        let bits = address.bytes.count * 8
        var prefix = bits
        if parts.count == 2 {
            // An IPv4-mapped IPv6 network is counted in IPv4 bits.
            let mappedOffset = String(parts[0]).contains(":") && address.isIPv4 ? 96 : 0
            guard let p = Int(parts[1]), p - mappedOffset >= 0, p - mappedOffset <= bits else { return nil }
            prefix = p - mappedOffset
        }
        self.network = address.masked(prefix)
        self.prefix = prefix
    }

    func contains(_ address: IPAddress) -> Bool {
        address.bytes.count == network.bytes.count && address.masked(prefix) == network
    }

    var description: String { "\(network)/\(prefix)" }
}

/// The syntax-level refusals of a recipient, made before anything is looked up: address forms
/// that have been used to relay through servers that handed them on (percent hack, bang paths,
/// source routes, quoted local parts hiding another address) and address literals.
enum RecipientSyntax {
    /// The reply refusing `path`, or nil when its form is acceptable. `localAddress` is the
    /// address the client connected to: a literal naming it is mail for this host.
    static func refusal(_ path: SMTPPath, localAddress: IPAddress?) -> MailReply? {
        if path.hasSourceRoute { return MailReply(553, "5.7.1", "source-routed addresses are not accepted") }
        if path.localPart.contains("@") { return MailReply(553, "5.7.1", "quoted local parts containing @ are not accepted") }
        if path.localPart.contains("%") { return MailReply(553, "5.7.1", "percent-hack addresses are not accepted") }
        if path.localPart.contains("!") { return MailReply(553, "5.7.1", "bang-path addresses are not accepted") }
        switch path.domain {
        case .name(let name)?:
            if name.isEmpty || name.hasSuffix(".") { return MailReply(501, "5.1.3", "bad recipient domain") }
        case .ipv4(let text)?:
            guard let localAddress, IPAddress(text) == localAddress else {
                return MailReply(553, "5.7.1", "address literals are not accepted")
            }
        case .ipv6(let text)?:
            guard let localAddress, IPAddress(text) == localAddress else {
                return MailReply(553, "5.7.1", "address literals are not accepted")
            }
        case .general?:
            return MailReply(553, "5.7.1", "address literals are not accepted")
        case nil:
            break
        }
        return nil
    }

    /// `local@domain` with the domain in lower-case A-labels, as the router is asked (so
    /// `User@BÜCHER.example`, `User@xn--bcher-kva.EXAMPLE` and `User@bücher.example` are one
    /// domain). The local part keeps its case (RFC 5321 §2.4); the router folds it if it wants.
    /// A literal naming this host becomes `hostname`. Nil when the domain cannot be encoded.
    static func normalised(_ path: SMTPPath, hostname: String) -> String? {
        let local = MailAddress.quoteLocalPart(path.localPart)
        switch path.domain {
        case .name(let name)?:
            guard let ascii = try? IDNA.toASCII(name) else { return nil }
            return local + "@" + ascii.lowercased()
        case .ipv4?, .ipv6?, .general?:
            return local + "@" + hostname.lowercased()
        case nil:
            // Only <postmaster> gets here (RFC 5321 §4.1.1.3): this host's postmaster.
            return local + "@" + hostname.lowercased()
        }
    }
}

/// Checks of the sender address.
enum SenderSyntax {
    /// Whether the sender has a fully-qualified domain: a name with at least one dot, or a literal.
    static func isFullyQualified(_ path: SMTPPath) -> Bool {
        switch path.domain {
        case .name(let name)?: return name.contains(".") && !name.hasSuffix(".") && !name.hasPrefix(".")
        case .ipv4?, .ipv6?, .general?: return true
        case nil: return false
        }
    }
}
