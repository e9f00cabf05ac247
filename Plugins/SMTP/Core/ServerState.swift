import Foundation
import PluginAPI

/// One SMTP session (RFC 5321 with PIPELINING, SIZE, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES,
/// CHUNKING/BINARYMIME, DSN, STARTTLS and AUTH), without any networking: raw bytes in, replies
/// and actions out. The NIO handler feeds what it reads to `receive` one call at a time and
/// writes what comes back, so replies leave in command order however the client pipelines.
///
/// This file holds the phase machine: connection checks, line splitting, command sequencing,
/// HELO/EHLO/LHLO, VRFY and STARTTLS. Each transaction step has its own file: `+Mail` (sender checks),
/// `+Rcpt` (recipient checks: access tables, router, relay control, filters), `+Data` (DATA and
/// BDAT, the spool file, end-of-message filters, the queue hand-over) and `+Auth` (SASL).
/// In LMTP mode (`env.dialect`, RFC 2033) the same machine serves LMTP listeners; where LMTP
/// differs, the code says `isLMTP` at the place, and `+LMTP` holds its two store steps (the
/// recipient check and the delivery with one reply per recipient). Not thread-safe: one call at a
/// time (the driver guarantees it).
// @unchecked Sendable: one caller at a time: SMTPSessionHandler's `busy` flag allows one call at once, in a Task or on its loop
final class SMTPServerState: @unchecked Sendable {
    let env: SMTPEnvironment
    var options: SMTPOptions { env.options }
    var client: SMTPClient

    enum Phase {
        case command
        /// After DATA: the dot-stuffed body.
        case data(DotStuffedReader)
        /// After BDAT: `remaining` octets of the chunk, kept only when `accepted`.
        case chunk(remaining: Int, last: Bool, refusal: MailReply?)
        /// Between 334 and the client's answer.
        case auth(AuthExchange)
        /// The mechanism succeeded with data for the client; an empty line ends the exchange.
        case authFinal(SASLIdentity)
        /// After STARTTLS's 220: nothing is read until TLS is up.
        case startingTLS
        case closed
    }

    struct Transaction {
        var id: String
        var sender: String
        var body: String?
        var smtpUTF8 = false
        var dsnReturn: String?
        var envelopeID: String?
        var recipients: [EnvelopeRecipient] = []
        var discard = false
        var quarantine: String?
        var usedBDAT = false
        var spool: SpoolFile?
        var size = 0
        var tooBig = false
    }

    var phase: Phase = .command
    var input: [UInt8] = []
    var splitter: LineSplitter

    var heloName: String?
    var extended = false
    var authenticatedUser: String?
    /// The SASL mechanism of the AUTH under way, and of the one that succeeded (for filters).
    var attemptedMechanism: String?
    var authenticationMechanism: String?
    var transaction: Transaction?
    var transactionCount = 0

    /// The client's verified host name (PTR confirmed by a forward lookup).
    private(set) var clientHostname: String?
    /// Whether the client is in `mynetworks` (may relay, skips DNSBL and reverse-DNS checks).
    private(set) var trustedNetwork = false
    /// An access table said OK or RELAY for the client: later access checks are skipped.
    var clientWhitelisted = false
    var clientMayRelay = false
    /// Every message of this session is accepted and dropped (access or filter DISCARD).
    var discardAll = false
    var quarantineAll: String?
    /// Set when the greeting refused service (554): only QUIT is served.
    var refusal: MailReply?
    var filterTransaction: FilterChainTransaction?
    /// What the filters were last told about the connection.
    var lastFilterConnection: FilterConnection?

    /// The size announced by the BDAT being read.
    var chunkSize = 0
    var commandCount = 0
    var errorCount = 0
    /// Set by the driver when the worker drains: no new transaction starts.
    var draining = false

