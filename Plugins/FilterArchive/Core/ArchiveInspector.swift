import Foundation
import PluginAPI

/// The archive filter: for every rule a message matches, a copy to the rule's destination. Queue
/// destinations become `addMessage` changes, which the SMTP server queues before the message
/// itself and only when it accepts it; a directory copy is written and fsynced here, before the
/// filter answers. Either way no message is accepted without its copies.
struct ArchiveInspector: MessageInspector {
    let rules: [ArchiveRule]
    /// The envelope sender of the copies: empty (the null sender) so that a copy that cannot be
    /// delivered bounces to nobody, never to the message's author.
    let copySender: String
    /// The header From of journal reports.
    let journalFrom: String
    let maxBufferedBytes: Int
    let logger: Logger
    let copies: Counter
    let failures: Counter

    func inspect(_ message: FilterMessage) async -> (FilterVerdict, [FilterModification]) {
        let matching = rules.filter { $0.matches(message) }
        guard !matching.isEmpty else { return (.continue, []) }
        if message.isTruncated {
            // A cut copy is no copy: refuse rather than accept a message the archive lacks.
            logger.warning("message too big to archive", metadata: ["size": "\(message.size)", "limit": "\(maxBufferedBytes)"])
            return (.reject(MailReply(552, "5.3.4", "message too big to archive (limit \(maxBufferedBytes) bytes)")), [])
        }
        var changes: [FilterModification] = []
        let now = Int64(Date().timeIntervalSince1970)
        for rule in matching {
            switch rule.destination {
            case .copy(let to):
                changes.append(.addMessage(sender: copySender, recipients: [to], content: message.bytes))
            case .journal(let to):
                let report = JournalReport.make(for: message, to: to, from: journalFrom, now: now, random: UInt64.random(in: 0...UInt64.max))
                changes.append(.addMessage(sender: copySender, recipients: [to], content: report))
            case .directory(let path):
                do {
                    let file = try EMLDirectory(path: path).write(message, now: now, random: UInt64.random(in: 0...UInt64.max))
                    logger.debug("archived", metadata: ["rule": "\(rule.name)", "file": "\(file)"])
                } catch {
                    failures.increment()
                    logger.error("cannot archive the message", metadata: ["rule": "\(rule.name)", "error": "\(error)"])
                    return (.tempfail(MailReply(451, "4.3.0", "cannot archive the message, try again later")), [])
                }
            }
            copies.increment()
        }
        return (.continue, changes)
    }
}
