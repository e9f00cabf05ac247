/// One parameter of a MIME header (`Content-Type`, `Content-Disposition`), RFC 2231
/// continuations already merged.
public struct MIMEParameter: Sendable, Equatable {
    /// The name as written, without any RFC 2231 `*` or section number.
    public var name: String
    /// The value decoded to text: RFC 2231 charset applied, or (for plain values) UTF-8 when
    /// valid else Latin-1, with RFC 2047 words decoded (a common, if non-standard, practice).
    public var value: String
    /// The RFC 2231 charset, when the value was extended (`name*=charset'lang'...`).
    public var charset: String?
    /// The RFC 2231 language, when given.
    public var language: String?
    /// Whether any section used RFC 2231's extended (percent-encoded) form.
    public var isExtended: Bool
    /// The merged value still encoded, as IMAP BODYSTRUCTURE carries it (Dovecot's form: the
    /// sections concatenated; for an extended value `charset'lang'%XX...`).
    public var rawValue: [UInt8]

    /// A parameter from its parts.
    public init(name: String, value: String, charset: String? = nil, language: String? = nil,
                isExtended: Bool = false, rawValue: [UInt8]? = nil) {
        self.name = name
        self.value = value
        self.charset = charset
        self.language = language
        self.isExtended = isExtended
        self.rawValue = rawValue ?? Array(value.utf8)
    }

    /// The name as IMAP BODYSTRUCTURE shows it: `name*` for an extended value.
    public var wireName: String { isExtended ? name + "*" : name }
}

/// Finds parameters by name (ASCII case ignored); an RFC 2231 value wins over a plain one.
extension Array where Element == MIMEParameter {
    /// The decoded value of parameter `name`, or nil.
    public func value(of name: String) -> String? { parameter(name)?.value }

    /// The parameter `name`, preferring an RFC 2231 one when both forms are present.
    public func parameter(_ name: String) -> MIMEParameter? {
        let matches = filter { $0.name.caseInsensitiveEquals(name) }
        return matches.first(where: \.isExtended) ?? matches.first
    }
}

/// A parsed `Content-Type` (RFC 2045 §5).
public struct MIMEContentType: Sendable, Equatable {
    /// The top-level type as written (case kept, as IMAP servers return it).
    public var type: String
    /// The subtype as written.
    public var subtype: String
    /// The parameters in Dovecot's order: plain ones as written, then RFC 2231 ones by name.
    public var parameters: [MIMEParameter]

    /// A content type from its parts.
    public init(type: String, subtype: String, parameters: [MIMEParameter] = []) {
        self.type = type
        self.subtype = subtype
        self.parameters = parameters
    }

    /// `type/subtype` in lower case, for comparisons.
    public var mimeType: String { (type + "/" + subtype).lowercased() }
    /// Whether the type is `multipart/*`.
    public var isMultipart: Bool { type.caseInsensitiveEquals("multipart") }
    /// Whether the type is `text/*`.
    public var isText: Bool { type.caseInsensitiveEquals("text") }
    /// Whether the type is `message/rfc822` (or RFC 6532's `message/global`).
    public var isMessage: Bool {
        type.caseInsensitiveEquals("message") && (subtype.caseInsensitiveEquals("rfc822") || subtype.caseInsensitiveEquals("global"))
    }
    /// The multipart boundary, byte for byte, or nil.
    public var boundary: [UInt8]? {
        guard let p = parameters.first(where: { $0.name.caseInsensitiveEquals("boundary") && !$0.isExtended }) else {
            return parameters.parameter("boundary").map { Array($0.value.utf8) }
        }
        return p.rawValue.isEmpty ? nil : p.rawValue
    }
    /// The `charset` parameter, or nil.
    public var charset: String? { parameters.value(of: "charset") }

    /// `text/plain; charset=us-ascii`, what a part without Content-Type is (RFC 2045 §5.2).
    public static let defaultText = MIMEContentType(type: "text", subtype: "plain")
    /// `message/rfc822`, the default inside `multipart/digest` (RFC 2046 §5.1.5).
    public static let defaultDigest = MIMEContentType(type: "message", subtype: "rfc822")

    /// Parses a Content-Type value; nil when it has no `type/subtype`.
    public static func parse<Bytes: Collection>(_ value: Bytes) -> MIMEContentType? where Bytes.Element == UInt8 {
        var s = MIMEScanner(Array(value))
        s.skipCFWS()
        guard let type = s.token(), !type.isEmpty else { return nil }
        s.skipCFWS()
        guard s.take(47) else { return nil }
        s.skipCFWS()
        guard let sub = s.token(), !sub.isEmpty else { return nil }
        return MIMEContentType(type: MailCharset.latin1(type), subtype: MailCharset.latin1(sub),
                               parameters: s.parameters())
    }
}

