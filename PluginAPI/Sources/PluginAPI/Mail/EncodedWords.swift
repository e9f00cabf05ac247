/// RFC 2047 encoded words (`=?charset?B|Q?text?=`) in header values: decoding for display and
/// matching, encoding for outgoing headers.
public enum EncodedWords {
    /// The two encodings of RFC 2047 §4.
    public enum Encoding: Sendable, Equatable {
        /// Base64 ("B").
        case base64
        /// The header variant of quoted-printable ("Q").
        case quoted
    }

    /// Decodes the encoded words in an (unfolded) header value to text.
    ///
    /// Words may use any charset iconv knows (unknown ones decode as UTF-8 when valid, else
    /// Latin-1); whitespace between two adjacent encoded words is dropped (§6.2); adjacent words
    /// in one charset are converted together, so a character split across them survives; a
    /// malformed word is left as it is. Encoded words inside quoted strings and glued to other
    /// text are decoded too, as mail readers do. Bytes outside words are read as UTF-8
    /// (RFC 6532) when valid, else Latin-1.
    public static func decode<Bytes: Collection>(_ value: Bytes) -> String where Bytes.Element == UInt8 {
        let bytes = Array(value)
        var result = ""
        var plainStart = 0
        var pendingCharset: String?
        var pendingBytes: [UInt8] = []
        var i = 0
        var lastWasWord = false

        func flushWord() {
            if let cs = pendingCharset { result += MailCharset.decode(pendingBytes, charset: cs) }
            pendingCharset = nil
            pendingBytes.removeAll()
        }

        while i < bytes.count {
            if bytes[i] == 61, i + 1 < bytes.count, bytes[i + 1] == 63, let word = parseWord(bytes, at: i) {
                let between = bytes[plainStart..<i]
                let onlySpace = between.allSatisfy { $0 == 32 || $0 == 9 || $0 == 13 || $0 == 10 }
                if !(lastWasWord && onlySpace) {
                    flushWord()
                    result += MailCharset.fallback(Array(between))
                }
                if pendingCharset != nil && !pendingCharset!.caseInsensitiveEquals(word.charset) { flushWord() }
                pendingCharset = word.charset
                pendingBytes += word.bytes
                lastWasWord = true
                i = word.end
                plainStart = i
                continue
            }
            i += 1
        }
        flushWord()
        if plainStart < bytes.count { result += MailCharset.fallback(Array(bytes[plainStart...])) }
        return result
    }

    /// Decodes the encoded words of a string (see `decode(_:)` for bytes).
    public static func decode(_ text: String) -> String { decode(Array(text.utf8)) }

    private struct Word { var charset: String; var bytes: [UInt8]; var end: Int }

    private static func parseWord(_ b: [UInt8], at start: Int) -> Word? {
        // =?charset?X?text?=
        var i = start + 2
        let csStart = i
        while i < b.count, b[i] != 63 {
            let c = b[i]
            if c <= 32 || c >= 127 || c == 61 || c == 40 || c == 41 || c == 34 { return nil }
            i += 1
        }
        guard i < b.count, i > csStart, i + 2 < b.count, b[i + 2] == 63 else { return nil }
        var charset = MailCharset.latin1(Array(b[csStart..<i]))
        if let star = charset.firstIndex(of: "*") { charset = String(charset[..<star]) }   // RFC 2231 language
        let enc = b[i + 1]
        i += 3
        let textStart = i
        while i + 1 < b.count, !(b[i] == 63 && b[i + 1] == 61) {
            if b[i] == 32 || b[i] == 9 || b[i] == 13 || b[i] == 10 { return nil }
            i += 1
        }
        guard i + 1 < b.count, !charset.isEmpty else { return nil }
        let text = b[textStart..<i]
        let decoded: [UInt8]
        switch enc {
        case 66, 98:
            decoded = Base64Decoder.decode(text)
        case 81, 113:
            decoded = decodeQ(text)
        default:
            return nil
        }
        return Word(charset: charset, bytes: decoded, end: i + 2)
    }

