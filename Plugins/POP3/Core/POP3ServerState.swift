import Foundation
import PluginAPI

/// What a POP3 session asks its driver to do, in order.
enum POP3Output: Sendable, Equatable {
    /// Bytes to write: reply lines (CRLF included) or a dot-stuffed message.
    case send([UInt8])
    /// Start TLS now (`+OK begin TLS negotiation` was sent just before); plaintext the client
    /// pipelined after STLS is to be dropped (RFC 2595 §4).
    case startTLS
    /// Close the connection once what came before is written.
    case close
}

/// What one POP3 session needs from around it: the plugin's shared parts and this connection's
/// facts. Tests build one by hand.
struct POP3Environment: Sendable {
    var hostname: String
    var options: POP3Options
    var auth: AuthService
    var store: (any StorageBackend)?
    var throttle: LoginThrottle
    var locks: MaildropLocks
    var peerAddress: String
    /// The connection's own address, kept when an access proxy's XCLIENT replaced `peerAddress`.
    var connectionAddress: String?
    var isLoopback: Bool
    /// The listener offers STLS (until TLS is on).
    var offersTLS: Bool
    var logger: Logger
    var failedLogins: Counter
    /// The pause before a failed login is answered (the driver's clock; tests pass none).
    var pause: @Sendable (Double) async -> Void = { seconds in try? await Task.sleep(nanoseconds: UInt64(seconds * 1e9)) }
    /// The TLS client certificate (DER) the listener verified, for SASL EXTERNAL.
    var clientCertificate: @Sendable () async -> [UInt8]? = { nil }
    /// The listener's TLS channel bindings (SCRAM-*-PLUS), used once the session is secure.
    var tlsChannelBindings: [String: [UInt8]] = [:]
}

/// One POP3 session (RFC 1939, RFC 2449, RFC 5034, RFC 2595) without any networking: bytes in,
/// outputs out. AUTHORIZATION, then TRANSACTION on a snapshot of the INBOX taken at login, then
/// UPDATE at QUIT (deleted messages expunged, retrieved ones marked \Seen, as Dovecot does).
/// `POP3Connection` drives it from a NIO channel; the unit tests drive it with bytes.
// @unchecked Sendable: one call at a time, which POP3Connection guarantees (it waits for each call to finish)
final class POP3ServerState: @unchecked Sendable {
    struct Message: Equatable {
        let uid: UInt32
        let size: Int
        var deleted = false
    }

    enum Phase {
        case authorization(user: String?)
        /// Between `AUTH` and the end of the exchange: lines are SASL responses.
        case authenticating(AuthExchange)
        case transaction(user: String, uidValidity: UInt32, messages: [Message], lock: MaildropLock)
        case closed
    }

    private var env: POP3Environment
    private var isSecure: Bool
    private(set) var phase: Phase = .authorization(user: nil)
    private var splitter: LineSplitter
    private var partial: [UInt8] = []
    private var retrieved = Set<UInt32>()
    /// Logged in with ANONYMOUS (RFC 4505): DELE is refused and RETR marks nothing \Seen.
    private var anonymousLogin = false
    private var errors = 0
    private var out: [POP3Output] = []
    /// A mechanism succeeded with data for the client; the login completes on its empty answer.
    private var verifiedAwaitingFinal: SASLIdentity?

    init(env: POP3Environment, isSecure: Bool) {
        self.env = env
        self.isSecure = isSecure
        splitter = LineSplitter(maxLength: env.options.maxLineLength, bareLineFeed: .accept)
    }

    var isClosed: Bool { if case .closed = phase { return true } else { return false } }

    // MARK: - Driver calls

    /// The greeting. No APOP timestamp: APOP needs a cleartext-equivalent secret, which this
    /// server never stores (secrets are salted and slow), so it is not offered.
    func greeting() -> [POP3Output] {
        [.send(Array("+OK \(env.hostname) POP3 Postern ready\r\n".utf8))]
    }

