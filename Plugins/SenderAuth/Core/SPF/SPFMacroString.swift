// Macro strings (RFC 7208 §7): parsed once with the record, expanded during evaluation against
// what the check knows (sender, domain, client address, ...).

/// A syntax error in an SPF record or macro string; the evaluator turns it into permerror.
package struct SPFSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    package var message: String
    package init(_ message: String) { self.message = message }
    package var description: String { message }
}

/// The macro letters of RFC 7208 §7.2.
package enum SPFMacroLetter: UInt8, Sendable, CaseIterable {
    case sender = 0x73          // s
    case localPart = 0x6C       // l
    case senderDomain = 0x6F    // o
    case domain = 0x64          // d
    case ip = 0x69              // i
    case validatedName = 0x70   // p
    case helo = 0x68            // h
    case clientIP = 0x63        // c: exp only
    case receiver = 0x72        // r: exp only
    case timestamp = 0x74       // t: exp only
    case ipVersion = 0x76       // v

    /// Letters only `exp=` explanation text may use (§7.1).
    package var explanationOnly: Bool { self == .clientIP || self == .receiver || self == .timestamp }
}

/// `%{...}`: a letter with its transformers and delimiters.
package struct SPFMacro: Sendable, Equatable {
    package var letter: SPFMacroLetter
    /// An uppercase letter: the expansion is URL-escaped (§7.3).
    package var urlEscaped: Bool
    /// The digit transformer: keep this many right-hand parts (nonzero); nil for all.
    package var rightParts: Int?
    package var reversed: Bool
    /// The delimiters to split on; `.` when none were given.
    package var delimiters: [UInt8]
}

/// A parsed macro-string (or explain-string, which also allows spaces).
package struct SPFMacroString: Sendable, Equatable {
    package enum Part: Sendable, Equatable {
        case literal(String)
        case macro(SPFMacro)
    }

    package enum Kind: Sendable {
        /// `domain-spec` of a mechanism, `redirect=` or `exp=`: must end in a top label or a
        /// macro, and c, r, t are refused.
        case domainSpec
        /// An unknown modifier's value: any macro-string, c, r, t refused.
        case modifierValue
        /// The TXT record `exp=` points at: spaces allowed, c, r, t allowed.
        case explanation
    }

    package var parts: [Part]
    /// The text as written.
    package var text: String

    /// Parses `text` as `kind`; `term` names the record term in error messages.
    package init(parsing text: Substring, kind: Kind, term: String) throws(SPFSyntaxError) {
        self.text = String(text)
        var parts: [Part] = []
        var literal: [UInt8] = []
        // Whether the last thing parsed was a macro-expand (for domain-end).
        var endsWithMacro = false
        let bytes = Array(text.utf8)
        var index = 0
        func flush() {
            if !literal.isEmpty { parts.append(.literal(String(decoding: literal, as: UTF8.self))); literal = [] }
        }
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%") {
                guard index + 1 < bytes.count else { throw SPFSyntaxError("'%' at the end of \(term)") }
                let next = bytes[index + 1]
                switch next {
                case UInt8(ascii: "%"): literal.append(UInt8(ascii: "%")); index += 2
                case UInt8(ascii: "_"): literal.append(0x20); index += 2
                case UInt8(ascii: "-"): literal += Array("%20".utf8); index += 2
                case UInt8(ascii: "{"):
                    let (macro, end) = try Self.parseMacro(bytes, from: index + 2, kind: kind, term: term)
                    flush()
                    parts.append(.macro(macro))
                    index = end
                default:
                    throw SPFSyntaxError("'%\(Self.printable(next))' is not a macro in \(term) (use %% for a percent sign)")
                }
                endsWithMacro = true
                continue
            }
            let allowed = (byte >= 0x21 && byte <= 0x7E) || (byte == 0x20 && kind == .explanation)
            guard allowed else { throw SPFSyntaxError("character \(Self.printable(byte)) not allowed in \(term)") }
            literal.append(byte)
            endsWithMacro = false
            index += 1
        }
        flush()
        self.parts = parts
        if kind == .domainSpec && !endsWithMacro {
            guard case .literal(let tail)? = parts.last, Self.endsWithTopLabel(tail) else {
                throw SPFSyntaxError("\(term): the domain must end in a top label or a macro")
            }
        }
    }

    /// `%{` already read: letter, `*DIGIT [ "r" ]`, `*delimiter`, `}`. Returns the index after `}`.
    private static func parseMacro(_ bytes: [UInt8], from start: Int, kind: Kind, term: String) throws(SPFSyntaxError) -> (SPFMacro, Int) {
        var index = start
        guard index < bytes.count else { throw SPFSyntaxError("unterminated macro in \(term)") }
        let raw = bytes[index]
        let lower = raw | 0x20
        guard raw.isASCIILetter, let letter = SPFMacroLetter(rawValue: lower) else {
            throw SPFSyntaxError("unknown macro letter '\(printable(raw))' in \(term)")
        }
        if letter.explanationOnly && kind != .explanation {
            throw SPFSyntaxError("macro letter '\(printable(raw))' is allowed only in explanations, found in \(term)")
        }
        index += 1
        var digits: Int?
        while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 {
            // More parts than any name has are as good as all: cap instead of overflowing.
            digits = min((digits ?? 0) * 10 + Int(bytes[index] - 0x30), 1_000)
            index += 1
        }
        if digits == 0 { throw SPFSyntaxError("macro transformer 0 in \(term) (must be nonzero)") }
        var reversed = false
        if index < bytes.count, bytes[index] | 0x20 == UInt8(ascii: "r") { reversed = true; index += 1 }
        var delimiters: [UInt8] = []
        while index < bytes.count, Array(".-+,/_=".utf8).contains(bytes[index]) {
            delimiters.append(bytes[index])
            index += 1
        }
        guard index < bytes.count else { throw SPFSyntaxError("unterminated macro in \(term)") }
        guard bytes[index] == UInt8(ascii: "}") else {
            throw SPFSyntaxError("unexpected '\(printable(bytes[index]))' in a macro in \(term)")
        }
        let macro = SPFMacro(letter: letter, urlEscaped: raw != lower, rightParts: digits, reversed: reversed,
                             delimiters: delimiters.isEmpty ? [UInt8(ascii: ".")] : delimiters)
        return (macro, index + 1)
    }

    /// `"." toplabel [ "." ]` at the end of a literal (RFC 7208 §12 `domain-end`); a top label is
    /// letters and digits with at least one letter, or with inner hyphens.
    static func endsWithTopLabel(_ text: String) -> Bool {
        var bytes = Array(text.utf8)[...]
        if bytes.last == UInt8(ascii: ".") { bytes = bytes.dropLast() }
        guard let dot = bytes.lastIndex(of: UInt8(ascii: ".")) else { return false }
        let label = bytes[(dot + 1)...]
        guard let first = label.first, let last = label.last else { return false }
        let alphanumeric = { (byte: UInt8) in byte.isASCIILetter || (byte >= 0x30 && byte <= 0x39) }
        guard label.allSatisfy({ alphanumeric($0) || $0 == UInt8(ascii: "-") }) else { return false }
        if label.contains(UInt8(ascii: "-")) { return alphanumeric(first) && alphanumeric(last) }
        return label.contains(where: \.isASCIILetter)
    }

    static func printable(_ byte: UInt8) -> String {
        byte >= 0x21 && byte <= 0x7E ? String(UnicodeScalar(byte)) : "0x" + String(byte, radix: 16)
    }
}

