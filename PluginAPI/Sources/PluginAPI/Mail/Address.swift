#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why an address, a path or an address list could not be parsed (or only in part).
public enum AddressError: Error, Sendable, Equatable {
    /// Nothing but whitespace and comments.
    case empty
    /// An SMTP path without its `<` `>`.
    case missingAngleBrackets
    /// A `<` without its `>`.
    case unterminatedAngleAddress
    /// A quoted string without its closing quote.
    case unterminatedQuotedString
    /// A comment without its closing parenthesis.
    case unterminatedComment
    /// A domain literal without its `]`.
    case unterminatedDomainLiteral
    /// No local part before the `@`.
    case missingLocalPart
    /// No `@domain` (RFC 5322 requires one; SMTP too, except for `<postmaster>`).
    case missingDomain
    /// A local part with a character or a dot where none may be.
    case invalidLocalPart
    /// A domain that is not a host name (see `DomainError`).
    case invalidDomain(DomainError)
    /// An address literal that is not IPv4, `IPv6:` or a general literal (`tag:value`).
    case invalidAddressLiteral
    /// A local part over 64 octets (RFC 5321 §4.5.3.1.1).
    case localPartTooLong
    /// A path over 256 octets (RFC 5321 §4.5.3.1.3).
    case pathTooLong
    /// A source route that is not `@domain *(,@domain):`.
    case invalidSourceRoute
    /// A group without its terminating `;`.
    case unterminatedGroup
    /// UTF-8 where it is not allowed (a path parsed without SMTPUTF8).
    case utf8NotAllowed
    /// Bytes that fit nowhere, at this offset of the input.
    case unexpected(offset: Int)
}

/// The domain part of an address: a host name or an address literal.
public enum AddressDomain: Sendable, Equatable {
    /// A host name as written (U-labels or A-labels).
    case name(String)
    /// `[192.0.2.1]`.
    case ipv4(String)
    /// `[IPv6:2001:db8::1]` (the address without the tag).
    case ipv6(String)
    /// `[tag:value]` of RFC 5321 §4.1.3.
    case general(tag: String, value: String)

    /// The domain as it is written in an address.
    public var text: String {
        switch self {
        case .name(let n): return n
        case .ipv4(let a): return "[\(a)]"
        case .ipv6(let a): return "[IPv6:\(a)]"
        case .general(let t, let v): return "[\(t):\(v)]"
        }
    }
}

/// An RFC 5321 path: the argument of `MAIL FROM:` and `RCPT TO:`.
public struct SMTPPath: Sendable, Equatable {
    /// The local part with quoting removed (`"a b"@x` gives `a b`); empty for the null path.
    public var localPart: String
    /// The domain; nil for the null path `<>` (and for a bare `<postmaster>`).
    public var domain: AddressDomain?
    /// The obsolete source route (`<@a,@b:u@d>` gives `["a", "b"]`): parsed, to be ignored
    /// as RFC 5321 §3.3 says, and flagged here.
    public var sourceRoute: [String]

    /// A path from its parts.
    public init(localPart: String, domain: AddressDomain?, sourceRoute: [String] = []) {
        self.localPart = localPart
        self.domain = domain
        self.sourceRoute = sourceRoute
    }

    /// Whether this is `<>`, the null reverse path of bounces.
    public var isNull: Bool { localPart.isEmpty && domain == nil }
    /// Whether a source route was given (and dropped).
    public var hasSourceRoute: Bool { !sourceRoute.isEmpty }
    /// Whether the path needs SMTPUTF8 (RFC 6531): non-ASCII in the local part or domain.
    public var needsSMTPUTF8: Bool {
        !localPart.unicodeScalars.allSatisfy(\.isASCII) || !(domain?.text.unicodeScalars.allSatisfy(\.isASCII) ?? true)
    }

    /// `local@domain` with the local part quoted when it must be; empty for the null path.
    public var address: String {
        guard let domain else { return MailAddress.quoteLocalPart(localPart) }
        return MailAddress.quoteLocalPart(localPart) + "@" + domain.text
    }

    /// The address with the domain in A-label form (for DNS and for servers without SMTPUTF8).
    public func asciiDomainAddress() throws -> String {
        guard case .name(let n)? = domain else { return address }
        return MailAddress.quoteLocalPart(localPart) + "@" + (try IDNA.toASCII(n))
    }

