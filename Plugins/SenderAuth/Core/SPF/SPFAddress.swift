// IP addresses as SPF uses them (RFC 7208 §5.6, §7.3): parsed from text without the C library
// (records are untrusted input and the grammar is strict: RFC 7208 §12 `qnum` has no leading
// zeros), compared under a prefix length, and written in the forms the `i` and `c` macros need.

/// An IPv4 or IPv6 address, as its 4 or 16 bytes in network order.
package struct SPFAddress: Sendable, Hashable, CustomStringConvertible {
    package let bytes: [UInt8]

    package var isIPv6: Bool { bytes.count == 16 }
    /// The longest prefix length of the family: 32 or 128.
    package var bitCount: Int { bytes.count * 8 }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    /// A dotted quad (`qnum` of RFC 7208 §12: 0 to 255 without leading zeros) or an IPv6 address
    /// (RFC 4291 §2.2 text forms, an embedded dotted quad included); nil for anything else.
    package init?(_ text: some StringProtocol) {
        let utf8 = Array(text.utf8)
        if let v4 = Self.parseIPv4(utf8[...]) {
            bytes = v4
        } else if let v6 = Self.parseIPv6(utf8) {
            bytes = v6
        } else {
            return nil
        }
    }

    /// The address an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) stands for; itself otherwise.
    /// RFC 7208 §5: such clients are checked as the IPv4 client they are.
    package var unmapped: SPFAddress {
        guard isIPv6, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF else { return self }
        return SPFAddress(bytes: Array(bytes[12...]))
    }

    /// Whether `other` (of the same family) shares this address's first `prefix` bits.
    package func matches(_ other: SPFAddress, prefix: Int) -> Bool {
        guard other.bytes.count == bytes.count else { return false }
        var remaining = min(max(prefix, 0), bitCount)
        var index = 0
        while remaining > 0 {
            let mask: UInt8 = remaining >= 8 ? 0xFF : ~(0xFF >> UInt8(remaining))
            if bytes[index] & mask != other.bytes[index] & mask { return false }
            remaining -= 8
            index += 1
        }
        return true
    }

    /// RFC 5952 text for IPv6 (lowercase, longest run of two or more zero groups as `::`, the
    /// first of equal runs), dotted quad for IPv4: the `c` macro and `client-ip`.
    package var description: String {
        guard isIPv6 else { return bytes.map(String.init).joined(separator: ".") }
        let groups = (0..<8).map { Int(bytes[$0 * 2]) << 8 | Int(bytes[$0 * 2 + 1]) }
        var bestStart = -1, bestLength = 0, index = 0
        while index < 8 {
            guard groups[index] == 0 else { index += 1; continue }
            let start = index
            while index < 8 && groups[index] == 0 { index += 1 }
            if index - start > bestLength { bestStart = start; bestLength = index - start }
        }
        let hex = groups.map { String($0, radix: 16) }
        guard bestLength >= 2 else { return hex.joined(separator: ":") }
        return hex[..<bestStart].joined(separator: ":") + "::" + hex[(bestStart + bestLength)...].joined(separator: ":")
    }

    /// The `i` macro (RFC 7208 §7.3): the dotted quad, or for IPv6 the 32 nibbles in lowercase
    /// hex separated by dots.
    package var dottedForm: String {
        guard isIPv6 else { return description }
        let digits = Array("0123456789abcdef")
        return bytes.flatMap { [String(digits[Int($0 >> 4)]), String(digits[Int($0 & 0xF)])] }.joined(separator: ".")
    }

    // MARK: Parsing

    private static func parseIPv4(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        let parts = text.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var result: [UInt8] = []
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            if part.count > 1 && part.first == 0x30 { return nil }
            let value = part.reduce(0) { $0 * 10 + Int($1 - 0x30) }
            guard value <= 255 else { return nil }
            result.append(UInt8(value))
        }
        return result
    }

    private static func parseIPv6(_ text: [UInt8]) -> [UInt8]? {
        guard text.count >= 2, text.count <= 45 else { return nil }
        // Split around the one `::` allowed; each side is groups separated by single colons.
        var head: [UInt8] = [], tail: [UInt8] = [], compressed = false
        var index = 0
        while index < text.count {
            if index + 1 < text.count && text[index] == UInt8(ascii: ":") && text[index + 1] == UInt8(ascii: ":") {
                guard !compressed else { return nil }
                compressed = true
                index += 2
                continue
            }
            if compressed { tail.append(text[index]) } else { head.append(text[index]) }
            index += 1
        }
        guard let left = groups(head, allowIPv4: !compressed), let right = groups(tail, allowIPv4: true) else { return nil }
        let total = left.count + right.count
        if compressed { guard total <= 14 else { return nil } } else { guard total == 16 else { return nil } }
        return left + [UInt8](repeating: 0, count: 16 - total) + right
    }

    /// Colon-separated groups of 1 to 4 hex digits as bytes, the last possibly a dotted quad.
    private static func groups(_ text: [UInt8], allowIPv4: Bool) -> [UInt8]? {
        guard !text.isEmpty else { return [] }
        let parts = text.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
        var result: [UInt8] = []
        for (index, part) in parts.enumerated() {
            if index == parts.count - 1 && allowIPv4 && part.contains(UInt8(ascii: ".")) {
                guard let v4 = parseIPv4(part) else { return nil }
                result += v4
                continue
            }
            guard (1...4).contains(part.count) else { return nil }
            var value = 0
            for byte in part {
                guard let digit = hexValue(byte) else { return nil }
                value = value << 4 | digit
            }
            result += [UInt8(value >> 8), UInt8(value & 0xFF)]
        }
        return result
    }

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case 0x30...0x39: return Int(byte - 0x30)
        case 0x41...0x46: return Int(byte - 0x41 + 10)
        case 0x61...0x66: return Int(byte - 0x61 + 10)
        default: return nil
        }
    }
}