/// A parsed `Content-Disposition` (RFC 2183).
public struct MIMEContentDisposition: Sendable, Equatable {
    /// `inline`, `attachment`, ... as written.
    public var value: String
    /// The parameters (`filename`, `size`, ...), RFC 2231 merged.
    public var parameters: [MIMEParameter]

    /// A disposition from its parts.
    public init(value: String, parameters: [MIMEParameter] = []) {
        self.value = value
        self.parameters = parameters
    }

    /// The decoded `filename` parameter, or nil.
    public var filename: String? { parameters.value(of: "filename") }

    /// Parses a Content-Disposition value; nil when it has no disposition token.
    public static func parse<Bytes: Collection>(_ value: Bytes) -> MIMEContentDisposition? where Bytes.Element == UInt8 {
        var s = MIMEScanner(Array(value))
        s.skipCFWS()
        guard let token = s.token(), !token.isEmpty else { return nil }
        return MIMEContentDisposition(value: MailCharset.latin1(token), parameters: s.parameters())
    }
}

/// Small parsers for the other MIME fields.
public enum MIMEFields {
    /// The Content-Transfer-Encoding token, or nil when the value is not a single token.
    public static func transferEncoding<Bytes: Collection>(_ value: Bytes) -> String? where Bytes.Element == UInt8 {
        var s = MIMEScanner(Array(value))
        s.skipCFWS()
        guard let t = s.token(), !t.isEmpty else { return nil }
        s.skipCFWS()
        return s.atEnd ? MailCharset.latin1(t) : nil
    }

    /// The language tags of Content-Language (RFC 3282), in order.
    public static func languages<Bytes: Collection>(_ value: Bytes) -> [String] where Bytes.Element == UInt8 {
        var s = MIMEScanner(Array(value))
        var out: [String] = []
        while true {
            s.skipCFWS()
            guard let t = s.token(), !t.isEmpty else { break }
            out.append(MailCharset.latin1(t))
            s.skipCFWS()
            if !s.take(44) { break }
        }
        return out
    }
}

/// A cursor over a structured MIME header value: tokens, quoted strings, comments, parameters.
struct MIMEScanner {
    let b: [UInt8]
    var i = 0

    init(_ bytes: [UInt8]) { b = bytes }

    var atEnd: Bool { i >= b.count }

    mutating func take(_ c: UInt8) -> Bool {
        if i < b.count, b[i] == c { i += 1; return true }
        return false
    }

    mutating func skipCFWS() {
        while i < b.count {
            let c = b[i]
            if c == 32 || c == 9 || c == 13 || c == 10 { i += 1; continue }
            if c == 40 {
                var depth = 0
                while i < b.count {
                    let d = b[i]
                    if d == 92 { i += 2; continue }
                    if d == 40 { depth += 1 } else if d == 41 { depth -= 1; if depth == 0 { i += 1; break } }
                    i += 1
                }
                continue
            }
            return
        }
    }

    static func isTokenChar(_ c: UInt8) -> Bool {
        if c <= 32 || c == 127 { return false }
        switch c {
        case 40, 41, 60, 62, 64, 44, 59, 58, 92, 34, 47, 91, 93, 63, 61: return false
        default: return true   // 8-bit bytes accepted: mail in the wild has them
        }
    }

    mutating func token() -> [UInt8]? {
        let start = i
        while i < b.count, MIMEScanner.isTokenChar(b[i]) { i += 1 }
        return i > start ? Array(b[start..<i]) : nil
    }

    mutating func quoted() -> [UInt8]? {
        guard take(34) else { return nil }
        var out: [UInt8] = []
        while i < b.count {
            let c = b[i]
            if c == 92, i + 1 < b.count { out.append(b[i + 1]); i += 2; continue }
            if c == 34 { i += 1; return out }
            if c != 13 && c != 10 { out.append(c) }
            i += 1
        }
        return out   // unterminated: what there is
    }

    /// A parameter value: a quoted string, or anything up to `;` or whitespace (lenient: many
    /// mailers leave `/`, `?`, `=` unquoted).
    mutating func value() -> [UInt8] {
        if i < b.count, b[i] == 34 { return quoted() ?? [] }
        let start = i
        while i < b.count, b[i] != 59, b[i] != 32, b[i] != 9, b[i] != 13, b[i] != 10, b[i] != 40 { i += 1 }
        return Array(b[start..<i])
    }

    private struct Section { var key: String; var index: Int; var extended: Bool; var value: [UInt8]; var order: Int }

