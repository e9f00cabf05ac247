import Foundation

// The client side of one SMTP (RFC 5321) or LMTP (RFC 2033) connection as a pure state machine:
// replies and events in, actions out. The connection driver (`SMTPClientConnection`) does the
// I/O; tests feed replies directly. One session carries one transaction, then QUIT.
//
// It lives in PluginAPI, not in the smtp-client plugin, because more than one plugin speaks SMTP
// as a client (the smtp-client's MX delivery and LMTP, the webmail's submission): a plugin's core
// is linked into that plugin alone, and shared mail logic lives here. Its settings, actions and
// results are in SMTPClientSessionTypes.swift.

/// One connection's session: fed replies and events by its driver, it says what to do next.
public struct SMTPClientSession: Sendable {
    /// What the session waits for; the driver picks the timeout from it.
    public enum Stage: Sendable, Equatable, CustomStringConvertible {
        case greeting
        /// The reply to a command (its name as texts quote it: `RCPT TO`).
        case reply(to: String)
        case tlsHandshake
        case downgrade
        /// Writing the message.
        case message
        /// The reply(ies) after the final dot.
        case finalReply
        case done

        public var description: String {
            switch self {
            case .greeting: return "receiving the initial server greeting"
            case .reply(let command): return "receiving the reply to \(command)"
            case .tlsHandshake: return "performing the TLS handshake"
            case .downgrade: return "converting the message to 7-bit"
            case .message: return "sending message content"
            case .finalReply: return "receiving the reply to end of DATA"
            case .done: return "closing the session"
            }
        }
    }

    private enum State: Sendable, Equatable {
        case greeting
        case hello(command: String)
        case startTLS
        case tlsHandshake
        /// AUTH with this mechanism; `step` counts the server's 334 challenges answered.
        case auth(mechanism: String, step: Int)
        case downgrade
        case mail(pipelined: Bool)
        case rcpt(Int, pipelined: Bool)
        case data
        case message
        /// Index into `accepted`: the recipient whose final reply comes next (LMTP has one each).
        case final(Int)
        case done
    }

    public let settings: SMTPClientSessionSettings
    public let message: SMTPOutgoingMessage
    private var state = State.greeting
    public private(set) var extensions = SMTPServerExtensions()
    public private(set) var isSecure = false
    private var results: [RecipientOutcome?]
    /// Recipients the server accepted at RCPT, in order (LMTP answers each after DATA).
    private var accepted: [Int] = []
    /// The reply that refused MAIL while the pipelined RCPT replies are still being read.
    private var mailRefusal: MailReply?
    private var downgraded = false
    private var sizeToSend: Int
    /// AUTH succeeded (or was not needed) on this connection.
    private var authenticated = false
    /// Why the session ended without a transaction; nil while it runs and when it reached one.
    public private(set) var failure: SMTPClientFailure?

    public init(settings: SMTPClientSessionSettings, message: SMTPOutgoingMessage) {
        self.settings = settings
        self.message = message
        results = Array(repeating: nil, count: message.recipients.count)
        sizeToSend = message.content.size
        isSecure = settings.implicitTLS
    }

    public var stage: Stage {
        switch state {
        case .greeting: return .greeting
        case .hello(let command): return .reply(to: command)
        case .startTLS: return .reply(to: "STARTTLS")
        case .tlsHandshake: return .tlsHandshake
        case .auth: return .reply(to: "AUTH")
        case .downgrade: return .downgrade
        case .mail: return .reply(to: "MAIL FROM")
        case .rcpt: return .reply(to: "RCPT TO")
        case .data: return .reply(to: "DATA")
        case .message: return .message
        case .final: return .finalReply
        case .done: return .done
        }
    }

    public var isFinished: Bool { state == .done }

    private var helloCommand: String { settings.protocolKind == .lmtp ? "LHLO" : "EHLO" }

    // MARK: events

