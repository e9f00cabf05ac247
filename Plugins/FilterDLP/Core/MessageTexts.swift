import PluginAPI

/// The texts of a message a DLP scan reads: the Subject, and the decoded text of every text part
/// and text-like attachment (enclosed messages included), HTML with its tags removed.
package enum MessageTexts {
    /// Application types that are text in practice.
    static let textLikeTypes: Set<String> = [
        "application/json", "application/xml", "application/csv", "application/x-csv", "application/javascript",
        "application/x-yaml", "application/yaml", "application/rtf",
    ]
    /// File names that are text whatever their declared type (often application/octet-stream).
    static let textLikeExtensions = [".txt", ".csv", ".tsv", ".json", ".xml", ".log", ".md"]

    package static func texts(of message: FilterMessage) -> [ScanText] {
        var out: [ScanText] = []
        if let subject = message.header("Subject") { out.append(ScanText(EncodedWords.decode(subject))) }
        let mime = message.mime()
        for part in mime.root.allParts where part.isLeaf && isTextLike(part) {
            let text = part.text(in: message.bytes)
            out.append(ScanText(part.contentType.subtype.lowercased() == "html" ? strippingTags(text) : text))
        }
        return out
    }

    /// Whether a leaf part is read as text: text/*, the text-like application types, `+xml` and
    /// `+json` types, or a file name with a text extension.
    package static func isTextLike(_ part: MIMEPart) -> Bool {
        let type = part.contentType.mimeType
        if part.contentType.isText || textLikeTypes.contains(type) || type.hasSuffix("+xml") || type.hasSuffix("+json") { return true }
        guard let name = part.fileName?.lowercased() else { return false }
        return textLikeExtensions.contains { name.hasSuffix($0) }
    }

    /// HTML as text: tags dropped (each as a space, so words and digit groups stay apart the way
    /// a reader sees them only where the markup separates them), common entities decoded.
    static func strippingTags(_ html: String) -> String {
        var out = String.UnicodeScalarView()
        let s = Array(html.unicodeScalars)
        var i = 0
        while i < s.count {
            let c = s[i]
            if c == "<" {
                var j = i + 1
                while j < s.count && s[j] != ">" { j += 1 }
                var k = i + 1
                if k < j && s[k] == "/" { k += 1 }
                var name = ""
                while k < j && ScanText.isAlphanumeric(s[k]) { name.unicodeScalars.append(s[k]); k += 1 }
                // Inline markup (<b>, <span>) does not separate what it wraps; blocks do.
                if !inlineTags.contains(name.lowercased()) { out.append(" ") }
                i = j + 1
            } else if c == "&" {
                var j = i + 1
                while j < s.count && j - i < 10 && s[j] != ";" { j += 1 }
                let entity = j < s.count && s[j] == ";" ? String(String.UnicodeScalarView(s[(i + 1)..<j])) : ""
                if let decoded = decode(entity) {
                    out.append(decoded)
                    i = j + 1
                } else {
                    out.append(c)
                    i += 1
                }
            } else {
                out.append(c)
                i += 1
            }
        }
        return String(out)
    }

    static let inlineTags: Set<String> = ["a", "b", "i", "u", "em", "strong", "span", "font", "small", "big", "sub", "sup", "code", "tt"]

    static func decode(_ entity: String) -> Unicode.Scalar? {
        switch entity.lowercased() {
        case "amp": return "&"
        case "lt": return "<"
        case "gt": return ">"
        case "quot": return "\""
        case "apos": return "'"
        case "nbsp": return " "
        default:
            guard entity.hasPrefix("#") else { return nil }
            let digits = entity.dropFirst()
            let value = digits.first == "x" || digits.first == "X" ? UInt32(digits.dropFirst(), radix: 16) : UInt32(digits)
            return value.flatMap { Unicode.Scalar($0) }
        }
    }
}
