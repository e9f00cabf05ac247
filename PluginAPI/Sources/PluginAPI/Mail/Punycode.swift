/// Punycode (RFC 3492): the Bootstring encoding of Unicode labels into letters, digits and hyphens.
public enum Punycode {
    private static let base = 36, tMin = 1, tMax = 26, skew = 38, damp = 700
    private static let initialBias = 72, initialN = 128

    /// Encodes a label (without any `xn--` prefix). Nil only on arithmetic overflow.
    public static func encode(_ input: String) -> String? {
        let cps = input.unicodeScalars.map { Int($0.value) }
        var output: [UInt8] = cps.filter { $0 < 0x80 }.map { UInt8($0) }
        let b = output.count
        var h = b
        if b > 0 { output.append(45) }
        var n = initialN, delta = 0, bias = initialBias
        while h < cps.count {
            guard let m = cps.filter({ $0 >= n }).min() else { break }
            let (inc, o1) = (m - n).multipliedReportingOverflow(by: h + 1)
            guard !o1, delta <= Int(Int32.max) - inc else { return nil }
            delta += inc
            n = m
            for c in cps {
                if c < n {
                    delta += 1
                    guard delta <= Int(Int32.max) else { return nil }
                }
                if c == n {
                    var q = delta
                    var k = base
                    while true {
                        let t = k <= bias ? tMin : (k >= bias + tMax ? tMax : k - bias)
                        if q < t { break }
                        output.append(digit(t + (q - t) % (base - t)))
                        q = (q - t) / (base - t)
                        k += base
                    }
                    output.append(digit(q))
                    bias = adapt(delta, h + 1, h == b)
                    delta = 0
                    h += 1
                }
            }
            delta += 1
            n += 1
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Decodes a Punycode label (without `xn--`). Nil when it is not valid Punycode.
    public static func decode(_ input: String) -> String? {
        let bytes = Array(input.utf8)
        guard bytes.allSatisfy({ $0 < 0x80 }) else { return nil }
        var output: [Int] = []
        let delimiter = bytes.lastIndex(of: 45) ?? -1
        if delimiter > 0 { output = bytes[0..<delimiter].map { Int($0) } }
        var pos = delimiter >= 0 ? delimiter + 1 : 0
        var n = initialN, i = 0, bias = initialBias
        while pos < bytes.count {
            let oldI = i
            var w = 1
            var k = base
            while true {
                guard pos < bytes.count, let d = digitValue(bytes[pos]) else { return nil }
                pos += 1
                let (dw, o1) = d.multipliedReportingOverflow(by: w)
                guard !o1, i <= Int(Int32.max) - dw else { return nil }
                i += dw
                let t = k <= bias ? tMin : (k >= bias + tMax ? tMax : k - bias)
                if d < t { break }
                let (nw, o2) = w.multipliedReportingOverflow(by: base - t)
                guard !o2, nw <= Int(Int32.max) else { return nil }
                w = nw
                k += base
            }
            let count = output.count + 1
            bias = adapt(i - oldI, count, oldI == 0)
            n += i / count
            guard n <= 0x10FFFF else { return nil }
            i %= count
            output.insert(n, at: i)
            i += 1
        }
        var scalars = String.UnicodeScalarView()
        for cp in output {
            guard let s = Unicode.Scalar(UInt32(cp)) else { return nil }
            scalars.append(s)
        }
        return String(scalars)
    }

    private static func adapt(_ delta: Int, _ numPoints: Int, _ first: Bool) -> Int {
        var delta = first ? delta / damp : delta / 2
        delta += delta / numPoints
        var k = 0
        while delta > ((base - tMin) * tMax) / 2 {
            delta /= base - tMin
            k += base
        }
        return k + (base - tMin + 1) * delta / (delta + skew)
    }

    private static func digit(_ d: Int) -> UInt8 { d < 26 ? UInt8(97 + d) : UInt8(22 + d) }

    private static func digitValue(_ c: UInt8) -> Int? {
        switch c {
        case 48...57: return Int(c) - 22
        case 65...90: return Int(c) - 65
        case 97...122: return Int(c) - 97
        default: return nil
        }
    }
}

/// Why a domain name was refused.
public enum DomainError: Error, Sendable, Equatable {
    /// Empty, or an empty label (two dots in a row, or a leading dot).
    case emptyLabel
    /// A label over 63 octets in its A-label (ASCII) form.
    case labelTooLong(String)
    /// The whole name over 255 octets in ASCII form.
    case domainTooLong
    /// A character no host name may hold (e.g. space, `@`, a control character).
    case invalidCharacter(String)
    /// An `xn--` label that is not valid Punycode.
    case invalidPunycode(String)
}

/// IDNA conversion of whole domain names between U-labels (Unicode) and A-labels (`xn--`),
/// label by label with Punycode.
///
/// Mapping is limited to lower-casing: full UTS #46 / IDNA2008 mapping and validation tables
/// are not applied, so names that those would refuse may pass.
public enum IDNA {
    /// The ASCII form of `domain` (every non-ASCII label as `xn--`), lower-cased, length-checked.
    public static func toASCII(_ domain: String) throws -> String {
        var name = domain
        if name.hasSuffix(".") { name.removeLast() }   // the root label
        guard !name.isEmpty else { throw DomainError.emptyLabel }
        var labels: [String] = []
        for label in name.split(separator: ".", omittingEmptySubsequences: false) {
            guard !label.isEmpty else { throw DomainError.emptyLabel }
            let lower = label.lowercased()
            var ascii: String
            if lower.unicodeScalars.allSatisfy({ $0.isASCII }) {
                ascii = lower
                if ascii.hasPrefix("xn--") {
                    guard let decoded = Punycode.decode(String(ascii.dropFirst(4))), !decoded.isEmpty else {
                        throw DomainError.invalidPunycode(String(label))
                    }
                }
            } else {
                guard let p = Punycode.encode(lower) else { throw DomainError.invalidPunycode(String(label)) }
                ascii = "xn--" + p
            }
            for s in ascii.unicodeScalars where !(isLDH(s) || s == "_") {
                throw DomainError.invalidCharacter(String(label))
            }
            guard ascii.utf8.count <= 63 else { throw DomainError.labelTooLong(String(label)) }
            labels.append(ascii)
        }
        let result = labels.joined(separator: ".")
        guard result.utf8.count <= 255 else { throw DomainError.domainTooLong }
        return result
    }

    /// The Unicode form of `domain` (every `xn--` label decoded), lower-cased, length-checked.
    public static func toUnicode(_ domain: String) throws -> String {
        let ascii = try toASCII(domain)
        return ascii.split(separator: ".").map { label -> String in
            if label.hasPrefix("xn--"), let u = Punycode.decode(String(label.dropFirst(4))) { return u }
            return String(label)
        }.joined(separator: ".")
    }

    private static func isLDH(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 48...57, 97...122, 65...90, 45: return true
        default: return false
        }
    }
}
