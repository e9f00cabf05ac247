import Foundation

/// Something a DLP policy counts in a text: a built-in identifier detector, a dictionary, a
/// regular expression, the document markings.
package protocol Detector: Sendable {
    var name: String { get }
    /// How many times it occurs in `text` (non-overlapping).
    func count(in text: ScanText) -> Int
}

/// The built-in detectors by name: what each finds is validated (check digits, issuing rules),
/// not only shaped right.
package enum BuiltInDetectors {
    package static let all: [any Detector] = [
        CardNumberDetector(), IBANDetector(),
        ShapeDetector(name: "us_ssn", shape: IdentifierShape(slots: digits(3) + [.separator(["-", " "])] + digits(2)
                                                                 + [.separator(["-", " "])] + digits(4))) { id in
            let d = Array(id)
            return Checksums.usSSN(area: Int(String(d[0..<3]))!, group: Int(String(d[3..<5]))!, serial: Int(String(d[5...]))!)
        },
        ShapeDetector(name: "uk_nino", shape: IdentifierShape(slots: [letter, letter, space] + digits(2) + [space] + digits(2) + [space]
                                                                  + digits(2) + [space, .char(Set("ABCD".unicodeScalars))]),
                      validate: Checksums.ukNINO),
        ShapeDetector(name: "es_dni", shape: IdentifierShape(slots: [.char(IdentifierShape.digits.union("XYZ".unicodeScalars))] + digits(7)
                                                                 + [.optionalSeparator(["-", " "]), letter]),
                      validate: Checksums.spanishDNI),
        ShapeDetector(name: "nl_bsn", shape: IdentifierShape(slots: digits(9))) { Checksums.dutchBSN(Array($0.utf8).map { $0 - 48 }) },
        ShapeDetector(name: "it_codice_fiscale", shape: codiceFiscale, validate: Checksums.italianCodiceFiscale),
    ]

    package static var names: [String] { all.map(\.name) }

    static let letter = IdentifierShape.Slot.char(IdentifierShape.letters)
    static let space = IdentifierShape.Slot.optionalSeparator([" "])
    static func digits(_ n: Int) -> [IdentifierShape.Slot] { Array(repeating: .char(IdentifierShape.digits), count: n) }

    /// Surname (3), name (3), year (2), month letter, day (2), municipality (letter, 3), check
    /// letter; digits may be replaced by L-V letters (omocodia, for clashing codes).
    static let codiceFiscale: IdentifierShape = {
        let number = IdentifierShape.Slot.char(IdentifierShape.digits.union("LMNPQRSTUV".unicodeScalars))
        let month = IdentifierShape.Slot.char(Set("ABCDEHLMPRST".unicodeScalars))
        return IdentifierShape(slots: Array(repeating: letter, count: 6) + [number, number, month, number, number, letter,
                                                                            number, number, number, letter])
    }()
}

/// An identifier of a fixed shape, counted when it stands alone (no letter or digit touching it)
/// and its validation passes.
struct ShapeDetector: Detector {
    let name: String
    let shape: IdentifierShape
    let validate: @Sendable (String) -> Bool

    func count(in text: ScanText) -> Int {
        let s = text.scalars
        var n = 0, i = 0
        while i < s.count {
            if text.startsToken(i, in: s), let (end, compact) = shape.match(s, at: i), text.endsToken(end, in: s), validate(compact) {
                n += 1
                i = end
            } else {
                i += 1
            }
        }
        return n
    }
}

/// Payment card numbers: 13 to 19 digits, groups separated by single spaces or dashes, a known
/// issuer prefix for that length, and the Luhn check. A longer run of digits is not a card.
struct CardNumberDetector: Detector {
    let name = "credit_card"

