import Foundation
import PluginAPI

/// One POP3 client of the proxy until it is logged in to its back end (RFC 1939 AUTHORIZATION
/// state, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH with initial responses): USER/PASS or AUTH
/// against the host's auth service, then the back end's login (`POP3BackendHandshake`). POP3 is
/// line based; what the client pipelined after its login stays as bytes for the back end.
// @unchecked Sendable: one caller at a time (the connection awaits each receive before the next)
final class POP3ProxySession: ProxyFrontEnd, @unchecked Sendable {
    let plugin: AccessProxyPlugin
    let session: Session
    let loop: any EventLoop
    let allowPlaintextOnLoopback: Bool
    private var isSecure: Bool
    private var buffer: [UInt8] = []
    private var user: String?
    private var exchange: AuthExchange?
    private var failures = 0
    static let maxLine = 4096

    init(plugin: AccessProxyPlugin, session: Session, loop: any EventLoop, allowPlaintextOnLoopback: Bool) {
        self.plugin = plugin
        self.session = session
        self.loop = loop
        self.allowPlaintextOnLoopback = allowPlaintextOnLoopback
        isSecure = session.isSecure
    }

    var logger: Logger { session.logger }
    var clientAddress: String { session.peer?.ipAddress ?? "unknown" }
    var plaintextAllowed: Bool { isSecure || (session.isLoopback && allowPlaintextOnLoopback) }
    var mechanisms: [String] {
        session.services.auth.offered(secure: isSecure, loopback: session.isLoopback, plaintextOnLoopback: allowPlaintextOnLoopback)
    }

    func greeting() -> [ProxyOutput] { [line("+OK Postern ready.")] }
    func tlsStarted() { isSecure = true }
    func bye(_ why: String) -> [UInt8] { Array("-ERR \(why)\r\n".utf8) }
    private func line(_ text: String) -> ProxyOutput { .send(Array((text + "\r\n").utf8)) }

    func receive(_ bytes: [UInt8]) async -> [ProxyOutput] {
        buffer += bytes
        var out: [ProxyOutput] = []
        while let lf = buffer.firstIndex(of: 0x0A) {
            var text = Array(buffer[0..<lf])
            buffer.removeFirst(lf + 1)
            if text.last == 0x0D { text.removeLast() }
            let outputs = await handle(String(decoding: text, as: UTF8.self))
            for output in outputs {
                if case .splice(let backend, let reply, _) = output {
                    defer { buffer = [] }
                    return out + [.splice(backend: backend, reply: reply, pending: buffer)]
                }
                out.append(output)
                if case .close = output { return out }
                if case .startTLS = output {
                    // RFC 2595 §4: nothing sent before the handshake counts.
                    buffer = []
                    return out
                }
            }
        }
        if buffer.count > Self.maxLine {
            buffer = []
            out += [line("-ERR line too long"), .close]
        }
        return out
    }

