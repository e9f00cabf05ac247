import Foundation
import PluginAPI

/// Logs in to a back end as a user with the proxy's master credential (SASL PLAIN with the user
/// as authorization identity, RFC 4616, as Dovecot's master users do), after naming the client
/// (RFC 2971 ID with `x-originating-ip`/`x-originating-port`, which Postern and Dovecot read from
/// trusted proxies). Answers the back end's capabilities after login, for the client's OK.
enum BackendLogin {
    struct Credential: Sendable {
        var user: String
        var password: String
    }

    enum Failure: Error, Equatable, CustomStringConvertible {
        /// Cannot connect, TLS failed, no answer in time, or the server said BYE.
        case unavailable(String)
        /// The back end refused the master login (a configuration error on one side).
        case refused(String)

        var description: String {
            switch self {
            case .unavailable(let why): return why
            case .refused(let why): return "the back end refused the proxy's login: \(why)"
            }
        }
    }

    /// Connects on `loop` (the client's, so the two channels splice without hops) to `port` and
    /// runs the protocol's login (`handshake`, given the TLS context for STARTTLS when the back end
    /// wants it). The returned channel has no handler of ours left: the caller glues it to the
    /// client. Answers the channel and what the handshake found (IMAP: the capabilities).
    static func connect(_ backend: Backend, port: Int, loop: any EventLoop, connectTimeout: TimeAmount, loginTimeout: TimeAmount,
                        handshake: (_ starttls: NIOSSLContext?, _ promise: EventLoopPromise<String>) -> BackendHandshake)
        async throws -> (any Channel, String) {
        var tls: NIOSSLContext?
        if backend.tls != .none {
            var configuration = TLSConfiguration.makeClientConfiguration()
            if !backend.verifyCertificate { configuration.certificateVerification = .none }
            tls = try NIOSSLContext(configuration: configuration)
        }
        let promise = loop.makePromise(of: String.self)
        let handler = handshake(backend.tls == .starttls ? tls : nil, promise)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: loop)
                .connectTimeout(connectTimeout)
                .channelOption(ChannelOptions.socketOption(.so_keepalive), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if backend.tls == .implicit, let tls {
                            try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: BackendHandshake.sniName(backend.host)))
                        }
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                }
                .connect(host: backend.host, port: port).get()
        } catch {
            promise.fail(error)
            throw Failure.unavailable("cannot connect to \(backend.name) (\(backend.host):\(port)): \(error)")
        }
        let deadline = loop.scheduleTask(in: loginTimeout) {
            promise.fail(Failure.unavailable("\(backend.name) did not log the user in within the login timeout"))
            channel.close(promise: nil)
        }
        defer { deadline.cancel() }
        do {
            let found = try await promise.futureResult.get()
            try await channel.pipeline.removeHandler(handler).get()
            return (channel, found)
        } catch let failure as Failure {
            channel.close(promise: nil)
            throw failure
        } catch {
            channel.close(promise: nil)
            throw Failure.unavailable("\(backend.name): \(error)")
        }
    }

    /// The IMAP login: the back end's capabilities after it.
    static func imap(_ backend: Backend, user: String, master: Credential, client: (address: String, port: Int),
                     loop: any EventLoop, connectTimeout: TimeAmount, loginTimeout: TimeAmount) async throws -> (any Channel, String) {
        try await connect(backend, port: backend.port, loop: loop, connectTimeout: connectTimeout, loginTimeout: loginTimeout) { starttls, promise in
            BackendHandshake(script: IMAPLoginScript(user: user, master: master, client: client, wantsTLS: starttls != nil),
                             starttls: starttls, host: backend.host, promise: promise)
        }
    }

    /// The POP3 login.
    static func pop3(_ backend: Backend, user: String, master: Credential, client: (address: String, port: Int),
                     loop: any EventLoop, connectTimeout: TimeAmount, loginTimeout: TimeAmount) async throws -> any Channel {
        try await connect(backend, port: backend.pop3Port, loop: loop, connectTimeout: connectTimeout, loginTimeout: loginTimeout) { starttls, promise in
            BackendHandshake(script: POP3LoginScript(user: user, master: master, client: client, wantsTLS: starttls != nil),
                             starttls: starttls, host: backend.host, promise: promise)
        }.0
    }
}