    init(environment: SMTPEnvironment, client: SMTPClient) {
        env = environment
        self.client = client
        // AUTH lines may be up to 12288 octets (RFC 4954 §4); other lines are held to the option.
        // LMTP has no AUTH.
        let longest = environment.dialect.isLMTP ? environment.options.maxLineLength : max(environment.options.maxLineLength, 12288)
        splitter = LineSplitter(maxLength: longest,
                                bareLineFeed: environment.options.bareLineFeed == .reject ? .reject : .accept)
        trustedNetwork = client.address.map { a in environment.options.mynetworks.contains { $0.contains(a) } } ?? false
    }

    /// The session speaks LMTP (RFC 2033) and delivers into the store.
    var isLMTP: Bool { env.dialect.isLMTP }

    /// Whether a mail transaction or an exchange is under way (a draining session waits for it).
    var isIdle: Bool {
        if case .command = phase { return transaction == nil }
        if case .closed = phase { return true }
        return false
    }

    var isClosed: Bool {
        if case .closed = phase { return true }
        return false
    }

    // MARK: - Connection

    /// The connection is open: checks on the client, then the greeting.
    func start() async -> [SMTPOutput] {
        let started = DispatchTime.now()
        defer {
            let ms = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e6
            if ms > 1000 { env.logger.info("connection checks were slow", metadata: ["ms": "\(Int(ms))"]) }
        }
        if let dns = env.dns, let address = client.address, !address.isLoopback || options.requireReverseDNS {
            clientHostname = await verifiedHostname(address, dns)
        }
        if let (key, action) = await accessPolicy.decide(AccessPolicy.clientKeys(address: client.address, hostname: clientHostname)) {
            env.logger.info("client access table decision", metadata: ["key": "\(key)", "action": "\(action)"])
            switch action {
            case .ok: clientWhitelisted = true
            case .relay: clientWhitelisted = true; clientMayRelay = true
            case .discard: discardAll = true
            case .reject(let text): return greetingRefusal(MailReply(554, "5.7.1", text ?? "access denied"))
            case .tempfail(let text): return closing(MailReply(421, "4.7.0", "\(env.hostname) \(text ?? "try again later")"))
            }
        }
        if !clientWhitelisted && !trustedNetwork, let dns = env.dns, let address = client.address {
            for zone in options.dnsbl {
                let name = address.dnsblName(zone: zone)
                do {
                    let answers = try await dns.addresses(name)
                    if answers.contains(where: { $0.hasPrefix("127.") }) {
                        env.logger.notice("client listed in DNSBL", metadata: ["zone": "\(zone)", "answers": "\(answers)"])
                        return greetingRefusal(MailReply(554, "5.7.1", "service unavailable; client [\(address)] blocked using \(zone)"))
                    }
                } catch {
                    env.logger.warning("DNSBL lookup failed, not blocking", metadata: ["zone": "\(zone)", "error": "\(error)"])
                }
            }
            if options.requireReverseDNS && clientHostname == nil {
                if reverseLookupFailedTemporarily {
                    return closing(MailReply(421, "4.7.25", "\(env.hostname) cannot verify the reverse DNS of [\(address)], try again later"))
                }
                return greetingRefusal(MailReply(554, "5.7.25", "reverse DNS of [\(address)] is missing or does not match"))
            }
        }
        if !env.filters.filters.isEmpty {
            let connection = currentFilterConnection
            let filters = env.filters.begin(connection, logger: env.logger)
            filterTransaction = filters
            lastFilterConnection = connection
            switch await filters.run(.connect, { await $0.connect() }) {
            case .reject(let reply): return greetingRefusal(permanent(reply))
            case .tempfail(let reply): return closing(temporary(reply, code: 421))
            case .discard: discardAll = true
            case .quarantine(let reason): quarantineAll = reason
            case .continue, .accept: break
            }
        }
        return [.reply(MailReply(220, nil, isLMTP ? "\(env.hostname) LMTP Postern ready" : "\(env.hostname) ESMTP Postern"))]
    }

    var reverseLookupFailedTemporarily = false

