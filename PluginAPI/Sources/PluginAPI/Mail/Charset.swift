#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Converts text in the charsets mail declares (MIME `charset=`, RFC 2047 words, RFC 2231
/// parameters) to Swift strings, through the C library's iconv.
///
/// Unknown or unusable charsets never fail: the bytes are taken as UTF-8 when they are valid
/// UTF-8, else as ISO-8859-1 (every byte maps to one character), so a bad label still gives
/// readable text. Invalid sequences inside a known charset become U+FFFD.
public enum MailCharset {
    /// Labels mail software uses that iconv does not know under that spelling.
    private static let aliases: [String: String] = [
        "latin1": "ISO-8859-1", "latin-1": "ISO-8859-1", "l1": "ISO-8859-1", "iso8859-1": "ISO-8859-1",
        "iso_8859-1": "ISO-8859-1", "iso-8859-1": "ISO-8859-1", "iso88591": "ISO-8859-1",
        "utf8": "UTF-8", "utf-8": "UTF-8", "unicode-1-1-utf-8": "UTF-8",
        "ascii": "US-ASCII", "us-ascii": "US-ASCII", "ansi_x3.4-1968": "US-ASCII", "us": "US-ASCII",
        "latin2": "ISO-8859-2", "latin-2": "ISO-8859-2",
        "cp1252": "WINDOWS-1252", "windows-1252": "WINDOWS-1252", "x-cp1252": "WINDOWS-1252",
        "win-1252": "WINDOWS-1252", "cp1251": "WINDOWS-1251", "cp1250": "WINDOWS-1250",
        "koi8r": "KOI8-R", "koi8-r": "KOI8-R", "koi8u": "KOI8-U",
        "shift-jis": "SHIFT_JIS", "shift_jis": "SHIFT_JIS", "sjis": "SHIFT_JIS", "x-sjis": "SHIFT_JIS",
        "gb2312": "GB18030", "gbk": "GB18030", "x-gbk": "GB18030", "euc-cn": "GB18030",
        "ks_c_5601-1987": "CP949", "euc-kr": "EUC-KR", "big5": "BIG5",
    ]

    /// The label iconv is given for a charset as mail declares it (case and aliases resolved).
    public static func canonicalName(_ label: String) -> String {
        let trimmed = label.trimmingASCIIWhitespace()
        let key = trimmed.lowercased()
        if let name = aliases[key] { return name }
        return trimmed.uppercased()
    }

    /// Whether iconv can convert from `label` (after alias resolution).
    public static func isSupported(_ label: String) -> Bool {
        let name = canonicalName(label)
        if name == "UTF-8" || name == "US-ASCII" || name == "ISO-8859-1" { return true }
        guard let cd = open(from: name) else { return false }
        iconv_close(cd)
        return true
    }

    /// Decodes `bytes` in charset `label` to a string (see the type's notes for unknown labels).
    public static func decode<Bytes: Collection>(_ bytes: Bytes, charset label: String) -> String
    where Bytes.Element == UInt8 {
        let input = Array(bytes)
        let name = canonicalName(label)
        switch name {
        case "UTF-8":
            return String(decoding: input, as: UTF8.self)
        case "US-ASCII":
            // Mail labelled ASCII often carries 8-bit text anyway: keep it readable.
            return input.allSatisfy({ $0 < 0x80 }) ? String(decoding: input, as: UTF8.self) : fallback(input)
        case "ISO-8859-1":
            return latin1(input)
        default:
            guard let cd = open(from: name) else { return fallback(input) }
            defer { iconv_close(cd) }
            return convert(cd, input)
        }
    }

    /// `text` in charset `label`, or nil when the charset is unknown or a character of `text`
    /// has no encoding in it (nothing is transliterated or replaced): what a filter that adds
    /// text to a part checks before writing it in the part's own charset.
    public static func encode(_ text: String, charset label: String) -> [UInt8]? {
        let name = canonicalName(label)
        switch name {
        case "UTF-8":
            return Array(text.utf8)
        case "US-ASCII":
            return text.utf8.allSatisfy({ $0 < 0x80 }) ? Array(text.utf8) : nil
        case "ISO-8859-1":
            var out: [UInt8] = []
            out.reserveCapacity(text.unicodeScalars.count)
            for scalar in text.unicodeScalars {
                guard scalar.value < 0x100 else { return nil }
                out.append(UInt8(scalar.value))
            }
            return out
        default:
            let cd = iconv_open(name, "UTF-8")
            if cd == nil || Int(bitPattern: cd) == -1 { return nil }
            defer { iconv_close(cd) }
            var input = Array(text.utf8)
            var output = [UInt8](repeating: 0, count: input.count * 4 + 16)
            let ok: Int? = input.withUnsafeMutableBufferPointer { inBuf in
                output.withUnsafeMutableBufferPointer { outBuf in
                    var inPtr: UnsafeMutablePointer<CChar>? = inBuf.baseAddress.map { UnsafeMutableRawPointer($0).assumingMemoryBound(to: CChar.self) }
                    var inLeft = inBuf.count
                    var outPtr: UnsafeMutablePointer<CChar>? = UnsafeMutableRawPointer(outBuf.baseAddress!).assumingMemoryBound(to: CChar.self)
                    var outLeft = outBuf.count
                    // EILSEQ: a character the charset lacks; nothing is replaced, the caller decides.
                    if inLeft > 0 && iconv(cd, &inPtr, &inLeft, &outPtr, &outLeft) == -1 { return nil }
                    // Flush a stateful encoder (ISO-2022-JP's return to ASCII).
                    if iconv(cd, nil, nil, &outPtr, &outLeft) == -1 { return nil }
                    return outBuf.count - outLeft
                }
            }
            return ok.map { Array(output[0..<$0]) }
        }
    }

