/// IMAP string syntax (RFC 3501 §4.3) as Dovecot writes it, for ENVELOPE and BODYSTRUCTURE.
public enum IMAPString {
    /// `NIL` for nil, else `string(_:)`.
    public static func nstring(_ bytes: [UInt8]?) -> [UInt8] {
        guard let bytes else { return Array("NIL".utf8) }
        return string(bytes)
    }

    /// A quoted string (`"` and `\` escaped) when possible; a literal `{n}\r\n...` when the value
    /// has 8-bit bytes or more than four characters to escape (Dovecot's choice). CR and LF are
    /// dropped first (they cannot be in a header value anyway) and NUL becomes U+FFFD.
    public static func string(_ bytes: [UInt8]) -> [UInt8] {
        let clean = sanitize(bytes).filter { $0 != 13 && $0 != 10 }
        var escapes = 0
        var literal = false
        for c in clean {
            if c == 34 || c == 92 {
                escapes += 1
                if escapes > 4 { literal = true; break }
            } else if c >= 0x80 {
                literal = true
                break
            }
        }
        if literal { return makeLiteral(clean) }
        var out: [UInt8] = [34]
        for c in clean {
            if c == 34 || c == 92 { out.append(92) }
            out.append(c)
        }
        out.append(34)
        return out
    }

    /// Dovecot's form for text people read (Subject, display names): runs of blanks become one
    /// space, line ends go, leading and trailing blanks go. An untouched value is sent quoted as
    /// is; a value that needed any change, or holds `"`, `\` or 8-bit bytes, is sent as a literal.
    public static func humanString(_ input: [UInt8]) -> [UInt8] {
        let src = sanitize(input)
        var modify = false
        var removeCount = 0
        var lastLWSP = true
        var whitespacePrefix = true
        for c in src {
            switch c {
            case 9, 32:
                if c == 9 { modify = true }
                if lastLWSP { modify = true; removeCount += 1 }
                lastLWSP = true
            case 13, 10:
                removeCount += 1
                modify = true
            case 34, 92:
                modify = true
                lastLWSP = false
            default:
                if c >= 0x80 { modify = true }
                lastLWSP = false
            }
            if !lastLWSP { whitespacePrefix = false }
        }
        if lastLWSP && !src.isEmpty && !whitespacePrefix { modify = true; removeCount += 1 }
        if !modify { return [34] + src + [34] }
        if src.count == removeCount { return [34, 34] }
        var out: [UInt8] = []
        lastLWSP = true
        whitespacePrefix = true
        for c in src {
            switch c {
            case 9, 32:
                if !lastLWSP { out.append(32) }
                lastLWSP = true
            case 13, 10:
                break
            default:
                lastLWSP = false
                out.append(c)
            }
            if !lastLWSP { whitespacePrefix = false }
        }
        if lastLWSP && !out.isEmpty && out.last == 32 { out.removeLast() }
        if out.isEmpty { return [34, 34] }
        return makeLiteral(out)
    }

    private static func makeLiteral(_ bytes: [UInt8]) -> [UInt8] {
        Array("{\(bytes.count)}\r\n".utf8) + bytes
    }

    /// NUL may not appear in IMAP strings, not even literals: U+FFFD takes its place.
    private static func sanitize(_ bytes: [UInt8]) -> [UInt8] {
        guard bytes.contains(0) else { return bytes }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 8)
        for c in bytes {
            if c == 0 { out += [0xEF, 0xBF, 0xBD] } else { out.append(c) }
        }
        return out
    }
}

/// The fields of a message's header that IMAP's ENVELOPE carries (RFC 3501 §7.4.2), as
/// written: encoded words are not decoded (clients do that).
public struct MessageEnvelope: Sendable, Equatable {
    /// Date, unfolded.
    public var date: [UInt8]?
    /// Subject, unfolded, encoded words kept.
    public var subject: [UInt8]?
    /// From.
    public var from: MailAddressList?
    /// Sender (IMAP shows From when absent).
    public var sender: MailAddressList?
    /// Reply-To (IMAP shows From when absent).
    public var replyTo: MailAddressList?
    /// To.
    public var to: MailAddressList?
    /// Cc.
    public var cc: MailAddressList?
    /// Bcc.
    public var bcc: MailAddressList?
    /// In-Reply-To, unfolded.
    public var inReplyTo: [UInt8]?
    /// Message-ID, unfolded.
    public var messageID: [UInt8]?

