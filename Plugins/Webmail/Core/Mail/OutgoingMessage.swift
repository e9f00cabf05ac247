import Foundation
import PluginAPI

/// A message the user writes, turned into RFC 5322 bytes: UTF-8 text in quoted-printable,
/// non-ASCII header text in RFC 2047 words, attachments in base64 under multipart/mixed with
/// RFC 2231 names. Pure, so the tests check the bytes.
struct OutgoingMessage: Sendable, Equatable {
    struct Attachment: Sendable, Equatable {
        var filename: String
        var mimeType: String
        var data: [UInt8]
    }

    var from: String
    var fromName: String?
    var to: [String]
    var cc: [String] = []
    var bcc: [String] = []
    var subject: String
    var body: String
    var inReplyTo: String?
    var references: [String] = []
    var attachments: [Attachment] = []
    var messageID: String
    var date: Date

    /// Every envelope recipient (Bcc included, each once).
    var recipients: [String] {
        var seen = Set<String>()
        return (to + cc + bcc).filter { seen.insert($0.lowercased()).inserted }
    }

    /// The message's bytes. `includeBcc` is for the copies kept in Sent and Drafts (so a resumed
    /// draft keeps its Bcc); the copy sent never carries it.
    func rendered(includeBcc: Bool) -> [UInt8] {
        var header: [String] = []
        let fromField = fromName.map { Self.phrase($0) + " <\(from)>" } ?? from
        header.append("From: \(fromField)")
        if !to.isEmpty { header.append("To: " + to.joined(separator: ", ")) }
        if !cc.isEmpty { header.append("Cc: " + cc.joined(separator: ", ")) }
        if includeBcc && !bcc.isEmpty { header.append("Bcc: " + bcc.joined(separator: ", ")) }
        header.append("Subject: " + Self.headerText(subject))
        header.append("Date: " + MailDate(secondsSince1970: Int64(date.timeIntervalSince1970)).rfc5322)
        header.append("Message-ID: \(messageID)")
        if let inReplyTo { header.append("In-Reply-To: \(inReplyTo)") }
        if !references.isEmpty { header.append("References: " + references.joined(separator: "\r\n ")) }
        header.append("MIME-Version: 1.0")
        header.append("User-Agent: Postern webmail")
        let text = Self.textPart(body)
        var out = ""
        if attachments.isEmpty {
            out = header.joined(separator: "\r\n") + "\r\n" + text
        } else {
            // "=_" cannot occur in base64 or quoted-printable lines, so no part can contain it.
            let boundary = "=_postern_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
            header.append("Content-Type: multipart/mixed; boundary=\"\(boundary)\"")
            out = header.joined(separator: "\r\n") + "\r\n\r\nThis is a message in MIME format.\r\n"
            out += "--\(boundary)\r\n" + text
            var bytes = Array(out.utf8)
            for attachment in attachments {
                var part = "\r\n--\(boundary)\r\n"
                part += "Content-Type: \(Self.safeType(attachment.mimeType))\(Self.nameParameter("name", attachment.filename))\r\n"
                part += "Content-Disposition: attachment\(Self.nameParameter("filename", attachment.filename))\r\n"
                if attachment.mimeType == "message/rfc822" {
                    // A message is enclosed as it is (RFC 2046 §5.2.1 allows no base64 here),
                    // with its line ends made CRLF.
                    let enclosed = Self.crlf(attachment.data)
                    part += "Content-Transfer-Encoding: \(enclosed.allSatisfy { $0 < 0x80 } ? "7bit" : "8bit")\r\n\r\n"
                    bytes += Array(part.utf8) + enclosed
                } else {
                    part += "Content-Transfer-Encoding: base64\r\n\r\n"
                    bytes += Array(part.utf8) + Base64Encoder.encode(attachment.data)
                }
            }
            bytes += Array("\r\n--\(boundary)--\r\n".utf8)
            return bytes
        }
        return Array(out.utf8)
    }

    /// Bytes with every bare LF (or CR) made CRLF.
    static func crlf(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + bytes.count / 40)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == 13 {
                out += [13, 10]
                if i + 1 < bytes.count && bytes[i + 1] == 10 { i += 1 }
            } else if b == 10 {
                out += [13, 10]
            } else {
                out.append(b)
            }
            i += 1
        }
        return out
    }

    /// The text part's header and body (ending with CRLF).
    static func textPart(_ body: String) -> String {
        // Normalise line ends to CRLF; the body ends with one.
        var text = body.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        if !text.hasSuffix("\n") { text += "\n" }
        text = text.replacingOccurrences(of: "\n", with: "\r\n")
        if text.utf8.allSatisfy({ $0 < 0x80 }) && text.split(separator: "\r\n", omittingEmptySubsequences: false).allSatisfy({ $0.utf8.count <= 998 }) {
            return "Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n" + text
        }
        let encoded = String(decoding: QuotedPrintableEncoder.encode(Array(text.utf8)), as: UTF8.self)
        return "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + encoded
            + (encoded.hasSuffix("\r\n") ? "" : "\r\n")
    }

    /// Header text: as is when printable ASCII, else RFC 2047 words. CR and LF never pass.
    static func headerText(_ text: String) -> String {
        let clean = text.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
        if clean.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { return clean }
        return EncodedWords.encode(clean)
    }

    /// A display name: quoted when it has specials, encoded when not ASCII.
    static func phrase(_ name: String) -> String {
        let clean = name.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
        if !clean.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { return EncodedWords.encode(clean) }
        let specials = CharacterSet(charactersIn: "()<>[]:;@\\,.\"")
        if clean.rangeOfCharacter(from: specials) == nil { return clean }
        return "\"" + clean.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// `; name="x"` for ASCII names, RFC 2231 `; name*=utf-8''x` otherwise.
    static func nameParameter(_ key: String, _ value: String) -> String {
        let clean = value.replacingOccurrences(of: "\r", with: "").replacingOccurrences(of: "\n", with: "")
        if clean.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) {
            return "; \(key)=\"" + clean.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "!#$&+-.^_`|~")
        return "; \(key)*=utf-8''" + (clean.addingPercentEncoding(withAllowedCharacters: allowed) ?? "attachment")
    }

    /// A browser's content type for an upload, if it is a plain `type/subtype`; else octet-stream.
    static func safeType(_ type: String) -> String {
        let lower = type.lowercased()
        return lower.range(of: "^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$", options: .regularExpression) != nil
            ? lower : "application/octet-stream"
    }

    static func newMessageID(domain: String) -> String {
        "<\(UUID().uuidString.lowercased())@\(domain)>"
    }
}

/// Addresses as typed in a To/Cc/Bcc field: separated by commas or semicolons, `Name <a@b>` or
/// `a@b`. Each must parse as an addr-spec; the first that does not is reported to the user.
enum AddressField {
    static func parse(_ text: String) -> Result<[String], AddressFieldError> {
        var out: [String] = []
        for raw in text.split(whereSeparator: { $0 == "," || $0 == ";" || $0 == "\n" }) {
            let item = raw.trimmingCharacters(in: .whitespaces)
            if item.isEmpty { continue }
            var address = item
            if let lt = item.lastIndex(of: "<"), let gt = item.lastIndex(of: ">"), lt < gt {
                address = String(item[item.index(after: lt)..<gt])
            }
            guard let path = try? SMTPPath.parse("<" + address + ">"), !path.isNull, path.domain != nil else {
                return .failure(AddressFieldError(text: item))
            }
            out.append(path.address)
        }
        return .success(out)
    }
}

struct AddressFieldError: Error, Equatable {
    var text: String
}
