import Foundation
import PluginAPI

/// One SMTP session (RFC 5321 with PIPELINING, SIZE, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES,
/// CHUNKING/BINARYMIME, DSN, STARTTLS and AUTH), without any networking: raw bytes in, replies
/// and actions out. The NIO handler feeds what it reads to `receive` one call at a time and
/// writes what comes back, so replies leave in command order however the client pipelines.
///
/// Everything protocol-level lives here: line splitting, command sequencing, the DATA and BDAT
/// readers, SASL exchanges, relay control, access tables, DNSBL, filters, the spool file and the
/// hand-over to the queue. Not thread-safe: one call at a time (the driver guarantees it).
final class SMTPServerState: @unchecked Sendable {
    private let env: SMTPEnvironment
    private var options: SMTPOptions { env.options }
    private var client: SMTPClient

    private enum Phase {
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

    private struct Transaction {
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

    private var phase: Phase = .command
    private var input: [UInt8] = []
    private var splitter: LineSplitter

    private var heloName: String?
    private var extended = false
    private var authenticatedUser: String?
    private var transaction: Transaction?
    private var transactionCount = 0

    /// The client's verified host name (PTR confirmed by a forward lookup).
    private(set) var clientHostname: String?
    /// Whether the client is in `mynetworks` (may relay, skips DNSBL and reverse-DNS checks).
    private(set) var trustedNetwork = false
    /// An access table said OK or RELAY for the client: later access checks are skipped.
    private var clientWhitelisted = false
    private var clientMayRelay = false
    /// Every message of this session is accepted and dropped (access or filter DISCARD).
    private var discardAll = false
    private var quarantineAll: String?
    /// Set when the greeting refused service (554): only QUIT is served.
    private var refusal: MailReply?
    private var filterTransaction: FilterChainTransaction?

    /// The size announced by the BDAT being read.
    private var chunkSize = 0
    private var commandCount = 0
    private var errorCount = 0
    /// Set by the driver when the worker drains: no new transaction starts.
    var draining = false

    init(environment: SMTPEnvironment, client: SMTPClient) {
        env = environment
        self.client = client
        // AUTH lines may be up to 12288 octets (RFC 4954 §4); other lines are held to the option.
        splitter = LineSplitter(maxLength: max(environment.options.maxLineLength, 12288),
                                bareLineFeed: environment.options.bareLineFeed == .reject ? .reject : .accept)
        trustedNetwork = client.address.map { a in environment.options.mynetworks.contains { $0.contains(a) } } ?? false
    }

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
            let connection = FilterConnection(peerAddress: client.address.map { "\($0)" } ?? client.peerDescription,
                                              peerHostname: clientHostname, listener: env.listenerName, isSecure: client.isSecure)
            let filters = env.filters.begin(connection)
            filterTransaction = filters
            switch await filters.run({ await $0.connect() }) {
            case .reject(let reply): return greetingRefusal(permanent(reply))
            case .tempfail(let reply): return closing(temporary(reply, code: 421))
            case .discard: discardAll = true
            case .quarantine(let reason): quarantineAll = reason
            case .continue, .accept: break
            }
        }
        return [.reply(MailReply(220, nil, "\(env.hostname) ESMTP Postern"))]
    }

    private var reverseLookupFailedTemporarily = false

