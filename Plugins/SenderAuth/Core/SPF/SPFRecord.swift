// An SPF record (RFC 7208 §4.6, §12): `v=spf1` and terms separated by spaces, parsed in one
// pass over the bytes. Any syntax error anywhere makes the whole record a permerror (§4.6), so
// the parser stops at the first one and names the term.

package enum SPFQualifier: UInt8, Sendable {
    case pass = 0x2B      // +
    case fail = 0x2D      // -
    case softfail = 0x7E  // ~
    case neutral = 0x3F   // ?

    package var result: SPFResult {
        switch self {
        case .pass: return .pass
        case .fail: return .fail
        case .softfail: return .softfail
        case .neutral: return .neutral
        }
    }
}

/// The prefix lengths of `a` and `mx` (`dual-cidr-length`): one per client family.
package struct SPFDualCIDR: Sendable, Equatable {
    package var ip4: Int
    package var ip6: Int
    package init(ip4: Int = 32, ip6: Int = 128) { self.ip4 = ip4; self.ip6 = ip6 }
}

package enum SPFMechanism: Sendable, Equatable {
    case all
    case include(SPFMacroString)
    /// The domain is nil for the current domain.
    case a(SPFMacroString?, SPFDualCIDR)
    case mx(SPFMacroString?, SPFDualCIDR)
    case ptr(SPFMacroString?)
    case ip4(SPFAddress, prefix: Int)
    case ip6(SPFAddress, prefix: Int)
    case exists(SPFMacroString)

    /// Whether evaluating it asks DNS (counted against the limit of §4.6.4).
    package var queriesDNS: Bool {
        switch self {
        case .all, .ip4, .ip6: return false
        case .include, .a, .mx, .ptr, .exists: return true
        }
    }
}

package struct SPFDirective: Sendable, Equatable {
    package var qualifier: SPFQualifier
    package var mechanism: SPFMechanism
    /// The term as written (for `mechanism=` of Received-SPF).
    package var text: String
}

