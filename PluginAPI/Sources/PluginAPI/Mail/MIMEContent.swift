/// What content filters read of a part: its body with the transfer encoding undone, its text in
/// its charset, its file name. Offsets are those of `MIMEPart` (from the start of `message`).
extension MIMEPart {
    /// The body bytes as they stand in the message (still transfer-encoded).
    public func rawBody(in message: [UInt8]) -> ArraySlice<UInt8> {
        let start = min(bodyOffset, message.count), end = min(bodyOffset + bodySize, message.count)
        return message[start..<end]
    }

    /// The body with its transfer encoding undone (base64, quoted-printable; others as they are).
    public func decodedBody(in message: [UInt8]) -> [UInt8] {
        let raw = rawBody(in: message)
        switch contentTransferEncoding?.lowercased() {
        case "base64": return Base64Decoder.decode(raw)
        case "quoted-printable": return QuotedPrintableDecoder.decode(raw)
        default: return Array(raw)
        }
    }

    /// The decoded body as text in its declared charset (US-ASCII when none is declared, UTF-8
    /// or Latin-1 guessed when the charset is unknown).
    public func text(in message: [UInt8]) -> String {
        let bytes = decodedBody(in: message)
        guard let charset = contentType.charset else { return MailCharset.fallback(bytes) }
        return MailCharset.decode(bytes, charset: charset)
    }

    /// The file name a mail client would save the part under: Content-Disposition's `filename`,
    /// else Content-Type's `name` (both RFC 2231 and RFC 2047 decoded), or nil.
    public var fileName: String? {
        if let name = contentDisposition?.filename, !name.isEmpty { return name }
        if let name = contentType.parameters.value(of: "name"), !name.isEmpty { return name }
        return nil
    }

    /// Whether the part is a leaf holding content (not a multipart or an enclosed message).
    public var isLeaf: Bool { !isMultipart && !isMessage }
}

/// A file carried uuencoded inside a text body (`begin MODE NAME` ... `end`), the way mail sent
/// attachments before MIME and some clients and viruses still do.
public struct UUEncodedFile: Sendable, Equatable {
    public var name: String
    public var mode: String
    public var content: [UInt8]
    /// Where `begin` starts and just after `end`'s line, in the text searched.
    public var range: Range<Int>

    public init(name: String, mode: String, content: [UInt8], range: Range<Int>) {
        self.name = name
        self.mode = mode
        self.content = content
        self.range = range
    }

    /// Every uuencoded file in `text` (lines end in LF or CRLF). A block without its `end` line
    /// runs to the end of the text; lines that are not uuencoding inside a block are skipped.
    public static func find(in text: [UInt8]) -> [UUEncodedFile] {
        var files: [UUEncodedFile] = []
        var lines: [(start: Int, end: Int, next: Int)] = []
        var i = 0
        while i < text.count {
            var e = i
            while e < text.count && text[e] != 10 { e += 1 }
            let next = min(e + 1, text.count)
            var contentEnd = e
            if contentEnd > i && text[contentEnd - 1] == 13 { contentEnd -= 1 }
            lines.append((i, contentEnd, next))
            i = next
        }
        var n = 0
        while n < lines.count {
            let line = Array(text[lines[n].start..<lines[n].end])
            guard let (mode, name) = beginLine(line) else { n += 1; continue }
            let start = lines[n].start
            var content: [UInt8] = []
            var end = text.count
            n += 1
            while n < lines.count {
                let l = text[lines[n].start..<lines[n].end]
                if l.elementsEqual("end".utf8) { end = lines[n].next; n += 1; break }
                content += decodeLine(l)
                n += 1
            }
            files.append(UUEncodedFile(name: name, mode: mode, content: content, range: start..<end))
        }
        return files
    }

    /// `begin 644 name` → (mode, name): a mode of three or four octal digits, then the name.
    static func beginLine(_ line: [UInt8]) -> (String, String)? {
        guard line.starts(with: "begin ".utf8) else { return nil }
        let rest = line.dropFirst(6)
        guard let space = rest.firstIndex(of: 32) else { return nil }
        let mode = rest[rest.startIndex..<space]
        guard (3...4).contains(mode.count), mode.allSatisfy({ (48...55).contains($0) }) else { return nil }
        let name = rest[(space + 1)...]
        guard !name.isEmpty else { return nil }
        return (String(decoding: mode, as: UTF8.self), MailCharset.fallback(Array(name)))
    }

    /// One line: its first character gives the byte count, then groups of four characters give
    /// three bytes each (a backquote stands for zero).
    static func decodeLine(_ line: ArraySlice<UInt8>) -> [UInt8] {
        guard let first = line.first else { return [] }
        let count = Int((first &- 32) & 63)
        guard count > 0 else { return [] }
        var out: [UInt8] = []
        out.reserveCapacity(count)
        var chars = Array(line.dropFirst())
        while chars.count % 4 != 0 { chars.append(96) }
        var j = 0
        while j + 3 < chars.count && out.count < count {
            let c = (0..<4).map { UInt32((chars[j + $0] &- 32) & 63) }
            let v = c[0] << 18 | c[1] << 12 | c[2] << 6 | c[3]
            for shift in [16, 8, 0] where out.count < count { out.append(UInt8((v >> UInt32(shift)) & 0xff)) }
            j += 4
        }
        return out
    }
}
