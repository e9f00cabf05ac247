/// The validations the built-in detectors run on a candidate once its shape matched: check
/// digits where the identifier has one, issuing rules where it has none. Each takes the
/// candidate compacted (separators removed, letters upper case).
package enum Checksums {
    /// Luhn (ISO/IEC 7812-1): every second digit from the right doubled, the sum a multiple of 10.
    package static func luhn(_ digits: [UInt8]) -> Bool {
        guard !digits.isEmpty else { return false }
        var sum = 0
        for (i, d) in digits.reversed().enumerated() {
            let v = Int(d)
            sum += i % 2 == 1 ? (v * 2 > 9 ? v * 2 - 9 : v * 2) : v
        }
        return sum % 10 == 0
    }

    /// A payment card's issuer prefix (IIN) and its lengths: Visa, Mastercard, American Express,
    /// Discover, Diners Club, JCB, UnionPay, Maestro.
    package static func isKnownCardPrefix(_ digits: [UInt8]) -> Bool {
        func prefix(_ n: Int) -> Int { digits.prefix(n).reduce(0) { $0 * 10 + Int($1) } }
        let length = digits.count
        switch true {
        case digits.first == 4: return [13, 16, 19].contains(length)                                   // Visa
        case (51...55).contains(prefix(2)), (2221...2720).contains(prefix(4)): return length == 16      // Mastercard
        case prefix(2) == 34 || prefix(2) == 37: return length == 15                                    // American Express
        case prefix(4) == 6011, (644...649).contains(prefix(3)), prefix(2) == 65: return (16...19).contains(length) // Discover
        case (300...305).contains(prefix(3)), prefix(2) == 36, prefix(2) == 38, prefix(2) == 39: return (14...19).contains(length) // Diners
        case (3528...3589).contains(prefix(4)): return (16...19).contains(length)                       // JCB
        case prefix(2) == 62: return (16...19).contains(length)                                          // UnionPay
        case prefix(2) == 50, (56...58).contains(prefix(2)), prefix(2) == 63, prefix(2) == 67: return (12...19).contains(length) // Maestro
        default: return false
        }
    }

    /// IBAN lengths per country (the SWIFT IBAN registry).
    package static let ibanLengths: [String: Int] = [
        "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "BY": 28,
        "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
        "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
        "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20,
        "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15,
        "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19,
        "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
    ]

    /// ISO 13616: the first four characters moved to the end, letters as 10...35, the number
    /// mod 97 is 1.
    package static func ibanChecksum(_ iban: String) -> Bool {
        let chars = Array(iban.unicodeScalars)
        guard chars.count >= 5 else { return false }
        var remainder = 0
        for c in chars[4...] + chars[..<4] {
            let v: Int
            switch c.value {
            case 48...57: v = Int(c.value) - 48
            case 65...90: v = Int(c.value) - 55
            default: return false
            }
            remainder = v < 10 ? (remainder * 10 + v) % 97 : (remainder * 100 + v) % 97
        }
        return remainder == 1
    }

    /// US Social Security number (no check digit): area not 000, 666 or 900-999, group not 00,
    /// serial not 0000, and not one of the numbers published as examples.
    package static func usSSN(area: Int, group: Int, serial: Int) -> Bool {
        guard area != 0, area != 666, area < 900, group != 0, serial != 0 else { return false }
        return !((area == 78 && group == 5 && serial == 1120) || (area == 219 && group == 9 && serial == 9999))
    }

    /// UK National Insurance number (no check digit): the prefix letters HMRC allocates (first
    /// not D, F, I, Q, U, V; second not D, F, I, O, Q, U, V; not BG, GB, KN, NK, NT, TN, ZZ) and
    /// a suffix A-D.
    package static func ukNINO(_ nino: String) -> Bool {
        let c = Array(nino)
        guard c.count == 9, let suffix = c.last, "ABCD".contains(suffix) else { return false }
        let prefix = String(c[0...1])
        return !"DFIQUV".contains(c[0]) && !"DFIOQUV".contains(c[1]) && !["BG", "GB", "KN", "NK", "NT", "TN", "ZZ"].contains(prefix)
    }

    /// Spanish DNI (8 digits and a letter) and NIE (X, Y or Z, 7 digits, a letter): the letter is
    /// the number mod 23 in TRWAGMYFPDXBNJZSQVHLCKE; the NIE's X/Y/Z count as 0/1/2.
    package static func spanishDNI(_ id: String) -> Bool {
        var c = Array(id)
        guard c.count == 9, let letter = c.popLast() else { return false }
        switch c[0] {
        case "X": c[0] = "0"
        case "Y": c[0] = "1"
        case "Z": c[0] = "2"
        default: break
        }
        guard let n = Int(String(c)) else { return false }
        return Array("TRWAGMYFPDXBNJZSQVHLCKE")[n % 23] == letter
    }

    /// Dutch BSN: nine digits, 9×d1 + 8×d2 + ... + 2×d8 − d9 a multiple of 11 (the "11-proof"), not zero.
    package static func dutchBSN(_ digits: [UInt8]) -> Bool {
        guard digits.count == 9, digits.contains(where: { $0 != 0 }) else { return false }
        var sum = 0
        for (i, d) in digits.enumerated() { sum += (i == 8 ? -1 : 9 - i) * Int(d) }
        return sum % 11 == 0
    }

    /// Italian codice fiscale: the 16th character is the check character over the first 15
    /// (odd positions through the "dispari" table, even positions as their value, sum mod 26).
    package static func italianCodiceFiscale(_ code: String) -> Bool {
        let c = Array(code.unicodeScalars)
        guard c.count == 16 else { return false }
        // A-Z / 0-9 at odd (1-based) positions.
        let odd = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23]
        var sum = 0
        for (i, s) in c[0..<15].enumerated() {
            let v: Int
            switch s.value {
            case 48...57: v = Int(s.value) - 48
            case 65...90: v = Int(s.value) - 65
            default: return false
            }
            sum += i % 2 == 0 ? odd[v] : v
        }
        return c[15].value == UInt32(65 + sum % 26)
    }
}
