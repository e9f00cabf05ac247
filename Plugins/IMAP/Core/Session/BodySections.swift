import PluginAPI

/// A message as IMAP serves it: every bare LF turned into CRLF (messages imported from Maildir or
/// mbox may be stored with LF line ends; RFC 3501 requires CRLF, and Dovecot serves them the same
/// way), with its MIME structure parsed once. Sizes and offsets (RFC822.SIZE, BODYSTRUCTURE,
/// partial fetches) all refer to these bytes, so they agree with each other.
struct ServedMessage {
    let bytes: [UInt8]
    private var parsed: MIMEMessage?

    init(stored: [UInt8]) {
        bytes = ServedMessage.crlf(stored)
    }

    /// The parsed structure (parsed on first use).
    mutating func structure() -> MIMEMessage {
        if let parsed { return parsed }
        let p = MIMEMessage(parsing: bytes)
        parsed = p
        return p
    }

    /// Bare LFs as CRLF; the bytes unchanged (no copy) when there is none.
    static func crlf(_ bytes: [UInt8]) -> [UInt8] {
        var bare = 0
        var previous: UInt8 = 0
        for b in bytes {
            if b == 0x0A && previous != 0x0D { bare += 1 }
            previous = b
        }
        guard bare > 0 else { return bytes }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + bare)
        previous = 0
        for b in bytes {
            if b == 0x0A && previous != 0x0D { out.append(0x0D) }
            out.append(b)
            previous = b
        }
        return out
    }

    /// The size IMAP reports for stored bytes (RFC822.SIZE): each bare LF counts two.
    static func servedSize(_ stored: [UInt8]) -> Int {
        var size = stored.count
        var previous: UInt8 = 0
        for b in stored {
            if b == 0x0A && previous != 0x0D { size += 1 }
            previous = b
        }
        return size
    }
}

/// `BODY[section]` (RFC 3501 §6.4.5): which bytes of a message a section names.
enum BodySections {
    /// The bytes of `section`, or nil when the message has no such part (answered as NIL).
    static func extract(_ section: IMAPBodySection, from message: inout ServedMessage) -> [UInt8]? {
        let bytes = message.bytes
        if section.part.isEmpty {
            // The whole message needs no parse (BODY[] of one message is the commonest FETCH).
            if section.kind == .complete { return bytes }
            let root = message.structure().root
            switch section.kind {
            case .complete: return bytes
            case .header: return header(of: root, in: bytes)
            case .text: return body(of: root, in: bytes)
            case .headerFields(let names): return fields(of: root, in: bytes, names: names, keep: true)
            case .headerFieldsNot(let names): return fields(of: root, in: bytes, names: names, keep: false)
            case .mime: return nil
            }
        }
        guard let part = resolve(section.part, in: message.structure().root) else { return nil }
        switch section.kind {
        case .complete: return body(of: part, in: bytes)
        case .mime: return header(of: part, in: bytes)
        case .header, .text, .headerFields, .headerFieldsNot:
            // These name the header or text of a message: the part must be message/rfc822.
            guard let inner = part.enclosedMessage else { return nil }
            switch section.kind {
            case .header: return header(of: inner, in: bytes)
            case .text: return body(of: inner, in: bytes)
            case .headerFields(let names): return fields(of: inner, in: bytes, names: names, keep: true)
            case .headerFieldsNot(let names): return fields(of: inner, in: bytes, names: names, keep: false)
            default: return nil
            }
        }
    }

    /// The part a part number path names. In a message (the top level, or one enclosed in a
    /// message/rfc822 part), a multipart's children are numbered from 1; a message that is not
    /// multipart has one part, 1, which is its body. Deeper numbers descend into multiparts and
    /// into enclosed messages.
    static func resolve(_ path: [UInt32], in root: MIMEPart) -> MIMEPart? {
        var container = root
        var part = root
        for (i, n) in path.enumerated() {
            if container.isMultipart {
                guard n >= 1, Int(n) <= container.children.count else { return nil }
                part = container.children[Int(n) - 1]
            } else {
                guard n == 1 else { return nil }
                part = container
            }
            guard i < path.count - 1 else { break }
            if part.isMultipart, part.index != container.index {
                container = part
            } else if let inner = part.enclosedMessage {
                container = inner
            } else {
                return nil
            }
        }
        return part
    }

    static func header(of part: MIMEPart, in bytes: [UInt8]) -> [UInt8] {
        slice(bytes, part.headerOffset, part.headerSize)
    }

    static func body(of part: MIMEPart, in bytes: [UInt8]) -> [UInt8] {
        slice(bytes, part.bodyOffset, part.bodySize)
    }

    private static func slice(_ bytes: [UInt8], _ offset: Int, _ size: Int) -> [UInt8] {
        let start = min(max(0, offset), bytes.count), end = min(max(start, offset + size), bytes.count)
        return Array(bytes[start..<end])
    }

    /// HEADER.FIELDS / HEADER.FIELDS.NOT: the fields (each with its folded lines, as written)
    /// whose name is (not) listed, in message order, then the empty line (RFC 3501 §6.4.5).
    static func fields(of part: MIMEPart, in bytes: [UInt8], names: [String], keep: Bool) -> [UInt8] {
        let wanted = Set(names.map { $0.lowercased() })
        var out: [UInt8] = []
        let headerEnd = min(part.headerOffset + part.headerSize, bytes.count)
        for field in part.fields where wanted.contains(field.name.lowercased()) == keep {
            // The parser gives field offsets from the start of the message.
            let start = field.offset
            guard start < headerEnd else { continue }
            out.append(contentsOf: bytes[start..<fieldEnd(bytes, from: start, limit: headerEnd)])
        }
        out.append(contentsOf: [0x0D, 0x0A])
        return out
    }

    /// Where the field starting at `start` ends: after its line end and those of its
    /// continuation lines (lines starting with a space or tab).
    private static func fieldEnd(_ bytes: [UInt8], from start: Int, limit: Int) -> Int {
        var i = start
        while i < limit {
            guard let lf = bytes[i..<limit].firstIndex(of: 0x0A) else { return limit }
            i = lf + 1
            guard i < limit, bytes[i] == 0x20 || bytes[i] == 0x09 else { return i }
        }
        return limit
    }

    /// `<origin.count>`: the bytes from `origin`, at most `count` of them; an origin at or past
    /// the end gives the empty string (RFC 3501 §6.4.5).
    static func partial(_ data: [UInt8], _ range: IMAPPartialRange?) -> [UInt8] {
        guard let range else { return data }
        let start = Int(range.origin)
        guard start < data.count else { return [] }
        let end = min(data.count, start + Int(range.count))
        return Array(data[start..<end])
    }
}