package struct SPFRecord: Sendable, Equatable {
    package var directives: [SPFDirective]
    package var redirect: SPFMacroString?
    package var explanation: SPFMacroString?
    /// Modifiers this implementation does not know: checked for syntax, then ignored (§6).
    package var unknownModifiers: [(name: String, value: SPFMacroString)]

    package static func == (lhs: SPFRecord, rhs: SPFRecord) -> Bool {
        lhs.directives == rhs.directives && lhs.redirect == rhs.redirect && lhs.explanation == rhs.explanation
            && lhs.unknownModifiers.map(\.name) == rhs.unknownModifiers.map(\.name)
            && lhs.unknownModifiers.map(\.value) == rhs.unknownModifiers.map(\.value)
    }

    /// Whether a TXT record is an SPF record at all (§4.5): `v=spf1` then a space or the end.
    /// Compared without case, as every SPF implementation in use does.
    package static func isSPF(_ text: String) -> Bool {
        let bytes = Array(text.utf8.prefix(7))
        guard bytes.count >= 6, String(decoding: bytes.prefix(6), as: UTF8.self).lowercased() == "v=spf1" else { return false }
        return bytes.count == 6 || bytes[6] == 0x20
    }

    /// Parses a record selected by `isSPF`.
    package init(parsing text: String) throws(SPFSyntaxError) {
        guard Self.isSPF(text) else { throw SPFSyntaxError("the record does not start with 'v=spf1'") }
        directives = []
        unknownModifiers = []
        let terms = Array(text.utf8).dropFirst(6).split(separator: 0x20)
        for term in terms {
            guard term.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E }) else {
                throw SPFSyntaxError("term '\(Self.shown(term))' has a character other than printable ASCII")
            }
            let termText = String(decoding: term, as: UTF8.self)
            if let (name, value) = Self.modifier(termText) {
                try addModifier(name: name, value: value, term: termText)
            } else {
                directives.append(try Self.directive(termText))
            }
        }
    }

    // MARK: Terms

    /// `name "=" value` when the term is a modifier: a name starts with a letter and goes on with
    /// letters, digits, `-`, `_`, `.` (§12). A mechanism never has `=` right after its name.
    private static func modifier(_ term: String) -> (String, Substring)? {
        guard let equals = term.firstIndex(of: "="), term.first?.isLetter == true else { return nil }
        let name = term[..<equals]
        let nameOK = name.utf8.allSatisfy { $0.isASCIILetter || ($0 >= 0x30 && $0 <= 0x39) || "-_.".utf8.contains($0) }
        return nameOK ? (name.lowercased(), term[term.index(after: equals)...]) : nil
    }

    private mutating func addModifier(name: String, value: Substring, term: String) throws(SPFSyntaxError) {
        switch name {
        case "redirect":
            guard redirect == nil else { throw SPFSyntaxError("redirect= appears more than once") }
            guard !value.isEmpty else { throw SPFSyntaxError("'\(term)': redirect= without a domain") }
            redirect = try SPFMacroString(parsing: value, kind: .domainSpec, term: "'\(term)'")
        case "exp":
            guard explanation == nil else { throw SPFSyntaxError("exp= appears more than once") }
            guard !value.isEmpty else { throw SPFSyntaxError("'\(term)': exp= without a domain") }
            explanation = try SPFMacroString(parsing: value, kind: .domainSpec, term: "'\(term)'")
        default:
            unknownModifiers.append((name, try SPFMacroString(parsing: value, kind: .modifierValue, term: "'\(term)'")))
        }
    }

    private static func directive(_ term: String) throws(SPFSyntaxError) -> SPFDirective {
        var rest = Substring(term)
        var qualifier = SPFQualifier.pass
        if let first = rest.utf8.first, let given = SPFQualifier(rawValue: first) {
            qualifier = given
            rest = rest.dropFirst()
        }
        let nameEnd = rest.firstIndex { !($0.isASCII && ($0.isLetter || $0.isNumber)) } ?? rest.endIndex
        let name = rest[..<nameEnd].lowercased()
        let argument = rest[nameEnd...]
        let quoted = "'\(term)'"
        let mechanism: SPFMechanism
        switch name {
        case "all":
            guard argument.isEmpty else { throw SPFSyntaxError("\(quoted): 'all' takes no argument") }
            mechanism = .all
        case "include", "exists":
            guard argument.first == ":", argument.count > 1 else { throw SPFSyntaxError("\(quoted): '\(name)' needs ':' and a domain") }
            let domain = try SPFMacroString(parsing: argument.dropFirst(), kind: .domainSpec, term: quoted)
            mechanism = name == "include" ? .include(domain) : .exists(domain)
        case "a", "mx":
            let (domainText, cidr) = try dualCIDR(argument, term: quoted)
            var domain: SPFMacroString?
            if !domainText.isEmpty {
                guard domainText.first == ":", domainText.count > 1 else { throw SPFSyntaxError("\(quoted): expected ':' and a domain or '/' and a prefix length") }
                domain = try SPFMacroString(parsing: domainText.dropFirst(), kind: .domainSpec, term: quoted)
            }
            mechanism = name == "a" ? .a(domain, cidr) : .mx(domain, cidr)
        case "ptr":
            var domain: SPFMacroString?
            if !argument.isEmpty {
                guard argument.first == ":", argument.count > 1 else { throw SPFSyntaxError("\(quoted): expected ':' and a domain") }
                domain = try SPFMacroString(parsing: argument.dropFirst(), kind: .domainSpec, term: quoted)
            }
            mechanism = .ptr(domain)
        case "ip4", "ip6":
            guard argument.first == ":" else { throw SPFSyntaxError("\(quoted): '\(name)' needs ':' and an address") }
            let maximum = name == "ip4" ? 32 : 128
            var addressText = argument.dropFirst()
            var prefix = maximum
            if let slash = addressText.firstIndex(of: "/") {
                guard let length = prefixLength(addressText[addressText.index(after: slash)...], maximum: maximum) else {
                    throw SPFSyntaxError("\(quoted): bad prefix length (0 to \(maximum), no leading zeros)")
                }
                prefix = length
                addressText = addressText[..<slash]
            }
            guard let address = SPFAddress(addressText), address.isIPv6 == (name == "ip6") else {
                throw SPFSyntaxError("\(quoted): '\(addressText)' is not an \(name == "ip4" ? "IPv4" : "IPv6") address")
            }
            mechanism = name == "ip4" ? .ip4(address, prefix: prefix) : .ip6(address, prefix: prefix)
        case "" where rest.isEmpty:
            throw SPFSyntaxError("\(quoted): a qualifier without a mechanism")
        default:
            throw SPFSyntaxError("\(quoted): unknown mechanism '\(name.isEmpty ? String(rest.prefix(1)) : name)'")
        }
        return SPFDirective(qualifier: qualifier, mechanism: mechanism, text: term)
    }

    /// Splits a trailing `[ "/" ip4-length ] [ "//" ip6-length ]` off the argument of `a`/`mx`.
    /// A domain-spec may itself contain `/`, so the lengths are taken from the end.
    private static func dualCIDR(_ argument: Substring, term: String) throws(SPFSyntaxError) -> (Substring, SPFDualCIDR) {
        var rest = argument
        var cidr = SPFDualCIDR()
        func trailingLength(_ text: Substring) -> (Substring, Substring)? {
            guard let slash = text.lastIndex(of: "/") else { return nil }
            let digits = text[text.index(after: slash)...]
            guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
            return (text[..<slash], digits)
        }
        if let (before, digits) = trailingLength(rest), before.hasSuffix("/") {
            guard let length = prefixLength(digits, maximum: 128) else { throw SPFSyntaxError("\(term): bad IPv6 prefix length") }
            cidr.ip6 = length
            rest = before.dropLast()
        }
        if let (before, digits) = trailingLength(rest) {
            guard let length = prefixLength(digits, maximum: 32) else { throw SPFSyntaxError("\(term): bad IPv4 prefix length") }
            cidr.ip4 = length
            rest = before
        }
        return (rest, cidr)
    }

    /// `"0" / %x31-39 0*2DIGIT` within 0...maximum.
    private static func prefixLength(_ digits: Substring, maximum: Int) -> Int? {
        guard (1...3).contains(digits.count), digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        guard digits.count == 1 || digits.first != "0", let value = Int(digits), value <= maximum else { return nil }
        return value
    }

    private static func shown(_ bytes: ArraySlice<UInt8>) -> String {
        bytes.map { SPFMacroString.printable($0) }.joined()
    }
}