    /// Every complete line in `bytes` (and what was left over before), in order.
    func receive(_ bytes: [UInt8]) async -> [POP3Output] {
        out = []
        partial += bytes
        while !isClosed, let lf = partial.firstIndex(of: UInt8(ascii: "\n")) {
            let events = splitter.feed(partial[...lf])
            partial.removeSubrange(...lf)
            for event in events where !isClosed {
                switch event {
                case .tooLong: send(POP3Command.ParseError.tooLong.reply)
                case .bareLineFeed: send("-ERR bare LF")
                case .line(let line): await handle(line)
                }
                if out.contains(.startTLS) {
                    // RFC 2595 §4: what the client sent after STLS in plaintext is dropped.
                    partial.removeAll()
                    splitter = LineSplitter(maxLength: env.options.maxLineLength, bareLineFeed: .accept)
                    return out
                }
            }
        }
        // Keep a partial line, but not an endless one.
        if partial.count > env.options.maxLineLength {
            partial.removeAll()
            send(POP3Command.ParseError.tooLong.reply)
        }
        return out
    }

    func tlsStarted() { isSecure = true }

    /// A drain between commands: leave without UPDATE (RFC 1939 §6: no QUIT, no expunge).
    func drain() -> [POP3Output] {
        guard !isClosed else { return [] }
        out = []
        close("-ERR [SYS/TEMP] server shutting down, try again")
        return out
    }

    /// The connection ended: without QUIT there is no UPDATE, nothing is deleted.
    func connectionClosed() {
        if case .transaction(_, _, _, let lock) = phase { lock.release() }
        phase = .closed
    }

    // MARK: - Replies

    private func send(_ line: String) { out.append(.send(Array((line + "\r\n").utf8))) }

    private func close(_ line: String) {
        if case .transaction(_, _, _, let lock) = phase { lock.release() }
        phase = .closed
        send(line)
        out.append(.close)
    }

    private func reply(_ line: String, countsAsError: Bool = false) {
        send(line)
        if countsAsError { countError() }
    }

    private func countError() {
        errors += 1
        if errors >= env.options.maxErrors { close("-ERR too many errors") }
    }

    /// What SASL may bind to now: nothing before TLS.
    private var channelBindings: [String: [UInt8]] { isSecure ? env.tlsChannelBindings : [:] }

    private var plaintextAllowed: Bool { isSecure || (env.isLoopback && env.options.allowPlaintextOnLoopback) }

    private var mechanisms: [String] {
        env.auth.offered(secure: isSecure, loopback: env.isLoopback, plaintextOnLoopback: env.options.allowPlaintextOnLoopback,
                         channelBinding: !channelBindings.isEmpty)
    }

