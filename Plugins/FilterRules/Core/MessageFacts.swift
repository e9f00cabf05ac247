import Foundation
import PluginAPI

/// What the rules look at, worked out once per message: the decoded header fields, the text of
/// the text parts (bounded), the hosts of the links in them, the client. Rules then only compare.
struct MessageFacts: Sendable {
    /// Each field's name and its value unfolded and RFC 2047-decoded.
    var fields: [(name: String, value: String)]
    /// The text/plain parts and the text/html parts with their tags taken out, joined by
    /// newlines, at most `maxScanBytes` of UTF-8.
    var text: String
    /// `text` lower-cased with every run of white space made one space, for phrases.
    var lowercasedText: String
    var hasPlainText: Bool
    var hasHTML: Bool
    /// Lower-case hosts of the http(s) links in the text parts, first seen first, at most `maxURIHosts`.
    var uriHosts: [String]
    var clientAddress: IPAddress?
    /// The verified hostname, or "" when the client has none.
    var clientHostname: String
    var helo: String
    var sender: String
    var recipients: [String]
    var size: Int
    /// The client is in `trusted_networks` or authenticated: "inside the network".
    var clientIsTrusted: Bool

    init(_ message: FilterMessage, trustedNetworks: [IPNetwork], maxScanBytes: Int, maxURIHosts: Int) {
        fields = message.judgedFields.map { ($0.name, EncodedWords.decode($0.value)) }
        let connection = message.connection
        clientAddress = IPAddress(connection.peerAddress)
        clientHostname = connection.peerHostname ?? ""
        helo = message.helo ?? connection.heloName ?? ""
        sender = message.sender
        recipients = message.recipients
        size = message.size
        let inTrusted = clientAddress.map { a in trustedNetworks.contains { $0.contains(a) } } ?? false
        clientIsTrusted = inTrusted || connection.authenticatedUser != nil

        var text = "", plain = false, html = false
        var hosts: [String] = []
        let bytes = message.bytes
        for part in message.mime().root.allParts where part.isLeaf && part.contentType.isText {
            let subtype = part.contentType.subtype.lowercased()
            guard subtype == "plain" || subtype == "html" else { continue }
            // An attached text file is content too, but not what the sender wrote to the reader.
            if part.contentDisposition?.value.lowercased() == "attachment" { continue }
            let decoded = part.text(in: bytes)
            if subtype == "html" { html = true } else { plain = true }
            for host in URIHosts.find(in: decoded) where hosts.count < maxURIHosts && !hosts.contains(host) { hosts.append(host) }
            guard text.utf8.count < maxScanBytes else { continue }
            let readable = subtype == "html" ? HTMLText.strippingTags(decoded) : decoded
            text += (text.isEmpty ? "" : "\n") + readable
        }
        if text.utf8.count > maxScanBytes {
            // A character cut in two becomes U+FFFD, which no rule looks for.
            text = String(decoding: text.utf8.prefix(maxScanBytes), as: UTF8.self)
        }
        self.text = text
        lowercasedText = Phrase.normalised(text)
        hasPlainText = plain
        hasHTML = html
        uriHosts = hosts
    }

    /// The values of the fields called `name` (case ignored).
    func values(_ name: String) -> [String] {
        fields.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }
}

/// HTML as the reader sees its words: tags and comments out (replaced by a space, so words on
/// either side stay apart), the commonest entities decoded. Not a renderer: enough for phrases.
enum HTMLText {
    static func strippingTags(_ html: String) -> String {
        var out = ""
        out.reserveCapacity(html.utf8.count)
        var inTag = false
        for c in html.unicodeScalars {
            if inTag {
                if c == ">" { inTag = false; out.append(" ") }
            } else if c == "<" {
                inTag = true
            } else {
                out.unicodeScalars.append(c)
            }
        }
        for (entity, char) in [("&nbsp;", " "), ("&lt;", "<"), ("&gt;", ">"), ("&quot;", "\""), ("&#39;", "'"), ("&amp;", "&")] {
            out = out.replacingOccurrences(of: entity, with: char)
        }
        return out
    }
}
