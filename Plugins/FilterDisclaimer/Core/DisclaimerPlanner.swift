import PluginAPI

/// Where in a message's MIME tree the disclaimer goes, whether the message is signed or
/// encrypted, and whether it already carries the disclaimer. Pure functions of the parsed tree.
package enum DisclaimerPlanner {
    /// One place a disclaimer goes.
    package enum Target: Sendable, Equatable {
        /// Appended to this text/plain or text/html part.
        case text(part: Int, PartAppender.Kind)
        /// A new text/plain part after the last part of this multipart.
        case newPart(multipart: Int)
    }

    /// The places for `part` (the message's root at first): a text/plain or text/html body
    /// itself; in multipart/alternative every text/plain and text/html alternative (through
    /// nested multiparts); in multipart/related its root part; in multipart/mixed (and any other
    /// multipart) its first part when that is text or a multipart with places, else a new part.
    /// Empty when there is no text to stamp (a single non-text part).
    package static func targets(_ part: MIMEPart) -> [Target] {
        guard part.isMultipart else { return textTarget(part).map { [$0] } ?? [] }
        switch part.contentType.subtype.lowercased() {
        case "alternative":
            return part.children.flatMap { child in
                child.isMultipart ? targets(child) : (textTarget(child).map { [$0] } ?? [])
            }
        case "related":
            return part.children.first.map(targets) ?? []
        default:
            if let first = part.children.first {
                if first.isMultipart {
                    let inner = targets(first)
                    if !inner.isEmpty { return inner }
                } else if let target = textTarget(first) {
                    return [target]
                }
            }
            return [.newPart(multipart: part.index)]
        }
    }

    /// A text/plain or text/html leaf that is not an attachment.
    static func textTarget(_ part: MIMEPart) -> Target? {
        guard part.isLeaf, part.contentType.isText else { return nil }
        if part.contentDisposition?.value.lowercased() == "attachment" { return nil }
        switch part.contentType.subtype.lowercased() {
        case "plain": return .text(part: part.index, .plain)
        case "html": return .text(part: part.index, .html)
        default: return nil
        }
    }

    /// Content types whose bytes a signature covers or that hold encrypted content.
    static let protectedTypes: Set<String> = [
        "multipart/signed", "multipart/encrypted", "application/pkcs7-mime", "application/x-pkcs7-mime",
        "application/pkcs7-signature", "application/x-pkcs7-signature", "application/pgp-encrypted",
        "application/pgp-signature",
    ]

    /// Inline PGP: armour a text part carries (a clear-signed or encrypted body).
    static let pgpArmour = ["-----BEGIN PGP SIGNED MESSAGE-----", "-----BEGIN PGP MESSAGE-----"]

    /// Whether the message is signed or encrypted: multipart/signed, S/MIME, PGP/MIME, or inline
    /// PGP in a text part. Enclosed messages (message/rfc822) do not count: text added outside
    /// them does not touch their signatures.
    package static func isSignedOrEncrypted(_ part: MIMEPart, in message: [UInt8]) -> Bool {
        if protectedTypes.contains(part.contentType.mimeType) { return true }
        if part.isMessage { return false }
        if part.isMultipart { return part.children.contains { isSignedOrEncrypted($0, in: message) } }
        guard part.contentType.isText else { return false }
        let body = part.decodedBody(in: message)
        return pgpArmour.contains { contains(body, Array($0.utf8)) }
    }

    /// Whether a text part of the message (enclosed messages aside, which a reply quotes as
    /// text anyway) already holds `disclaimer`: compared with blanks, line breaks and quote
    /// marks (`> `) collapsed, HTML tags and the common entities removed.
    package static func alreadyCarries(_ disclaimer: String, _ part: MIMEPart, in message: [UInt8]) -> Bool {
        let needle = normalised(disclaimer)
        guard !needle.isEmpty else { return true }
        return carries(needle, part, in: message)
    }

    private static func carries(_ needle: String, _ part: MIMEPart, in message: [UInt8]) -> Bool {
        if part.isMultipart { return part.children.contains { carries(needle, $0, in: message) } }
        guard part.isLeaf, part.contentType.isText else { return false }
        let subtype = part.contentType.subtype.lowercased()
        guard subtype == "plain" || subtype == "html" else { return false }
        let text = part.text(in: message)
        return normalised(subtype == "html" ? HTMLText.visibleText(text) : text).containsUTF8(needle)
    }

    /// Text with every run of whitespace one space, quote marks at line starts dropped.
    static func normalised(_ text: String) -> String {
        // Scalar by scalar into bytes: splitting into Characters (grapheme clusters) cost more
        // than everything else a filter does to a large text part.
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        var atLineStart = true, pendingSpace = false
        for s in text.unicodeScalars {
            switch s.value {
            case 0x0A, 0x0B, 0x0C, 0x0D, 0x85, 0x2028, 0x2029:
                atLineStart = true
                pendingSpace = !out.isEmpty
                continue
            default: break
            }
            if atLineStart && (s == ">" || s.isWhitespaceFast) { continue }
            atLineStart = false
            if s.isWhitespaceFast {
                pendingSpace = !out.isEmpty
                continue
            }
            if pendingSpace {
                out.append(0x20)
                pendingSpace = false
            }
            out.append(contentsOf: UTF8.encode(s)!)
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, haystack.count >= needle.count else { return false }
        var i = 0
        while i + needle.count <= haystack.count {
            if haystack[i] == needle[0] && haystack[i..<(i + needle.count)].elementsEqual(needle) { return true }
            i += 1
        }
        return false
    }
}

/// The text a reader sees in HTML, roughly: tags dropped (block tags as line breaks), the
/// entities a disclaimer uses decoded. Enough to recognise a disclaimer, not a renderer.
enum HTMLText {
    static let entities: [String: String] = ["amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'", "nbsp": " "]

    static func visibleText(_ html: String) -> String {
        var out = ""
        var i = html.startIndex
        while i < html.endIndex {
            let c = html[i]
            if c == "<" {
                guard let close = html[i...].firstIndex(of: ">") else { break }
                let tag = html[html.index(after: i)..<close].lowercased()
                if tag.hasPrefix("br") || tag.hasPrefix("p") || tag.hasPrefix("/p") || tag.hasPrefix("div") || tag.hasPrefix("/div") {
                    out += "\n"
                }
                i = html.index(after: close)
            } else if c == "&", let semi = html[i...].prefix(12).firstIndex(of: ";") {
                let name = String(html[html.index(after: i)..<semi])
                if let text = entities[name.lowercased()] {
                    out += text
                } else if name.hasPrefix("#"), let scalar = numericReference(name.dropFirst()) {
                    out.unicodeScalars.append(scalar)
                } else {
                    out += html[i...semi]
                }
                i = html.index(after: semi)
            } else {
                out.append(c)
                i = html.index(after: i)
            }
        }
        return out
    }

    static func numericReference(_ digits: Substring) -> Unicode.Scalar? {
        let value = digits.first == "x" || digits.first == "X" ? UInt32(digits.dropFirst(), radix: 16) : UInt32(digits)
        return value.flatMap { Unicode.Scalar($0) }
    }
}