    /// `*(";" name "=" value)`, RFC 2231 merged (Dovecot's algorithm: sections sorted by index;
    /// a gap in the numbering leaves the sections as separate `name*N` parameters).
    mutating func parameters() -> [MIMEParameter] {
        var plain: [MIMEParameter] = []
        var sections: [Section] = []
        var order = 0
        while true {
            skipCFWS()
            if atEnd { break }
            if !take(59) {
                // Garbage between parameters: skip to the next ";".
                while i < b.count, b[i] != 59 { i += 1 }
                continue
            }
            skipCFWS()
            guard let nameBytes = token() else { continue }
            skipCFWS()
            guard take(61) else { continue }
            skipCFWS()
            let v = value()
            let name = MailCharset.latin1(nameBytes)
            order += 1
            if let star = name.firstIndex(of: "*") {
                let base = String(name[..<star])
                var rest = name[name.index(after: star)...]
                var index = 0
                var extended = false
                var ok = true
                if rest.isEmpty {
                    extended = true
                } else {
                    let digits = rest.prefix(while: { $0.isASCII && $0.isNumber })
                    if !digits.isEmpty, let n = Int(digits), n < 10_000 { index = n } else { ok = false }
                    rest = rest.dropFirst(digits.count)
                    if rest == "*" { extended = true } else if !rest.isEmpty { ok = false }
                }
                if ok && !base.isEmpty {
                    sections.append(Section(key: base, index: index, extended: extended, value: v, order: order))
                    continue
                }
            }
            plain.append(MIMEParameter(name: name, value: EncodedWords.decode(v), rawValue: v))
        }
        guard !sections.isEmpty else { return plain }
        sections.sort { a, b in
            let ka = a.key.lowercased(), kb = b.key.lowercased()
            return ka != kb ? ka < kb : (a.index != b.index ? a.index < b.index : a.order < b.order)
        }
        var merged: [MIMEParameter] = []
        var start = 0
        while start < sections.count {
            var end = start
            while end < sections.count, sections[end].key.caseInsensitiveEquals(sections[start].key) { end += 1 }
            let group = sections[start..<end]
            let contiguous = group.enumerated().allSatisfy { $0.offset == $0.element.index }
            if !contiguous {
                for s in group {
                    let n = s.key + "*\(s.index)" + (s.extended ? "*" : "")
                    merged.append(MIMEParameter(name: n, value: MailCharset.fallback(s.value), rawValue: s.value))
                }
            } else {
                merged.append(MIMEScanner.merge(Array(group)))
            }
            start = end
        }
        return plain + merged
    }

    private static func merge(_ group: [Section]) -> MIMEParameter {
        let anyExtended = group.contains(where: \.extended)
        let name = group[0].key
        guard anyExtended else {
            let v = group.flatMap(\.value)
            return MIMEParameter(name: name, value: EncodedWords.decode(v), rawValue: v)
        }
        var raw: [UInt8] = []
        var decoded: [UInt8] = []
        var charset: String?
        var language: String?
        if !group[0].extended { raw += Array("''".utf8) }
        for (n, s) in group.enumerated() {
            if s.extended {
                var v = s.value[...]
                if n == 0 {
                    // charset'language'value
                    if let q1 = v.firstIndex(of: 39), let q2 = v[(q1 + 1)...].firstIndex(of: 39) {
                        let cs = MailCharset.latin1(Array(v[v.startIndex..<q1]))
                        let lang = MailCharset.latin1(Array(v[(q1 + 1)..<q2]))
                        charset = cs.isEmpty ? nil : cs
                        language = lang.isEmpty ? nil : lang
                        v = v[(q2 + 1)...]
                    }
                }
                raw += s.value
                decoded += percentDecode(v)
            } else {
                for c in s.value { if c == 37 { raw += Array("%25".utf8) } else { raw.append(c) } }
                decoded += s.value
            }
        }
        let text = charset.map { MailCharset.decode(decoded, charset: $0) } ?? MailCharset.fallback(decoded)
        return MIMEParameter(name: name, value: text, charset: charset, language: language, isExtended: true, rawValue: raw)
    }

    private static func percentDecode(_ v: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        var i = v.startIndex
        func hex(_ c: UInt8) -> UInt8? {
            switch c { case 48...57: return c - 48; case 65...70: return c - 55; case 97...102: return c - 87; default: return nil }
        }
        while i < v.endIndex {
            if v[i] == 37, i + 2 < v.endIndex, let h = hex(v[i + 1]), let l = hex(v[i + 2]) {
                out.append(h << 4 | l)
                i += 3
            } else {
                out.append(v[i])
                i += 1
            }
        }
        return out
    }
}