    public mutating func received(_ reply: SMTPReply) -> [SMTPClientAction] {
        switch state {
        case .greeting:
            guard reply.code == 220 else {
                return giveUp(.connection, hostReply(reply, "refused to talk to me", nil))
            }
            state = .hello(command: helloCommand)
            return [.send(["\(helloCommand) \(settings.heloName)"])]

        case .hello(let command):
            if reply.isPositive {
                extensions = command == "HELO" ? SMTPServerExtensions() : SMTPServerExtensions(ehlo: reply)
                return afterHello()
            }
            if command == "EHLO" && reply.isPermanent && !isSecure {
                // RFC 5321 §3.2: a server that does not know EHLO still knows HELO.
                state = .hello(command: "HELO")
                return [.send(["HELO \(settings.heloName)"])]
            }
            return giveUp(.connection, hostReply(reply, "said", command))

        case .startTLS:
            if reply.code == 220 {
                state = .tlsHandshake
                return [.startTLS]
            }
            if settings.tls == .encrypt {
                return giveUp(.tls, MailReply(451, "4.7.4", "TLS is required, but host \(settings.peer) refused STARTTLS: \(reply.code) \(reply.text)"))
            }
            return beginTransaction()

        case .auth(let mechanism, let step):
            if reply.code == 235 {
                authenticated = true
                return beginTransaction()
            }
            if reply.code == 334, let credentials = settings.credentials {
                // PLAIN went with its initial response; a server that ignores it asks again.
                switch (mechanism, step) {
                case ("PLAIN", 0):
                    state = .auth(mechanism: mechanism, step: 1)
                    return [.sendSecret(credentials.plainResponse)]
                case ("LOGIN", 0):
                    state = .auth(mechanism: mechanism, step: 1)
                    return [.sendSecret(SASLClientCredentials.base64(Array(credentials.user.utf8)))]
                case ("LOGIN", 1):
                    state = .auth(mechanism: mechanism, step: 2)
                    return [.sendSecret(SASLClientCredentials.base64(Array(credentials.password.utf8)))]
                case (_, let step) where step < 99:
                    // Cancel (RFC 4954 §4); the server answers 501, and the host is given up.
                    state = .auth(mechanism: mechanism, step: 99)
                    return [.send(["*"])]
                default:
                    break
                }
            }
            // As Postfix (smtp_sasl_auth_soft_bounce): a refused login defers, whatever the
            // code, since the fix (a password) is on this side and mail must not bounce for it.
            return giveUp(.authentication, MailReply(454, "4.7.0", "SASL authentication failed; host \(settings.peer) said: \(reply.code) \(reply.text)"))

        case .mail(let pipelined):
            if reply.isPositive {
                state = .rcpt(0, pipelined: pipelined)
                return pipelined ? [] : [.send([rcptCommand(0)])]
            }
            let refusal = hostReply(reply, "said", "MAIL FROM")
            if pipelined && !message.recipients.isEmpty {
                // The RCPT replies were asked for and will come: read them before QUIT.
                mailRefusal = refusal
                state = .rcpt(0, pipelined: true)
                return []
            }
            return quit(.outcomes(all(refusal)))

        case .rcpt(let index, let pipelined):
            if mailRefusal == nil {
                if reply.isPositive {
                    accepted.append(index)
                } else {
                    results[index] = outcome(index, hostReply(reply, "said", "RCPT TO"))
                }
            }
            if index + 1 < message.recipients.count {
                state = .rcpt(index + 1, pipelined: pipelined)
                return pipelined ? [] : [.send([rcptCommand(index + 1)])]
            }
            if let mailRefusal { return quit(.outcomes(all(mailRefusal))) }
            if accepted.isEmpty { return quit(.outcomes(finalOutcomes())) }
            state = .data
            return [.send(["DATA"])]

        case .data:
            if reply.code == 354 {
                state = .message
                return [.sendMessage(downgraded: downgraded)]
            }
            var refusal = hostReply(reply, "said", "DATA")
            // A 2xx here would read as "delivered" though no message was sent.
            if reply.isPositive { refusal = MailReply(451, "4.5.0", refusal.text) }
            for index in accepted { results[index] = outcome(index, refusal) }
            return quit(.outcomes(finalOutcomes()))

        case .final(let position):
            let answer = hostReply(reply, "said", "end of DATA")
            if settings.protocolKind == .lmtp {
                results[accepted[position]] = outcome(accepted[position], answer)
                if position + 1 < accepted.count {
                    state = .final(position + 1)
                    return []
                }
            } else {
                for index in accepted { results[index] = outcome(index, answer) }
            }
            return quit(.outcomes(finalOutcomes()))

        case .message, .tlsHandshake, .downgrade, .done:
            // Nothing was asked: the server is out of step with us.
            return connectionLost("unexpected reply \"\(reply)\"")
        }
    }

