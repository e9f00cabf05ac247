/// Character references (`&amp;`, `&#106;`, `&#x6A;`) as the HTML5 tokenizer decodes them in text
/// and attribute values. The sanitizer must see what a browser sees: `jav&#x61;script:` and
/// `java&Tab;script&colon;` are both `javascript:` to it, so URL checks run on decoded values.
enum HTMLCharacterReference {
    /// Decodes the reference whose `&` sits just before `start`. Returns the UTF-8 of the decoded
    /// text and how many bytes after the `&` it used, or nil when the bytes are no reference (the
    /// `&` is then literal text).
    ///
    /// The input is whole in memory, so this looks ahead instead of running the spec's dozen
    /// sub-states: a name is at most `longestName` bytes and digits are consumed as read, so the
    /// work stays linear in the bytes used.
    static func decode(_ input: [UInt8], at start: Int, inAttribute: Bool) -> (utf8: [UInt8], length: Int)? {
        guard start < input.count else { return nil }
        if input[start] == UInt8(ascii: "#") { return decodeNumeric(input, at: start + 1) }
        return decodeNamed(input, at: start, inAttribute: inAttribute)
    }

    private static func decodeNumeric(_ input: [UInt8], at start: Int) -> (utf8: [UInt8], length: Int)? {
        var index = start
        var radix: UInt32 = 10
        if index < input.count, input[index] | 0x20 == UInt8(ascii: "x") {
            radix = 16
            index += 1
        }
        let firstDigit = index
        // Saturates instead of overflowing: anything past U+10FFFF is replaced anyway.
        var value: UInt32 = 0
        while index < input.count, let digit = digitValue(input[index], radix: radix) {
            value = min(value &* radix &+ digit, 0x11_0000)
            index += 1
        }
        guard index > firstDigit else { return nil }
        if index < input.count, input[index] == UInt8(ascii: ";") { index += 1 }
        let scalar = numericReplacement(value)
        return (Array(String(Character(scalar)).utf8), index - (start - 1))
    }