    func capabilities() -> [String] {
        var caps = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "EXPIRE NEVER", "LOGIN-DELAY 0"]
        if plaintextAllowed { caps.append("USER") }
        if !mechanisms.isEmpty { caps.append("SASL " + mechanisms.joined(separator: " ")) }
        if env.offersTLS && !isSecure { caps.append("STLS") }
        caps.append("IMPLEMENTATION Postern")
        return caps
    }

    // MARK: - Commands

    private func handle(_ line: [UInt8]) async {
        if case .authenticating(let exchange) = phase { return await continueAuth(exchange, line) }
        switch POP3Command.parse(line) {
        case .failure(let error): reply(error.reply, countsAsError: true)
        case .success(let command): await execute(command)
        }
    }

    private func execute(_ command: POP3Command) async {
        switch (phase, command) {
        case (_, .capa):
            send("+OK capability list follows")
            for c in capabilities() { send(c) }
            send(".")
        case (.transaction, .noop):
            send("+OK")
        case (_, .quit):
            await quit()

        // AUTHORIZATION
        case (.authorization, .stls):
            guard env.offersTLS && !isSecure else { return reply("-ERR STLS not available", countsAsError: true) }
            send("+OK begin TLS negotiation")
            out.append(.startTLS)
        case (.authorization, .user(let name)):
            guard plaintextAllowed else { return reply("-ERR [AUTH] plaintext authentication disallowed without TLS", countsAsError: true) }
            phase = .authorization(user: name)
            send("+OK")
        case (.authorization(let user), .pass(let password)):
            guard let user else { return reply("-ERR USER first", countsAsError: true) }
            guard plaintextAllowed else { return reply("-ERR [AUTH] plaintext authentication disallowed without TLS", countsAsError: true) }
            phase = .authorization(user: nil)
            await verifyPassword(user: user, password: password)
        case (.authorization, .xclient(let fields)):
            guard fromProxy else { return reply("-ERR XCLIENT is for access proxies", countsAsError: true) }
            if let address = fields["ADDR"], IPAddress(address) != nil {
                if env.connectionAddress == nil { env.connectionAddress = env.peerAddress }
                env.peerAddress = address
                env.logger[metadataKey: "client"] = "\(address)"
            }
            send("+OK")
        case (.authorization, .apop):
            reply("-ERR [AUTH] APOP is not available: use USER/PASS or AUTH over TLS", countsAsError: true)
        case (.authorization, .auth(nil, _)):
            // The list of mechanisms (RFC 1734 style), which clients still probe.
            send("+OK")
            for m in mechanisms { send(m) }
            send(".")
        case (.authorization, .auth(let mechanism?, let initial)):
            await startAuth(mechanism, initial)

        // TRANSACTION
        case (.transaction(_, _, let messages, _), .stat):
            let live = messages.filter { !$0.deleted }
            send("+OK \(live.count) \(live.reduce(0) { $0 + $1.size })")
        case (.transaction(_, _, let messages, _), .list(nil)):
            send("+OK \(messages.filter { !$0.deleted }.count) messages")
            for (i, m) in messages.enumerated() where !m.deleted { send("\(i + 1) \(m.size)") }
            send(".")
        case (.transaction(_, _, let messages, _), .list(let n?)):
            guard let m = message(n, messages) else { return reply("-ERR no such message") }
            send("+OK \(n) \(m.size)")
        case (.transaction(_, let validity, let messages, _), .uidl(nil)):
            send("+OK")
            for (i, m) in messages.enumerated() where !m.deleted { send("\(i + 1) \(Self.uidl(m.uid, validity))") }
            send(".")
        case (.transaction(_, let validity, let messages, _), .uidl(let n?)):
            guard let m = message(n, messages) else { return reply("-ERR no such message") }
            send("+OK \(n) \(Self.uidl(m.uid, validity))")
        case (.transaction(let user, let validity, let messages, let lock), .dele(let n)):
            guard !anonymousLogin else { return reply("-ERR anonymous access is read-only") }
            guard message(n, messages) != nil else { return reply("-ERR no such message") }
            var updated = messages
            updated[n - 1].deleted = true
            phase = .transaction(user: user, uidValidity: validity, messages: updated, lock: lock)
            send("+OK message \(n) deleted")
        case (.transaction(let user, let validity, let messages, let lock), .rset):
            phase = .transaction(user: user, uidValidity: validity, messages: messages.map { Message(uid: $0.uid, size: $0.size) }, lock: lock)
            send("+OK")
        case (.transaction(let user, _, let messages, _), .retr(let n)):
            guard let m = message(n, messages) else { return reply("-ERR no such message") }
            if await transfer(user: user, uid: m.uid, lines: nil), !anonymousLogin { retrieved.insert(m.uid) }
        case (.transaction(let user, _, let messages, _), .top(let n, let lines)):
            guard let m = message(n, messages) else { return reply("-ERR no such message") }
            _ = await transfer(user: user, uid: m.uid, lines: lines)

        case (.transaction, .user), (.transaction, .pass), (.transaction, .apop), (.transaction, .auth), (.transaction, .stls):
            reply("-ERR already authenticated", countsAsError: true)
        default:
            reply("-ERR command not valid in this state", countsAsError: true)
        }
    }

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
}

// MARK: - Login

extension POP3ServerState {
    /// Whether the connection comes from an access proxy (`proxy_networks`); judged on the
    /// connection's own address, never on one XCLIENT named.
    var fromProxy: Bool {
        guard let address = IPAddress(env.connectionAddress ?? env.peerAddress) else { return false }
        return env.options.proxyNetworks.contains { $0.contains(address) }
    }