    /// The envelope of a header block. When a field occurs more than once the first one counts.
    public init(fields: [MailHeaderField]) {
        func first(_ name: String) -> MailHeaderField? { fields.first { $0.hasName(name) } }
        date = first("Date")?.value
        subject = first("Subject")?.value
        from = first("From").map { MailAddressList(parsing: $0.value) }
        sender = first("Sender").map { MailAddressList(parsing: $0.value) }
        replyTo = first("Reply-To").map { MailAddressList(parsing: $0.value) }
        to = first("To").map { MailAddressList(parsing: $0.value) }
        cc = first("Cc").map { MailAddressList(parsing: $0.value) }
        bcc = first("Bcc").map { MailAddressList(parsing: $0.value) }
        inReplyTo = first("In-Reply-To")?.value
        messageID = first("Message-ID")?.value
    }

    /// The subject with RFC 2047 words decoded, for display and search.
    public var decodedSubject: String? { subject.map { EncodedWords.decode($0) } }

    /// The ENVELOPE as IMAP sends it, parentheses included.
    public var imapString: [UInt8] {
        var out: [UInt8] = [40]
        out += IMAPString.nstring(date)
        out.append(32)
        out += subject.map { IMAPString.humanString($0) } ?? Array("NIL".utf8)
        let fromList = nonEmpty(from)
        for list in [fromList, nonEmpty(sender) ?? fromList, nonEmpty(replyTo) ?? fromList,
                     nonEmpty(to), nonEmpty(cc), nonEmpty(bcc)] {
            out.append(32)
            out += MessageEnvelope.addresses(list)
        }
        out.append(32)
        out += IMAPString.nstring(inReplyTo)
        out.append(32)
        out += IMAPString.nstring(messageID)
        out.append(41)
        return out
    }

    private func nonEmpty(_ list: MailAddressList?) -> MailAddressList? {
        guard let list, !list.entries.isEmpty else { return nil }
        return list
    }

    /// An address list in ENVELOPE form; groups as RFC 3501 says (a start entry with NIL host
    /// and an end entry of four NILs). A missing local part or domain shows as
    /// `MISSING_MAILBOX` / `MISSING_DOMAIN`, as Dovecot does, so it is not read as a group.
    static func addresses(_ list: MailAddressList?) -> [UInt8] {
        guard let list else { return Array("NIL".utf8) }
        var out: [UInt8] = [40]
        func mailbox(_ m: MailAddress) {
            out.append(40)
            out += m.rawDisplayName.map { IMAPString.humanString($0) } ?? Array("NIL".utf8)
            out.append(32)
            out += IMAPString.nstring(m.route.map { Array($0.utf8) })
            out.append(32)
            out += IMAPString.string(Array((m.localPart.isEmpty ? "MISSING_MAILBOX" : m.localPart).utf8))
            out.append(32)
            out += IMAPString.string(Array((m.domain.isEmpty ? "MISSING_DOMAIN" : m.domain).utf8))
            out.append(41)
        }
        for e in list.entries {
            switch e {
            case .mailbox(let m):
                mailbox(m)
            case .group(_, let raw, let members):
                out += Array("(NIL NIL ".utf8) + IMAPString.string(raw) + Array(" NIL)".utf8)
                members.forEach(mailbox)
                out += Array("(NIL NIL NIL NIL)".utf8)
            }
        }
        out.append(41)
        return out
    }
}

extension MIMEPart {
    /// IMAP `BODYSTRUCTURE` of this part (parentheses included), with extension data.
    ///
    /// Follows Dovecot: type, subtype, parameter names and encodings as written in the message
    /// (no case change); defaults `"text" "plain"`, `("charset" "us-ascii")` for text without a
    /// charset, `"7bit"`; sizes with bare LFs counted as CRLF; message/rfc822 always
    /// `"message" "rfc822"`; a multipart without parts shows one empty text/plain part.
    public var imapBodyStructure: [UInt8] { [40] + imapWrite(extended: true) + [41] }

