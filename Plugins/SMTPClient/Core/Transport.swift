import Foundation
import PluginAPI

/// The plugin's settings, from `[plugin.smtp-client]`.
struct OutboundSettings: Sendable {
    var heloName: String
    var tls: SMTPClientTLSPolicy
    /// The port of MX hosts and of next hops without one.
    var port: Int
    var lmtpPort: Int
    /// The LMTP next hop when routing gave none.
    var lmtpNextHop: String?
    /// Tried in order when every host of the destination failed (SMTP only).
    var fallbackRelays: [Destination]
    var maxAddresses: Int
    var timeouts: SMTPClientTimeouts
    /// Lookup tables giving `USER:PASSWORD` for a next hop (Postfix's smtp_sasl_password_maps).
    var saslPasswordTables: [String] = []
}

/// What a delivery attempt sends: the queued file, or the message signed in memory.
struct OutgoingContent: Sendable {
    var scan: MessageContentScan
    var source: SMTPClientMessage
    var signing: SMTPClientSigning?
}

/// The `smtp` and `lmtp` transports: one delivery attempt of a queued message to the servers of
/// its destination, one connection at a time, until a server takes the transaction or none is
/// left.
// @unchecked Sendable: all stored properties are let (settings, Counters, HostServices, event loop group, NIOSSLContext)
final class OutboundTransport: Transport, @unchecked Sendable {
    let kind: SMTPClientProtocol
    let settings: OutboundSettings
    let services: HostServices
    let group: any EventLoopGroup
    let logger: Logger
    /// The STARTTLS context of the `tls` policy (nil for `none`, and for LMTP).
    let tlsContext: NIOSSLContext?
    let delivered: Counter, deferred: Counter, failed: Counter
    let sessionsPlain: Counter, sessionsTLS: Counter

    init(kind: SMTPClientProtocol, settings: OutboundSettings, services: HostServices, group: any EventLoopGroup, logger: Logger,
         tlsContext: NIOSSLContext?, counter: (String, [(String, String)]) -> Counter) {
        self.kind = kind
        self.settings = settings
        self.services = services
        self.group = group
        self.logger = logger
        self.tlsContext = kind == .smtp ? tlsContext : nil
        let name = kind.rawValue
        delivered = counter("postern_outbound_recipients_total", [("transport", name), ("result", "delivered")])
        deferred = counter("postern_outbound_recipients_total", [("transport", name), ("result", "deferred")])
        failed = counter("postern_outbound_recipients_total", [("transport", name), ("result", "failed")])
        sessionsPlain = counter("postern_outbound_sessions_total", [("transport", name), ("tls", "no")])
        sessionsTLS = counter("postern_outbound_sessions_total", [("transport", name), ("tls", "yes")])
    }

    func deliver(_ message: QueuedMessage) async -> [RecipientOutcome] {
        guard !message.pending.isEmpty else { return [] }
        guard let content = await outgoingContent(message) else {
            return record(message, Self.all(message.pending, .deferred, MailReply(451, "4.3.0", "cannot read the queued message")), via: nil)
        }
        // The queue groups remote recipients by domain; recipients of several domains without a
        // next hop (another caller) are delivered domain by domain, the outcomes in the order given.
        if message.nextHop == nil && kind == .smtp {
            var byDomain: [(domain: String, recipients: [EnvelopeRecipient])] = []
            for recipient in message.pending {
                let domain = Self.domain(of: recipient.address)
                if let i = byDomain.firstIndex(where: { $0.domain == domain }) {
                    byDomain[i].recipients.append(recipient)
                } else {
                    byDomain.append((domain, [recipient]))
                }
            }
            if byDomain.count > 1 {
                var outcomes: [String: RecipientOutcome] = [:]
                for domainGroup in byDomain {
                    var part = message
                    part.pending = domainGroup.recipients
                    for outcome in await deliver(part, content: content) { outcomes[outcome.recipient] = outcome }
                }
                return message.pending.map {
                    outcomes[$0.address] ?? RecipientOutcome(recipient: $0.address, status: .deferred,
                                                             reply: MailReply(451, "4.3.0", "no outcome for this recipient"))
                }
            }
        }
        return await deliver(message, content: content)
    }

