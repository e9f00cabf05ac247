/// The hosts of the http and https links in a text (plain or HTML, where they sit in `href`
/// attributes as much as in the words): a scan for `http://` and `https://` without regard to
/// case, the host being what follows up to the first character that cannot be in one. User
/// information (`user@`) before the host is skipped. Hosts come lower-case, without a trailing
/// dot; names without a dot (`http://localhost/`) are left out, they are no one's to list.
enum URIHosts {
    static func find(in text: String) -> [String] {
        let bytes = Array(text.utf8)
        var hosts: [String] = []
        var i = 0
        while i < bytes.count {
            guard bytes[i] | 0x20 == UInt8(ascii: "h"), let start = afterScheme(bytes, at: i) else { i += 1; continue }
            var end = start
            while end < bytes.count && isAuthorityByte(bytes[end]) { end += 1 }
            var hostStart = start
            // user:password@host: the host is after the last @ of the authority.
            if let at = bytes[start..<end].lastIndex(of: UInt8(ascii: "@")) { hostStart = at + 1 }
            var hostEnd = hostStart
            if hostStart < end && bytes[hostStart] == UInt8(ascii: "[") {
                // An IPv6 literal.
                while hostEnd < end && bytes[hostEnd] != UInt8(ascii: "]") { hostEnd += 1 }
                if hostEnd < end { hostEnd += 1 }
            } else {
                while hostEnd < end && isHostByte(bytes[hostEnd]) { hostEnd += 1 }
            }
            var host = String(decoding: bytes[hostStart..<hostEnd], as: UTF8.self).lowercased()
            while host.hasSuffix(".") { host.removeLast() }
            if host.contains(".") || host.hasPrefix("["), !hosts.contains(host) { hosts.append(host) }
            i = max(end, i + 1)
        }
        return hosts
    }

    /// Just after `http://` or `https://` starting at `i`, or nil.
    static func afterScheme(_ bytes: [UInt8], at i: Int) -> Int? {
        for scheme in ["http://", "https://"] {
            let s = Array(scheme.utf8)
            guard i + s.count <= bytes.count else { continue }
            if (0..<s.count).allSatisfy({ bytes[i + $0] | (s[$0] >= 97 ? 0x20 : 0) == s[$0] }) { return i + s.count }
        }
        return nil
    }

    /// What an authority (user information, host, port) can hold.
    static func isAuthorityByte(_ b: UInt8) -> Bool {
        isHostByte(b) || b == UInt8(ascii: "@") || b == UInt8(ascii: ":") || b == UInt8(ascii: "[") || b == UInt8(ascii: "]")
            || b == UInt8(ascii: "%") || b == UInt8(ascii: "_") || b == UInt8(ascii: "~") || b == UInt8(ascii: "!")
            || b == UInt8(ascii: "$") || b == UInt8(ascii: "&") || b == UInt8(ascii: "+") || b == UInt8(ascii: ",")
            || b == UInt8(ascii: ";") || b == UInt8(ascii: "=")
    }

    /// Letters, digits, '-', '.', and the bytes of UTF-8 (an internationalised name as written).
    static func isHostByte(_ b: UInt8) -> Bool {
        (b >= 97 && b <= 122) || (b >= 65 && b <= 90) || (b >= 48 && b <= 57) || b == 45 || b == 46 || b >= 0x80
    }
}
