/// IMAP's modified UTF-7 for mailbox names (RFC 3501 §5.1.3): printable US-ASCII stands for
/// itself except "&", which is written "&-"; every other run of characters is UTF-16BE in base64
/// with "," for "/", no padding, between "&" and "-".
public enum ModifiedUTF7 {
    private static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,".utf8)
    private static let values: [UInt8] = {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { t[Int(c)] = UInt8(i) }
        return t
    }()

    @inline(__always) private static func isPrintable(_ b: UInt8) -> Bool { b >= 0x20 && b <= 0x7E }

    /// The name in modified UTF-7.
    public static func encode(_ name: String) -> String {
        String(decoding: encodeBytes(name), as: UTF8.self)
    }

    public static func encodeBytes(_ name: String) -> [UInt8] {
        var out: [UInt8] = []
        var pending: [UInt16] = []
        func flush() {
            guard !pending.isEmpty else { return }
            out.append(UInt8(ascii: "&"))
            var bits: UInt32 = 0, count = 0
            for unit in pending {
                bits = (bits << 16) | UInt32(unit)
                count += 16
                while count >= 6 {
                    count -= 6
                    out.append(alphabet[Int((bits >> UInt32(count)) & 0x3F)])
                }
                bits &= (1 << UInt32(count)) - 1
            }
            // The last character carries the remaining bits, padded with zero bits.
            if count > 0 { out.append(alphabet[Int((bits << UInt32(6 - count)) & 0x3F)]) }
            out.append(UInt8(ascii: "-"))
            pending.removeAll()
        }
        for scalar in name.unicodeScalars {
            if scalar.value < 0x80 && isPrintable(UInt8(scalar.value)) {
                flush()
                out.append(UInt8(scalar.value))
                if scalar == "&" { out.append(UInt8(ascii: "-")) }
            } else {
                pending.append(contentsOf: String(scalar).utf16)
            }
        }
        flush()
        return out
    }

    /// The name a modified UTF-7 text stands for; nil when it is malformed: bytes outside
    /// printable US-ASCII, an unterminated or empty-but-not-"&-" shift, base64 that is not whole
    /// UTF-16 (odd length, non-zero padding bits, unpaired surrogates), or any form the encoder
    /// would not write (a printable ASCII character in base64, two shifted runs side by side).
    /// Requiring the one canonical form means one mailbox has one spelling on the wire.
    public static func decode(_ text: String) -> String? { decode(Array(text.utf8)) }

    public static func decode<Bytes: Collection>(_ bytes: Bytes) -> String? where Bytes.Element == UInt8 {
        var out = String.UnicodeScalarView()
        var i = bytes.startIndex
        var lastWasShift = false
        while i < bytes.endIndex {
            let b = bytes[i]
            guard isPrintable(b) else { return nil }
            if b != UInt8(ascii: "&") {
                out.append(Unicode.Scalar(b))
                lastWasShift = false
                i = bytes.index(after: i)
                continue
            }
            i = bytes.index(after: i)
            var units: [UInt16] = []
            var bits: UInt32 = 0, count = 0, chars = 0
            while i < bytes.endIndex, bytes[i] != UInt8(ascii: "-") {
                let v = values[Int(bytes[i])]
                guard v != 0xFF else { return nil }
                bits = (bits << 6) | UInt32(v)
                count += 6
                chars += 1
                if count >= 16 {
                    count -= 16
                    units.append(UInt16(truncatingIfNeeded: bits >> UInt32(count)))
                    bits &= (1 << UInt32(count)) - 1
                }
                i = bytes.index(after: i)
            }
            guard i < bytes.endIndex else { return nil }   // no closing "-"
            i = bytes.index(after: i)
            if chars == 0 {
                out.append("&")
                lastWasShift = false
                continue
            }
            // Leftover bits: fewer than a character's worth, all zero.
            guard count < 6, bits == 0, !lastWasShift else { return nil }
            var decoded = String.UnicodeScalarView()
            let failed = transcode(units.makeIterator(), from: UTF16.self, to: UTF32.self, stoppingOnError: true) {
                decoded.append(Unicode.Scalar($0)!)
            }
            guard !failed, !decoded.isEmpty else { return nil }
            for s in decoded where s.value < 0x80 && isPrintable(UInt8(s.value)) { return nil }
            out.append(contentsOf: decoded)
            lastWasShift = true
        }
        return String(out)
    }
}