    func verifiedHostname(_ address: IPAddress, _ dns: any DNSResolver) async -> String? {
        do {
            for name in try await dns.ptr("\(address)").prefix(5) {
                let host = name.hasSuffix(".") ? String(name.dropLast()) : name
                let forward = try await dns.addresses(host)
                if forward.contains(where: { IPAddress($0) == address }) { return host.lowercased() }
            }
        } catch {
            reverseLookupFailedTemporarily = true
            env.logger.info("reverse DNS lookup failed", metadata: ["error": "\(error)"])
        }
        return nil
    }

    /// A 554 greeting (RFC 5321 §3.1): the session stays open and answers 503 until QUIT.
    func greetingRefusal(_ reply: MailReply) -> [SMTPOutput] {
        refusal = reply
        env.logger.info("connection refused", metadata: ["reply": "\(reply)"])
        return [.reply(reply)]
    }

    func closing(_ reply: MailReply) -> [SMTPOutput] {
        phase = .closed
        abortTransaction()
        return [.reply(reply), .close]
    }

    /// The driver installed TLS: the session starts over, secure (RFC 3207 §4.2).
    func tlsStarted() {
        client.isSecure = true
        client.canStartTLS = false
        input.removeAll()
        splitter = LineSplitter(maxLength: splitter.maxLength, bareLineFeed: splitter.bareLineFeed)
        phase = .command
    }

    /// The idle timer fired.
    func timedOut() -> [SMTPOutput] {
        env.logger.info("session timed out")
        return closing(MailReply(421, "4.4.2", "\(env.hostname) timeout exceeded, closing connection"))
    }

    /// The worker drains: a session between transactions is told to come back (RFC 5321 §3.8).
    func drainNow() -> [SMTPOutput] {
        closing(drainReply)
    }

    var drainReply: MailReply {
        MailReply(421, "4.3.2", isLMTP ? "\(env.hostname) shutting down, try again" : "\(env.hostname) service shutting down, try again later")
    }

    /// The client went away.
    func connectionClosed() async {
        phase = .closed
        if let spool = transaction?.spool { spool.discard() }
        if transaction != nil, let filters = filterTransaction { await filters.abort() }
        transaction = nil
        if let filters = filterTransaction {
            filterTransaction = nil
            await filters.close()
        }
    }

    // MARK: - Input

    /// Takes bytes from the client and returns what to send, in order.
    func receive<Bytes: Collection>(_ bytes: Bytes) async -> [SMTPOutput] where Bytes.Element == UInt8 {
        switch phase {
        case .closed, .startingTLS: return []
        default: break
        }
        input += bytes
        var out: [SMTPOutput] = []
        while !input.isEmpty && !out.contains(.close) && !out.contains(.startTLS) {
            switch phase {
            case .closed, .startingTLS:
                // Pipelined bytes after QUIT or STARTTLS are dropped (RFC 3207 §4.2).
                input.removeAll()
            case .data(var reader):
                let (data, consumed) = reader.feed(input)
                input.removeFirst(consumed)
                phase = .data(reader)
                if !reader.tooBig { transaction?.spool?.write(data) }
                if isLMTP && transaction?.spool?.failed == true {
                    out += spoolFailedMidMessage()
                    break
                }
                if reader.finished {
                    phase = .command
                    let sender = transaction?.sender
                    out += counted(recordRefusal(await endOfData(reader), stage: "DATA", sender: sender))
                }
            case .chunk(let remaining, let last, let refusal):
                let n = min(remaining, input.count)
                if refusal == nil, var t = transaction {
                    t.size += n
                    if t.size > options.maxMessageSize { t.tooBig = true }
                    if !t.tooBig { t.spool?.write(input[0..<n]) }
                    transaction = t
                }
                input.removeFirst(n)
                phase = .chunk(remaining: remaining - n, last: last, refusal: refusal)
                if remaining - n == 0 {
                    phase = .command
                    let sender = transaction?.sender
                    out += counted(recordRefusal(await endOfChunk(last: last, refusal: refusal, size: chunkSize), stage: "DATA", sender: sender))
                }
            case .command, .auth, .authFinal:
                guard let lf = input.firstIndex(of: UInt8(ascii: "\n")) else {
                    _ = splitter.feed(input)
                    input.removeAll()
                    break
                }
                let events = splitter.feed(input[...lf])
                input.removeSubrange(...lf)
                for event in events { out += counted(await line(event)) }
            }
        }
        return out
    }