    /// Parses a path such as `<user@example.org>`, `<>`, `<@a,@b:u@d>`, `<"x y"@[IPv6:::1]>`.
    /// `allowUTF8` admits RFC 6531 UTF-8 in the local part and U-labels in the domain;
    /// `requireBrackets: false` also takes a bare `user@domain`, as lenient servers do.
    public static func parse(_ text: String, allowUTF8: Bool = true, requireBrackets: Bool = true) throws -> SMTPPath {
        let b = Array(text.utf8)
        var i = 0
        var closing = false
        if i < b.count, b[i] == 60 {
            i += 1
            closing = true
        } else if requireBrackets {
            throw AddressError.missingAngleBrackets
        }
        if closing, i < b.count, b[i] == 62 {
            guard i + 1 == b.count else { throw AddressError.unexpected(offset: i + 1) }
            return SMTPPath(localPart: "", domain: nil)
        }
        if !allowUTF8, b.contains(where: { $0 >= 0x80 }) { throw AddressError.utf8NotAllowed }
        guard b.count <= 256 + (closing ? 0 : -2) + 2 else { throw AddressError.pathTooLong }
        // A-d-l ":"
        var route: [String] = []
        if i < b.count, b[i] == 64 {
            while true {
                guard i < b.count, b[i] == 64 else { throw AddressError.invalidSourceRoute }
                i += 1
                let start = i
                while i < b.count, b[i] != 44, b[i] != 58, b[i] != 62 { i += 1 }
                let d = String(decoding: b[start..<i], as: UTF8.self)
                guard !d.isEmpty, (try? parseDomain(d, allowUTF8: allowUTF8)) != nil else { throw AddressError.invalidSourceRoute }
                route.append(d)
                guard i < b.count else { throw AddressError.invalidSourceRoute }
                if b[i] == 44 { i += 1; continue }
                if b[i] == 58 { i += 1; break }
                throw AddressError.invalidSourceRoute
            }
        }
        // Local-part
        var local: [UInt8] = []
        let localStart = i
        if i < b.count, b[i] == 34 {
            i += 1
            var closed = false
            while i < b.count {
                let c = b[i]
                if c == 34 { closed = true; i += 1; break }
                if c == 92 {
                    guard i + 1 < b.count, b[i + 1] >= 32, b[i + 1] <= 126 else { throw AddressError.invalidLocalPart }
                    local.append(b[i + 1]); i += 2; continue
                }
                guard (c >= 32 && c <= 126) || (c >= 0x80 && allowUTF8) else { throw AddressError.invalidLocalPart }
                local.append(c); i += 1
            }
            guard closed else { throw AddressError.unterminatedQuotedString }
        } else {
            var lastDot = true
            while i < b.count, b[i] != 64, b[i] != 62 {
                let c = b[i]
                if c == 46 {
                    if lastDot { throw AddressError.invalidLocalPart }
                    lastDot = true
                } else {
                    guard isAtext(c) || (c >= 0x80 && allowUTF8) else { throw AddressError.invalidLocalPart }
                    lastDot = false
                }
                local.append(c); i += 1
            }
            if !local.isEmpty && lastDot { throw AddressError.invalidLocalPart }
        }
        if i - localStart > 64 { throw AddressError.localPartTooLong }
        guard let localText = String(validatingUTF8Bytes: local) else { throw AddressError.invalidLocalPart }
        var domain: AddressDomain?
        if i < b.count, b[i] == 64 {
            i += 1
            let start = i
            if i < b.count, b[i] == 91 {
                while i < b.count, b[i] != 93 { i += 1 }
                guard i < b.count else { throw AddressError.unterminatedDomainLiteral }
                i += 1
            } else {
                while i < b.count, b[i] != 62 { i += 1 }
            }
            let d = String(decoding: b[start..<i], as: UTF8.self)
            domain = try parseDomain(d, allowUTF8: allowUTF8)
        } else {
            // Only <postmaster> may go without a domain (RFC 5321 §4.1.1.3).
            guard localText.caseInsensitiveEquals("postmaster") else {
                throw local.isEmpty ? AddressError.missingLocalPart : AddressError.missingDomain
            }
        }
        if local.isEmpty { throw AddressError.missingLocalPart }
        if closing {
            guard i < b.count, b[i] == 62 else { throw AddressError.unterminatedAngleAddress }
            i += 1
        }
        guard i == b.count else { throw AddressError.unexpected(offset: i) }
        return SMTPPath(localPart: localText, domain: domain, sourceRoute: route)
    }

