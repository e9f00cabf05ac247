import Foundation
import PluginAPI

/// What a proxy's front end asks its connection to do.
enum ProxyOutput {
    case send([UInt8])
    case startTLS
    case close
    /// Logged in at the back end: send `reply` to the client, then join the two channels and
    /// pass `pending` (what the client pipelined) on.
    case splice(backend: any Channel, reply: [UInt8], pending: [UInt8])
}

/// The protocol side of a proxied connection until login (IMAP or POP3), driven by
/// `ProxyConnection` one batch of bytes at a time.
protocol ProxyFrontEnd: AnyObject, Sendable {
    func greeting() -> [ProxyOutput]
    func receive(_ bytes: [UInt8]) async -> [ProxyOutput]
    func tlsStarted()
    /// Said before closing a client that did not log in in time, or at a drain before login.
    func bye(_ why: String) -> [UInt8]
}

/// One IMAP client of the proxy until it is logged in to its back end: greeting, capabilities,
/// TLS, LOGIN or AUTHENTICATE against the host's auth service, then the back end's login.
// @unchecked Sendable: one caller at a time (the connection awaits each receive before the next)
final class ProxySession: ProxyFrontEnd, @unchecked Sendable {
    typealias Output = ProxyOutput

    let plugin: AccessProxyPlugin
    let session: Session
    let loop: any EventLoop
    let allowPlaintextOnLoopback: Bool
    private var reader = ProxyCommandReader()
    private var isSecure: Bool
    private var authentication: (tag: String, exchange: AuthExchange)?
    private var failures = 0

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

    var capabilities: String {
        var caps = ["IMAP4rev1", "SASL-IR", "LITERAL+", "ID", "ENABLE", "IDLE"]
        if session.canStartTLS && !isSecure { caps.append("STARTTLS") }
        let mechanisms = session.services.auth.offered(secure: isSecure, loopback: session.isLoopback, plaintextOnLoopback: allowPlaintextOnLoopback)
        caps += mechanisms.map { "AUTH=" + $0 }
        if !plaintextAllowed { caps.append("LOGINDISABLED") }
        return caps.joined(separator: " ")
    }

    func greeting() -> [Output] {
        [.send(Array("* OK [CAPABILITY \(capabilities)] Postern ready.\r\n".utf8))]
    }

    func tlsStarted() { isSecure = true }

    func bye(_ why: String) -> [UInt8] { Array("* BYE \(why)\r\n".utf8) }

    private func line(_ text: String) -> Output { .send(Array((text + "\r\n").utf8)) }

    func receive(_ bytes: [UInt8]) async -> [Output] {
        var out: [Output] = []
        var events = reader.feed(bytes)
        while !events.isEmpty {
            for event in events {
                switch event {
                case .continueLiteral:
                    out.append(line("+ Ready for literal data"))
                case .command(let command):
                    let outputs = await execute(command)
                    out += outputs
                    if outputs.contains(where: { if case .splice = $0 { return true }; if case .close = $0 { return true }; if case .startTLS = $0 { return true }; return false }) {
                        return out
                    }
                case .authenticationResponse(let response):
                    out += await continueAuthentication(response)
                    if out.contains(where: { if case .splice = $0 { return true }; if case .close = $0 { return true }; return false }) { return out }
                case .badAuthenticationResponse:
                    if let auth = authentication {
                        authentication = nil
                        out.append(line("\(auth.tag) BAD Invalid base64 in the response."))
                    }
                }
            }
            // The reader stops after a login command or an exchange's line; go on with the rest.
            events = reader.feed([])
        }
        return out
    }

