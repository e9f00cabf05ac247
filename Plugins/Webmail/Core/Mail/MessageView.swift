import Foundation
import PluginAPI

/// A message as the read page shows it: decoded headers, the body to display, and the
/// attachments, taken from the raw message with PluginAPI's MIME parser.
struct MessageView: Sendable {
    struct Attachment: Sendable, Equatable {
        /// Depth-first part number (the `part` of the download link).
        var part: Int
        var filename: String
        var mimeType: String
        var size: Int
        var contentID: String?
    }

    enum Body: Sendable, Equatable {
        case plain(String)
        case html(String)
        case none
    }

    var subject: String
    var from: String
    var to: String
    var cc: String
    var date: String
    var messageID: String?
    var references: [String]
    var body: Body
    /// The plain-text alternative when the body shown is HTML (for replies and quoting).
    var plainAlternative: String?
    var attachments: [Attachment]
    /// Addresses as addr-specs, for replies: Reply-To (or From), To and Cc.
    var replyAddresses: [String]
    var toAddresses: [String]
    var ccAddresses: [String]

    init(raw: [UInt8]) {
        let message = MIMEMessage(parsing: raw)
        let root = message.root
        func header(_ name: String) -> String {
            root.fields.filter { $0.hasName(name) }.map { EncodedWords.decode($0.value) }.joined(separator: ", ")
        }
        subject = header("Subject")
        from = Self.addresses(root.field("From"))
        to = Self.addresses(root.field("To"))
        cc = Self.addresses(root.field("Cc"))
        date = header("Date")
        func specs(_ name: String) -> [String] {
            root.fields.filter { $0.hasName(name) }.flatMap { MailAddressList(parsing: $0.value).mailboxes.map { $0.localPart + "@" + $0.domain } }
        }
        replyAddresses = specs("Reply-To").isEmpty ? specs("From") : specs("Reply-To")
        toAddresses = specs("To")
        ccAddresses = specs("Cc")
        messageID = root.field("Message-ID").map { String(decoding: $0.value, as: UTF8.self).trimmingCharacters(in: .whitespaces) }
        references = (header("References") + " " + header("In-Reply-To")).split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "," })
            .map(String.init).filter { $0.hasPrefix("<") }

        var html: String?
        var plain: String?
        var attachments: [Attachment] = []
        for part in root.allParts where !part.isMultipart && !part.isMessage || part.isMessage && part.index != 0 {
            let type = part.contentType.mimeType
            let disposition = part.contentDisposition?.value.lowercased()
            let filename = Self.filename(part)
            let isAttachment = disposition == "attachment" || (filename != nil && !type.hasPrefix("text/")) || part.isMessage
                || !(type.hasPrefix("text/") || type.hasPrefix("multipart/"))
            if isAttachment {
                let contentID = part.contentID.map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: CharacterSet(charactersIn: "<> \t")) }
                attachments.append(Attachment(part: part.index, filename: filename ?? Self.defaultName(type, part.index),
                                              mimeType: type, size: Self.decodedBody(part, raw).count, contentID: contentID))
                continue
            }
            if type == "text/html" && html == nil {
                html = Self.text(part, raw)
            } else if type == "text/plain" && plain == nil {
                plain = Self.text(part, raw)
            } else if type.hasPrefix("text/") && filename != nil {
                attachments.append(Attachment(part: part.index, filename: filename!, mimeType: type, size: Self.decodedBody(part, raw).count))
            }
        }
        if let html { body = .html(html) } else if let plain { body = .plain(plain) } else { body = .none }
        plainAlternative = plain
        self.attachments = attachments
    }

    static func addresses(_ field: MailHeaderField?) -> String {
        guard let field else { return "" }
        let list = MailAddressList(parsing: field.value)
        let shown = list.mailboxes.map { a -> String in
            let address = a.localPart + "@" + a.domain
            if let name = a.displayName, !name.isEmpty { return "\(name) <\(address)>" }
            return address
        }
        return shown.isEmpty ? EncodedWords.decode(field.value) : shown.joined(separator: ", ")
    }

    /// The filename from Content-Disposition (RFC 2231 decoded by the parser) or Content-Type's
    /// `name`, with RFC 2047 words some mailers put there decoded too.
    static func filename(_ part: MIMEPart) -> String? {
        let raw = part.contentDisposition?.filename ?? part.contentType.parameters.value(of: "name")
        guard let raw, !raw.isEmpty else { return nil }
        let decoded = EncodedWords.decode(raw)
        // Never a path: the browser gets the last component, without control characters.
        let last = decoded.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? decoded
        let clean = String(last.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F })
        return clean.isEmpty ? nil : clean
    }

    /// An uploaded file's name as the browser sent it, reduced to a safe last path component.
    static func filename(fromUpload raw: String) -> String {
        let last = raw.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? raw
        let clean = String(last.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F })
        return clean.isEmpty || clean == "." || clean == ".." ? "attachment" : clean
    }

    static func defaultName(_ type: String, _ index: Int) -> String {
        let ext: String
        switch type {
        case "message/rfc822": ext = "eml"
        case "image/png": ext = "png"
        case "image/jpeg": ext = "jpg"
        case "image/gif": ext = "gif"
        case "application/pdf": ext = "pdf"
        default: ext = "bin"
        }
        return "part-\(index).\(ext)"
    }

    /// A part's body with its transfer encoding undone.
    static func decodedBody(_ part: MIMEPart, _ raw: [UInt8]) -> [UInt8] {
        let start = min(part.bodyOffset, raw.count), end = min(part.bodyOffset + part.bodySize, raw.count)
        let bytes = raw[start..<end]
        switch part.contentTransferEncoding?.lowercased() {
        case "base64": return Base64Decoder.decode(bytes)
        case "quoted-printable": return QuotedPrintableDecoder.decode(bytes)
        default: return Array(bytes)
        }
    }

    /// A text part decoded to a string from its declared charset.
    static func text(_ part: MIMEPart, _ raw: [UInt8]) -> String {
        let bytes = decodedBody(part, raw)
        guard let charset = part.contentType.charset else { return MailCharset.fallback(bytes) }
        return MailCharset.decode(bytes, charset: charset)
    }

    /// Finds part `index` of the raw message (for downloads).
    static func part(_ index: Int, of raw: [UInt8]) -> MIMEPart? {
        MIMEMessage(parsing: raw).root.allParts.first { $0.index == index }
    }
}