    private func verifyPassword(user: String, password: String) async {
        guard await env.throttle.allows(env.peerAddress) else { return close("-ERR [SYS/TEMP] too many failed logins, try later") }
        switch await AuthService.ask(env.auth.backends, .password(user: user, password: password), service: "pop") {
        case .verified(let name): await loggedIn(name)
        case .suspended: await loginFailed("-ERR [AUTH] account disabled", user: user)
        case .unavailable: send("-ERR [SYS/TEMP] authentication service unavailable, try later")
        default: await loginFailed("-ERR [AUTH] authentication failed", user: user)
        }
    }

    private func startAuth(_ mechanism: String, _ initial: String?) async {
        guard mechanisms.contains(mechanism) else {
            return reply("-ERR [AUTH] mechanism \(mechanism.prefix(40)) not available here", countsAsError: true)
        }
        guard await env.throttle.allows(env.peerAddress) else { return close("-ERR [SYS/TEMP] too many failed logins, try later") }
        var certificate: [UInt8]?
        if isSecure { certificate = await env.clientCertificate() }
        guard let exchange = env.auth.begin(mechanism: mechanism, context: SASLExchangeContext(
            service: "pop", serverHostname: env.hostname, isSecure: isSecure, channelBindings: channelBindings,
            clientCertificate: certificate)) else {
            return reply("-ERR [AUTH] mechanism not available", countsAsError: true)
        }
        var response: [UInt8]?
        if let initial {
            // RFC 5034 §4: "=" is an empty initial response.
            guard let decoded = initial == "=" ? [] : Base64Decoder.decodeStrict(Array(initial.utf8)) else {
                return reply("-ERR invalid base64", countsAsError: true)
            }
            response = decoded
        }
        phase = .authenticating(exchange)
        await authProgress(await exchange.start(initialResponse: response), exchange)
    }

    private func continueAuth(_ exchange: AuthExchange, _ line: [UInt8]) async {
        if let identity = verifiedAwaitingFinal {
            // The client's answer to the mechanism's success data: empty, or the login is off.
            verifiedAwaitingFinal = nil
            guard line.isEmpty else {
                phase = .authorization(user: nil)
                return reply("-ERR [AUTH] authentication cancelled")
            }
            return await loggedIn(identity.user)
        }
        if line == Array("*".utf8) {
            phase = .authorization(user: nil)
            return reply("-ERR [AUTH] authentication cancelled")
        }
        guard let response = Base64Decoder.decodeStrict(line) else {
            phase = .authorization(user: nil)
            return reply("-ERR invalid base64", countsAsError: true)
        }
        await authProgress(await exchange.respond(response), exchange)
    }

    private func authProgress(_ progress: AuthExchange.Progress, _ exchange: AuthExchange) async {
        switch progress {
        case .challenge(let bytes):
            send("+ " + String(decoding: Base64Encoder.encode(bytes, lineLength: 0), as: UTF8.self))
        case .success(let identity, let final?) where !final.isEmpty:
            // Additional data with success (SCRAM's server signature, DIGEST-MD5's rspauth): a
            // last "+" line the client answers with an empty one (RFC 5034 §4), as Cyrus does.
            verifiedAwaitingFinal = identity
            send("+ " + String(decoding: Base64Encoder.encode(final, lineLength: 0), as: UTF8.self))
        case .success(let identity, _):
            anonymousLogin = identity.isAnonymous
            // Acting as another user: only a master user (an access proxy's credential) from a
            // proxy network, as an account that exists and is enabled.
            if let target = identity.authorizationIdentity {
                guard env.options.masterUsers.contains(identity.user.lowercased()), fromProxy,
                      case .verified(let account) = await AuthService.ask(env.auth.backends, .account(user: target), service: "pop") else {
                    phase = .authorization(user: nil)
                    env.logger.notice("authorization refused", metadata: ["user": "\(identity.user)", "as": "\(target)"])
                    return send("-ERR [AUTH] authorization failed")
                }
                env.logger.info("master login", metadata: ["master": "\(identity.user)", "user": "\(account)"])
                return await loggedIn(account)
            }
            await loggedIn(identity.user)
        case .failure(.temporary):
            phase = .authorization(user: nil)
            send("-ERR [SYS/TEMP] authentication service unavailable, try later")
        case .failure(.accountDisabled):
            await loginFailed("-ERR [AUTH] account disabled", user: exchange.attemptedUser)
        case .failure:
            await loginFailed("-ERR [AUTH] authentication failed", user: exchange.attemptedUser)
        }
    }

