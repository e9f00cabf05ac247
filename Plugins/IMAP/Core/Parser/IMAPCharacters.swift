/// Byte classes of the IMAP grammar (RFC 3501 §9, RFC 9051 §9), looked up in one table so the
/// parser's inner loops stay branch-light.
enum IMAPCharacters {
    private static let atom: UInt8 = 1        // ATOM-CHAR
    private static let astring: UInt8 = 2     // ASTRING-CHAR: ATOM-CHAR or "]"
    private static let tag: UInt8 = 4         // ASTRING-CHAR except "+"
    private static let list: UInt8 = 8        // list-char: ATOM-CHAR, list-wildcards or "]"
    private static let quotedText: UInt8 = 16 // what a quoted string holds unescaped (7-bit)

    private static let table: [UInt8] = {
        var t = [UInt8](repeating: 0, count: 256)
        for b in 0x21...0x7E {
            let c = UInt8(b)
            // atom-specials: "(" ")" "{" SP CTL list-wildcards quoted-specials resp-specials
            let special = c == UInt8(ascii: "(") || c == UInt8(ascii: ")") || c == UInt8(ascii: "{")
                || c == UInt8(ascii: "%") || c == UInt8(ascii: "*") || c == UInt8(ascii: "\"")
                || c == UInt8(ascii: "\\") || c == UInt8(ascii: "]")
            if !special { t[b] |= atom | astring | list }
            if c == UInt8(ascii: "]") { t[b] |= astring | list }
            if c == UInt8(ascii: "%") || c == UInt8(ascii: "*") { t[b] |= list }
            if t[b] & astring != 0 && c != UInt8(ascii: "+") { t[b] |= tag }
        }
        for b in 0x01...0x7F where b != 0x0D && b != 0x0A && b != 0x22 && b != 0x5C { t[b] |= quotedText }
        return t
    }()

    @inline(__always) static func isAtomChar(_ b: UInt8) -> Bool { table[Int(b)] & atom != 0 }
    @inline(__always) static func isAStringChar(_ b: UInt8) -> Bool { table[Int(b)] & astring != 0 }
    @inline(__always) static func isTagChar(_ b: UInt8) -> Bool { table[Int(b)] & tag != 0 }
    @inline(__always) static func isListChar(_ b: UInt8) -> Bool { table[Int(b)] & list != 0 }
    @inline(__always) static func isQuotedTextChar(_ b: UInt8) -> Bool { table[Int(b)] & quotedText != 0 }
    @inline(__always) static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    /// ASCII upper-casing of bytes (command names, keywords); other bytes are kept.
    static func upper<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        String(decoding: bytes.map { $0 >= 0x61 && $0 <= 0x7A ? $0 - 32 : $0 }, as: UTF8.self)
    }

    static func equalsIgnoringCase<Bytes: Collection>(_ bytes: Bytes, _ word: String) -> Bool where Bytes.Element == UInt8 {
        let w = Array(word.utf8)
        guard bytes.count == w.count else { return false }
        for (a, b) in zip(bytes, w) {
            let ua = a >= 0x61 && a <= 0x7A ? a - 32 : a
            let ub = b >= 0x61 && b <= 0x7A ? b - 32 : b
            if ua != ub { return false }
        }
        return true
    }
}

/// The value of ASCII digits (the caller has checked they are digits).
@inline(__always) func decimal<Bytes: Sequence>(_ digits: Bytes) -> Int where Bytes.Element == UInt8 {
    digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
}