/// What a login script asks for after a line from the back end.
enum HandshakeAction: Equatable {
    case send(String)
    /// Put TLS under the connection now (after the back end's yes to STARTTLS/STLS).
    case startTLS
    /// Logged in; the value is what the script found (IMAP: the capabilities).
    case succeed(String)
    case fail(BackendLogin.Failure)
}

/// A protocol's side of the back-end login as a pure state machine over the back end's lines.
protocol HandshakeScript: AnyObject {
    func handle(_ line: String) -> [HandshakeAction]
}

/// Runs a `HandshakeScript` on the back end's channel: splits what arrives into lines, sends
/// what the script says, puts TLS in when it asks, and settles the promise once.
// @unchecked Sendable: used on its channel's event loop only
final class BackendHandshake: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let script: any HandshakeScript
    let starttls: NIOSSLContext?
    let host: String
    let promise: EventLoopPromise<String>
    private var done = false
    private var buffer: [UInt8] = []

    init(script: any HandshakeScript, starttls: NIOSSLContext?, host: String, promise: EventLoopPromise<String>) {
        self.script = script
        self.starttls = starttls
        self.host = host
        self.promise = promise
    }

    static func sniName(_ host: String) -> String? {
        host.contains(":") || host.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : host
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        buffer += bytes.readBytes(length: bytes.readableBytes) ?? []
        while !done, let lf = buffer.firstIndex(of: 0x0A) {
            var line = Array(buffer[0...lf])
            buffer.removeFirst(lf + 1)
            while line.last == 0x0A || line.last == 0x0D { line.removeLast() }
            for action in script.handle(String(decoding: line, as: UTF8.self)) where !done {
                perform(action, context)
            }
        }
        if buffer.count > 64 * 1024 { fail(.unavailable("the back end sent an over-long line"), context) }
    }

    private func perform(_ action: HandshakeAction, _ context: ChannelHandlerContext) {
        switch action {
        case .send(let line):
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: line + "\r\n")), promise: nil)
        case .startTLS:
            guard let tls = starttls, let handler = try? NIOSSLClientHandler(context: tls, serverHostname: Self.sniName(host)) else {
                return fail(.unavailable("TLS to the back end cannot start"), context)
            }
            do {
                try context.pipeline.syncOperations.addHandler(handler, position: .first)
            } catch {
                fail(.unavailable("TLS to the back end failed: \(error)"), context)
            }
        case .succeed(let found):
            done = true
            promise.succeed(found)
        case .fail(let failure):
            fail(failure, context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !done { promise.fail(BackendLogin.Failure.unavailable("the back end closed the connection during login")) }
        done = true
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(.unavailable("\(error)"), context)
    }

    private func fail(_ failure: BackendLogin.Failure, _ context: ChannelHandlerContext) {
        guard !done else { return }
        done = true
        promise.fail(failure)
        context.close(promise: nil)
    }
}

/// IMAP: the greeting, STARTTLS when wanted, `ID` naming the client, `AUTHENTICATE PLAIN` with
/// the master credential, and the capabilities (from the OK's code, or asked for).
final class IMAPLoginScript: HandshakeScript {
    private enum Step { case greeting, startTLS, id, login, capability, done }

    let user: String
    let master: BackendLogin.Credential
    let client: (address: String, port: Int)
    let wantsTLS: Bool
    private var step = Step.greeting
    private var capabilities: String?

    init(user: String, master: BackendLogin.Credential, client: (address: String, port: Int), wantsTLS: Bool) {
        self.user = user
        self.master = master
        self.client = client
        self.wantsTLS = wantsTLS
    }