    /// Parses a domain or address literal as it appears after `@`.
    public static func parseDomain(_ text: String, allowUTF8: Bool = true) throws -> AddressDomain {
        if text.hasPrefix("[") {
            guard text.hasSuffix("]"), text.count >= 3 else { throw AddressError.invalidAddressLiteral }
            let inner = String(text.dropFirst().dropLast())
            if inner.count >= 5, inner.prefix(5).caseInsensitiveCompareASCII("IPv6:") {
                let addr = String(inner.dropFirst(5))
                guard isIPv6(addr) else { throw AddressError.invalidAddressLiteral }
                return .ipv6(addr)
            }
            if isIPv4(inner) { return .ipv4(inner) }
            if let colon = inner.firstIndex(of: ":") {
                let tag = String(inner[..<colon]), value = String(inner[inner.index(after: colon)...])
                let tagOK = !tag.isEmpty && tag.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-") }
                let valueOK = !value.isEmpty && value.utf8.allSatisfy { $0 >= 33 && $0 <= 126 && $0 != 91 && $0 != 93 && $0 != 92 }
                if tagOK && valueOK && !tag.hasSuffix("-") { return .general(tag: tag, value: value) }
            }
            throw AddressError.invalidAddressLiteral
        }
        if !allowUTF8, !text.unicodeScalars.allSatisfy(\.isASCII) { throw AddressError.utf8NotAllowed }
        do {
            _ = try IDNA.toASCII(text)
        } catch let e as DomainError {
            throw AddressError.invalidDomain(e)
        }
        if text.hasSuffix(".") { throw AddressError.invalidDomain(.emptyLabel) }
        return .name(text)
    }

    static func isIPv4(_ s: String) -> Bool {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return false }
        return parts.allSatisfy { p in
            !p.isEmpty && p.count <= 3 && p.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } && Int(p)! <= 255
        }
    }

    static func isIPv6(_ s: String) -> Bool {
        var addr = in6_addr()
        return s.withCString { inet_pton(AF_INET6, $0, &addr) } == 1
    }
}

@inline(__always) func isAtext(_ c: UInt8) -> Bool {
    switch c {
    case 65...90, 97...122, 48...57: return true
    case 33, 35, 36, 37, 38, 39, 42, 43, 45, 47, 61, 63, 94, 95, 96, 123, 124, 125, 126: return true
    default: return false
    }
}

extension Substring {
    func caseInsensitiveCompareASCII(_ other: String) -> Bool { String(self).caseInsensitiveEquals(other) }
}

/// One mailbox of an RFC 5322 address list.
public struct MailAddress: Sendable, Equatable {
    /// The display name decoded (quotes and escapes removed, RFC 2047 words decoded), or nil.
    public var displayName: String?
    /// The display name as written, quotes removed but encoded words kept: what IMAP's
    /// ENVELOPE carries (clients decode it). Falls back to a trailing comment, as Dovecot does.
    public var rawDisplayName: [UInt8]?
    /// The obsolete route (`@a,@b`) of `<@a,@b:u@d>`, or nil.
    public var route: String?
    /// The local part, quoting removed; empty when missing.
    public var localPart: String
    /// The domain as written (name or `[literal]`); empty when missing.
    public var domain: String

    /// A mailbox from its parts.
    public init(displayName: String? = nil, rawDisplayName: [UInt8]? = nil, route: String? = nil, localPart: String, domain: String) {
        self.displayName = displayName
        self.rawDisplayName = rawDisplayName ?? displayName.map { Array($0.utf8) }
        self.route = route
        self.localPart = localPart
        self.domain = domain
    }

    /// `local@domain`, the local part quoted when it must be.
    public var address: String {
        domain.isEmpty ? MailAddress.quoteLocalPart(localPart) : MailAddress.quoteLocalPart(localPart) + "@" + domain
    }

    /// A local part as it must be written: as is when it is a dot-atom, else quoted.
    public static func quoteLocalPart(_ local: String) -> String {
        let b = Array(local.utf8)
        var dotAtom = !b.isEmpty && b.first != 46 && b.last != 46
        var lastDot = false
        for c in b {
            if c == 46 {
                if lastDot { dotAtom = false }
                lastDot = true
            } else {
                lastDot = false
                if !(isAtext(c) || c >= 0x80) { dotAtom = false }
            }
        }
        if dotAtom { return local }
        var out = "\""
        for ch in local.unicodeScalars {
            if ch == "\"" || ch == "\\" { out += "\\" }
            out.unicodeScalars.append(ch)
        }
        return out + "\""
    }
}

/// One entry of an address list: a mailbox, or a named group of mailboxes.
public enum AddressListEntry: Sendable, Equatable {
    /// A single mailbox.
    case mailbox(MailAddress)
    /// `name: a, b;` (possibly empty, as in `undisclosed-recipients:;`).
    case group(name: String, rawName: [UInt8], members: [MailAddress])
}