    private func handle(_ text: String) async -> [ProxyOutput] {
        if let exchange {
            self.exchange = nil
            if text == "*" { return [line("-ERR [AUTH] authentication cancelled")] }
            guard let decoded = Data(base64Encoded: text) else { return [line("-ERR invalid base64")] }
            return await advance(await exchange.respond(Array(decoded)), exchange)
        }
        let words = text.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard let verb = words.first?.uppercased() else { return [line("-ERR empty command")] }
        let args = Array(words.dropFirst())
        switch verb {
        case "CAPA":
            var caps = ["CAPA", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
            if plaintextAllowed { caps.append("USER") }
            if !mechanisms.isEmpty { caps.append("SASL " + mechanisms.joined(separator: " ")) }
            if session.canStartTLS && !isSecure { caps.append("STLS") }
            return [line("+OK capability list follows")] + caps.map(line) + [line(".")]
        case "QUIT":
            return [line("+OK Bye"), .close]
        case "STLS":
            guard session.canStartTLS && !isSecure else { return [line("-ERR STLS not available")] }
            return [line("+OK Begin TLS negotiation"), .startTLS]
        case "USER":
            guard plaintextAllowed else { return [line("-ERR [AUTH] plaintext authentication disallowed without TLS")] }
            guard !args.isEmpty else { return [line("-ERR USER needs a name")] }
            user = String(text.dropFirst(5))   // the rest of the line: a name may hold spaces
            return [line("+OK")]
        case "PASS":
            guard let name = user else { return [line("-ERR USER first")] }
            guard plaintextAllowed else { return [line("-ERR [AUTH] plaintext authentication disallowed without TLS")] }
            user = nil
            if let refusal = await refuseThrottled() { return refusal }
            let password = String(text.dropFirst(5))
            switch await AuthService.ask(session.services.auth.backends, .password(user: name, password: password), service: "pop") {
            case .verified(let account): return await loggedIn(account)
            case .unavailable(let why):
                logger.error("credential backends unavailable: \(why)")
                return [line("-ERR [SYS/TEMP] authentication service unavailable, try later")]
            default: return await failed(name)
            }
        case "AUTH":
            guard let mechanism = args.first?.uppercased() else {
                return [line("+OK")] + mechanisms.map(line) + [line(".")]
            }
            guard mechanisms.contains(where: { $0.uppercased() == mechanism }),
                  let started = session.services.auth.begin(mechanism: mechanism, context: SASLExchangeContext(
                    service: "pop", serverHostname: plugin.settings.hostname, isSecure: isSecure)) else {
                return [line("-ERR [AUTH] mechanism not available here")]
            }
            if let refusal = await refuseThrottled() { return refusal }
            var initial: [UInt8]?
            if args.count > 1 {
                guard let decoded = args[1] == "=" ? Data() : Data(base64Encoded: args[1]) else { return [line("-ERR invalid base64")] }
                initial = Array(decoded)
            }
            return await advance(await started.start(initialResponse: initial), started)
        case "APOP":
            return [line("-ERR [AUTH] APOP is not available: use USER/PASS or AUTH over TLS")]
        case "STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "TOP", "UIDL":
            return [line("-ERR log in first")]
        default:
            return [line("-ERR unknown command \(verb.prefix(32))")]
        }
    }

    private func advance(_ progress: AuthExchange.Progress, _ exchange: AuthExchange) async -> [ProxyOutput] {
        switch progress {
        case .challenge(let bytes):
            self.exchange = exchange
            return [line("+ " + Data(bytes).base64EncodedString())]
        case .success(let identity, _):
            guard identity.authorizationIdentity == nil else { return [line("-ERR [AUTH] authorization failed")] }
            return await loggedIn(identity.user)
        case .failure(.temporary(let why)):
            logger.error("authentication unavailable: \(why)")
            return [line("-ERR [SYS/TEMP] authentication service unavailable, try later")]
        case .failure:
            return await failed(exchange.attemptedUser)
        }
    }

    private func refuseThrottled() async -> [ProxyOutput]? {
        await plugin.mayTryLogin(session) ? nil : [line("-ERR [SYS/TEMP] too many failed logins, try later"), .close]
    }

    private func failed(_ name: String?) async -> [ProxyOutput] {
        await plugin.loginFailed(session, user: name)
        failures += 1
        return [line("-ERR [AUTH] authentication failed")] + (failures >= 3 ? [.close] : [])
    }

    private func loggedIn(_ account: String) async -> [ProxyOutput] {
        guard await !plugin.throttle.isLocked(account: account) else { return await failed(account) }
        let connectTimeout = TimeAmount.milliseconds(Int64(plugin.settings.connectTimeout * 1000))
        let loginTimeout = TimeAmount.milliseconds(Int64(plugin.settings.loginTimeout * 1000))
        let (master, client, loop) = (plugin.settings.master, (clientAddress, session.peer?.port ?? 0), loop)
        switch await plugin.login(account, session: session, { backend in
            try await BackendLogin.pop3(backend, user: account, master: master, client: client, loop: loop,
                                        connectTimeout: connectTimeout, loginTimeout: loginTimeout)
        }) {
        case .success(let (channel, backend)):
            await plugin.throttle.succeeded(clientAddress, account: account)
            plugin.logins.increment()
            logger.info("proxied", metadata: ["user": "\(account)", "backend": "\(backend.name)", "protocol": "pop3"])
            return [.splice(backend: channel, reply: Array("+OK Logged in.\r\n".utf8), pending: [])]
        case .failure(let refusal):
            return [line("-ERR [SYS/TEMP] \(refusal.text)")]
        }
    }
}
