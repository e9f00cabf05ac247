import Foundation
import PluginAPI

/// Final delivery into the store: the `local` transport. Adds `Return-Path:` (RFC 5321 §4.4: the
/// delivering MTA records the envelope sender) to one copy of the message shared by every
/// recipient of the attempt, so single-instance storage still stores it once.
struct LocalTransport: Transport {
    let services: HostServices
    let spool: Spool
    let storeName: String?

    func deliver(_ message: QueuedMessage) async -> [RecipientOutcome] {
        let recipients = message.pending.map(\.address)
        guard let store = services.store(named: storeName) else {
            return recipients.map { RecipientOutcome(recipient: $0, status: .deferred, reply: MailReply(451, "4.3.0", "no message store loaded")) }
        }
        let copy = "\(spool.root)/tmp/local-\(message.id)-\(UInt32.random(in: 0...UInt32.max))"
        defer { unlink(copy) }
        do {
            guard let original = FileManager.default.contents(atPath: message.path) else { throw QueueError.io("read \(message.path)", errno) }
            try Spool.writeDurably(Array("Return-Path: <\(message.envelope.sender)>\r\n".utf8) + Array(original), to: copy)
            return try await store.deliver(messagePath: copy, to: recipients, mailbox: nil)
        } catch {
            return recipients.map { RecipientOutcome(recipient: $0, status: .deferred, reply: MailReply(451, "4.3.0", "local delivery failed: \(error)")) }
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
