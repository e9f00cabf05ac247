import Foundation
import PluginAPI

// MAIL FROM: the sender, its parameters and the sender checks (access tables, login maps).
extension SMTPServerState {
    func mail(_ from: SMTPPath, _ parameters: [SMTPParameter]) async -> [SMTPOutput] {
        guard heloName != nil else { return reply(503, "5.5.1", isLMTP ? "LHLO first" : "send HELO or EHLO first") }
        guard transaction == nil else { return reply(503, "5.5.1", "nested MAIL command") }
        if draining { return closing(drainReply) }
        if options.requireAuth && authenticatedUser == nil { return reply(530, "5.7.0", "authentication required") }
        if !parameters.isEmpty && !extended { return reply(555, "5.5.4", "MAIL parameters need EHLO") }
        var t = Transaction(id: "\(env.sessionID).\(transactionCount + 1)", sender: "")
        for p in parameters {
            switch p.key {
            case "SIZE":
                guard let v = p.value, !v.isEmpty, v.count <= 20, v.allSatisfy(\.isASCIIDigit), let n = Int(v) else {
                    return reply(501, "5.5.4", isLMTP ? "bad SIZE" : "bad SIZE value")
                }
                if n > options.maxMessageSize {
                    return reply(552, "5.3.4", isLMTP ? "message too big for this server" : "message size exceeds fixed limit of \(options.maxMessageSize) bytes")
                }
            case "BODY":
                guard let v = p.value?.uppercased(), ["7BIT", "8BITMIME", "BINARYMIME"].contains(v) else {
                    return reply(501, "5.5.4", "BODY is 7BIT, 8BITMIME or BINARYMIME")
                }
                t.body = v
            case "SMTPUTF8":
                guard options.smtpUTF8 else { return reply(555, "5.5.4", "SMTPUTF8 is not offered") }
                guard p.value == nil else { return reply(501, "5.5.4", "SMTPUTF8 takes no value") }
                t.smtpUTF8 = true
            case "RET":
                guard let v = p.value?.uppercased(), v == "FULL" || v == "HDRS" else { return reply(501, "5.5.4", "RET is FULL or HDRS") }
                t.dsnReturn = v
            case "ENVID":
                guard let v = p.value, !v.isEmpty, v.count <= 100, XText.isValid(v) else { return reply(501, "5.5.4", "bad ENVID value") }
                t.envelopeID = v
            case "AUTH":
                // RFC 4954 §5: the identity a trusted relay vouches for. Checked for syntax and
                // otherwise not used (this server trusts no one's AUTH=).
                guard let v = p.value, v == "<>" || XText.isValid(v) else { return reply(501, "5.5.4", "bad AUTH value") }
            default:
                if isLMTP { return [.reply(SMTPCommandError.badParameter(p.key).reply)] }
                return reply(555, "5.5.4", "unsupported MAIL parameter \(p.key)")
            }
        }
        // LMTP's client is the site's own MTA, which checked the sender when it took the message.
        if from.needsSMTPUTF8 && !t.smtpUTF8 && !isLMTP { return reply(553, "5.6.7", "non-ASCII sender address needs SMTPUTF8") }
        // A source route in the reverse path is ignored (RFC 5321 §3.3 and §4.1.1.2).
        let sender = from.isNull ? "" : from.address
        t.sender = sender
        let outside = !isLMTP && !trustedNetwork && authenticatedUser == nil
        if outside && !from.isNull && !SenderSyntax.isFullyQualified(from) {
            return reply(504, "5.5.2", "<\(sender)>: sender address must be fully qualified")
        }
        if let user = authenticatedUser, options.senderLoginMatch, !from.isNull {
            guard await senderBelongs(sender, to: user) else {
                env.logger.notice("sender not owned by user", metadata: ["sender": "\(sender)", "user": "\(user)"])
                return reply(553, "5.7.1", "<\(sender)>: sender address not owned by user \(user)")
            }
        }
        if !clientWhitelisted, let (key, action) = await accessPolicy.decide(AccessPolicy.addressKeys("from:", sender)) {
            env.logger.info("sender access table decision", metadata: ["key": "\(key)", "action": "\(action)"])
            switch action {
            case .reject(let text): return reply(550, "5.7.1", "<\(sender)>: \(text ?? "sender address rejected")")
            case .tempfail(let text): return reply(450, "4.7.1", "<\(sender)>: \(text ?? "try again later")")
            case .discard: t.discard = true
            case .ok, .relay: break
            }
        }
        if let filters = filterTransaction {
            var dictionary: [String: String] = [:]
            for p in parameters { dictionary[p.key] = p.value ?? "" }
            let params = dictionary
            syncFilterConnection(transactionID: t.id)
            switch await filters.run(.mail, { await $0.mailFrom(sender, parameters: params) }) {
            case .reject(let r): return [.reply(permanent(r))]
            case .tempfail(let r): return [.reply(temporary(r))]
            case .discard: t.discard = true
            case .quarantine(let reason): t.quarantine = reason
            case .continue, .accept: break
            }
        }
        transactionCount += 1
        transaction = t
        return reply(250, "2.1.0", "sender ok")
    }

    /// Whether `user` may use `sender`: their own address, or one a `sender_login_tables` entry
    /// (keyed by the address, then `@domain`) gives them.
    func senderBelongs(_ sender: String, to user: String) async -> Bool {
        if sender.lowercased() == user.lowercased() { return true }
        guard !options.senderLoginTables.isEmpty else { return false }
        var keys = [sender.lowercased()]
        if let address = EnvelopeAddress(sender) { keys.append("@" + address.domain) }
        for key in keys {
            guard let values = try? await env.directory.lookup(key, in: options.senderLoginTables) else { continue }
            let logins = values.flatMap { $0.split(whereSeparator: { $0 == "," || $0 == " " }) }.map { $0.lowercased() }
            return logins.contains(user.lowercased())
        }
        return false
    }
}
