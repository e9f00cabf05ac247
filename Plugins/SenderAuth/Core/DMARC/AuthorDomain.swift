// The RFC5322.From domain DMARC evaluates (RFC 7489 §3.1, §6.6.1), read from the From field's
// mailbox-list (RFC 5322 §3.4) by a byte-level state machine.

package enum AuthorDomain {
    /// Why no single author domain could be found. DMARC gives `permerror` for each.
    package enum Failure: Error, Equatable, CustomStringConvertible {
        case noFromField
        case severalFromFields(Int)
        /// The field's value is not a mailbox-list (unterminated quote, comment or `<`, ...).
        case unparseable(String)
        case noAddress
        /// Mailboxes of different domains: which policy applies is not defined.
        case severalDomains([String])
        /// An address whose domain is not a DNS name (a domain literal, a stray character).
        case badDomain(String)

        package var description: String {
            switch self {
            case .noFromField: "no From field"
            case .severalFromFields(let count): "\(count) From fields"
            case .unparseable(let why): "From field does not parse: \(why)"
            case .noAddress: "From field holds no address"
            case .severalDomains(let domains): "From field names several domains (\(domains.joined(separator: ", ")))"
            case .badDomain(let domain): "From address domain \(domain) is not a DNS name"
            }
        }
    }

    /// The one author domain of a message, lowercase ASCII (`PublicSuffixList.asciiDomain`).
    /// `fromFields` are the values of the message's From fields (what follows `From:`, folding
    /// kept or not). Exactly one field is needed; it may hold several mailboxes only if they
    /// all have one domain (the policy is then the same for each, RFC 7489 §6.6.1).
    package static func extract(fromFields: [String]) -> Result<String, Failure> {
        guard let field = fromFields.first else { return .failure(.noFromField) }
        guard fromFields.count == 1 else { return .failure(.severalFromFields(fromFields.count)) }
        let addresses: [[UInt8]]
        switch addrSpecs(Array(field.utf8)) {
        case .success(let found): addresses = found
        case .failure(let failure): return .failure(failure)
        }
        guard !addresses.isEmpty else { return .failure(.noAddress) }
        var domains: [String] = []
        for address in addresses {
            // The last `@` outside quotes (quoted strings are one 0x22 byte here) starts the domain.
            guard let at = address.lastIndex(of: 0x40) else { return .failure(.unparseable("address without @")) }
            let text = String(decoding: address[(at + 1)...], as: UTF8.self)
            guard let domain = PublicSuffixList.asciiDomain(text),
                  domain.utf8.allSatisfy({ isLetterDigit($0) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E }) else {
                return .failure(.badDomain(text))
            }
            if !domains.contains(domain) { domains.append(domain) }
        }
        guard domains.count == 1 else { return .failure(.severalDomains(domains)) }
        return .success(domains[0])
    }

    private static func isLetterDigit(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x61...0x7A).contains(byte)
    }

    private enum State {
        case text
        case quoted(escaped: Bool)
        case comment(depth: Int, escaped: Bool)
    }

    /// The addr-spec of each mailbox of a mailbox-list or group list: what is between `<` and
    /// `>`, else the mailbox's text; comments dropped, each quoted-string replaced by one `"`
    /// (so an `@` inside quotes is not taken for the domain's), white space trimmed. An
    /// addr-spec with white space inside is refused (two words, no angle brackets), as is a
    /// second `<...>` in one mailbox.
    static func addrSpecs(_ bytes: [UInt8]) -> Result<[[UInt8]], Failure> {
        var specs: [[UInt8]] = []
        var outside: [UInt8] = []   // the mailbox's text outside `<>`
        var inside: [UInt8]? = nil  // between `<` and `>`, once seen
        var inAngle = false, angleClosed = false
        var state = State.text
        // Returns a failure for the mailbox just ended, if it is not one.
        func endMailbox() -> Failure? {
            defer { outside = []; inside = nil; angleClosed = false }
            let spec = trimmed(inside ?? outside)
            if spec.isEmpty && inside == nil { return nil }  // an empty list element
            if spec.contains(0x20) || spec.isEmpty { return .unparseable("mailbox is not an address") }
            specs.append(spec)
            return nil
        }
        func add(_ byte: UInt8) {
            if inAngle { inside!.append(byte) } else { outside.append(byte) }
        }

        for byte in bytes {
            switch state {
            case .comment(let depth, let escaped):
                if escaped { state = .comment(depth: depth, escaped: false) }
                else if byte == 0x5C { state = .comment(depth: depth, escaped: true) }
                else if byte == 0x28 { state = .comment(depth: depth + 1, escaped: false) }
                else if byte == 0x29 { state = depth == 1 ? .text : .comment(depth: depth - 1, escaped: false); add(0x20) }
            case .quoted(let escaped):
                if escaped { state = .quoted(escaped: false) }
                else if byte == 0x5C { state = .quoted(escaped: true) }
                else if byte == 0x22 { state = .text }
            case .text:
                switch byte {
                case 0x28: state = .comment(depth: 1, escaped: false)
                case 0x22: state = .quoted(escaped: false); add(0x22)
                case 0x20, 0x09, 0x0D, 0x0A: add(0x20)
                case 0x3C:
                    guard !inAngle, !angleClosed else { return .failure(.unparseable("second < in a mailbox")) }
                    inAngle = true; inside = []
                case 0x3E:
                    guard inAngle else { return .failure(.unparseable("> without <")) }
                    inAngle = false; angleClosed = true
                case 0x2C where !inAngle:
                    if let failure = endMailbox() { return .failure(failure) }
                case 0x3A where !inAngle:
                    // A group's display name ends here: what follows are its mailboxes.
                    guard inside == nil else { return .failure(.unparseable("colon after an address")) }
                    outside = []
                case 0x3B where !inAngle:
                    if let failure = endMailbox() { return .failure(failure) }
                default:
                    if angleClosed && byte != 0x20 { return .failure(.unparseable("text after >")) }
                    add(byte)
                }
            }
        }
        switch state {
        case .text: break
        case .quoted: return .failure(.unparseable("unterminated quoted-string"))
        case .comment: return .failure(.unparseable("unterminated comment"))
        }
        if inAngle { return .failure(.unparseable("unterminated <")) }
        if let failure = endMailbox() { return .failure(failure) }
        return .success(specs)
    }

    private static func trimmed(_ bytes: [UInt8]) -> [UInt8] {
        var slice = bytes[...]
        while slice.first == 0x20 { slice = slice.dropFirst() }
        while slice.last == 0x20 { slice = slice.dropLast() }
        return Array(slice)
    }
}