    /// Counts error replies; past `max_errors` the session ends with 421.
    func counted(_ out: [SMTPOutput]) -> [SMTPOutput] {
        var result = out
        for case .reply(let r) in out where r.code >= 400 && r.code != 421 { errorCount += 1 }
        if errorCount >= options.maxErrors && !out.contains(.close) {
            env.logger.notice("too many errors, closing", metadata: ["errors": "\(errorCount)"])
            result += closing(MailReply(421, "4.7.0", "\(env.hostname) too many errors, closing connection"))
        }
        return result
    }

    func line(_ event: LineSplitter.Event) async -> [SMTPOutput] {
        switch phase {
        case .auth(let exchange):
            guard case .line(let bytes) = event else { return abortAuth(MailReply(501, "5.5.2", "authentication line too long or malformed")) }
            return await authResponse(exchange, bytes)
        case .authFinal(let identity):
            guard case .line(let bytes) = event, bytes.isEmpty else {
                phase = .command
                return authFailed(MailReply(535, "5.7.8", "authentication credentials invalid"))
            }
            return await authSucceeded(identity)
        default:
            break
        }
        switch event {
        case .tooLong: return reply(500, "5.5.2", "line too long")
        case .bareLineFeed: return reply(500, "5.5.2", "bare LF received; lines end with CRLF")
        case .line(let bytes):
            commandCount += 1
            if commandCount > options.maxCommands {
                return closing(MailReply(421, "4.7.0", "\(env.hostname) too many commands, closing connection"))
            }
            if bytes.count > options.maxLineLength && !isAuthCommand(bytes) { return reply(500, "5.5.2", "line too long") }
            switch SMTPCommandParser.parse(bytes, allowUTF8: options.smtpUTF8) {
            case .failure(let error):
                if case .badAddress(let why) = error { return reply(501, "5.1.3", "bad address syntax: \(why)") }
                return [.reply(error.reply)]
            case .success(let command):
                return await execute(command)
            }
        }
    }

    func isAuthCommand(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 5 && String(decoding: bytes.prefix(5), as: UTF8.self).uppercased() == "AUTH "
    }

    func reply(_ code: Int, _ enhanced: String?, _ text: String) -> [SMTPOutput] {
        [.reply(MailReply(code, enhanced, text))]
    }

    /// Writes a refusal (a 4xx or 5xx among `outputs`) to the event log, and passes `outputs` on.
    func recordRefusal(_ outputs: [SMTPOutput], stage: String, sender: String? = nil, recipient: String? = nil) -> [SMTPOutput] {
        guard let events = env.events else { return outputs }
        for case .reply(let r) in outputs where r.code >= 400 {
            events.record(MailEvent(time: env.now(), kind: .rejected, listener: env.listenerName,
                                    sender: sender ?? transaction?.sender, recipient: recipient,
                                    client: client.address?.description, stage: stage, reason: "\(r)",
                                    filter: filterTransaction?.takeDecidingFilter()))
        }
        return outputs
    }

    // MARK: - Commands

