import Foundation
import PluginAPI

/// The vacation auto-reply (RFC 3834): whether a delivered message gets one, and its bytes.
/// Pure; the local transport asks after each successful delivery and enqueues the reply with the
/// null sender (§3.3), so a reply can never start a loop of replies.
enum VacationResponder {
    /// Why no reply goes, or nil when one may (subject to once-per-period).
    static func refusal(sender: String, fields: [MailHeaderField], addresses: [String]) -> String? {
        guard !sender.isEmpty else { return "null sender" }
        let local = sender.split(separator: "@").first.map { $0.lowercased() } ?? ""
        // Senders that are programs, not people (as the classic vacation(1) skips them).
        if ["mailer-daemon", "postmaster", "listserv", "majordomo", "noreply", "no-reply", "nobody"].contains(local)
            || local.hasPrefix("owner-") || local.hasSuffix("-request") || local.hasPrefix("bounce") {
            return "sender \(local) is automated"
        }
        func value(_ name: String) -> String? {
            fields.first { $0.hasName(name) }.map { EncodedWords.decode($0.value).trimmingCharacters(in: .whitespaces).lowercased() }
        }
        if let auto = value("Auto-Submitted"), !auto.hasPrefix("no") { return "Auto-Submitted: \(auto)" }
        if let precedence = value("Precedence"), ["bulk", "list", "junk"].contains(precedence) { return "Precedence: \(precedence)" }
        for list in ["List-Id", "List-Unsubscribe", "List-Post", "List-Help", "Mailing-List"] where value(list) != nil {
            return "\(list) present (a list message)"
        }
        if let suppress = value("X-Auto-Response-Suppress"), suppress.contains("oof") || suppress.contains("all") {
            return "X-Auto-Response-Suppress: \(suppress)"
        }
        let own = Set(addresses.map { $0.lowercased() })
        if own.contains(sender.lowercased()) { return "sent by the account itself" }
        // §3.1: only to mail addressed to the person, not mail that reached them another way.
        var named = Set<String>()
        for name in ["To", "Cc", "Bcc", "Resent-To", "Resent-Cc"] {
            for field in fields where field.hasName(name) {
                for mailbox in MailAddressList(parsing: field.value).mailboxes { named.insert(mailbox.address.lowercased()) }
            }
        }
        if own.isDisjoint(with: named) { return "not addressed to the account in To/Cc" }
        return nil
    }

    static func reply(from account: String, to sender: String, vacation: Vacation, original fields: [MailHeaderField],
                      hostname: String, now: Int64 = Int64(Date().timeIntervalSince1970)) -> [UInt8] {
        let originalSubject = fields.first { $0.hasName("Subject") }.map { EncodedWords.decode($0.value) } ?? ""
        let subject = vacation.subject.isEmpty ? "Auto: \(originalSubject)" : vacation.subject
        let messageID = fields.first { $0.hasName("Message-ID") }?.text.trimmingCharacters(in: .whitespaces)
        let references = fields.first { $0.hasName("References") }?.text.trimmingCharacters(in: .whitespaces)
        var header = "From: <\(account)>\r\nTo: <\(sender)>\r\n"
        header += "Subject: \(EncodedWords.encode(subject))\r\n"
        header += "Date: \(MailDate(secondsSince1970: now).rfc5322)\r\n"
        header += "Message-ID: <vacation.\(now).\(UInt32.random(in: 0...UInt32.max))@\(hostname)>\r\n"
        if let messageID, !messageID.isEmpty {
            header += "In-Reply-To: \(messageID)\r\n"
            header += "References: \(references.map { $0 + " " } ?? "")\(messageID)\r\n"
        }
        header += "Auto-Submitted: auto-replied (vacation)\r\n"
        header += "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        let body = vacation.body.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\n", with: "\r\n")
        return Array((header + body + (body.hasSuffix("\r\n") ? "" : "\r\n")).utf8)
    }
}
