import Foundation
import PluginAPI

// RCPT TO: each recipient through its syntax and parameters, then RecipientPolicy (access tables,
// the router, relay control), then the filters. In LMTP mode, the store's check (+LMTP) instead.
extension SMTPServerState {
    func rcpt(_ to: SMTPPath, _ parameters: [SMTPParameter]) async -> [SMTPOutput] {
        guard var t = transaction else { return reply(503, "5.5.1", isLMTP ? "MAIL first" : "need MAIL command") }
        if t.usedBDAT { return reply(503, "5.5.1", "RCPT after BDAT") }
        guard t.recipients.count < options.maxRecipients else {
            if !isLMTP { env.metrics.recipientRefused(.limit) }
            return reply(452, "4.5.3", "too many recipients")
        }
        let router: any MailRouter
        switch env.dialect {
        case .lmtp(let store): return await storeRecipient(to, store)
        case .smtp(let smtpRouter, _): router = smtpRouter
        }
        if !parameters.isEmpty && !extended { return reply(555, "5.5.4", "RCPT parameters need EHLO") }
        var notify: [String] = []
        var originalRecipient: String?
        for p in parameters {
            switch p.key {
            case "NOTIFY":
                let values = (p.value ?? "").uppercased().split(separator: ",", omittingEmptySubsequences: false).map(String.init)
                let valid = values == ["NEVER"] || (!values.isEmpty && values.allSatisfy { ["SUCCESS", "FAILURE", "DELAY"].contains($0) }
                                                    && Set(values).count == values.count)
                guard valid else { return reply(501, "5.5.4", "NOTIFY is NEVER or a list of SUCCESS, FAILURE, DELAY") }
                notify = values
            case "ORCPT":
                guard let v = p.value, let semicolon = v.firstIndex(of: ";"), semicolon != v.startIndex,
                      v.count <= 500, XText.isValid(String(v[v.index(after: semicolon)...])) else {
                    return reply(501, "5.5.4", "ORCPT is addr-type;xtext")
                }
                originalRecipient = v
            default:
                return reply(555, "5.5.4", "unsupported RCPT parameter \(p.key)")
            }
        }
        if to.needsSMTPUTF8 && !t.smtpUTF8 {
            env.metrics.recipientRefused(.syntax)
            return reply(553, "5.6.7", "non-ASCII recipient address needs SMTPUTF8")
        }
        if let refusal = RecipientSyntax.refusal(to, localAddress: client.localAddress) {
            env.metrics.recipientRefused(.syntax)
            env.logger.notice("recipient refused", metadata: ["to": "\(to.address)", "reply": "\(refusal)"])
            return [.reply(refusal)]
        }
        guard let address = RecipientSyntax.normalised(to, hostname: env.hostname) else {
            env.metrics.recipientRefused(.syntax)
            return reply(501, "5.1.3", "bad recipient domain")
        }
        let policy = RecipientPolicy(access: accessPolicy, router: router, clientWhitelisted: clientWhitelisted,
                                     mayRelay: mayRelay, unknownUserCode: options.unknownRecipientCode, logger: env.logger)
        switch await policy.decide(address) {
        case .accept(let discard):
            if discard { t.discard = true }
        case .refuse(let refusal, let reason):
            env.metrics.recipientRefused(reason)
            if reason == .relayDenied {
                env.metrics.relayDenied.increment()
                env.logger.notice("relay denied", metadata: ["to": "\(address)", "from": "\(t.sender)",
                                                             "user": "\(authenticatedUser ?? "-")"])
            }
            return [.reply(refusal)]
        }
        if let filters = filterTransaction {
            let params = Dictionary(parameters.map { ($0.key, $0.value ?? "") }, uniquingKeysWith: { a, _ in a })
            switch await filters.run(.rcpt, { await $0.rcptTo(address, parameters: params) }) {
            case .reject(let r):
                env.metrics.recipientRefused(.filter)
                return [.reply(permanent(r))]
            case .tempfail(let r):
                env.metrics.recipientRefused(.filter)
                return [.reply(temporary(r))]
            case .discard: t.discard = true
            case .quarantine(let reason): t.quarantine = reason
            case .continue, .accept: break
            }
        }
        if !t.recipients.contains(where: { $0.address == address }) {
            t.recipients.append(EnvelopeRecipient(address: address, notify: notify, originalRecipient: originalRecipient))
        }
        transaction = t
        return reply(250, "2.1.5", "recipient ok")
    }
}
