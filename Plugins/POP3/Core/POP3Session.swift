import Foundation
import PluginAPI

/// One POP3 connection (RFC 1939): AUTHORIZATION, then TRANSACTION on a snapshot of the INBOX
/// taken at login, then UPDATE at QUIT (deleted messages expunged, retrieved ones marked \Seen,
/// as Dovecot does). Input is raw bytes split into lines here; commands that wait for the store
/// or the credential backends pause the reading of pipelined input (RFC 2449 PIPELINING), so
/// replies keep their order.
// @unchecked Sendable: ChannelHandler confined to its channel's event loop; async work hops back via NIOLoopBound to touch state
final class POP3Session: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct Message {
        let uid: UInt32
        let size: Int
        var deleted = false
    }

    enum State {
        case authorization(user: String?)
        /// Between `AUTH` and the end of the exchange: lines are SASL responses.
        case authenticating(AuthExchange)
        case transaction(user: String, uidValidity: UInt32, messages: [Message], lock: MaildropLock)
        case closed
    }

    private let plugin: POP3Plugin
    private let session: Session
    private let options: POP3Options
    private var splitter: LineSplitter
    private var input: [UInt8] = []
    private var state: State = .authorization(user: nil)
    private var busy = false
    private var startingTLS = false
    private var retrieved = Set<UInt32>()
    private var peerAddress: String { session.peer?.ipAddress ?? "unknown" }

    init(plugin: POP3Plugin, session: Session, options: POP3Options) {
        self.plugin = plugin
        self.session = session
        self.options = options
        splitter = LineSplitter(maxLength: options.maxLineLength, bareLineFeed: .accept)
    }

    func channelActive(context: ChannelHandlerContext) {
        // No APOP timestamp: APOP needs a cleartext-equivalent secret, which this server never
        // stores (secrets are salted and slow), so it is not offered.
        send(context, "+OK \(plugin.hostname) POP3 Postern ready")
        context.flush()
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        session.onDrain {
            loopBound.eventLoop.execute {
                let (me, ctx) = loopBound.value
                // Between commands: leave without UPDATE (RFC 1939 §6: no QUIT, no expunge).
                if !me.busy { me.close(ctx, "-ERR [SYS/TEMP] server shutting down, try again") }
            }
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        // A connection that ends without QUIT does not enter UPDATE: nothing is deleted.
        if case .transaction(_, _, _, let lock) = state { lock.release() }
        state = .closed
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if startingTLS { return }
        input += buffer.readBytes(length: buffer.readableBytes) ?? []
        if input.count > options.maxLineLength * 64 && busy {
            // A client pipelining far more than it waits for: refuse rather than buffer forever.
            return close(context, "-ERR too much pipelined input")
        }
        process(context)
    }

    private func send(_ context: ChannelHandlerContext, _ line: String) {
        context.write(wrapOutboundOut(ByteBuffer(string: line + "\r\n")), promise: nil)
    }

    private func close(_ context: ChannelHandlerContext, _ line: String) {
        if case .transaction(_, _, _, let lock) = state { lock.release() }
        state = .closed
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: line + "\r\n"))).whenComplete { _ in context.close(promise: nil) }
    }

    private func process(_ context: ChannelHandlerContext) {
        while !busy, !startingTLS, !input.isEmpty {
            if case .closed = state { return }
            guard let lf = input.firstIndex(of: UInt8(ascii: "\n")) else {
                // Keep a partial line, but not an endless one.
                if input.count > options.maxLineLength {
                    input.removeAll()
                    send(context, POP3Command.ParseError.tooLong.reply)
                }
                break
            }
            let events = splitter.feed(input[...lf])
            input.removeSubrange(...lf)
            for event in events {
                switch event {
                case .tooLong: send(context, POP3Command.ParseError.tooLong.reply)
                case .bareLineFeed: send(context, "-ERR bare LF")
                case .line(let bytes): handle(bytes, context)
                }
            }
        }
        context.flush()
        // A drain that came while a command ran: leave now that it answered.
        if session.isDraining, !busy, !startingTLS {
            if case .closed = state { return }
            close(context, "-ERR [SYS/TEMP] server shutting down, try again")
        }
    }

    private func handle(_ line: [UInt8], _ context: ChannelHandlerContext) {
        if case .authenticating(let exchange) = state { return continueAuth(exchange, line, context) }
        switch POP3Command.parse(line) {
        case .failure(let error): reply(error.reply, context, countsAsError: true)
        case .success(let command): execute(command, context)
        }
    }

    private var errors = 0
    private func reply(_ line: String, _ context: ChannelHandlerContext, countsAsError: Bool = false) {
        send(context, line)
        if countsAsError {
            errors += 1
            if errors >= options.maxErrors { close(context, "-ERR too many errors") }
        }
    }

    private var plaintextAllowed: Bool {
        session.isSecure || (session.isLoopback && options.allowPlaintextOnLoopback)
    }

    private func capabilities() -> [String] {
        var caps = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "EXPIRE NEVER", "LOGIN-DELAY 0"]
        if plaintextAllowed { caps.append("USER") }
        let mechanisms = session.services.auth.offered(secure: session.isSecure, loopback: session.isLoopback,
                                                       plaintextOnLoopback: options.allowPlaintextOnLoopback)
        if !mechanisms.isEmpty { caps.append("SASL " + mechanisms.joined(separator: " ")) }
        if session.canStartTLS { caps.append("STLS") }
        caps.append("IMPLEMENTATION Postern")
        return caps
    }

    private func execute(_ command: POP3Command, _ context: ChannelHandlerContext) {
        switch (state, command) {
        case (_, .capa):
            send(context, "+OK capability list follows")
            for c in capabilities() { send(context, c) }
            send(context, ".")
        case (_, .noop) where isTransaction:
            send(context, "+OK")
        case (_, .quit):
            quit(context)

        // AUTHORIZATION
        case (.authorization, .stls):
            guard session.canStartTLS else { return reply("-ERR STLS not available", context, countsAsError: true) }
            startTLS(context)
        case (.authorization, .user(let name)):
            guard plaintextAllowed else {
                return reply("-ERR [AUTH] plaintext authentication disallowed without TLS", context, countsAsError: true)
            }
            state = .authorization(user: name)
            send(context, "+OK")
        case (.authorization(let user), .pass(let password)):
            guard let user else { return reply("-ERR USER first", context, countsAsError: true) }
            guard plaintextAllowed else { return reply("-ERR [AUTH] plaintext authentication disallowed without TLS", context, countsAsError: true) }
            state = .authorization(user: nil)
            verifyPassword(user: user, password: password, context)
        case (.authorization, .apop):
            reply("-ERR [AUTH] APOP is not available: use USER/PASS or AUTH over TLS", context, countsAsError: true)
        case (.authorization, .auth(nil, _)):
            // The list of mechanisms (RFC 1734 style), which clients still probe.
            send(context, "+OK")
            for m in session.services.auth.offered(secure: session.isSecure, loopback: session.isLoopback,
                                                   plaintextOnLoopback: options.allowPlaintextOnLoopback) { send(context, m) }
            send(context, ".")
        case (.authorization, .auth(let mechanism?, let initial)):
            startAuth(mechanism, initial, context)

        // TRANSACTION
        case (.transaction(_, _, let messages, _), .stat):
            let live = messages.filter { !$0.deleted }
            send(context, "+OK \(live.count) \(live.reduce(0) { $0 + $1.size })")
        case (.transaction(_, _, let messages, _), .list(nil)):
            send(context, "+OK \(messages.filter { !$0.deleted }.count) messages")
            for (i, m) in messages.enumerated() where !m.deleted { send(context, "\(i + 1) \(m.size)") }
            send(context, ".")
        case (.transaction(_, _, let messages, _), .list(let n?)):
            guard let m = message(n, messages) else { return reply("-ERR no such message", context) }
            send(context, "+OK \(n) \(m.size)")
        case (.transaction(_, let validity, let messages, _), .uidl(nil)):
            send(context, "+OK")
            for (i, m) in messages.enumerated() where !m.deleted { send(context, "\(i + 1) \(Self.uidl(m.uid, validity))") }
            send(context, ".")
        case (.transaction(_, let validity, let messages, _), .uidl(let n?)):
            guard let m = message(n, messages) else { return reply("-ERR no such message", context) }
            send(context, "+OK \(n) \(Self.uidl(m.uid, validity))")
        case (.transaction(let user, _, let messages, let lock), .dele(let n)):
            guard message(n, messages) != nil else { return reply("-ERR no such message", context) }
            var updated = messages
            updated[n - 1].deleted = true
            state = .transaction(user: user, uidValidity: uidValidity, messages: updated, lock: lock)
            send(context, "+OK message \(n) deleted")
        case (.transaction(let user, let validity, let messages, let lock), .rset):
            state = .transaction(user: user, uidValidity: validity, messages: messages.map { Message(uid: $0.uid, size: $0.size) }, lock: lock)
            send(context, "+OK")
        case (.transaction(let user, _, let messages, _), .retr(let n)):
            guard let m = message(n, messages) else { return reply("-ERR no such message", context) }
            transfer(user: user, uid: m.uid, lines: nil, context) { [weak self] in self?.retrieved.insert(m.uid) }
        case (.transaction(let user, _, let messages, _), .top(let n, let lines)):
            guard let m = message(n, messages) else { return reply("-ERR no such message", context) }
            transfer(user: user, uid: m.uid, lines: lines, context) {}

        case (.transaction, .user), (.transaction, .pass), (.transaction, .apop), (.transaction, .auth), (.transaction, .stls):
            reply("-ERR already authenticated", context, countsAsError: true)
        default:
            reply("-ERR command not valid in this state", context, countsAsError: true)
        }
    }

    private var isTransaction: Bool { if case .transaction = state { return true } else { return false } }
    private var uidValidity: UInt32 { if case .transaction(_, let v, _, _) = state { return v } else { return 0 } }

    private func message(_ n: Int, _ messages: [Message]) -> Message? {
        guard n >= 1, n <= messages.count, !messages[n - 1].deleted else { return nil }
        return messages[n - 1]
    }

    /// UIDL values derived from the IMAP UID and UIDVALIDITY (Dovecot's default `%08Xu%08Xv`), so
    /// they are stable across sessions and the same message has the same identity in both protocols.
    static func uidl(_ uid: UInt32, _ validity: UInt32) -> String {
        func hex(_ v: UInt32) -> String {
            let s = String(v, radix: 16, uppercase: true)
            return String(repeating: "0", count: max(0, 8 - s.count)) + s
        }
        return hex(uid) + hex(validity)
    }

    // MARK: login

    private func runAsync<T: Sendable>(_ context: ChannelHandlerContext, _ work: @escaping @Sendable () async -> T,
                                       then: @escaping (POP3Session, ChannelHandlerContext, T) -> Void) {
        busy = true
        // The session, its context and the continuation belong to the channel's event loop; only
        // `work` runs elsewhere, and its result comes back to the loop.
        let loopBound = NIOLoopBound((self, context, then), eventLoop: context.eventLoop)
        Task {
            let result = await work()
            loopBound.eventLoop.execute {
                let (me, ctx, then) = loopBound.value
                me.busy = false
                if case .closed = me.state { return }
                then(me, ctx, result)
                me.process(ctx)
            }
        }
    }

    private func verifyPassword(user: String, password: String, _ context: ChannelHandlerContext) {
        let address = peerAddress
        guard plugin.throttle.allows(address) else { return close(context, "-ERR [SYS/TEMP] too many failed logins, try later") }
        let backends = session.services.auth.backends
        runAsync(context, { await AuthService.ask(backends, .password(user: user, password: password)) }) { me, ctx, answer in
            switch answer {
            case .verified(let name): me.loggedIn(name, ctx)
            case .suspended: me.loginFailed(ctx, "-ERR [AUTH] account disabled", user: user)
            case .unavailable: me.send(ctx, "-ERR [SYS/TEMP] authentication service unavailable, try later")
            default: me.loginFailed(ctx, "-ERR [AUTH] authentication failed", user: user)
            }
        }
    }

    private func startAuth(_ mechanism: String, _ initial: String?, _ context: ChannelHandlerContext) {
        let offered = session.services.auth.offered(secure: session.isSecure, loopback: session.isLoopback,
                                                    plaintextOnLoopback: options.allowPlaintextOnLoopback)
        guard offered.contains(mechanism) else {
            return reply("-ERR [AUTH] mechanism \(mechanism.prefix(40)) not available here", context, countsAsError: true)
        }
        guard plugin.throttle.allows(peerAddress) else { return close(context, "-ERR [SYS/TEMP] too many failed logins, try later") }
        guard let exchange = session.services.auth.begin(mechanism: mechanism, context: SASLExchangeContext(
            service: "pop", serverHostname: plugin.hostname, isSecure: session.isSecure)) else {
            return reply("-ERR [AUTH] mechanism not available", context, countsAsError: true)
        }
        var response: [UInt8]?
        if let initial {
            // RFC 5034 §4: "=" is an empty initial response.
            guard let decoded = initial == "=" ? [] : Base64Decoder.decodeStrict(Array(initial.utf8)) else {
                return reply("-ERR invalid base64", context, countsAsError: true)
            }
            response = decoded
        }
        state = .authenticating(exchange)
        let initialResponse = response
        runAsync(context, { await exchange.start(initialResponse: initialResponse) }) { me, ctx, progress in me.authProgress(progress, exchange, ctx) }
    }

    private func continueAuth(_ exchange: AuthExchange, _ line: [UInt8], _ context: ChannelHandlerContext) {
        let text = String(decoding: line, as: UTF8.self)
        if text == "*" {
            state = .authorization(user: nil)
            return reply("-ERR [AUTH] authentication cancelled", context)
        }
        guard let response = Base64Decoder.decodeStrict(line) else {
            state = .authorization(user: nil)
            return reply("-ERR invalid base64", context, countsAsError: true)
        }
        runAsync(context, { await exchange.respond(response) }) { me, ctx, progress in me.authProgress(progress, exchange, ctx) }
    }

    private func authProgress(_ progress: AuthExchange.Progress, _ exchange: AuthExchange, _ context: ChannelHandlerContext) {
        switch progress {
        case .challenge(let bytes):
            send(context, "+ " + String(decoding: Base64Encoder.encode(bytes, lineLength: 0), as: UTF8.self))
        case .success(let identity, _):
            loggedIn(identity.user, context)
        case .failure(.temporary):
            state = .authorization(user: nil)
            send(context, "-ERR [SYS/TEMP] authentication service unavailable, try later")
        case .failure(.accountDisabled):
            state = .authorization(user: nil)
            loginFailed(context, "-ERR [AUTH] account disabled", user: exchange.attemptedUser)
        case .failure:
            state = .authorization(user: nil)
            loginFailed(context, "-ERR [AUTH] authentication failed", user: exchange.attemptedUser)
        }
    }

    /// `user`: who the client tried to be, for the log (the logger names the client's address).
    private func loginFailed(_ context: ChannelHandlerContext, _ line: String, user: String?) {
        state = .authorization(user: nil)
        let delay = plugin.throttle.failed(peerAddress)
        session.logger.notice("login failed", metadata: ["user": "\(user ?? "(none given)")", "delay": "\(delay)"])
        plugin.failedLogins.increment()
        // The reply waits: a guesser gets one try per delay per connection.
        busy = true
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: .milliseconds(Int64(delay * 1000))) {
            let (me, ctx) = loopBound.value
            me.busy = false
            if case .closed = me.state { return }
            me.send(ctx, line)
            me.errors += 1
            if me.errors >= me.options.maxErrors { return me.close(ctx, "-ERR too many errors") }
            me.process(ctx)
        }
    }

    /// Locks the maildrop (one session per maildrop, RFC 1939 §8) and takes the INBOX snapshot.
    private func loggedIn(_ user: String, _ context: ChannelHandlerContext) {
        plugin.throttle.succeeded(peerAddress)
        guard let lock = plugin.locks.lock(user) else {
            state = .authorization(user: nil)
            return send(context, "-ERR [IN-USE] the maildrop is in use by another POP3 session")
        }
        guard let store = session.services.store(named: options.store) else {
            lock.release()
            return close(context, "-ERR [SYS/TEMP] no message store")
        }
        runAsync(context, { () -> Result<(UInt32, [Message]), any Error> in
            do {
                let status = try await store.changeStamp(user: user, mailbox: "INBOX")
                let messages = try await store.messages(user: user, mailbox: "INBOX", uids: 1...UInt32.max)
                return .success((status.uidValidity, messages.map { Message(uid: $0.uid, size: $0.size) }))
            } catch {
                return .failure(error)
            }
        }) { me, ctx, result in
            switch result {
            case .success(let (validity, messages)):
                me.state = .transaction(user: user, uidValidity: validity, messages: messages, lock: lock)
                me.session.logger.info("logged in", metadata: ["user": "\(user)", "messages": "\(messages.count)"])
                me.send(ctx, "+OK logged in, \(messages.count) messages")
            case .failure(let error):
                lock.release()
                me.session.logger.error("cannot open maildrop: \(error)")
                me.close(ctx, "-ERR [SYS/TEMP] cannot open the maildrop")
            }
        }
    }

    // MARK: transaction

    private func transfer(user: String, uid: UInt32, lines: Int?, _ context: ChannelHandlerContext, done: @escaping () -> Void) {
        guard let store = session.services.store(named: options.store) else { return send(context, "-ERR [SYS/TEMP] no message store") }
        runAsync(context, { () -> [UInt8]? in try? await store.content(user: user, mailbox: "INBOX", uid: uid) }) { me, ctx, bytes in
            guard let bytes else {
                // Expunged by another protocol (IMAP) since the snapshot.
                return me.send(ctx, "-ERR message was removed by another session")
            }
            var out = Array("+OK message follows\r\n".utf8)
            out += POP3Transfer.encode(bytes, bodyLines: lines)
            out += Array(".\r\n".utf8)
            ctx.write(me.wrapOutboundOut(ByteBuffer(bytes: out)), promise: nil)
            done()
        }
    }

    /// QUIT: in TRANSACTION, the UPDATE state (RFC 1939 §6).
    private func quit(_ context: ChannelHandlerContext) {
        guard case .transaction(let user, _, let messages, let lock) = state else {
            return close(context, "+OK \(plugin.hostname) POP3 bye")
        }
        let deleted = messages.filter(\.deleted).map(\.uid)
        let seen = retrieved.subtracting(deleted).sorted()
        guard let store = session.services.store(named: options.store) else { return close(context, "-ERR [SYS/TEMP] no message store") }
        runAsync(context, { () -> String? in
            do {
                if !seen.isEmpty { _ = try await store.setFlags(user: user, mailbox: "INBOX", uids: seen, flags: ["\\Seen"], mode: .add) }
                if !deleted.isEmpty {
                    _ = try await store.setFlags(user: user, mailbox: "INBOX", uids: deleted, flags: ["\\Deleted"], mode: .add)
                    _ = try await store.expunge(user: user, mailbox: "INBOX", uids: deleted)
                }
                return nil
            } catch {
                return "\(error)"
            }
        }) { me, ctx, failure in
            lock.release()
            if let failure {
                me.session.logger.error("update failed: \(failure)")
                me.close(ctx, "-ERR [SYS/TEMP] some deleted messages were not removed")
            } else {
                me.close(ctx, "+OK \(me.plugin.hostname) POP3 bye (\(deleted.count) messages deleted)")
            }
        }
    }

    // MARK: STLS

    private func startTLS(_ context: ChannelHandlerContext) {
        // RFC 2595 §4: anything the client sent after STLS in plaintext is dropped.
        startingTLS = true
        input.removeAll()
        splitter = LineSplitter(maxLength: options.maxLineLength, bareLineFeed: .accept)
        let channel = context.channel
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "+OK begin TLS negotiation\r\n"))).flatMap {
            self.session.startTLS(on: channel)
        }.whenComplete { result in
            let (me, _) = loopBound.value
            switch result {
            case .success: me.startingTLS = false
            case .failure: channel.close(promise: nil)
            }
        }
    }
}

/// One POP3 session per maildrop (RFC 1939 §8), across every process: an `flock` on a file per
/// account under `DATA/pop3/locks`, held for the session and released by the kernel if the
/// process dies.
// @unchecked Sendable: its only stored property is a let directory; exclusion comes from flock on the files
final class MaildropLocks: @unchecked Sendable {
    let directory: String
    init(directory: String) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    func lock(_ user: String) -> MaildropLock? {
        // The account name, made safe as a file name: its SHA-256.
        let name = SHA256.hash(data: Array(user.lowercased().utf8)).map { String(format: "%02x", $0) }.joined()
        let fd = open("\(directory)/\(name)", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return nil }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            return nil
        }
        return MaildropLock(fd: fd)
    }
}

// @unchecked Sendable: fd is only read and written under `lock`
final class MaildropLock: @unchecked Sendable {
    private var fd: Int32
    private let lock = NSLock()
    init(fd: Int32) { self.fd = fd }
    func release() {
        lock.withLock {
            if fd >= 0 { close(fd) }
            fd = -1
        }
    }
    deinit { release() }
}