    public mutating func tlsEstablished() -> [SMTPClientAction] {
        guard state == .tlsHandshake else { return [] }
        isSecure = true
        // RFC 3207 §4.2: everything learnt before TLS is forgotten; ask again.
        extensions = SMTPServerExtensions()
        state = .hello(command: helloCommand)
        return [.send(["\(helloCommand) \(settings.heloName)"])]
    }

    /// The TLS handshake failed: after STARTTLS, or (`implicitTLS`) before the greeting.
    public mutating func tlsFailed(_ why: String) -> [SMTPClientAction] {
        guard state == .tlsHandshake || (settings.implicitTLS && state == .greeting) else { return [] }
        state = .done
        failure = .tls
        let reply = MailReply(421, "4.7.5", "TLS handshake with \(settings.peer) failed: \(why)")
        return [.finish(settings.tls == .may && !settings.implicitTLS ? .retryWithoutTLS(reply) : .tryNextHost(reply))]
    }

    /// The driver converted the message (its new size), or could not (why).
    public mutating func downgradePrepared(_ result: Result<Int, EightBitDowngrade.Failure>) -> [SMTPClientAction] {
        guard state == .downgrade else { return [] }
        switch result {
        case .success(let size):
            downgraded = true
            sizeToSend = size
            return sendMail(body: nil)
        case .failure(let why):
            return quit(.outcomes(all(MailReply(550, "5.6.3", "host \(settings.peer) does not support 8BITMIME and the message cannot be converted to 7-bit: \(why)"))))
        }
    }

    /// The whole message and the final dot were written.
    public mutating func messageSent() -> [SMTPClientAction] {
        guard state == .message else { return [] }
        state = .final(0)
        return []
    }

    /// The connection ended, timed out or broke the protocol (`why` says which). Recipients not
    /// decided yet are deferred; before a transaction began, the next host may be tried.
    public mutating func connectionLost(_ why: String) -> [SMTPClientAction] {
        let before = stage
        switch state {
        case .done:
            return []
        case .greeting, .hello, .startTLS, .tlsHandshake, .auth, .downgrade:
            state = .done
            failure = .connection
            return [.finish(.tryNextHost(MailReply(421, "4.4.2", "\(why) with \(settings.peer) while \(before)")))]
        case .mail, .rcpt, .data, .message, .final:
            state = .done
            let reply = MailReply(421, "4.4.2", "\(why) with \(settings.peer) while \(before)")
            for index in results.indices where results[index] == nil { results[index] = outcome(index, reply) }
            return [.finish(.outcomes(finalOutcomes()))]
        }
    }

    // MARK: steps

    private mutating func afterHello() -> [SMTPClientAction] {
        if !isSecure && settings.tls != .none && extensions.has("STARTTLS") {
            state = .startTLS
            return [.send(["STARTTLS"])]
        }
        if !isSecure && settings.tls == .encrypt {
            return giveUp(.tls, MailReply(451, "4.7.4", "TLS is required, but was not offered by host \(settings.peer)"))
        }
        return beginTransaction()
    }