    private static func decodeQ(_ text: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        var i = text.startIndex
        while i < text.endIndex {
            let c = text[i]
            if c == 95 {
                out.append(32)
            } else if c == 61, i + 2 < text.endIndex, let h = hex(text[i + 1]), let l = hex(text[i + 2]) {
                out.append(h << 4 | l)
                i += 2
            } else {
                out.append(c)
            }
            i += 1
        }
        return out
    }

    private static func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case 48...57: return b - 48
        case 65...70: return b - 55
        case 97...102: return b - 87
        default: return nil
        }
    }

    /// Encodes `text` for an unstructured header (or a phrase) as RFC 2047 words in UTF-8.
    ///
    /// Text that is printable ASCII and holds no `=?` is returned unchanged. Otherwise the span
    /// from the first to the last word that needs it is encoded (leading and trailing plain words
    /// stay readable), in words of at most 75 characters separated by a space, each holding
    /// whole characters. `encoding` nil picks Q for mostly-ASCII text, else B.
    public static func encode(_ text: String, encoding: Encoding? = nil) -> String {
        let scalars = Array(text.unicodeScalars)
        func needs(_ s: Unicode.Scalar) -> Bool { s.value > 126 || (s.value < 32 && s.value != 9) }
        let hasTrigger = text.contains("=?") || text.contains("?=")
        guard hasTrigger || scalars.contains(where: needs) else { return text }

        // Split into words (runs of non-blanks); find the span to encode.
        var words: [(range: Range<Int>, needs: Bool)] = []
        var i = 0
        while i < scalars.count {
            if scalars[i] == " " || scalars[i] == "\t" { i += 1; continue }
            let start = i
            var n = false
            while i < scalars.count, scalars[i] != " ", scalars[i] != "\t" {
                if needs(scalars[i]) { n = true }
                i += 1
            }
            let w = String(String.UnicodeScalarView(scalars[start..<i]))
            if w.contains("=?") || w.contains("?=") { n = true }
            words.append((start..<i, n))
        }
        guard let first = words.firstIndex(where: { $0.needs }),
              let last = words.lastIndex(where: { $0.needs }) else { return text }
        let spanStart = words[first].range.lowerBound
        let spanEnd = words[last].range.upperBound
        let prefix = String(String.UnicodeScalarView(scalars[0..<spanStart]))
        let suffix = String(String.UnicodeScalarView(scalars[spanEnd...]))
        let span = Array(scalars[spanStart..<spanEnd])

        let utf8Count = span.reduce(0) { $0 + UTF8.width($1) }
        let plainCount = span.filter { isQSafe($0) }.count
        let chosen = encoding ?? (plainCount * 3 >= utf8Count * 2 ? .quoted : .base64)
        let words2047 = encodeSpan(span, chosen)
        return prefix + words2047.joined(separator: " ") + suffix
    }

    private static func isQSafe(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 48...57, 65...90, 97...122, 33, 42, 43, 45, 47: return true
        default: return false
        }
    }

    private static func encodeSpan(_ span: [Unicode.Scalar], _ encoding: Encoding) -> [String] {
        let head = encoding == .base64 ? "=?UTF-8?B?" : "=?UTF-8?Q?"
        let room = 75 - head.utf8.count - 2
        var words: [String] = []
        var current: [UInt8] = []     // raw UTF-8 for B, encoded text for Q
        var used = 0
        func close() {
            guard !current.isEmpty else { return }
            if encoding == .base64 {
                words.append(head + String(decoding: Base64Encoder.encode(current, lineLength: 0), as: UTF8.self) + "?=")
            } else {
                words.append(head + String(decoding: current, as: UTF8.self) + "?=")
            }
            current.removeAll()
            used = 0
        }
        for s in span {
            let utf8 = Array(String(s).utf8)
            var piece: [UInt8] = []
            if encoding == .quoted {
                if s == " " { piece = [95] } else if isQSafe(s) { piece = utf8 } else {
                    for b in utf8 { piece += [61, hexDigit(b >> 4), hexDigit(b & 15)] }
                }
                if used + piece.count > room { close() }
                current += piece
                used += piece.count
            } else {
                let newLen = (current.count + utf8.count + 2) / 3 * 4
                if newLen > room { close() }
                current += utf8
            }
        }
        close()
        return words
    }

    private static func hexDigit(_ v: UInt8) -> UInt8 { v < 10 ? 48 + v : 55 + v }
}