    /// The message as it will be sent: as queued, or (SMTP, with a signer loaded) signed once
    /// for this attempt, every host and domain of it.
    private func outgoingContent(_ message: QueuedMessage) async -> OutgoingContent? {
        if kind == .smtp, let signer = services.outgoingSigner {
            guard let queued = FileManager.default.contents(atPath: message.path).map({ Array($0) }) else { return nil }
            let envelope = message.envelope
            let signed = await signer.signed(queued, envelope: envelope)
            if signed.count != queued.count {
                var scan = MessageContentScan()
                scan.feed(signed)
                return OutgoingContent(scan: scan, source: .bytes(signed),
                                       signing: SMTPClientSigning(unsigned: .bytes(queued)) { await signer.signed($0, envelope: envelope) })
            }
        }
        guard let scan = Self.scan(message.path) else { return nil }
        return OutgoingContent(scan: scan, source: .file(message.path), signing: nil)
    }

    private func deliver(_ message: QueuedMessage, content: OutgoingContent) async -> [RecipientOutcome] {
        let recipients = message.pending
        let destination: Destination
        do {
            destination = try primaryDestination(message)
        } catch {
            return record(message, Self.all(recipients, .deferred, MailReply(451, "4.3.5", "\(error)")), via: nil)
        }
        var tried: [String] = []
        var firstRouteFailure: MailReply?
        let relays = kind == .smtp ? settings.fallbackRelays.filter { $0 != destination } : []
        for (index, next) in ([destination] + relays).enumerated() {
            switch await RouteResolver(resolver: services.dns, maxAddresses: settings.maxAddresses).resolve(next) {
            case .failed(let reply):
                // No such domain, a null MX, no address: final for the destination itself; a
                // fallback relay is for servers that do not answer, not for mail nobody takes.
                if index == 0 && reply.isPermanent { return record(message, Self.all(recipients, .failed, reply), via: nil) }
                if index == 0 { firstRouteFailure = reply }
                tried.append("\(next): \(reply.text)")
            case .candidates(let candidates, let notes):
                tried += notes
                for candidate in candidates {
                    var policy = kind == .smtp ? settings.tls : .none
                    while true {
                        let result = await attempt(message, content: content, candidate: candidate, destination: next, tls: policy)
                        switch result {
                        case .outcomes(let outcomes):
                            return record(message, outcomes, via: candidate)
                        case .tryNextHost(let reply):
                            tried.append(reply.text)
                        case .retryWithoutTLS(let reply):
                            // As Postfix with `may`: a server whose TLS is broken still gets the mail in plaintext.
                            tried.append(reply.text + "; trying again without TLS")
                            policy = .none
                            continue
                        }
                        break
                    }
                }
            }
        }
        let why = tried.isEmpty ? "no host to try" : tried.joined(separator: "; ")
        if let firstRouteFailure, tried.count == 1 { return record(message, Self.all(recipients, .deferred, firstRouteFailure), via: nil) }
        let code = firstRouteFailure?.enhanced == "4.4.3" ? "4.4.3" : "4.4.1"
        return record(message, Self.all(recipients, .deferred, MailReply(451, code, "delivery to \(destination) failed on every host: \(why)")), via: nil)
    }

    /// Where the message goes: its next hop, else (SMTP) the MX of the recipients' domain, else
    /// (LMTP) the configured `lmtp_nexthop`.
    private func primaryDestination(_ message: QueuedMessage) throws -> Destination {
        switch kind {
        case .smtp:
            if let hop = message.nextHop { return try Destination.smtp(nextHop: hop, defaultPort: settings.port) }
            return try Destination.smtp(domain: Self.domain(of: message.pending[0].address), port: settings.port)
        case .lmtp:
            guard let hop = message.nextHop ?? settings.lmtpNextHop else {
                throw Destination.Invalid(nextHop: "", why: "the lmtp transport needs a next hop (transport map \"lmtp:[host]:port\" or lmtp_nexthop)")
            }
            return try Destination.lmtp(nextHop: hop, defaultPort: settings.lmtpPort)
        }
    }