    func count(in text: ScanText) -> Int {
        let s = text.scalars
        func digit(_ i: Int) -> UInt8? { i < s.count && (48...57).contains(s[i].value) ? UInt8(s[i].value - 48) : nil }
        var n = 0, i = 0
        while i < s.count {
            guard digit(i) != nil, text.startsToken(i, in: s) else { i += 1; continue }
            var digits: [UInt8] = []
            var j = i
            while true {
                if let d = digit(j) {
                    digits.append(d)
                    j += 1
                } else if j < s.count, s[j] == " " || s[j] == "-", digit(j + 1) != nil, digit(j - 1) != nil {
                    j += 1
                } else {
                    break
                }
            }
            if (13...19).contains(digits.count), text.endsToken(j, in: s), Checksums.isKnownCardPrefix(digits), Checksums.luhn(digits) {
                n += 1
            }
            i = j
        }
        return n
    }
}

/// IBANs: a country code of the registry, two check digits, the country's length in letters
/// and digits (in groups separated by single spaces, or not), and the mod-97 check.
struct IBANDetector: Detector {
    let name = "iban"

    func count(in text: ScanText) -> Int {
        let s = text.scalars
        var n = 0, i = 0
        while i + 4 <= s.count {
            guard text.startsToken(i, in: s), let (end, iban) = match(s, at: i), text.endsToken(end, in: s), Checksums.ibanChecksum(iban) else {
                i += 1
                continue
            }
            n += 1
            i = end
        }
        return n
    }

    func match(_ s: [Unicode.Scalar], at start: Int) -> (Int, String)? {
        func upper(_ c: Unicode.Scalar) -> Unicode.Scalar { (97...122).contains(c.value) ? Unicode.Scalar(c.value - 32)! : c }
        let country = String(String.UnicodeScalarView([upper(s[start]), upper(s[start + 1])]))
        guard let length = Checksums.ibanLengths[country],
              (48...57).contains(s[start + 2].value), (48...57).contains(s[start + 3].value) else { return nil }
        var out = String.UnicodeScalarView()
        var i = start
        while out.count < length {
            guard i < s.count else { return nil }
            let c = upper(s[i])
            if (48...57).contains(c.value) || (65...90).contains(c.value) {
                out.append(c)
                i += 1
            } else if c == " " && out.count >= 4 && i + 1 < s.count && s[i + 1] != " " {
                i += 1
            } else {
                return nil
            }
        }
        return (i, String(out))
    }
}

/// Words and phrases, counted where they stand as whole words; whitespace inside a phrase
/// matches any run of whitespace. Case ignored (dictionaries) or kept (markings).
package struct PhraseDetector: Detector {
    package let name: String
    let phrases: [[Unicode.Scalar]]
    let caseSensitive: Bool

    package init(name: String, phrases: [String], caseSensitive: Bool) {
        self.name = name
        self.caseSensitive = caseSensitive
        self.phrases = phrases.map { p in
            let collapsed = ScanText.collapsingWhitespace(Array(p.unicodeScalars))
            let trimmed = Array(collapsed.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
            return caseSensitive ? trimmed : ScanText.lowercased(trimmed)
        }.filter { !$0.isEmpty }
    }

    package func count(in text: ScanText) -> Int {
        let s = caseSensitive ? text.collapsed : text.lowered
        var n = 0
        for phrase in phrases {
            var i = 0
            while i + phrase.count <= s.count {
                if s[i] == phrase[0], s[i..<(i + phrase.count)].elementsEqual(phrase),
                   text.startsToken(i, in: s), text.endsToken(i + phrase.count, in: s) {
                    n += 1
                    i += phrase.count
                } else {
                    i += 1
                }
            }
        }
        return n
    }
}

/// A site's regular expression (ICU syntax, NSRegularExpression), every match counted.
/// @unchecked Sendable: an NSRegularExpression is immutable once made and safe to share.
package struct RegexDetector: Detector, @unchecked Sendable {
    package let name: String
    let regex: NSRegularExpression

    package init(name: String, pattern: String, caseInsensitive: Bool) throws {
        self.name = name
        regex = try NSRegularExpression(pattern: pattern, options: caseInsensitive ? [.caseInsensitive] : [])
    }

    package func count(in text: ScanText) -> Int {
        regex.numberOfMatches(in: text.string, range: NSRange(text.string.startIndex..., in: text.string))
    }
}