    func execute(_ command: SMTPCommand) async -> [SMTPOutput] {
        if let refusal {
            switch command {
            case .quit: return closing(MailReply(221, "2.0.0", "bye"))
            case .noop: return reply(250, "2.0.0", "ok")
            default: return reply(503, "5.7.1", "no service here: \(refusal.text)")
            }
        }
        switch command {
        case .helo where isLMTP, .ehlo where isLMTP: return reply(500, "5.5.1", "this is LMTP: use LHLO")
        case .helo(let name): return await hello(name, extended: false)
        case .ehlo(let name): return await hello(name, extended: true)
        case .lhlo(let name) where isLMTP: return await hello(name, extended: true)
        case .lhlo: return reply(500, "5.5.1", "this is SMTP: use EHLO")
        case .mail(let from, let parameters): return recordRefusal(await mail(from, parameters), stage: "MAIL", sender: from.address)
        case .rcpt(let to, let parameters): return recordRefusal(await rcpt(to, parameters), stage: "RCPT", recipient: to.address)
        case .data: return data()
        // LMTP offers no CHUNKING: the command is refused and what follows it read as commands.
        case .bdat where isLMTP: return reply(502, "5.5.1", "BDAT is not offered here")
        case .bdat(let size, let last): return await bdat(size: size, last: last)
        case .rset:
            await resetTransaction()
            return reply(250, "2.0.0", isLMTP ? "reset" : "ok")
        case .noop: return reply(250, "2.0.0", "ok")
        case .quit: return closing(MailReply(221, "2.0.0", "bye"))
        case .help where isLMTP: return reply(214, "2.0.0", "LHLO MAIL RCPT DATA RSET NOOP QUIT")
        case .help: return reply(214, "2.0.0", "EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY STARTTLS AUTH; see RFC 5321")
        case .vrfy where isLMTP: return reply(252, "2.5.0", "cannot verify, but will try")
        case .vrfy(let argument): return await vrfy(argument)
        case .expn: return reply(502, "5.5.1", "EXPN is disabled")
        // LMTP is for the site's own MTA, on loopback, the local network or a Unix socket.
        case .startTLS where isLMTP, .auth where isLMTP: return reply(502, "5.5.1", "not offered on LMTP")
        case .startTLS: return startTLS()
        case .auth(let mechanism, let initial): return await auth(mechanism, initial)
        }
    }

    func hello(_ name: String, extended: Bool) async -> [SMTPOutput] {
        await resetTransaction()
        if !clientWhitelisted, let (key, action) = await accessPolicy.decide(AccessPolicy.domainKeys("helo:", name)) {
            env.logger.info("HELO access table decision", metadata: ["key": "\(key)", "action": "\(action)"])
            switch action {
            case .reject(let text): return reply(550, "5.7.1", text ?? "access denied")
            case .tempfail(let text): return reply(450, "4.7.1", text ?? "try again later")
            case .discard: discardAll = true
            case .ok, .relay: break
            }
        }
        if let filters = filterTransaction {
            syncFilterConnection(helo: name)
            switch await filters.run(.helo, { await $0.helo(name) }) {
            case .reject(let r): return [.reply(permanent(r))]
            case .tempfail(let r): return [.reply(temporary(r))]
            case .discard: discardAll = true
            case .quarantine(let reason): quarantineAll = reason
            case .continue, .accept: break
            }
        }
        heloName = name
        self.extended = extended
        if isLMTP {
            return reply(250, nil, [env.hostname, "PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME", "SMTPUTF8",
                                    "SIZE \(options.maxMessageSize)"].joined(separator: "\n"))
        }
        guard extended else { return reply(250, nil, env.hostname) }
        var lines = [env.hostname, "PIPELINING", "SIZE \(options.maxMessageSize)", "8BITMIME"]
        if options.smtpUTF8 { lines.append("SMTPUTF8") }
        lines += ["ENHANCEDSTATUSCODES", "CHUNKING", "BINARYMIME", "DSN"]
        if client.canStartTLS && !client.isSecure { lines.append("STARTTLS") }
        if authenticatedUser == nil {
            // ANONYMOUS proves no identity, and submission needs one: never offered here.
            let anonymous = Set(env.auth.mechanisms.filter(\.isAnonymous).map(\.name))
            let mechanisms = env.auth.offered(secure: client.isSecure, loopback: client.isLoopback,
                                              plaintextOnLoopback: options.allowPlaintextAuthOnLoopback,
                                              channelBinding: !client.channelBindings.isEmpty).filter { !anonymous.contains($0) }
            if !mechanisms.isEmpty { lines.append("AUTH " + mechanisms.joined(separator: " ")) }
        }
        return reply(250, nil, lines.joined(separator: "\n"))
    }

    var accessPolicy: AccessPolicy { AccessPolicy(directory: env.directory, tables: options.accessTables) }

