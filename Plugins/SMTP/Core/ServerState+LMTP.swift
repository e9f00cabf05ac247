import Foundation
import PluginAPI

// LMTP mode (RFC 2033): the two steps where the session asks the store instead of the queue
// plugin. RCPT is the store's `checkRecipient`; the end of DATA is the store's `deliver`, answered
// with one reply per accepted recipient in RCPT order (§4.2). Everything else (LHLO, MAIL, DATA
// reading, limits, drain) is the SMTP state machine's, with the `isLMTP` differences at each place.
extension SMTPServerState {
    /// RCPT in LMTP mode: the store decides, with the named refusals the SMTP server gives too
    /// (`RecipientRefusal`). No syntax or relay checks: the client is the site's own MTA, which
    /// made them. Parameters are ignored, and a repeated recipient gets a second reply after DATA.
    func storeRecipient(_ to: SMTPPath, _ store: any StorageBackend) async -> [SMTPOutput] {
        let address = to.address
        let check: RecipientCheck
        do {
            check = try await store.checkRecipient(address)
        } catch {
            env.logger.error("recipient check failed: \(error)")
            return [.reply(RecipientRefusal.lookupFailed.reply(address))]
        }
        let refusal: RecipientRefusal
        switch check {
        case .local:
            transaction?.recipients.append(EnvelopeRecipient(address: address))
            return reply(250, "2.1.5", "recipient ok")
        case .unknownUser: refusal = .unknownUser
        case .disabled: refusal = .disabled
        case .notLocal: refusal = .notLocal
        }
        env.metrics.lmtpRefused.increment()
        return [.reply(refusal.reply(address))]
    }

    /// The end of DATA in LMTP mode: the store delivers the spooled message to every accepted
    /// recipient; each gets its own reply (delivered, mailbox full, ...), or all the same 451 when
    /// the store throws. The 250s leave only after `deliver` returned, so after the store's fsyncs.
    func deliverToStore(_ store: any StorageBackend, _ spool: SpoolFile) async -> [SMTPOutput] {
        let recipients = transaction?.recipients.map(\.address) ?? []
        let outcomes: [RecipientOutcome]
        do {
            outcomes = try await store.deliver(messagePath: spool.path, to: recipients, mailbox: nil)
        } catch {
            outcomes = recipients.map { RecipientOutcome(recipient: $0, status: .deferred, reply: MailReply(451, "4.3.0", "store failure: \(error)")) }
        }
        await finishTransaction(spool)
        return outcomes.map { outcome in
            (outcome.status == .delivered ? env.metrics.lmtpDelivered : env.metrics.lmtpRefused).increment()
            env.logger.info("delivery", metadata: ["to": "\(outcome.recipient)", "status": "\(outcome.status.rawValue)",
                                                   "reply": "\(outcome.reply)"])
            return .reply(outcome.reply)
        }
    }

    /// The same reply for every accepted recipient (RFC 2033 §4.2: a refused message too is
    /// answered per recipient).
    func perRecipient(_ reply: MailReply) -> [SMTPOutput] {
        (transaction?.recipients ?? []).map { _ in .reply(reply) }
    }

    /// Disk trouble while the message arrives: it is refused for every recipient and the session
    /// ends, since the rest of the message cannot be read back into a sane state.
    func spoolFailedMidMessage() -> [SMTPOutput] {
        env.logger.error("spool write failed: \(String(cString: strerror(errno)))")
        let refusals = perRecipient(MailReply(451, "4.3.0", "cannot spool the message"))
        return refusals + closing(MailReply(421, "4.3.0", "closing"))
    }
}