/// An RFC 5322 address list (From, To, Cc, Reply-To, ...) parsed leniently: what can be read is
/// kept, and each problem is reported in `errors`.
public struct MailAddressList: Sendable, Equatable {
    /// The entries in order.
    public var entries: [AddressListEntry]
    /// What was wrong with the input; empty when it was well-formed.
    public var errors: [AddressError]

    /// Every mailbox, group members included, in order.
    public var mailboxes: [MailAddress] {
        entries.flatMap { e -> [MailAddress] in
            switch e {
            case .mailbox(let m): return [m]
            case .group(_, _, let members): return members
            }
        }
    }

    /// Parses an (unfolded or folded) header value.
    public init<Bytes: Collection>(parsing value: Bytes) where Bytes.Element == UInt8 {
        var p = AddressListParser(Array(value))
        p.run()
        entries = p.entries
        errors = p.errors
    }

    /// Parses a header value given as text.
    public init(parsing text: String) { self.init(parsing: Array(text.utf8)) }
}

private struct AddressListParser {
    enum Token: Equatable {
        case atom([UInt8])
        case quoted([UInt8])
        case special(UInt8)
        case literal([UInt8])
    }

    let input: [UInt8]
    var tokens: [Token] = []
    var offsets: [Int] = []
    var pos = 0
    var entries: [AddressListEntry] = []
    var errors: [AddressError] = []

    init(_ input: [UInt8]) { self.input = input }

    mutating func tokenize() {
        var i = 0
        let b = input
        while i < b.count {
            let c = b[i]
            switch c {
            case 32, 9, 13, 10:
                i += 1
            case 40:
                var depth = 0
                var text: [UInt8] = []
                while i < b.count {
                    let d = b[i]
                    if d == 92, i + 1 < b.count { if depth > 0 { text.append(b[i + 1]) }; i += 2; continue }
                    if d == 40 { depth += 1; if depth > 1 { text.append(d) } }
                    else if d == 41 { depth -= 1; if depth == 0 { i += 1; break }; text.append(d) }
                    else { text.append(d) }
                    i += 1
                }
                if depth > 0 { errors.append(.unterminatedComment) }
                commentAfter[tokens.count] = text
            case 34:
                var text: [UInt8] = []
                let start = i
                i += 1
                var closed = false
                while i < b.count {
                    let d = b[i]
                    if d == 92, i + 1 < b.count { text.append(b[i + 1]); i += 2; continue }
                    if d == 34 { closed = true; i += 1; break }
                    if d != 13 && d != 10 { text.append(d) }
                    i += 1
                }
                if !closed { errors.append(.unterminatedQuotedString) }
                tokens.append(.quoted(text)); offsets.append(start)
            case 91:
                let start = i
                var text: [UInt8] = [91]
                i += 1
                var closed = false
                while i < b.count {
                    let d = b[i]
                    if d == 92, i + 1 < b.count { text.append(b[i + 1]); i += 2; continue }
                    text.append(d)
                    i += 1
                    if d == 93 { closed = true; break }
                }
                if !closed { errors.append(.unterminatedDomainLiteral); text.append(93) }
                tokens.append(.literal(text.filter { $0 != 13 && $0 != 10 && $0 != 32 && $0 != 9 })); offsets.append(start)
            case 60, 62, 64, 44, 59, 58, 46, 93, 41, 92:
                tokens.append(.special(c)); offsets.append(i)
                i += 1
            default:
                let start = i
                while i < b.count {
                    let d = b[i]
                    if d == 32 || d == 9 || d == 13 || d == 10 || d == 40 || d == 34 || d == 91 || d == 60 || d == 62
                        || d == 64 || d == 44 || d == 59 || d == 58 || d == 46 || d == 93 || d == 41 || d == 92 { break }
                    i += 1
                }
                tokens.append(.atom(Array(b[start..<i]))); offsets.append(start)
            }
        }
    }

    /// The comment that follows token N-1 (a display name when an addr-spec has none).
    var commentAfter: [Int: [UInt8]] = [:]

    func peek() -> Token? { pos < tokens.count ? tokens[pos] : nil }
    func isSpecial(_ c: UInt8) -> Bool { peek() == .special(c) }

    mutating func run() {
        tokenize()
        if tokens.isEmpty {
            errors.append(.empty)
            return
        }
        while pos < tokens.count {
            if isSpecial(44) { pos += 1; continue }
            let before = pos
            parseAddress()
            if pos == before {
                errors.append(.unexpected(offset: offsets[pos]))
                pos += 1
            }
        }
    }

