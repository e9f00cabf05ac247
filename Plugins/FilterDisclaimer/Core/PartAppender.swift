import PluginAPI

/// Adds a disclaimer to one text/plain or text/html part, MIME-correctly: the text in the part's
/// own charset and transfer encoding, so the part still decodes as its header says.
///
/// - The disclaimer is encoded in the part's charset when every character fits; the part's own
///   bytes are then kept as they were (never decoded to text and back). When a character of a
///   plain-text disclaimer does not fit, the whole part becomes UTF-8 (its text decoded, its
///   `charset` parameter changed). An HTML disclaimer that does not fit is written with numeric
///   character references instead, and the part keeps its charset.
/// - The transfer encoding stays: base64 and quoted-printable bodies are encoded again; 7bit,
///   8bit and binary bodies get the bytes appended, except that a 7bit part whose disclaimer is
///   not ASCII becomes quoted-printable. Any other encoding (x-uuencode) is left alone (nil).
package enum PartAppender {
    package enum Kind: Sendable, Equatable {
        case plain, html
    }

    /// The change that adds `addition` (plain text, or HTML for `.html`) to `part`, or nil when
    /// its transfer encoding cannot be written again.
    package static func change(for part: MIMEPart, in message: [UInt8], kind: Kind, addition: String) -> MIMERewrite.Change? {
        let encoding = (part.contentTransferEncoding ?? "7bit").lowercased()
        guard ["7bit", "8bit", "binary", "quoted-printable", "base64"].contains(encoding) else { return nil }
        let charset = part.contentType.charset ?? "us-ascii"
        let decoded = part.decodedBody(in: message)
        let newline: [UInt8] = decoded.contains(10) && !containsCRLF(decoded) ? [10] : [13, 10]
        let addition = normalisedLineEnds(addition, newline: newline)

        var newCharset: String?
        var body: [UInt8]
        var added: [UInt8]
        if let bytes = MailCharset.encode(addition, charset: charset) {
            added = bytes
            body = combine(decoded, added, kind: kind, newline: newline)
        } else if kind == .html, let bytes = MailCharset.encode(characterReferences(addition), charset: charset) {
            added = bytes
            body = combine(decoded, added, kind: kind, newline: newline)
        } else {
            // The part becomes UTF-8: its text decoded from its charset, the disclaimer added.
            added = Array(addition.utf8)
            body = combine(Array(MailCharset.decode(decoded, charset: charset).utf8), added, kind: kind, newline: newline)
            newCharset = "utf-8"
        }

        var newEncoding: String?
        let encoded: [UInt8]
        let raw = part.rawBody(in: message)
        let trailingLineEnd: [UInt8] = raw.last == 10 ? [13, 10] : []
        switch encoding {
        case "base64":
            encoded = Base64Encoder.encode(body) + trailingLineEnd
        case "quoted-printable":
            encoded = QuotedPrintableEncoder.encode(body)
        case "7bit" where !added.allSatisfy({ $0 < 0x80 }) || newCharset != nil:
            encoded = QuotedPrintableEncoder.encode(body)
            newEncoding = "quoted-printable"
        default:
            encoded = body
        }
        guard newCharset != nil || newEncoding != nil else { return .replaceBody(index: part.index, bytes: encoded) }
        let header = PartHeader.rewritten(part, charset: newCharset, transferEncoding: newEncoding, contentFieldsOnly: part.index == 0)
        return .replacePart(index: part.index, bytes: header + encoded)
    }

    /// `body` with `added` after it: plain text after an empty line; HTML before the last
    /// `</body>` (ASCII case ignored), else at the end.
    static func combine(_ body: [UInt8], _ added: [UInt8], kind: Kind, newline: [UInt8]) -> [UInt8] {
        if kind == .html, let at = lastBodyClose(in: body) {
            return Array(body[..<at]) + added + newline + Array(body[at...])
        }
        if body.isEmpty { return added + newline }
        let endsWithLine = body.last == 10
        // A body without its final line end (the one a multipart delimiter takes) stays without.
        return body + (endsWithLine ? newline : newline + newline) + added + (endsWithLine ? newline : [])
    }

    /// Where the last `</body` starts, ASCII case ignored.
    static func lastBodyClose(in body: [UInt8]) -> Int? {
        let tag = Array("</body".utf8)
        var i = body.count - tag.count
        while i >= 0 {
            var match = true
            for (k, t) in tag.enumerated() where asciiLower(body[i + k]) != t {
                match = false
                break
            }
            if match { return i }
            i -= 1
        }
        return nil
    }

    static func asciiLower(_ b: UInt8) -> UInt8 { (65...90).contains(b) ? b + 32 : b }

    static func containsCRLF(_ bytes: [UInt8]) -> Bool {
        var i = 1
        while i < bytes.count {
            if bytes[i] == 10 && bytes[i - 1] == 13 { return true }
            i += 1
        }
        return false
    }

    /// `text` with every line end as `newline`.
    static func normalisedLineEnds(_ text: String, newline: [UInt8]) -> String {
        var out: [UInt8] = []
        let bytes = Array(text.utf8)
        var i = 0
        while i < bytes.count {
            if bytes[i] == 13 && i + 1 < bytes.count && bytes[i + 1] == 10 { i += 1; continue }
            if bytes[i] == 10 || bytes[i] == 13 { out += newline } else { out.append(bytes[i]) }
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// HTML with every non-ASCII character as `&#xHEX;`: fits any ASCII-compatible charset.
    static func characterReferences(_ html: String) -> String {
        var out = ""
        for scalar in html.unicodeScalars {
            if scalar.isASCII { out.unicodeScalars.append(scalar) } else { out += "&#x" + String(scalar.value, radix: 16) + ";" }
        }
        return out
    }
}

/// A part's header block written again with a new charset or transfer encoding; every other
/// field as it came.
enum PartHeader {
    static func rewritten(_ part: MIMEPart, charset: String?, transferEncoding: String?, contentFieldsOnly: Bool) -> [UInt8] {
        let contentFields = MIMERewrite.contentFields
        var out: [UInt8] = []
        var wroteType = false, wroteEncoding = false
        for field in part.fields {
            if contentFieldsOnly && !contentFields.contains(where: { field.hasName($0) }) { continue }
            if field.hasName("Content-Type"), let charset, !wroteType {
                out += Array("Content-Type:".utf8) + settingParameter("charset", to: charset, in: field.rawValue) + [13, 10]
                wroteType = true
            } else if field.hasName("Content-Transfer-Encoding"), let transferEncoding {
                if !wroteEncoding { out += Array("Content-Transfer-Encoding: \(transferEncoding)\r\n".utf8) }
                wroteEncoding = true
            } else {
                out += Array(field.name.utf8) + [58] + field.rawValue + [13, 10]
            }
        }
        if let charset, !wroteType {
            out += Array("Content-Type: \(part.contentType.mimeType); charset=\(charset)\r\n".utf8)
        }
        if let transferEncoding, !wroteEncoding {
            out += Array("Content-Transfer-Encoding: \(transferEncoding)\r\n".utf8)
        }
        return out + [13, 10]
    }

    /// A Content-Type value (as after the colon) with parameter `name` set to `value`: its old
    /// value replaced, or the parameter added at the end.
    static func settingParameter(_ name: String, to value: String, in raw: [UInt8]) -> [UInt8] {
        let unfolded = MailHeaderField.unfold(raw)
        // Split at semicolons outside quoted strings.
        var pieces: [[UInt8]] = [[]]
        var quoted = false, escaped = false
        for b in unfolded {
            if escaped { escaped = false } else if quoted && b == 92 { escaped = true } else if b == 34 { quoted.toggle() }
            if b == 59 && !quoted { pieces.append([]) } else { pieces[pieces.count - 1].append(b) }
        }
        let target = name.lowercased()
        var replaced = false
        for i in pieces.indices.dropFirst() {
            let piece = pieces[i]
            guard let eq = piece.firstIndex(of: 61) else { continue }
            let key = String(decoding: piece[..<eq], as: UTF8.self).trimmingASCIIBlanks.lowercased()
            // `charset*` (RFC 2231) goes too: the plain value replaces it.
            if key == target || key == target + "*" {
                pieces[i] = Array(" \(name)=\(value)".utf8)
                replaced = true
            }
        }
        if !replaced { pieces.append(Array(" \(name)=\(value)".utf8)) }
        var out: [UInt8] = [32]
        for (i, piece) in pieces.enumerated() {
            if i > 0 { out.append(59) }
            out += i == 0 ? Array(String(decoding: piece, as: UTF8.self).trimmingASCIIBlanks.utf8) : piece
        }
        return out
    }
}

extension String {
    var trimmingASCIIBlanks: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }
}
