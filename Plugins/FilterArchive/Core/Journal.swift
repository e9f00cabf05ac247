import Foundation
import PluginAPI

/// The envelope journal (the form Exchange and other archivers read): a short report that names
/// the real envelope, so that BCC recipients, who appear in no header, are kept, and the message
/// as received attached whole as `message/rfc822`.
enum JournalReport {
    /// The journal message for `message`, addressed to `to`, from `from` (a header address).
    static func make(for message: FilterMessage, to: String, from: String, now: Int64, random: UInt64) -> [UInt8] {
        let host = message.connection.localHostname
        let boundary = "=_postern_journal_\(String(random, radix: 36))"
        let subject = message.header("Subject").map { EncodedWords.decode($0) } ?? ""
        var report = "Sender: \(message.sender.isEmpty ? "<>" : message.sender)\n"
        report += "Recipients: \(message.recipients.joined(separator: ", "))\n"
        if let id = message.header("Message-ID") { report += "Message-ID: \(id.trimmingCharacters(in: .whitespaces))\n" }
        report += "Subject: \(subject)\n"
        var client = message.connection.peerAddress
        if let name = message.connection.peerHostname { client += " (\(name))" }
        report += "Client: \(client)\n"
        if let helo = message.helo { report += "HELO: \(helo)\n" }
        if let user = message.connection.authenticatedUser { report += "Authenticated-User: \(user)\n" }
        report += "Listener: \(message.connection.listener)\nDirection: \(message.connection.direction.rawValue)\n"
        report += "Size: \(message.size)\n"
        if message.isTruncated { report += "Note: the attached message is cut at \(message.bytes.count) bytes (the filter's buffer limit)\n" }

        var out = "From: \(from)\r\n"
        out += "To: <\(to)>\r\n"
        out += "Subject: \(EncodedWords.encode("Journal: " + subject))\r\n"
        out += "Date: \(MailDate(secondsSince1970: now).rfc5322)\r\n"
        out += "Message-ID: <journal.\(String(random, radix: 36)).\(now)@\(host)>\r\n"
        out += "MIME-Version: 1.0\r\n"
        out += "X-Postern-Journal: 1\r\n"
        out += "Content-Type: multipart/mixed; boundary=\"\(boundary)\"\r\n\r\n"
        out += "This is a journal report: the envelope, then the message as received.\r\n"
        out += "--\(boundary)\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n"
        out += "Content-Description: Envelope\r\n\r\n"
        var bytes = Array(out.utf8) + QuotedPrintableEncoder.encode(Array(report.utf8))
        bytes += Array("\r\n--\(boundary)\r\nContent-Type: message/rfc822\r\nContent-Description: Journaled message\r\n\r\n".utf8)
        bytes += message.bytes
        if bytes.last != 10 { bytes += [13, 10] }
        bytes += Array("--\(boundary)--\r\n".utf8)
        return bytes
    }
}