    /// IMAP `BODY` (the non-extensible form) of this part, parentheses included.
    public var imapBody: [UInt8] { [40] + imapWrite(extended: false) + [41] }

    private static let emptyBody = Array("(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)".utf8)
    private static let emptyBodyStructure =
        Array("(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)".utf8)

    func imapWrite(extended: Bool) -> [UInt8] {
        var out: [UInt8] = []
        func s(_ text: String) -> [UInt8] { IMAPString.string(Array(text.utf8)) }
        if isMultipart {
            if children.isEmpty {
                out += extended ? MIMEPart.emptyBodyStructure : MIMEPart.emptyBody
            }
            for c in children { out.append(40); out += c.imapWrite(extended: extended); out.append(41) }
            out.append(32)
            out += s(contentType.subtype)
            if extended {
                out.append(32)
                out += MIMEPart.params(contentType.parameters, defaultCharset: false)
                out += commonExtension()
            }
            return out
        }
        let text: Bool
        if isMessage && contentType.subtype.caseInsensitiveEquals("rfc822") {
            out += Array("\"message\" \"rfc822\"".utf8)
            text = false
        } else if let t = explicitContentType {
            out += s(t.type) + [32] + s(t.subtype)
            text = t.isText
        } else if isMessage {
            out += Array("\"message\" \"rfc822\"".utf8)
            text = false
        } else {
            out += Array("\"text\" \"plain\"".utf8)
            text = true
        }
        out.append(32)
        out += MIMEPart.params(explicitContentType?.parameters ?? [], defaultCharset: text)
        out.append(32)
        out += IMAPString.nstring(contentID)
        out.append(32)
        out += IMAPString.nstring(contentDescription)
        out.append(32)
        out += contentTransferEncoding.map { s($0) } ?? Array("\"7bit\"".utf8)
        out += Array(" \(bodyVirtualSize)".utf8)
        if text {
            out += Array(" \(bodyLines)".utf8)
        } else if isMessage, let child = children.first {
            out += Array(" ".utf8) + child.envelope.imapString + [32, 40] + child.imapWrite(extended: extended) + [41]
            out += Array(" \(bodyLines)".utf8)
        }
        if extended {
            out.append(32)
            out += IMAPString.nstring(contentMD5)
            out += commonExtension()
        }
        return out
    }

    private func commonExtension() -> [UInt8] {
        var out: [UInt8] = [32]
        if let d = contentDisposition {
            out.append(40)
            out += IMAPString.string(Array(d.value.utf8))
            out.append(32)
            out += MIMEPart.params(d.parameters, defaultCharset: false)
            out.append(41)
        } else {
            out += Array("NIL".utf8)
        }
        out.append(32)
        if let langs = contentLanguage, !langs.isEmpty {
            out.append(40)
            for (n, l) in langs.enumerated() {
                if n > 0 { out.append(32) }
                out += IMAPString.string(Array(l.utf8))
            }
            out.append(41)
        } else {
            out += Array("NIL".utf8)
        }
        out.append(32)
        out += IMAPString.nstring(contentLocation)
        return out
    }

    private static func params(_ params: [MIMEParameter], defaultCharset: Bool) -> [UInt8] {
        if params.isEmpty && !defaultCharset { return Array("NIL".utf8) }
        var out: [UInt8] = [40]
        var sawCharset = false
        for (n, p) in params.enumerated() {
            if n > 0 { out.append(32) }
            if p.name.caseInsensitiveEquals("charset") { sawCharset = true }
            out += IMAPString.string(Array(p.wireName.utf8))
            out.append(32)
            out += IMAPString.string(p.rawValue)
        }
        if defaultCharset && !sawCharset {
            if !params.isEmpty { out.append(32) }
            out += Array("\"charset\" \"us-ascii\"".utf8)
        }
        out.append(41)
        return out
    }
}
