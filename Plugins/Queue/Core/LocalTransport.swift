import Foundation
import PluginAPI

/// Final delivery into the store: the `local` transport. Adds `Return-Path:` (RFC 5321 §4.4: the
/// delivering MTA records the envelope sender) to one copy of the message shared by every
/// recipient of the attempt, so single-instance storage still stores it once.
struct LocalTransport: Transport {
    let services: HostServices
    let spool: Spool
    let storeName: String?
    /// For vacation replies.
    let queue: QueueService

    func deliver(_ message: QueuedMessage) async -> [RecipientOutcome] {
        let recipients = message.pending.map(\.address)
        guard let store = services.store(named: storeName) else {
            return recipients.map { RecipientOutcome(recipient: $0, status: .deferred, reply: MailReply(451, "4.3.0", "no message store loaded")) }
        }
        let copy = "\(spool.root)/tmp/local-\(message.id)-\(UInt32.random(in: 0...UInt32.max))"
        defer { unlink(copy) }
        do {
            guard let original = FileManager.default.contents(atPath: message.path) else { throw QueueError.io("read \(message.path)", errno) }
            // Not synced: the store copies it into a blob of its own, synced before its commit.
            try Spool.write(Array("Return-Path: <\(message.envelope.sender)>\r\n".utf8) + Array(original), to: copy)
            // A filter's folder (Junk) when it gave one; the store files into INBOX where the account has none of that name.
            let outcomes = try await store.deliver(messagePath: copy, to: recipients, mailbox: message.envelope.folder, deliveryID: message.id)
            for outcome in outcomes where outcome.status == .delivered {
                await vacationReply(account: outcome.recipient, sender: message.envelope.sender, original: Array(original))
            }
            return outcomes
        } catch {
            return recipients.map { RecipientOutcome(recipient: $0, status: .deferred, reply: MailReply(451, "4.3.0", "local delivery failed: \(error)")) }
        }
    }
}

extension LocalTransport {
    /// Sends the account's vacation reply when it has one active and RFC 3834 allows it. Never
    /// fails the delivery: a reply that cannot go is logged.
    func vacationReply(account: String, sender: String, original: [UInt8]) async {
        guard let accounts = services.accounts else { return }
        do {
            let now = Int64(Date().timeIntervalSince1970)
            guard let vacation = try await accounts.vacation(account: account), vacation.isActive(at: now) else { return }
            let fields = MailHeaderBlock(parsing: original).fields
            // The account's own address and the aliases that lead to it count as "addressed to".
            guard let domain = Router.split(account)?.domain else { return }
            let aliases = try await accounts.aliases(domain: domain).filter { a in
                a.targets.contains { $0.caseInsensitiveCompare(account) == .orderedSame } && !a.address.hasPrefix("@")
            }.map(\.address)
            if let why = VacationResponder.refusal(sender: sender, fields: fields, addresses: [account] + aliases) {
                queue.logger.debug("no vacation reply", metadata: ["account": "\(account)", "why": "\(why)"])
                return
            }
            guard try await accounts.claimVacationReply(account: account, sender: sender, period: vacation.period) else { return }
            let bytes = VacationResponder.reply(from: account, to: sender, vacation: vacation, original: fields, hostname: queue.settings.hostname)
            let path = "\(spool.root)/tmp/vacation-\(UInt32.random(in: 0...UInt32.max))"
            try Spool.write(bytes, to: path)
            let id = try await queue.enqueue(envelope: Envelope(sender: "", recipients: [EnvelopeRecipient(address: sender)]), messagePath: path)
            queue.logger.info("vacation reply queued", metadata: ["account": "\(account)", "to": "\(sender)", "id": "\(id)"])
        } catch {
            queue.logger.error("vacation reply failed: \(error)", metadata: ["account": "\(account)"])
        }
    }
}

/// Accepts and drops: the `discard` transport (a transport map entry such as
/// `"spamtrap.example" = "discard"`).
struct DiscardTransport: Transport {
    func deliver(_ message: QueuedMessage) async -> [RecipientOutcome] {
        message.pending.map { RecipientOutcome(recipient: $0.address, status: .delivered, reply: MailReply(250, "2.0.0", "discarded")) }
    }
}
