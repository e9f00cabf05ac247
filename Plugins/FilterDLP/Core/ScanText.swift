/// One text a DLP scan looks at (a part's decoded text, a subject), as Unicode scalars, with
/// the forms the phrase detectors compare against prepared once.
package struct ScanText: Sendable {
    package let string: String
    package let scalars: [Unicode.Scalar]
    /// Whitespace runs as one space, case kept (markings).
    let collapsed: [Unicode.Scalar]
    /// Whitespace runs as one space, lower case (dictionaries).
    let lowered: [Unicode.Scalar]

    package init(_ string: String) {
        self.string = string
        scalars = Array(string.unicodeScalars)
        collapsed = Self.collapsingWhitespace(scalars)
        lowered = Self.lowercased(collapsed)
    }

    /// A letter or a digit: what a token is made of; anything else separates tokens.
    static func isAlphanumeric(_ c: Unicode.Scalar) -> Bool {
        if c.isASCII {
            let v = c.value
            return (48...57).contains(v) || (65...90).contains(v) || (97...122).contains(v)
        }
        return c.properties.isAlphabetic || c.properties.numericType != nil
    }

    /// Whether a token may start at `i` (no letter or digit just before it).
    func startsToken(_ i: Int, in text: [Unicode.Scalar]) -> Bool { i == 0 || !Self.isAlphanumeric(text[i - 1]) }

    /// Whether a token may end before `i` (no letter or digit at `i`).
    func endsToken(_ i: Int, in text: [Unicode.Scalar]) -> Bool { i >= text.count || !Self.isAlphanumeric(text[i]) }

    static func collapsingWhitespace(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(scalars.count)
        var inSpace = false
        for c in scalars {
            if c.isWhitespaceFast {
                if !inSpace { out.append(" ") }
                inSpace = true
            } else {
                out.append(c)
                inSpace = false
            }
        }
        return out
    }

    static func lowercased(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(scalars.count)
        for c in scalars {
            if c.isASCII {
                out.append((65...90).contains(c.value) ? Unicode.Scalar(c.value + 32)! : c)
            } else {
                // One scalar per scalar keeps the text's shape; a multi-scalar mapping keeps its first.
                out.append(c.properties.lowercaseMapping.unicodeScalars.first ?? c)
            }
        }
        return out
    }
}

/// A fixed-shape identifier: a slot per character, separators where the identifier may be
/// written with them. Matched at a token start; the compact form (separators dropped, letters
/// upper case) goes to the validation.
struct IdentifierShape: Sendable {
    enum Slot: Sendable {
        /// One character of this set (upper case; lower case input is accepted).
        case char(Set<Unicode.Scalar>)
        /// One of these separators, or none.
        case optionalSeparator(Set<Unicode.Scalar>)
        /// Exactly one of these separators.
        case separator(Set<Unicode.Scalar>)
    }

    static let digits = Set("0123456789".unicodeScalars)
    static let letters = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZ".unicodeScalars)

    let slots: [Slot]

    /// The end of the match at `i` and its compact form, or nil.
    func match(_ text: [Unicode.Scalar], at start: Int) -> (end: Int, compact: String)? {
        var i = start
        var compact = String.UnicodeScalarView()
        for slot in slots {
            switch slot {
            case .char(let set):
                guard i < text.count else { return nil }
                let upper = (97...122).contains(text[i].value) ? Unicode.Scalar(text[i].value - 32)! : text[i]
                guard set.contains(upper) else { return nil }
                compact.append(upper)
                i += 1
            case .optionalSeparator(let set):
                if i < text.count && set.contains(text[i]) { i += 1 }
            case .separator(let set):
                guard i < text.count, set.contains(text[i]) else { return nil }
                i += 1
            }
        }
        return (i, String(compact))
    }
}
