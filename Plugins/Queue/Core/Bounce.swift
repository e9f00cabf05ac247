import Foundation
import PluginAPI

/// Delivery status notifications (RFC 3464 inside an RFC 6522 multipart/report): what the queue
/// sends the envelope sender when recipients fail, are delayed, or (NOTIFY=SUCCESS) delivered.
/// Pure: builds the message bytes; the queue enqueues them with the null sender.
struct DeliveryReport {
    enum Action: String { case failed, delayed, delivered, relayed }

    struct Recipient {
        var address: String
        var originalRecipient: String?
        var action: Action
        var reply: MailReply?
        /// The host whose reply this was, for Remote-MTA (nil for local decisions).
        var remoteMTA: String?
    }

    var hostname: String
    var queueID: String
    var envelopeID: String?
    var arrival: Int64
    var recipients: [Recipient]
    /// Return the whole message (RET=FULL) or only its header (RET=HDRS, or too big).
    var returnFull: Bool
    var now: Int64 = Int64(Date().timeIntervalSince1970)
    /// Until when a delayed message is retried (Will-Retry-Until).
    var retryUntil: Int64?

    /// The RFC 3463 status a reply stands for: its enhanced code, else one derived from the
    /// basic code's class.
    static func status(of reply: MailReply?, action: Action) -> String {
        if let e = reply?.enhanced { return e }
        switch action {
        case .delivered, .relayed: return "2.0.0"
        case .delayed: return "4.0.0"
        case .failed: return (reply?.code ?? 500) >= 500 ? "5.0.0" : "4.0.0"
        }
    }

    func compose(to sender: String, original: [UInt8]) -> [UInt8] {
        let action = recipients.first?.action ?? .failed
        let subject: String
        switch action {
        case .failed: subject = "Undelivered Mail Returned to Sender"
        case .delayed: subject = "Delayed Mail (still being retried)"
        case .delivered, .relayed: subject = "Successful Mail Delivery Report"
        }
        let boundary = "\(queueID).\(now)/\(hostname)"
        var text = "This is the mail system at host \(hostname).\r\n\r\n"
        switch action {
        case .failed:
            text += "I'm sorry to have to inform you that your message could not\r\nbe delivered to one or more recipients. It's attached below.\r\n"
        case .delayed:
            text += "Your message could not be delivered yet to one or more recipients.\r\nIt will be retried"
            text += retryUntil.map { " until \(MailDate(secondsSince1970: $0).rfc5322)" } ?? ""
            text += "; you need not send it again.\r\n"
        case .delivered, .relayed:
            text += "Your message was successfully delivered to the destination(s)\r\nlisted below.\r\n"
        }
        text += "\r\n"
        for r in recipients {
            text += "<\(r.address)>: \(r.reply.map(\.description) ?? r.action.rawValue)\r\n"
        }

        var status = "Reporting-MTA: dns; \(hostname)\r\nX-Postern-Queue-ID: \(queueID)\r\n"
        if let envelopeID { status += "Original-Envelope-Id: \(envelopeID)\r\n" }
        status += "Arrival-Date: \(MailDate(secondsSince1970: arrival).rfc5322)\r\n"
        for r in recipients {
            status += "\r\nFinal-Recipient: rfc822; \(r.address)\r\n"
            if let o = r.originalRecipient { status += "Original-Recipient: \(o.contains(";") ? o : "rfc822; " + o)\r\n" }
            status += "Action: \(r.action.rawValue)\r\nStatus: \(Self.status(of: r.reply, action: r.action))\r\n"
            if let mta = r.remoteMTA { status += "Remote-MTA: dns; \(mta)\r\n" }
            if let reply = r.reply { status += "Diagnostic-Code: smtp; \(reply.description.replacingOccurrences(of: "\r\n", with: " "))\r\n" }
            if r.action == .delayed, let until = retryUntil { status += "Will-Retry-Until: \(MailDate(secondsSince1970: until).rfc5322)\r\n" }
        }

        var out = ""
        out += "From: Mail Delivery System <MAILER-DAEMON@\(hostname)>\r\n"
        out += "To: <\(sender)>\r\n"
        out += "Subject: \(subject)\r\n"
        out += "Date: \(MailDate(secondsSince1970: now).rfc5322)\r\n"
        out += "Message-ID: <\(queueID).\(now).\(action.rawValue)@\(hostname)>\r\n"
        // RFC 3834 §5: an automatic message; RFC 5321 §4.5.5: sent with the null sender.
        out += "Auto-Submitted: auto-replied\r\n"
        out += "MIME-Version: 1.0\r\n"
        out += "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"\(boundary)\"\r\n"
        out += "\r\n"
        out += "This is a MIME-encapsulated message.\r\n\r\n"
        out += "--\(boundary)\r\nContent-Description: Notification\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\(text)\r\n"
        out += "--\(boundary)\r\nContent-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n\(status)\r\n"
        var bytes = Array(out.utf8)
        let headerEnd = Self.headerEnd(original)
        if returnFull {
            bytes += Array("--\(boundary)\r\nContent-Description: Undelivered Message\r\nContent-Type: message/rfc822\r\n\r\n".utf8)
            bytes += original
            if original.last != 0x0A { bytes += [0x0D, 0x0A] }
        } else {
            bytes += Array("--\(boundary)\r\nContent-Description: Undelivered Message Headers\r\nContent-Type: text/rfc822-headers\r\n\r\n".utf8)
            bytes += original[..<headerEnd]
        }
        bytes += Array("\r\n--\(boundary)--\r\n".utf8)
        return bytes
    }

    /// Where the header block ends (after its blank line), or the whole message.
    static func headerEnd(_ message: [UInt8]) -> Int {
        var i = 0
        while i < message.count {
            if message[i] == 0x0A {
                if i + 1 < message.count, message[i + 1] == 0x0A { return i + 2 }
                if i + 2 < message.count, message[i + 1] == 0x0D, message[i + 2] == 0x0A { return i + 3 }
            }
            i += 1
        }
        return message.count
    }
}