    /// Whether the envelope cannot go without SMTPUTF8 (RFC 6531): non-ASCII addresses, or a
    /// message submitted with SMTPUTF8 whose header has 8-bit octets (UTF-8 header fields).
    public var needsSMTPUTF8: Bool {
        let addresses = [message.envelope.sender] + message.recipients.map(\.address)
        if addresses.contains(where: { !$0.utf8.allSatisfy { $0 < 0x80 } }) { return true }
        return message.envelope.smtpUTF8 && message.content.eightBitHeader
    }

    /// Whether the message is 8-bit: declared so, or 8-bit octets seen in it.
    public var isEightBit: Bool {
        let declared = message.envelope.body?.uppercased()
        return declared == "8BITMIME" || declared == "BINARYMIME" || message.content.hasEightBit
    }

    private mutating func beginTransaction() -> [SMTPClientAction] {
        if !authenticated, let credentials = settings.credentials {
            if extensions.has("AUTH") { return authenticate(credentials) }
            if settings.requireAuthentication {
                // Before TLS a server may hide AUTH (Postern and Postfix do): say so, it is the likelier cause.
                let hint = isSecure ? "" : " without TLS"
                return giveUp(.authentication, MailReply(530, "5.7.0", "host \(settings.peer) does not offer AUTH\(hint); the message is not sent without logging in"))
            }
        }
        if needsSMTPUTF8 && !extensions.has("SMTPUTF8") {
            return quit(.outcomes(all(MailReply(550, "5.6.7", "SMTPUTF8 is required, but was not offered by host \(settings.peer)"))))
        }
        if let limit = extensions.sizeLimit, limit > 0, message.content.size > limit {
            return quit(.outcomes(all(MailReply(552, "5.3.4", "message size \(message.content.size) exceeds size limit \(limit) of server \(settings.peer)"))))
        }
        guard isEightBit else { return sendMail(body: nil) }
        if extensions.has("8BITMIME") { return sendMail(body: "8BITMIME") }
        if needsSMTPUTF8 || message.content.eightBitHeader {
            return quit(.outcomes(all(MailReply(550, "5.6.3", "host \(settings.peer) does not support 8BITMIME and the message has 8-bit octets in its header"))))
        }
        // Declared 8-bit but only 7-bit octets inside: it goes as it is, without BODY=.
        guard message.content.eightBitBody else { return sendMail(body: nil) }
        state = .downgrade
        return [.prepareDowngrade]
    }

    /// AUTH (RFC 4954) before the transaction, when this next hop has credentials and the
    /// server offers AUTH: PLAIN with an initial response, else LOGIN. A password goes only
    /// over TLS, or to a peer on loopback.
    private mutating func authenticate(_ credentials: SASLClientCredentials) -> [SMTPClientAction] {
        guard isSecure || settings.plaintextAuthAllowed else {
            return giveUp(.authentication, MailReply(454, "4.7.0", "host \(settings.peer) wants AUTH, but the password is not sent without TLS"))
        }
        let offered = Set((extensions.keywords["AUTH"] ?? []).map { $0.uppercased() })
        if offered.contains("PLAIN") {
            state = .auth(mechanism: "PLAIN", step: 0)
            return [.sendSecret("AUTH PLAIN \(credentials.plainResponse)")]
        }
        if offered.contains("LOGIN") {
            state = .auth(mechanism: "LOGIN", step: 0)
            return [.send(["AUTH LOGIN"])]
        }
        return giveUp(.authentication, MailReply(454, "4.7.0", "no SASL mechanism in common with host \(settings.peer) (it offers \(offered.sorted().joined(separator: " ")); Postern sends PLAIN or LOGIN)"))
    }