    private static func digitValue(_ byte: UInt8, radix: UInt32) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f") where radix == 16: return UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F") where radix == 16: return UInt32(byte - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }

    /// The HTML5 rules for numeric references: NUL, surrogates and values past Unicode become
    /// U+FFFD; 0x80–0x9F are read as windows-1252, as browsers do for legacy mail.
    static func numericReplacement(_ value: UInt32) -> Unicode.Scalar {
        if value == 0 || value > 0x10_FFFF || (0xD800...0xDFFF).contains(value) { return "\u{FFFD}" }
        if (0x80...0x9F).contains(value), let mapped = windows1252[value] { return mapped }
        return Unicode.Scalar(value) ?? "\u{FFFD}"
    }

    private static let windows1252: [UInt32: Unicode.Scalar] = [
        0x80: "\u{20AC}", 0x82: "\u{201A}", 0x83: "\u{0192}", 0x84: "\u{201E}", 0x85: "\u{2026}", 0x86: "\u{2020}",
        0x87: "\u{2021}", 0x88: "\u{02C6}", 0x89: "\u{2030}", 0x8A: "\u{0160}", 0x8B: "\u{2039}", 0x8C: "\u{0152}",
        0x8E: "\u{017D}", 0x91: "\u{2018}", 0x92: "\u{2019}", 0x93: "\u{201C}", 0x94: "\u{201D}", 0x95: "\u{2022}",
        0x96: "\u{2013}", 0x97: "\u{2014}", 0x98: "\u{02DC}", 0x99: "\u{2122}", 0x9A: "\u{0161}", 0x9B: "\u{203A}",
        0x9C: "\u{0153}", 0x9E: "\u{017E}", 0x9F: "\u{0178}",
    ]

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20)
    }

    private static func decodeNamed(_ input: [UInt8], at start: Int, inAttribute: Bool) -> (utf8: [UInt8], length: Int)? {
        var end = start
        while end < input.count, end - start < longestName, isAlphanumeric(input[end]) { end += 1 }
        guard end > start else { return nil }
        if end < input.count, input[end] == UInt8(ascii: ";"),
           let scalar = terminatedNames[String(decoding: input[start..<end], as: UTF8.self)] {
            return (Array(String(Character(scalar)).utf8), end + 1 - start)
        }
        // Without `;` only the legacy (HTML 4) names decode, longest match first: `&notit` is `¬it`.
        var prefixEnd = end
        while prefixEnd > start {
            if let scalar = legacyNames[String(decoding: input[start..<prefixEnd], as: UTF8.self)] {
                // In attributes `?a=1&copy=2` stays literal: query strings must survive.
                if inAttribute, prefixEnd < input.count,
                   isAlphanumeric(input[prefixEnd]) || input[prefixEnd] == UInt8(ascii: "=") { return nil }
                return (Array(String(Character(scalar)).utf8), prefixEnd - start)
            }
            prefixEnd -= 1
        }
        return nil
    }

    private static let longestName = 32

    /// The names that decode without a trailing `;`: HTML 4's Latin-1 set, U+00A0 to U+00FF in
    /// code point order, plus the four markup characters.
    private static let legacyNames: [String: Unicode.Scalar] = {
        let latin1 = """
            nbsp iexcl cent pound curren yen brvbar sect uml copy ordf laquo not shy reg macr deg plusmn sup2 sup3 \
            acute micro para middot cedil sup1 ordm raquo frac14 frac12 frac34 iquest Agrave Aacute Acirc Atilde \
            Auml Aring AElig Ccedil Egrave Eacute Ecirc Euml Igrave Iacute Icirc Iuml ETH Ntilde Ograve Oacute Ocirc \
            Otilde Ouml times Oslash Ugrave Uacute Ucirc Uuml Yacute THORN szlig agrave aacute acirc atilde auml aring \
            aelig ccedil egrave eacute ecirc euml igrave iacute icirc iuml eth ntilde ograve oacute ocirc otilde ouml \
            divide oslash ugrave uacute ucirc uuml yacute thorn yuml
            """.split(separator: " ")
        var names: [String: Unicode.Scalar] = [
            "amp": "&", "lt": "<", "gt": ">", "quot": "\"", "AMP": "&", "LT": "<", "GT": ">", "QUOT": "\"",
            "COPY": "\u{A9}", "REG": "\u{AE}",
        ]
        for (offset, name) in latin1.enumerated() { names[String(name)] = Unicode.Scalar(UInt8(0xA0 + offset)) }
        return names
    }()

    /// Every name known here, each valid with a trailing `;`. Includes the punctuation names
    /// (`&colon;`, `&Tab;`, `&NewLine;`) that obfuscated URLs use.
    private static let terminatedNames: [String: Unicode.Scalar] = legacyNames.merging([
        "apos": "'", "Tab": "\t", "NewLine": "\n", "excl": "!", "num": "#", "dollar": "$", "percnt": "%",
        "lpar": "(", "rpar": ")", "ast": "*", "midast": "*", "plus": "+", "comma": ",", "period": ".", "sol": "/",
        "colon": ":", "semi": ";", "equals": "=", "quest": "?", "commat": "@", "lsqb": "[", "lbrack": "[",
        "bsol": "\\", "rsqb": "]", "rbrack": "]", "Hat": "^", "lowbar": "_", "grave": "`", "lcub": "{",
        "lbrace": "{", "verbar": "|", "vert": "|", "rcub": "}", "rbrace": "}", "hyphen": "\u{2010}",
        "ensp": "\u{2002}", "emsp": "\u{2003}", "thinsp": "\u{2009}", "zwnj": "\u{200C}", "zwj": "\u{200D}",
        "lrm": "\u{200E}", "rlm": "\u{200F}", "ndash": "\u{2013}", "mdash": "\u{2014}", "lsquo": "\u{2018}",
        "rsquo": "\u{2019}", "sbquo": "\u{201A}", "ldquo": "\u{201C}", "rdquo": "\u{201D}", "bdquo": "\u{201E}",
        "dagger": "\u{2020}", "Dagger": "\u{2021}", "bull": "\u{2022}", "hellip": "\u{2026}", "permil": "\u{2030}",
        "prime": "\u{2032}", "Prime": "\u{2033}", "lsaquo": "\u{2039}", "rsaquo": "\u{203A}", "oline": "\u{203E}",
        "frasl": "\u{2044}", "euro": "\u{20AC}", "trade": "\u{2122}", "TRADE": "\u{2122}", "larr": "\u{2190}",
        "uarr": "\u{2191}", "rarr": "\u{2192}", "darr": "\u{2193}", "harr": "\u{2194}", "minus": "\u{2212}",
        "infin": "\u{221E}", "ne": "\u{2260}", "le": "\u{2264}", "ge": "\u{2265}", "spades": "\u{2660}",
        "clubs": "\u{2663}", "hearts": "\u{2665}", "diams": "\u{2666}", "OElig": "\u{152}", "oelig": "\u{153}",
        "Scaron": "\u{160}", "scaron": "\u{161}", "Yuml": "\u{178}", "fnof": "\u{192}", "circ": "\u{2C6}",
        "tilde": "\u{2DC}", "alpha": "\u{3B1}", "beta": "\u{3B2}", "gamma": "\u{3B3}", "delta": "\u{3B4}",
        "pi": "\u{3C0}", "mu": "\u{3BC}", "sigma": "\u{3C3}", "omega": "\u{3C9}", "Omega": "\u{3A9}",
        "check": "\u{2713}", "star": "\u{2606}", "starf": "\u{2605}", "nbsp": "\u{A0}",
    ]) { legacy, _ in legacy }
}