    /// Bytes as UTF-8 when valid, else as ISO-8859-1: what an unknown charset gives.
    public static func fallback(_ bytes: [UInt8]) -> String {
        if let text = String(validatingUTF8Bytes: bytes) { return text }
        return latin1(bytes)
    }

    static func latin1(_ bytes: [UInt8]) -> String {
        var scalars = String.UnicodeScalarView()
        scalars.reserveCapacity(bytes.count)
        for byte in bytes { scalars.append(Unicode.Scalar(byte)) }
        return String(scalars)
    }

    private static func open(from name: String) -> iconv_t? {
        let cd = iconv_open("UTF-8", name)
        if cd == nil || Int(bitPattern: cd) == -1 { return nil }
        return cd
    }

    private static func convert(_ cd: iconv_t, _ input: [UInt8]) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(input.count * 2 + 16)
        var chunk = [UInt8](repeating: 0, count: 4096)
        var inIndex = 0
        let replacement: [UInt8] = [0xEF, 0xBF, 0xBD]
        input.withUnsafeBufferPointer { inBuf in
            while true {
                var inLeft = inBuf.count - inIndex
                var inPtr: UnsafeMutablePointer<CChar>? = inLeft > 0
                    ? UnsafeMutableRawPointer(mutating: inBuf.baseAddress! + inIndex).assumingMemoryBound(to: CChar.self)
                    : nil
                let (result, err, produced, consumed): (Int, Int32, Int, Int) = chunk.withUnsafeMutableBufferPointer { outBuf in
                    var outPtr: UnsafeMutablePointer<CChar>? = UnsafeMutableRawPointer(outBuf.baseAddress!).assumingMemoryBound(to: CChar.self)
                    var outLeft = outBuf.count
                    let before = inLeft
                    // A nil input flushes a stateful decoder (ISO-2022-JP's shift state).
                    let r = inPtr == nil ? iconv(cd, nil, nil, &outPtr, &outLeft) : iconv(cd, &inPtr, &inLeft, &outPtr, &outLeft)
                    return (r, r == -1 ? errno : 0, outBuf.count - outLeft, before - inLeft)
                }
                output.append(contentsOf: chunk[0..<produced])
                inIndex += consumed
                if result != -1 {
                    if inIndex >= inBuf.count { break }
                    continue
                }
                switch err {
                case E2BIG:
                    continue
                case EILSEQ, EINVAL:
                    // Bad or truncated sequence: one replacement character, then resynchronise.
                    output.append(contentsOf: replacement)
                    inIndex += 1
                    if inIndex >= inBuf.count {
                        _ = chunk.withUnsafeMutableBufferPointer { outBuf -> Int in
                            var outPtr: UnsafeMutablePointer<CChar>? = UnsafeMutableRawPointer(outBuf.baseAddress!).assumingMemoryBound(to: CChar.self)
                            var outLeft = outBuf.count
                            _ = iconv(cd, nil, nil, &outPtr, &outLeft)
                            output.append(contentsOf: outBuf[0..<(outBuf.count - outLeft)])
                            return 0
                        }
                        return
                    }
                default:
                    return
                }
            }
        }
        return String(decoding: output, as: UTF8.self)
    }
}

extension String {
    /// The string when `bytes` are valid UTF-8, else nil.
    init?(validatingUTF8Bytes bytes: [UInt8]) {
        // The standard library validates in bulk; decoding scalar by scalar was the hot spot of
        // every content filter on large text parts.
        guard let text = String(validating: bytes, as: UTF8.self) else { return nil }
        self = text
    }

    func trimmingASCIIWhitespace() -> String {
        let ws: Set<Character> = [" ", "\t", "\r", "\n"]
        var s = Substring(self)
        while let f = s.first, ws.contains(f) { s.removeFirst() }
        while let l = s.last, ws.contains(l) { s.removeLast() }
        return String(s)
    }
}

extension Unicode.Scalar {
    /// `properties.isWhitespace`, with ASCII answered without the Unicode tables: what text
    /// normalisers call once per character of a message.
    public var isWhitespaceFast: Bool {
        if value < 0x80 { return value == 0x20 || (0x09...0x0D).contains(value) }
        return properties.isWhitespace
    }
}