    private func quoted(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    private func id() -> HandshakeAction {
        step = .id
        return .send("P1 ID (\"x-originating-ip\" \(quoted(client.address)) \"x-originating-port\" \"\(client.port)\" \"x-proxy\" \"postern\")")
    }

    func handle(_ line: String) -> [HandshakeAction] {
        let upper = line.uppercased()
        if upper.hasPrefix("* BYE") { return [.fail(.unavailable("the back end said: \(line)"))] }
        if upper.hasPrefix("* CAPABILITY ") { capabilities = String(line.dropFirst(13)) }
        switch step {
        case .greeting:
            guard upper.hasPrefix("* OK") else { return [.fail(.unavailable("unexpected greeting: \(line)"))] }
            if wantsTLS {
                step = .startTLS
                return [.send("P0 STARTTLS")]
            }
            return [id()]
        case .startTLS:
            guard upper.hasPrefix("P0 ") else { return [] }
            guard upper.hasPrefix("P0 OK") else { return [.fail(.unavailable("STARTTLS refused: \(line)"))] }
            capabilities = nil
            return [.startTLS, id()]
        case .id:
            guard upper.hasPrefix("P1 ") else { return [] }
            step = .login
            let plain = Data((user + "\u{0}" + master.user + "\u{0}" + master.password).utf8).base64EncodedString()
            return [.send("P2 AUTHENTICATE PLAIN \(plain)")]
        case .login:
            guard upper.hasPrefix("P2 ") else { return [] }
            guard upper.hasPrefix("P2 OK") else { return [.fail(.refused(line))] }
            if let open = line.range(of: "[CAPABILITY ", options: .caseInsensitive), let close = line[open.upperBound...].firstIndex(of: "]") {
                capabilities = String(line[open.upperBound..<close])
            }
            if let capabilities {
                step = .done
                return [.succeed(capabilities)]
            }
            step = .capability
            return [.send("P3 CAPABILITY")]
        case .capability:
            guard upper.hasPrefix("P3 ") else { return [] }
            guard let capabilities else { return [.fail(.unavailable("the back end sent no capabilities"))] }
            step = .done
            return [.succeed(capabilities)]
        case .done:
            return []
        }
    }
}

/// POP3: the greeting, STLS when wanted, `XCLIENT ADDR= PORT=` naming the client (Postern's and
/// Dovecot's POP3 take it from trusted proxies; a refusal is no obstacle), then `AUTH PLAIN`
/// with the master credential (RFC 5034, with an initial response).
final class POP3LoginScript: HandshakeScript {
    private enum Step { case greeting, startTLS, xclient, login, done }

    let user: String
    let master: BackendLogin.Credential
    let client: (address: String, port: Int)
    let wantsTLS: Bool
    private var step = Step.greeting

    init(user: String, master: BackendLogin.Credential, client: (address: String, port: Int), wantsTLS: Bool) {
        self.user = user
        self.master = master
        self.client = client
        self.wantsTLS = wantsTLS
    }

    private func xclient() -> HandshakeAction {
        step = .xclient
        return .send("XCLIENT ADDR=\(client.address) PORT=\(client.port)")
    }

    func handle(_ line: String) -> [HandshakeAction] {
        switch step {
        case .greeting:
            guard line.hasPrefix("+OK") else { return [.fail(.unavailable("unexpected greeting: \(line)"))] }
            if wantsTLS {
                step = .startTLS
                return [.send("STLS")]
            }
            return [xclient()]
        case .startTLS:
            guard line.hasPrefix("+OK") else { return [.fail(.unavailable("STLS refused: \(line)"))] }
            return [.startTLS, xclient()]
        case .xclient:
            // +OK or -ERR: a back end that does not take XCLIENT still takes the login.
            step = .login
            let plain = Data((user + "\u{0}" + master.user + "\u{0}" + master.password).utf8).base64EncodedString()
            return [.send("AUTH PLAIN \(plain)")]
        case .login:
            step = .done
            return line.hasPrefix("+OK") ? [.succeed("")] : [.fail(.refused(line))]
        case .done:
            return []
        }
    }
}