    private func execute(_ command: ProxyCommandReader.Command) async -> [Output] {
        switch command {
        case .capability(let tag):
            return [line("* CAPABILITY \(capabilities)"), line("\(tag) OK Capability completed.")]
        case .noop(let tag):
            return [line("\(tag) OK NOOP completed.")]
        case .logout(let tag):
            return [line("* BYE Logging out"), line("\(tag) OK Logout completed."), .close]
        case .id(let tag):
            return [line("* ID (\"name\" \"Postern\" \"vendor\" \"Postern\")"), line("\(tag) OK ID completed.")]
        case .startTLS(let tag):
            guard session.canStartTLS && !isSecure else {
                return [line("\(tag) BAD \(isSecure ? "TLS is already active." : "TLS support isn't enabled.")")]
            }
            // RFC 9051 §6.2.1: nothing the client sent before the handshake counts.
            _ = reader.takeBuffered()
            return [line("\(tag) OK Begin TLS negotiation now."), .startTLS]
        case .needsLogin(let tag, let name):
            return [line("\(tag) NO \(name) needs a login first.")]
        case .bad(let tag, let why):
            return [line("\(tag ?? "*") BAD \(why)")]
        case .login(let tag, let user, let password):
            if let refusal = await refuseThrottled(tag) { return refusal }
            guard plaintextAllowed else {
                return [line("\(tag) NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.")]
            }
            switch await AuthService.ask(session.services.auth.backends, .password(user: user, password: password), service: "imap") {
            case .verified(let account):
                return await loggedIn(tag, account)
            case .unavailable(let reason):
                logger.error("credential backends unavailable: \(reason)")
                return [line("\(tag) NO [UNAVAILABLE] Temporary authentication failure.")]
            default:
                return await failed(tag, user)
            }
        case .authenticate(let tag, let mechanism, let initial):
            if let refusal = await refuseThrottled(tag) { return refusal }
            let offered = session.services.auth.offered(secure: isSecure, loopback: session.isLoopback, plaintextOnLoopback: allowPlaintextOnLoopback)
            let context = SASLExchangeContext(service: "imap", serverHostname: plugin.settings.hostname, isSecure: isSecure)
            guard offered.contains(where: { $0.uppercased() == mechanism }),
                  let exchange = session.services.auth.begin(mechanism: mechanism, context: context) else {
                return [line("\(tag) NO Unsupported authentication mechanism.")]
            }
            authentication = (tag, exchange)
            return await advance(await exchange.start(initialResponse: initial))
        }
    }

    private func continueAuthentication(_ response: [UInt8]?) async -> [Output] {
        guard let auth = authentication else { return [] }
        guard let response else {
            authentication = nil
            return [line("\(auth.tag) BAD Authentication aborted by client.")]
        }
        return await advance(await auth.exchange.respond(response))
    }

    private func advance(_ progress: AuthExchange.Progress) async -> [Output] {
        guard let auth = authentication else { return [] }
        switch progress {
        case .challenge(let bytes):
            reader.expectingAuthenticationResponse = true
            return [line("+ " + Data(bytes).base64EncodedString())]
        case .success(let identity, _):
            authentication = nil
            // The proxy acts for the user it authenticated, never for another identity.
            guard identity.authorizationIdentity == nil else { return [line("\(auth.tag) NO [AUTHORIZATIONFAILED] Authorization failed.")] }
            return await loggedIn(auth.tag, identity.user)
        case .failure(let failure):
            authentication = nil
            if case .temporary(let why) = failure {
                logger.error("authentication unavailable: \(why)")
                return [line("\(auth.tag) NO [UNAVAILABLE] Temporary authentication failure.")]
            }
            return await failed(auth.tag, auth.exchange.attemptedUser)
        }
    }

    private func refuseThrottled(_ tag: String) async -> [Output]? {
        await plugin.mayTryLogin(session) ? nil : [line("\(tag) NO [UNAVAILABLE] Too many failed logins from your address; try again later."), .close]
    }

    private func failed(_ tag: String, _ user: String?) async -> [Output] {
        await plugin.loginFailed(session, user: user)
        failures += 1
        var out = [line("\(tag) NO [AUTHENTICATIONFAILED] Authentication failed.")]
        if failures >= 3 { out += [line("* BYE Too many failed logins."), .close] }
        return out
    }

    /// The user is who they say: find their store and log in there.
    private func loggedIn(_ tag: String, _ account: String) async -> [Output] {
        guard await !plugin.throttle.isLocked(account: account) else { return await failed(tag, account) }
        let connectTimeout = TimeAmount.milliseconds(Int64(plugin.settings.connectTimeout * 1000))
        let loginTimeout = TimeAmount.milliseconds(Int64(plugin.settings.loginTimeout * 1000))
        let (master, client, loop) = (plugin.settings.master, (clientAddress, session.peer?.port ?? 0), loop)
        switch await plugin.login(account, session: session, { backend in
            try await BackendLogin.imap(backend, user: account, master: master, client: client, loop: loop,
                                        connectTimeout: connectTimeout, loginTimeout: loginTimeout)
        }) {
        case .success(let ((channel, capabilities), backend)):
            await plugin.throttle.succeeded(clientAddress, account: account)
            plugin.logins.increment()
            logger.info("proxied", metadata: ["user": "\(account)", "backend": "\(backend.name)"])
            return [.splice(backend: channel, reply: Array("\(tag) OK [CAPABILITY \(capabilities)] Logged in\r\n".utf8), pending: reader.takeBuffered())]
        case .failure(let refusal):
            return [line("\(tag) NO [UNAVAILABLE] \(refusal.text)")]
        }
    }
}