    private func verifiedHostname(_ address: IPAddress, _ dns: any DNSResolver) async -> String? {
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
    private func greetingRefusal(_ reply: MailReply) -> [SMTPOutput] {
        refusal = reply
        env.logger.info("connection refused", metadata: ["reply": "\(reply)"])
        return [.reply(reply)]
    }

    private func closing(_ reply: MailReply) -> [SMTPOutput] {
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
        closing(MailReply(421, "4.3.2", "\(env.hostname) service shutting down, try again later"))
    }

    /// The client went away.
    func connectionClosed() async {
        phase = .closed
        if let spool = transaction?.spool { spool.discard() }
        if transaction != nil, let filters = filterTransaction { await filters.abort() }
        transaction = nil
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
                if reader.finished {
                    phase = .command
                    out += counted(await endOfData(reader))
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
                    out += counted(await endOfChunk(last: last, refusal: refusal, size: chunkSize))
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
    private func counted(_ out: [SMTPOutput]) -> [SMTPOutput] {
        var result = out
        for case .reply(let r) in out where r.code >= 400 && r.code != 421 { errorCount += 1 }
        if errorCount >= options.maxErrors && !out.contains(.close) {
            env.logger.notice("too many errors, closing", metadata: ["errors": "\(errorCount)"])
            result += closing(MailReply(421, "4.7.0", "\(env.hostname) too many errors, closing connection"))
        }
        return result
    }

    private func line(_ event: LineSplitter.Event) async -> [SMTPOutput] {
        switch phase {
        case .auth(let exchange):
            guard case .line(let bytes) = event else { return abortAuth(MailReply(501, "5.5.2", "authentication line too long or malformed")) }
            return await authResponse(exchange, bytes)
        case .authFinal(let identity):
            guard case .line(let bytes) = event, bytes.isEmpty else {
                phase = .command
                return authFailed(MailReply(535, "5.7.8", "authentication credentials invalid"))
            }
            return authSucceeded(identity)
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

    private func isAuthCommand(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 5 && String(decoding: bytes.prefix(5), as: UTF8.self).uppercased() == "AUTH "
    }

    private func reply(_ code: Int, _ enhanced: String?, _ text: String) -> [SMTPOutput] {
        [.reply(MailReply(code, enhanced, text))]
    }

    // MARK: - Commands

    private func execute(_ command: SMTPCommand) async -> [SMTPOutput] {
        if let refusal {
            switch command {
            case .quit: return closing(MailReply(221, "2.0.0", "bye"))
            case .noop: return reply(250, "2.0.0", "ok")
            default: return reply(503, "5.7.1", "no service here: \(refusal.text)")
            }
        }
        switch command {
        case .helo(let name): return await hello(name, extended: false)
        case .ehlo(let name): return await hello(name, extended: true)
        case .lhlo: return reply(500, "5.5.1", "this is SMTP: use EHLO")
        case .mail(let from, let parameters): return await mail(from, parameters)
        case .rcpt(let to, let parameters): return await rcpt(to, parameters)
        case .data: return data()
        case .bdat(let size, let last): return await bdat(size: size, last: last)
        case .rset:
            await resetTransaction()
            return reply(250, "2.0.0", "ok")
        case .noop: return reply(250, "2.0.0", "ok")
        case .quit: return closing(MailReply(221, "2.0.0", "bye"))
        case .help: return reply(214, "2.0.0", "EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY STARTTLS AUTH; see RFC 5321")
        case .vrfy(let argument): return await vrfy(argument)
        case .expn: return reply(502, "5.5.1", "EXPN is disabled")
        case .startTLS: return startTLS()
        case .auth(let mechanism, let initial): return await auth(mechanism, initial)
        }
    }

    private func hello(_ name: String, extended: Bool) async -> [SMTPOutput] {
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
            switch await filters.run({ await $0.helo(name) }) {
            case .reject(let r): return [.reply(permanent(r))]
            case .tempfail(let r): return [.reply(temporary(r))]
            case .discard: discardAll = true
            case .quarantine(let reason): quarantineAll = reason
            case .continue, .accept: break
            }
        }
        heloName = name
        self.extended = extended
        guard extended else { return reply(250, nil, env.hostname) }
        var lines = [env.hostname, "PIPELINING", "SIZE \(options.maxMessageSize)", "8BITMIME"]
        if options.smtpUTF8 { lines.append("SMTPUTF8") }
        lines += ["ENHANCEDSTATUSCODES", "CHUNKING", "BINARYMIME", "DSN"]
        if client.canStartTLS && !client.isSecure { lines.append("STARTTLS") }
        if authenticatedUser == nil {
            let mechanisms = env.auth.offered(secure: client.isSecure, loopback: client.isLoopback,
                                              plaintextOnLoopback: options.allowPlaintextAuthOnLoopback)
            if !mechanisms.isEmpty { lines.append("AUTH " + mechanisms.joined(separator: " ")) }
        }
        return reply(250, nil, lines.joined(separator: "\n"))
    }

    private var accessPolicy: AccessPolicy { AccessPolicy(directory: env.directory, tables: options.accessTables) }

    /// Clients that may send to any domain.
    private var mayRelay: Bool {
        trustedNetwork || clientMayRelay || (authenticatedUser != nil && options.relayAuthenticated)
    }

    private func mail(_ from: SMTPPath, _ parameters: [SMTPParameter]) async -> [SMTPOutput] {
        guard heloName != nil else { return reply(503, "5.5.1", "send HELO or EHLO first") }
        guard transaction == nil else { return reply(503, "5.5.1", "nested MAIL command") }
        if draining { return closing(MailReply(421, "4.3.2", "\(env.hostname) service shutting down, try again later")) }
        if options.requireAuth && authenticatedUser == nil { return reply(530, "5.7.0", "authentication required") }
        if !parameters.isEmpty && !extended { return reply(555, "5.5.4", "MAIL parameters need EHLO") }
        var t = Transaction(id: "\(env.sessionID).\(transactionCount + 1)", sender: "")
        for p in parameters {
            switch p.key {
            case "SIZE":
                guard let v = p.value, !v.isEmpty, v.count <= 20, v.allSatisfy(\.isASCIIDigit), let n = Int(v) else {
                    return reply(501, "5.5.4", "bad SIZE value")
                }
                if n > options.maxMessageSize { return reply(552, "5.3.4", "message size exceeds fixed limit of \(options.maxMessageSize) bytes") }
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
                return reply(555, "5.5.4", "unsupported MAIL parameter \(p.key)")
            }
        }
        if from.needsSMTPUTF8 && !t.smtpUTF8 { return reply(553, "5.6.7", "non-ASCII sender address needs SMTPUTF8") }
        // A source route in the reverse path is ignored (RFC 5321 §3.3 and §4.1.1.2).
        let sender = from.isNull ? "" : from.address
        t.sender = sender
        let outside = !trustedNetwork && authenticatedUser == nil
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
            switch await filters.run({ await $0.mailFrom(sender, parameters: params) }) {
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
    private func senderBelongs(_ sender: String, to user: String) async -> Bool {
        if sender.lowercased() == user.lowercased() { return true }
        guard !options.senderLoginTables.isEmpty else { return false }
        var keys = [sender.lowercased()]
        if let at = sender.lastIndex(of: "@") { keys.append(String(sender[at...]).lowercased()) }
        for key in keys {
            guard let values = try? await env.directory.lookup(key, in: options.senderLoginTables) else { continue }
            let logins = values.flatMap { $0.split(whereSeparator: { $0 == "," || $0 == " " }) }.map { $0.lowercased() }
            return logins.contains(user.lowercased())
        }
        return false
    }

    private func rcpt(_ to: SMTPPath, _ parameters: [SMTPParameter]) async -> [SMTPOutput] {
        guard var t = transaction else { return reply(503, "5.5.1", "need MAIL command") }
        if t.usedBDAT { return reply(503, "5.5.1", "RCPT after BDAT") }
        guard t.recipients.count < options.maxRecipients else {
            env.metrics.recipientRefused(.limit)
            return reply(452, "4.5.3", "too many recipients")
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
        var relayByAccess = false
        if !clientWhitelisted, let (key, action) = await accessPolicy.decide(AccessPolicy.addressKeys("to:", address)) {
            env.logger.info("recipient access table decision", metadata: ["key": "\(key)", "action": "\(action)"])
            switch action {
            case .reject(let text):
                env.metrics.recipientRefused(.access)
                return reply(550, "5.7.1", "<\(address)>: \(text ?? "recipient address rejected")")
            case .tempfail(let text):
                env.metrics.recipientRefused(.access)
                return reply(450, "4.7.1", "<\(address)>: \(text ?? "try again later")")
            case .discard: t.discard = true
            case .relay: relayByAccess = true
            case .ok: break
            }
        }
        let destination: RecipientClass
        do {
            destination = try await env.router.classify(address)
        } catch {
            env.logger.error("recipient lookup failed", metadata: ["to": "\(address)", "error": "\(error)"])
            env.metrics.recipientRefused(.temporary)
            return reply(451, "4.3.0", "<\(address)>: temporary lookup failure")
        }
        switch destination {
        case .local, .relayDomain:
            break
        case .unknownUser:
            env.metrics.recipientRefused(.unknownUser)
            return reply(550, "5.1.1", "<\(address)>: no such user here")
        case .disabled:
            env.metrics.recipientRefused(.disabled)
            return reply(550, "5.2.1", "<\(address)>: mailbox disabled")
        case .remote:
            guard mayRelay || relayByAccess else {
                env.metrics.recipientRefused(.relayDenied)
                env.metrics.relayDenied.increment()
                env.logger.notice("relay denied", metadata: ["to": "\(address)", "from": "\(t.sender)",
                                                             "user": "\(authenticatedUser ?? "-")"])
                return reply(554, "5.7.1", "<\(address)>: relay access denied")
            }
        }
        if let filters = filterTransaction {
            let params = Dictionary(parameters.map { ($0.key, $0.value ?? "") }, uniquingKeysWith: { a, _ in a })
            switch await filters.run({ await $0.rcptTo(address, parameters: params) }) {
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

    private func data() -> [SMTPOutput] {
        guard let t = transaction else { return reply(503, "5.5.1", "need MAIL command") }
        if t.usedBDAT { return reply(503, "5.5.1", "DATA after BDAT") }
        guard !t.recipients.isEmpty else { return reply(554, "5.5.1", "no valid recipients") }
        if t.body == "BINARYMIME" { return reply(503, "5.5.1", "BODY=BINARYMIME needs BDAT") }
        guard openSpool() else { return reply(451, "4.3.0", "cannot spool the message") }
        phase = .data(DotStuffedReader(maxSize: options.maxMessageSize))
        return reply(354, nil, "end data with <CR><LF>.<CR><LF>")
    }

    private func bdat(size: Int, last: Bool) async -> [SMTPOutput] {
        // The chunk is read whatever the answer, so its octets are never taken for commands.
        var refusal: MailReply?
        if transaction == nil {
            refusal = MailReply(503, "5.5.1", "need MAIL command")
        } else if !extended {
            // CHUNKING is an extension (RFC 3030): a HELO client has not been offered it.
            refusal = MailReply(503, "5.5.1", "BDAT needs EHLO")
        } else if transaction!.recipients.isEmpty {
            refusal = MailReply(554, "5.5.1", "no valid recipients")
        } else if transaction!.spool == nil && !openSpool() {
            refusal = MailReply(451, "4.3.0", "cannot spool the message")
        }
        transaction?.usedBDAT = true
        chunkSize = size
        guard size > 0 else { return await endOfChunk(last: last, refusal: refusal, size: 0) }
        phase = .chunk(remaining: size, last: last, refusal: refusal)
        return []
    }

    private func endOfChunk(last: Bool, refusal: MailReply?, size: Int) async -> [SMTPOutput] {
        if let refusal { return [.reply(refusal)] }
        guard let t = transaction else { return reply(503, "5.5.1", "need MAIL command") }
        if t.tooBig {
            env.metrics.messagesRefused.increment()
            await resetTransaction()
            return reply(552, "5.3.4", "message exceeds fixed limit of \(options.maxMessageSize) bytes")
        }
        if t.spool?.failed == true {
            env.logger.error("spool write failed")
            await resetTransaction()
            return reply(451, "4.3.0", "cannot spool the message")
        }
        guard last else { return reply(250, "2.0.0", "\(size) octets received") }
        return await endOfMessage()
    }

    private func endOfData(_ reader: DotStuffedReader) async -> [SMTPOutput] {
        if reader.tooBig {
            env.metrics.messagesRefused.increment()
            await resetTransaction()
            return reply(552, "5.3.4", "message exceeds fixed limit of \(options.maxMessageSize) bytes")
        }
        if reader.sawBareLineFeed && options.bareLineFeed == .reject {
            env.metrics.messagesRefused.increment()
            await resetTransaction()
            return reply(550, "5.6.0", "message contains bare LF line ends; lines end with CRLF")
        }
        if transaction?.spool?.failed == true {
            env.logger.error("spool write failed")
            await resetTransaction()
            return reply(451, "4.3.0", "cannot spool the message")
        }
        return await endOfMessage()
    }

    /// Writes the Received: field that starts the spool file and sets the reader up.
    private func openSpool() -> Bool {
        guard var t = transaction else { return false }
        do {
            let spool = try SpoolFile(directory: env.spoolDirectory, name: t.id)
            let protocolName = ReceivedField.protocolName(extended: extended, secure: client.isSecure,
                                                          authenticated: authenticatedUser != nil, utf8: t.smtpUTF8)
            spool.write(ReceivedField.make(helo: heloName ?? "unknown", clientHostname: clientHostname, clientAddress: client.address,
                                           hostname: env.hostname, protocolName: protocolName, id: t.id,
                                           recipient: t.recipients.count == 1 ? t.recipients[0].address : nil,
                                           date: MailDate(secondsSince1970: env.now())))
            t.spool = spool
            transaction = t
            return true
        } catch {
            env.logger.error("cannot open spool file: \(error)")
            return false
        }
    }

    // MARK: - End of message

    private func endOfMessage() async -> [SMTPOutput] {
        guard var t = transaction, let spool = t.spool else { return reply(503, "5.5.1", "need MAIL command") }
        spool.close()
        var verdictQuarantine = t.quarantine ?? quarantineAll
        if let filters = filterTransaction {
            let (outcome, modifications) = await runMessageFilters(filters, path: spool.path)
            switch outcome {
            case .reject(let r):
                env.metrics.messagesRefused.increment()
                await finishTransaction(spool)
                return [.reply(permanent(r))]
            case .tempfail(let r):
                env.metrics.messagesRefused.increment()
                await finishTransaction(spool)
                return [.reply(temporary(r))]
            case .discard: t.discard = true
            case .quarantine(let reason): verdictQuarantine = reason
            case .continue, .accept: break
            }
            if !modifications.isEmpty && !t.discard {
                for m in modifications {
                    switch m {
                    case .addRecipient(let r) where !t.recipients.contains(where: { $0.address == r }):
                        t.recipients.append(EnvelopeRecipient(address: r))
                    case .removeRecipient(let r):
                        t.recipients.removeAll { $0.address.lowercased() == r.lowercased() }
                    default: break
                    }
                }
                if t.recipients.isEmpty { t.discard = true }
                do {
                    try rewrite(spool.path, modifications)
                } catch {
                    env.logger.error("cannot apply filter changes: \(error)")
                    await finishTransaction(spool)
                    return reply(451, "4.3.0", "cannot apply filter changes")
                }
            }
        }
        if t.discard || discardAll {
            env.metrics.messagesDiscarded.increment()
            env.logger.info("message discarded", metadata: ["id": "\(t.id)", "from": "\(t.sender)", "recipients": "\(t.recipients.count)"])
            await finishTransaction(spool)
            return reply(250, "2.0.0", "ok: discarded")
        }
        let envelope = Envelope(sender: t.sender, recipients: t.recipients, body: t.body, smtpUTF8: t.smtpUTF8,
                                dsnReturn: t.dsnReturn, envelopeID: t.envelopeID)
        var info = stat()
        let size = stat(spool.path, &info) == 0 ? Int(info.st_size) : 0
        do {
            // Quarantine: accepted (the sender is not told, as with Postfix's HOLD) and kept in
            // the hold queue until an administrator releases or deletes it.
            let queueID = try await env.queue.enqueue(envelope: envelope, messagePath: spool.path, holdReason: verdictQuarantine)
            env.metrics.messagesAccepted.increment()
            env.logger.info(verdictQuarantine == nil ? "message queued" : "message quarantined",
                            metadata: ["id": "\(t.id)", "queue_id": "\(queueID)", "from": "<\(t.sender)>",
                                       "recipients": "\(t.recipients.count)", "size": "\(size)",
                                       "user": "\(authenticatedUser ?? "-")", "reason": "\(verdictQuarantine ?? "-")"])
            transaction = nil
            return reply(250, "2.0.0", "ok: queued as \(queueID)")
        } catch {
            env.logger.error("queue refused the message", metadata: ["id": "\(t.id)", "error": "\(error)"])
            env.metrics.messagesRefused.increment()
            await finishTransaction(spool)
            return reply(451, "4.3.0", "temporary queue failure, try again later")
        }
    }

    /// Headers, body and end-of-message stages over the spooled message.
    private func runMessageFilters(_ filters: FilterChainTransaction, path: String) async -> (FilterVerdict, [FilterModification]) {
        guard let handle = FileHandle(forReadingAtPath: path) else { return (.tempfail(MailReply(451, "4.3.0", "cannot read the message")), []) }
        defer { try? handle.close() }
        let head = [UInt8](handle.readData(ofLength: 1 << 20))
        let section = HeaderSection(parsing: head)
        let fields = section.unfolded
        var verdict = await filters.run({ await $0.headers(fields) })
        if verdict.severity >= FilterVerdict.tempfail(MailReply(451, nil, "")).severity { return (verdict, []) }
        try? handle.seek(toOffset: UInt64(section.bodyOffset))
        while true {
            let chunk = [UInt8](handle.readData(ofLength: 1 << 16))
            if chunk.isEmpty { break }
            let v = await filters.run({ await $0.body(chunk) })
            verdict = FilterChain.combine([verdict, v])
            if verdict.severity >= 4 { return (verdict, []) }
        }
        let (final, modifications) = await filters.endOfMessage()
        return (FilterChain.combine([verdict, final]), modifications)
    }

    /// Applies header changes and a replaced body by writing a new file over the spool file.
    private func rewrite(_ path: String, _ modifications: [FilterModification]) throws {
        let headerChanges = modifications.filter {
            if case .addHeader = $0 { return true }
            if case .changeHeader = $0 { return true }
            return false
        }
        let newBody = modifications.reduce(nil as [UInt8]?) { if case .replaceBody(let b) = $1 { return b } else { return $0 } }
        guard !headerChanges.isEmpty || newBody != nil else { return }
        guard let handle = FileHandle(forReadingAtPath: path) else { throw POSIXError(.EIO) }
        defer { try? handle.close() }
        let head = [UInt8](handle.readData(ofLength: 1 << 20))
        var section = HeaderSection(parsing: head)
        for m in headerChanges { section.apply(m) }
        let temporary = path + ".rewrite"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(section.encoded)),
              let out = FileHandle(forWritingAtPath: temporary) else { throw POSIXError(.EIO) }
        defer { try? out.close() }
        try out.seekToEnd()
        if let newBody {
            try out.write(contentsOf: newBody)
        } else {
            try handle.seek(toOffset: UInt64(section.bodyOffset))
            while true {
                let chunk = handle.readData(ofLength: 1 << 16)
                if chunk.isEmpty { break }
                try out.write(contentsOf: chunk)
            }
        }
        guard rename(temporary, path) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }

    private func finishTransaction(_ spool: SpoolFile) async {
        spool.discard()
        transaction = nil
    }

    private func resetTransaction() async {
        guard let t = transaction else { return }
        t.spool?.discard()
        transaction = nil
        if let filters = filterTransaction { await filters.abort() }
    }

    private func abortTransaction() {
        transaction?.spool?.discard()
        transaction = nil
    }

    // MARK: - VRFY, STARTTLS

    private func vrfy(_ argument: String) async -> [SMTPOutput] {
        guard options.vrfy else { return reply(252, "2.5.0", "cannot VRFY user, but will accept message and attempt delivery") }
        let text = argument.hasPrefix("<") ? argument : "<\(argument)>"
        guard let path = try? SMTPPath.parse(text, allowUTF8: options.smtpUTF8), path.domain != nil,
              RecipientSyntax.refusal(path, localAddress: client.localAddress) == nil,
              let address = RecipientSyntax.normalised(path, hostname: env.hostname) else {
            return reply(501, "5.1.3", "VRFY needs a full address")
        }
        switch try? await env.router.classify(address) {
        case .local?: return reply(250, "2.1.5", "<\(address)>")
        case .unknownUser?: return reply(550, "5.1.1", "<\(address)>: no such user here")
        case .disabled?: return reply(550, "5.2.1", "<\(address)>: mailbox disabled")
        case .relayDomain?, .remote?: return reply(252, "2.5.0", "<\(address)>: not local, will attempt delivery")
        case nil: return reply(451, "4.3.0", "temporary lookup failure")
        }
    }

    private func startTLS() -> [SMTPOutput] {
        if client.isSecure { return reply(503, "5.5.1", "TLS already active") }
        guard client.canStartTLS else { return reply(454, "4.7.0", "TLS not available") }
        guard heloName != nil && extended else { return reply(503, "5.5.1", "send EHLO first") }
        guard transaction == nil else { return reply(503, "5.5.1", "STARTTLS not permitted during a mail transaction") }
        // Everything learnt in plaintext is forgotten (RFC 3207 §4.2): EHLO must come again.
        heloName = nil
        extended = false
        authenticatedUser = nil
        input.removeAll()
        phase = .startingTLS
        return [.reply(MailReply(220, "2.0.0", "ready to start TLS")), .startTLS]
    }

    // MARK: - AUTH (RFC 4954)

    private func auth(_ mechanism: String, _ initial: String?) async -> [SMTPOutput] {
        guard heloName != nil && extended else { return reply(503, "5.5.1", "send EHLO first") }
        guard authenticatedUser == nil else { return reply(503, "5.5.1", "already authenticated") }
        guard transaction == nil else { return reply(503, "5.5.1", "AUTH not permitted during a mail transaction") }
        guard let m = env.auth.mechanisms.first(where: { $0.name.uppercased() == mechanism }) else {
            return reply(504, "5.5.4", "unrecognized authentication type")
        }
        if m.isPlaintext && !client.isSecure && !(client.isLoopback && options.allowPlaintextAuthOnLoopback) {
            return authFailed(MailReply(538, "5.7.11", "encryption required for requested authentication mechanism"))
        }
        guard let exchange = env.auth.begin(mechanism: mechanism, context: SASLExchangeContext(
            service: "smtp", serverHostname: env.hostname, isSecure: client.isSecure)) else {
            return reply(504, "5.5.4", "unrecognized authentication type")
        }
        var response: [UInt8]?
        if let initial {
            if initial == "=" {
                response = []
            } else {
                guard let decoded = Base64.decode(initial) else { return authFailed(MailReply(501, "5.5.2", "cannot decode the initial response")) }
                response = decoded
            }
        }
        return settle(await exchange.start(initialResponse: response), exchange)
    }

    private func authResponse(_ exchange: AuthExchange, _ bytes: [UInt8]) async -> [SMTPOutput] {
        let text = String(decoding: bytes, as: UTF8.self)
        if text == "*" {
            phase = .command
            return authFailed(MailReply(501, "5.0.0", "authentication cancelled"))
        }
        guard let decoded = Base64.decode(text) else { return abortAuth(MailReply(501, "5.5.2", "cannot decode the response")) }
        return settle(await exchange.respond(decoded), exchange)
    }

    private func settle(_ progress: AuthExchange.Progress, _ exchange: AuthExchange) -> [SMTPOutput] {
        switch progress {
        case .challenge(let bytes):
            phase = .auth(exchange)
            return reply(334, nil, Base64.encode(bytes))
        case .success(let identity, let serverFinal?):
            phase = .authFinal(identity)
            return reply(334, nil, Base64.encode(serverFinal))
        case .success(let identity, nil):
            return authSucceeded(identity)
        case .failure(let failure):
            phase = .command
            switch failure {
            case .temporary(let why):
                env.logger.warning("authentication backend unavailable: \(why)")
                return authFailed(MailReply(454, "4.7.0", "temporary authentication failure"))
            case .cancelled: return authFailed(MailReply(501, "5.0.0", "authentication cancelled"))
            case .malformed: return authFailed(MailReply(501, "5.5.2", "malformed authentication response"))
            case .mechanismUnavailable: return authFailed(MailReply(504, "5.5.4", "unrecognized authentication type"))
            case .encryptionRequired: return authFailed(MailReply(538, "5.7.11", "encryption required for requested authentication mechanism"))
            case .authenticationFailed, .accountDisabled, .authorizationFailed:
                return authFailed(MailReply(535, "5.7.8", "authentication credentials invalid"), user: exchange.attemptedUser)
            }
        }
    }

    private func authSucceeded(_ identity: SASLIdentity) -> [SMTPOutput] {
        phase = .command
        // Acting as someone else (a SASL authzid) is not something SMTP submission grants.
        if let other = identity.authorizationIdentity {
            env.logger.notice("authorization identity refused", metadata: ["user": "\(identity.user)", "authzid": "\(other)"])
            return authFailed(MailReply(535, "5.7.8", "authentication credentials invalid"))
        }
        authenticatedUser = identity.user
        env.metrics.authSucceeded.increment()
        env.logger.info("authenticated", metadata: ["user": "\(identity.user)"])
        return reply(235, "2.7.0", "authentication successful")
    }

    /// `user`: who the client tried to be, when the mechanism got that far (the logger names the
    /// client's address).
    private func authFailed(_ r: MailReply, user: String? = nil) -> [SMTPOutput] {
        env.metrics.authFailed.increment()
        env.logger.notice("authentication failed", metadata: ["reply": "\(r)", "user": "\(user ?? "(none given)")"])
        return [.reply(r)]
    }

    private func abortAuth(_ r: MailReply) -> [SMTPOutput] {
        phase = .command
        return authFailed(r)
    }

    // MARK: - Filter replies

    /// A filter's permanent reply, forced into 5xx.
    private func permanent(_ r: MailReply) -> MailReply {
        r.isPermanent ? r : MailReply(550, "5.7.1", r.text)
    }

    /// A filter's temporary reply, forced into 4xx (421 at connect).
    private func temporary(_ r: MailReply, code: Int = 451) -> MailReply {
        if code == 421 { return MailReply(421, "4.7.0", "\(env.hostname) \(r.text)") }
        return r.isTemporary ? r : MailReply(code, "4.7.1", r.text)
    }
}

/// RFC 3461 xtext: printable ASCII except `+` and `=`, with `+XX` hex escapes.
enum XText {
    static func isValid(_ text: String) -> Bool {
        let b = Array(text.utf8)
        var i = 0
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "+") {
                guard i + 2 < b.count, isHex(b[i + 1]), isHex(b[i + 2]) else { return false }
                i += 3
                continue
            }
            guard c >= 33 && c <= 126 && c != UInt8(ascii: "=") else { return false }
            i += 1
        }
        return true
    }

    private static func isHex(_ c: UInt8) -> Bool {
        (48...57).contains(c) || (65...70).contains(c)
    }
}

/// Base64 for SASL lines (RFC 4954 §4): strict, no line breaks.
enum Base64 {
    static func encode(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

    static func decode(_ text: String) -> [UInt8]? {
        guard text.utf8.allSatisfy({ $0 != 32 && $0 != 13 && $0 != 10 }), text.utf8.count % 4 == 0 else { return nil }
        return Data(base64Encoded: text).map { [UInt8]($0) }
    }
}

extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