    /// `user`: who the client tried to be, for the log (the logger names the client's address).
    /// The reply waits: a guesser gets one try per delay per connection.
    private func loginFailed(_ line: String, user: String?, locked: Bool = false) async {
        phase = .authorization(user: nil)
        // The right secret for a locked account is not another failure.
        let delay = locked ? env.throttle.failureDelay : await env.throttle.failed(env.peerAddress, account: user)
        env.logger.notice(locked ? "login refused: account locked by failed logins" : "login failed",
                          metadata: ["user": "\(user ?? "(none given)")", "delay": "\(delay)"])
        env.failedLogins.increment()
        if delay > 0 { await env.pause(delay) }
        send(line)
        countError()
    }

    /// Locks the maildrop (one session per maildrop, RFC 1939 §8) and takes the INBOX snapshot.
    private func loggedIn(_ user: String) async {
        // A locked account answers as a wrong password would, right password or not.
        guard await !env.throttle.isLocked(account: user) else {
            return await loginFailed("-ERR [AUTH] authentication failed", user: user, locked: true)
        }
        await env.throttle.succeeded(env.peerAddress, account: user)
        guard let lock = env.locks.lock(user) else {
            phase = .authorization(user: nil)
            return send("-ERR [IN-USE] the maildrop is in use by another POP3 session")
        }
        guard let store = env.store else {
            lock.release()
            return close("-ERR [SYS/TEMP] no message store")
        }
        do {
            let status = try await store.changeStamp(user: user, mailbox: "INBOX")
            let messages = try await store.messages(user: user, mailbox: "INBOX", uids: 1...UInt32.max)
            phase = .transaction(user: user, uidValidity: status.uidValidity, messages: messages.map { Message(uid: $0.uid, size: $0.size) }, lock: lock)
            env.logger.info("logged in", metadata: ["user": "\(user)", "messages": "\(messages.count)"])
            send("+OK logged in, \(messages.count) messages")
        } catch {
            lock.release()
            env.logger.error("cannot open maildrop: \(error)")
            close("-ERR [SYS/TEMP] cannot open the maildrop")
        }
    }
}

// MARK: - Transaction and update

extension POP3ServerState {
    /// RETR and TOP: true when the message went out.
    private func transfer(user: String, uid: UInt32, lines: Int?) async -> Bool {
        guard let store = env.store else {
            send("-ERR [SYS/TEMP] no message store")
            return false
        }
        guard let bytes = try? await store.content(user: user, mailbox: "INBOX", uid: uid) else {
            // Expunged by another protocol (IMAP) since the snapshot.
            send("-ERR message was removed by another session")
            return false
        }
        var data = Array("+OK message follows\r\n".utf8)
        data += POP3Transfer.encode(bytes, bodyLines: lines)
        data += Array(".\r\n".utf8)
        out.append(.send(data))
        return true
    }

    /// QUIT: in TRANSACTION, the UPDATE state (RFC 1939 §6).
    private func quit() async {
        guard case .transaction(let user, _, let messages, let lock) = phase else {
            return close("+OK \(env.hostname) POP3 bye")
        }
        let deleted = messages.filter(\.deleted).map(\.uid)
        let seen = retrieved.subtracting(deleted).sorted()
        guard let store = env.store else { return close("-ERR [SYS/TEMP] no message store") }
        do {
            if !seen.isEmpty { _ = try await store.setFlags(user: user, mailbox: "INBOX", uids: seen, flags: ["\\Seen"], mode: .add) }
            if !deleted.isEmpty {
                _ = try await store.setFlags(user: user, mailbox: "INBOX", uids: deleted, flags: ["\\Deleted"], mode: .add)
                _ = try await store.expunge(user: user, mailbox: "INBOX", uids: deleted)
            }
            lock.release()
            close("+OK \(env.hostname) POP3 bye (\(deleted.count) messages deleted)")
        } catch {
            lock.release()
            env.logger.error("update failed: \(error)")
            close("-ERR [SYS/TEMP] some deleted messages were not removed")
        }
    }
}