extension UInt8 {
    var isASCIILetter: Bool { (self >= 0x41 && self <= 0x5A) || (self >= 0x61 && self <= 0x7A) }
}

// MARK: Expansion

/// What the macros of one check expand to (RFC 7208 §7.2). `validatedName` is asked lazily:
/// it costs DNS lookups and few records use `%{p}`.
package struct SPFMacroValues: Sendable {
    package var sender: String
    package var localPart: String
    package var senderDomain: String
    package var domain: String
    package var client: SPFAddress
    package var helo: String
    package var receiver: String
    package var timestamp: Int

    package init(sender: String, localPart: String, senderDomain: String, domain: String, client: SPFAddress,
                 helo: String, receiver: String, timestamp: Int) {
        self.sender = sender
        self.localPart = localPart
        self.senderDomain = senderDomain
        self.domain = domain
        self.client = client
        self.helo = helo
        self.receiver = receiver
        self.timestamp = timestamp
    }
}

extension SPFMacroString {
    /// Whether expanding needs the `p` macro's validated name.
    package var usesValidatedName: Bool {
        parts.contains { if case .macro(let macro) = $0 { return macro.letter == .validatedName }; return false }
    }

    /// The expanded text; `validatedName` is what `%{p}` gives (`unknown` when none).
    package func expand(_ values: SPFMacroValues, validatedName: String = "unknown") -> String {
        var out = ""
        for part in parts {
            switch part {
            case .literal(let text): out += text
            case .macro(let macro): out += Self.expand(macro, values, validatedName: validatedName)
            }
        }
        return out
    }

    static func expand(_ macro: SPFMacro, _ values: SPFMacroValues, validatedName: String) -> String {
        let value: String
        switch macro.letter {
        case .sender: value = values.sender
        case .localPart: value = values.localPart
        case .senderDomain: value = values.senderDomain
        case .domain: value = values.domain
        case .ip: value = values.client.dottedForm
        case .validatedName: value = validatedName
        case .helo: value = values.helo
        case .clientIP: value = values.client.description
        case .receiver: value = values.receiver
        case .timestamp: value = String(values.timestamp)
        case .ipVersion: value = values.client.isIPv6 ? "ip6" : "in-addr"
        }
        // Split on the delimiters, reverse, keep the right-hand parts, join with "." (§7.3).
        var parts = Array(value.utf8).split(omittingEmptySubsequences: false) { macro.delimiters.contains($0) }
        if macro.reversed { parts.reverse() }
        if let keep = macro.rightParts, keep < parts.count { parts = Array(parts.suffix(keep)) }
        let joined = parts.map { String(decoding: $0, as: UTF8.self) }.joined(separator: ".")
        return macro.urlEscaped ? urlEscaped(joined) : joined
    }

    /// Every octet outside RFC 3986 `unreserved` as `%XX`.
    static func urlEscaped(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            if byte.isASCIILetter || (byte >= 0x30 && byte <= 0x39) || "-._~".utf8.contains(byte) {
                out.unicodeScalars.append(UnicodeScalar(byte))
            } else {
                let hex = String(byte, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" : "") + hex
            }
        }
        return out
    }
}