    /// Clients that may send to any domain.
    var mayRelay: Bool {
        trustedNetwork || clientMayRelay || (authenticatedUser != nil && options.relayAuthenticated)
    }

    // MARK: - VRFY, STARTTLS

    func vrfy(_ argument: String) async -> [SMTPOutput] {
        guard options.vrfy else { return reply(252, "2.5.0", "cannot VRFY user, but will accept message and attempt delivery") }
        let text = argument.hasPrefix("<") ? argument : "<\(argument)>"
        guard let path = try? SMTPPath.parse(text, allowUTF8: options.smtpUTF8), path.domain != nil,
              RecipientSyntax.refusal(path, localAddress: client.localAddress) == nil,
              let address = RecipientSyntax.normalised(path, hostname: env.hostname) else {
            return reply(501, "5.1.3", "VRFY needs a full address")
        }
        // LMTP answers VRFY without asking (execute); only SMTP has a router to ask.
        guard case .smtp(let router, _) = env.dialect else { return reply(252, "2.5.0", "cannot verify, but will try") }
        switch try? await router.classify(address) {
        case .local?: return reply(250, "2.1.5", "<\(address)>")
        case .unknownUser?: return [.reply(RecipientRefusal.unknownUser.reply(address, unknownUserCode: options.unknownRecipientCode))]
        case .disabled?: return [.reply(RecipientRefusal.disabled.reply(address))]
        case .relayDomain?, .remote?: return reply(252, "2.5.0", "<\(address)>: not local, will attempt delivery")
        case nil: return reply(451, "4.3.0", "temporary lookup failure")
        }
    }

    func startTLS() -> [SMTPOutput] {
        if client.isSecure { return reply(503, "5.5.1", "TLS already active") }
        guard client.canStartTLS else { return reply(454, "4.7.0", "TLS not available") }
        guard heloName != nil && extended else { return reply(503, "5.5.1", "send EHLO first") }
        guard transaction == nil else { return reply(503, "5.5.1", "STARTTLS not permitted during a mail transaction") }
        // Everything learnt in plaintext is forgotten (RFC 3207 §4.2): EHLO must come again.
        heloName = nil
        extended = false
        authenticatedUser = nil
        authenticationMechanism = nil
        input.removeAll()
        phase = .startingTLS
        return [.reply(MailReply(220, "2.0.0", "ready to start TLS")), .startTLS]
    }

    // MARK: - Filters

    /// The connection as filters see it now (TLS, HELO, AUTH and the transaction change it).
    var currentFilterConnection: FilterConnection {
        let port = client.peerDescription.split(separator: ":").last.flatMap { Int($0) }
        var c = FilterConnection(peerAddress: client.address.map { "\($0)" } ?? client.peerDescription, peerPort: port,
                                 peerHostname: clientHostname, listener: env.listenerName, direction: options.direction,
                                 localHostname: env.hostname, isSecure: client.isSecure, authenticatedUser: authenticatedUser)
        c.heloName = heloName
        c.authenticationMechanism = authenticationMechanism
        c.transactionID = transaction?.id
        return c
    }

    /// Tells the filters what changed since they last heard, before the next stage.
    func syncFilterConnection(helo: String? = nil, transactionID: String? = nil) {
        guard let filters = filterTransaction else { return }
        var c = currentFilterConnection
        if let helo { c.heloName = helo }
        if let transactionID { c.transactionID = transactionID }
        guard c != lastFilterConnection else { return }
        lastFilterConnection = c
        filters.connectionChanged(c)
    }

    // MARK: - Filter replies

    /// A filter's permanent reply, forced into 5xx.
    func permanent(_ r: MailReply) -> MailReply {
        r.isPermanent ? r : MailReply(550, "5.7.1", r.text)
    }

    /// A filter's temporary reply, forced into 4xx (421 at connect).
    func temporary(_ r: MailReply, code: Int = 451) -> MailReply {
        if code == 421 { return MailReply(421, "4.7.0", "\(env.hostname) \(r.text)") }
        return r.isTemporary ? r : MailReply(code, "4.7.1", r.text)
    }
}