    private mutating func sendMail(body: String?) -> [SMTPClientAction] {
        var mail = "MAIL FROM:<\(message.envelope.sender)>"
        if extensions.has("SIZE") { mail += " SIZE=\(sizeToSend)" }
        if let body { mail += " BODY=\(body)" }
        if extensions.has("SMTPUTF8") && (message.envelope.smtpUTF8 || needsSMTPUTF8) { mail += " SMTPUTF8" }
        if extensions.has("DSN") {
            if let ret = message.envelope.dsnReturn?.uppercased(), ret == "FULL" || ret == "HDRS" { mail += " RET=\(ret)" }
            if let id = message.envelope.envelopeID, !id.isEmpty { mail += " ENVID=\(Self.xtext(id))" }
        }
        // RFC 2920: with PIPELINING, MAIL and every RCPT go in one write and the replies are
        // read in order; DATA waits for them (so no empty DATA when every RCPT was refused).
        let pipelined = extensions.has("PIPELINING") && !message.recipients.isEmpty
        state = .mail(pipelined: pipelined)
        if pipelined { return [.send([mail] + message.recipients.indices.map(rcptCommand))] }
        return [.send([mail])]
    }

    private func rcptCommand(_ index: Int) -> String {
        let recipient = message.recipients[index]
        var command = "RCPT TO:<\(recipient.address)>"
        if extensions.has("DSN") {
            let notify = recipient.notify.map { $0.uppercased() }.filter { ["SUCCESS", "FAILURE", "DELAY", "NEVER"].contains($0) }
            if !notify.isEmpty { command += " NOTIFY=\(notify.joined(separator: ","))" }
            if let original = recipient.originalRecipient, !original.isEmpty {
                // Kept decoded as `type;address` (the queue's reports print it so); encoded here.
                let parts = original.split(separator: ";", maxSplits: 1).map { $0.trimmingSpaces() }
                let (type, address) = parts.count == 2 ? (parts[0], parts[1]) : ("rfc822", parts.first ?? "")
                if !address.isEmpty { command += " ORCPT=\(type);\(Self.xtext(address))" }
            }
        }
        return command
    }

    // MARK: outcomes

    /// RFC 3461 §4: xtext, `+XX` for `+`, `=`, controls, space and non-ASCII octets.
    public static func xtext(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            if byte > 32 && byte < 127 && byte != UInt8(ascii: "+") && byte != UInt8(ascii: "=") {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += "+" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }

    /// A server reply as an outcome reply: its codes, and a text naming the host and the command.
    private func hostReply(_ reply: SMTPReply, _ verb: String, _ command: String?) -> MailReply {
        var text = "host \(settings.peer) \(verb): \(reply.code) \(reply.text)"
        if let command { text += " (in reply to \(command) command)" }
        let base = reply.mailReply
        return MailReply(reply.code, base.enhanced, text)
    }

    private func outcome(_ index: Int, _ reply: MailReply) -> RecipientOutcome {
        let status: RecipientOutcome.Status = (200..<300).contains(reply.code) ? .delivered : reply.isPermanent ? .failed : .deferred
        // A positive code where a refusal or an answer was due (a 1xx/3xx) is a deferral.
        let fixed = status == .deferred && !reply.isTemporary ? MailReply(451, "4.5.0", "unexpected reply: \(reply.text)") : reply
        return RecipientOutcome(recipient: message.recipients[index].address, status: status, reply: fixed)
    }

    private func all(_ reply: MailReply) -> [RecipientOutcome] {
        message.recipients.indices.map { outcome($0, reply) }
    }

    private func finalOutcomes() -> [RecipientOutcome] {
        results.indices.map { index in
            results[index] ?? outcome(index, MailReply(451, "4.3.0", "no reply received for this recipient"))
        }
    }

    /// QUIT, then finish with "try the next host", saying why for code (`failure`) and people.
    private mutating func giveUp(_ why: SMTPClientFailure, _ reply: MailReply) -> [SMTPClientAction] {
        failure = why
        return quit(.tryNextHost(reply))
    }

    /// QUIT, then finish with `result`.
    private mutating func quit(_ result: SMTPClientSessionResult) -> [SMTPClientAction] {
        state = .done
        return [.send(["QUIT"]), .finish(result)]
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }

}

extension Substring {
    fileprivate func trimmingSpaces() -> String {
        var s = self
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}