    /// One session with one address.
    private func attempt(_ message: QueuedMessage, content: OutgoingContent, candidate: Candidate, destination: Destination,
                         tls policy: SMTPClientTLSPolicy) async -> SMTPClientSessionResult {
        let target: SMTPConnectTarget
        let peer: String
        if case .unixSocket(let path) = destination {
            target = .unix(path)
            peer = "unix:\(path)"
        } else {
            do {
                target = .inet(try SocketAddress(ipAddress: candidate.address, port: candidate.port))
            } catch {
                return .tryNextHost(MailReply(421, "4.4.1", "\(candidate): not an address: \(error)"))
            }
            peer = candidate.description
        }
        let tls = policy == .none ? nil : tlsContext.map {
            SMTPClientTLS(context: $0, serverName: RouteResolver.isAddressLiteral(candidate.host) ? nil : candidate.host)
        }
        let credentials = await credentials(for: destination, candidate: candidate)
        let session = SMTPClientSession(
            settings: SMTPClientSessionSettings(protocolKind: kind, heloName: settings.heloName, tls: policy, peer: peer,
                                            credentials: credentials, plaintextAuthAllowed: Self.isLoopback(candidate.address)),
            message: SMTPOutgoingMessage(envelope: message.envelope, recipients: message.pending, content: content.scan))
        let connection = SMTPClientConnection(group: group, timeouts: settings.timeouts, tls: tls, message: content.source,
                                              signing: content.signing, logger: logger)
        let (result, secure) = await connection.run(session, to: target)
        if case .outcomes = result {
            // Counted once the server took part in a transaction, whatever its verdicts.
            (secure ? sessionsTLS : sessionsPlain).increment()
        }
        return result
    }

    /// The SASL credentials for a next hop: looked up as the next hop is written (`[host]:port`,
    /// `domain`), then by the host's name, as Postfix's smtp_sasl_password_maps.
    private func credentials(for destination: Destination, candidate: Candidate) async -> SASLClientCredentials? {
        guard kind == .smtp, !settings.saslPasswordTables.isEmpty else { return nil }
        for key in [destination.description, candidate.host] {
            do {
                if let value = try await services.directory.lookup(key, in: settings.saslPasswordTables)?.first {
                    guard let credentials = SASLClientCredentials(tableValue: value) else {
                        logger.error("SASL password table entry for \(key) is not USER:PASSWORD; ignored")
                        return nil
                    }
                    return credentials
                }
            } catch {
                logger.error("SASL password look-up for \(key) failed: \(error)")
                return nil
            }
        }
        return nil
    }

    static func isLoopback(_ address: String) -> Bool {
        address.hasPrefix("127.") || address == "::1"
    }

    /// Logs one line per recipient (as Postfix does) and counts the outcomes.
    private func record(_ message: QueuedMessage, _ outcomes: [RecipientOutcome], via candidate: Candidate?) -> [RecipientOutcome] {
        for outcome in outcomes {
            switch outcome.status {
            case .delivered: delivered.increment()
            case .deferred: deferred.increment()
            case .failed: failed.increment()
            }
            logger.info("\(outcome.status.rawValue)", metadata: [
                "id": "\(message.id)", "to": "<\(outcome.recipient)>", "relay": "\(candidate?.description ?? "none")",
                "transport": "\(kind.rawValue)", "dsn": "\(outcome.reply.enhanced ?? "")", "reply": "\(outcome.reply.code) \(outcome.reply.text)",
            ])
        }
        return outcomes
    }

    static func all(_ recipients: [EnvelopeRecipient], _ status: RecipientOutcome.Status, _ reply: MailReply) -> [RecipientOutcome] {
        recipients.map { RecipientOutcome(recipient: $0.address, status: status, reply: reply) }
    }

    static func domain(of address: String) -> String { EnvelopeAddress.domain(of: address) }

    /// Size and 8-bit octets of the message file, read once before any connection.
    static func scan(_ path: String) -> MessageContentScan? {
        guard let file = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? file.close() }
        var scan = MessageContentScan()
        do {
            // nil or empty: the end of the file.
            while let block = try file.read(upToCount: 256 * 1024), !block.isEmpty { scan.feed(block) }
        } catch {
            return nil
        }
        return scan
    }
}