    /// Phrase words until a special that ends it; returns the words (raw) and whether any.
    mutating func phrase() -> [[UInt8]] {
        var words: [[UInt8]] = []
        while let t = peek() {
            switch t {
            case .atom(let a): words.append(a); pos += 1
            case .quoted(let q): words.append(q); pos += 1
            case .special(46):
                if words.isEmpty { words.append([46]) } else { words[words.count - 1].append(46) }
                pos += 1
            default: return words
            }
        }
        return words
    }

    func joinPhrase(_ words: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = []
        for (n, w) in words.enumerated() {
            if n > 0 { out.append(32) }
            out += w
        }
        return out
    }

    mutating func parseAddress() {
        let startPos = pos
        let words = phrase()
        guard let t = peek() else {
            // A lone word: a mailbox without domain.
            if !words.isEmpty { bareMailbox(words, from: startPos) }
            return
        }
        switch t {
        case .special(58):
            pos += 1
            let raw = joinPhrase(words)
            var members: [MailAddress] = []
            while pos < tokens.count, !isSpecial(59) {
                if isSpecial(44) { pos += 1; continue }
                let before = pos
                if let m = parseMailbox() { members.append(m) }
                if pos == before { errors.append(.unexpected(offset: offsets[pos])); pos += 1 }
            }
            if isSpecial(59) { pos += 1 } else { errors.append(.unterminatedGroup) }
            entries.append(.group(name: EncodedWords.decode(raw), rawName: raw, members: members))
        default:
            pos = startPos
            if let m = parseMailbox() { entries.append(.mailbox(m)) }
        }
    }

    mutating func bareMailbox(_ words: [[UInt8]], from startPos: Int) {
        errors.append(.missingDomain)
        let local = words.count == 1 ? words[0] : joinPhrase(words)
        entries.append(.mailbox(MailAddress(displayName: nil, rawDisplayName: nil, localPart: MailCharset.fallback(local), domain: "")))
    }

    /// name-addr or addr-spec.
    mutating func parseMailbox() -> MailAddress? {
        let startPos = pos
        let words = phrase()
        if isSpecial(60) {
            pos += 1
            let raw = words.isEmpty ? nil : joinPhrase(words)
            var route: String?
            if isSpecial(64) {
                var r: [UInt8] = []
                while isSpecial(64) || isSpecial(44) {
                    if isSpecial(44) { r.append(44); pos += 1; continue }
                    pos += 1
                    r.append(64)
                    r += domainTokens()
                }
                if isSpecial(58) { pos += 1 } else { errors.append(.invalidSourceRoute) }
                route = MailCharset.fallback(r)
            }
            var (local, domain) = addrSpec()
            if isSpecial(62) { pos += 1 } else {
                errors.append(.unterminatedAngleAddress)
                // Skip to the end of this address.
                while pos < tokens.count, !isSpecial(62), !isSpecial(44) { pos += 1 }
                if isSpecial(62) { pos += 1 }
            }
            if local.isEmpty && domain.isEmpty && raw == nil && route == nil {
                // "<>" as a From: keep it as an empty mailbox.
                local = ""
            }
            return MailAddress(displayName: raw.map { EncodedWords.decode($0) }, rawDisplayName: raw, route: route,
                               localPart: local, domain: domain)
        }
        // addr-spec: the phrase words are the local part.
        pos = startPos
        let (local, domain) = addrSpec()
        if pos == startPos { return nil }
        // A comment right after the address is its display name when nothing else is.
        let comment = commentAfter[pos]
        return MailAddress(displayName: comment.map { EncodedWords.decode($0) }, rawDisplayName: comment,
                           localPart: local, domain: domain)
    }

    mutating func domainTokens() -> [UInt8] {
        var d: [UInt8] = []
        while let t = peek() {
            switch t {
            case .atom(let a): d += a; pos += 1
            case .special(46): d.append(46); pos += 1
            case .literal(let l): d += l; pos += 1
            default: return d
            }
        }
        return d
    }

    mutating func addrSpec() -> (String, String) {
        var local: [UInt8] = []
        var sawWord = false
        while let t = peek() {
            switch t {
            case .atom(let a): local += a; sawWord = true; pos += 1; continue
            case .quoted(let q): local += q; sawWord = true; pos += 1; continue
            case .special(46): local.append(46); pos += 1; continue
            default: break
            }
            break
        }
        if !sawWord { errors.append(.missingLocalPart) }
        var domain: [UInt8] = []
        if isSpecial(64) {
            pos += 1
            domain = domainTokens()
            if domain.isEmpty { errors.append(.missingDomain) }
        } else if sawWord {
            errors.append(.missingDomain)
        }
        return (MailCharset.fallback(local), MailCharset.fallback(domain))
    }
}
