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
                        handshake: (_ starttls: NIOSSLContext?, _ promise: EventLoopPromise<String>) -> any RemovableChannelHandler & ChannelInboundHandler)
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
            BackendHandshake(user: user, master: master, client: client, starttls: starttls, host: backend.host, promise: promise)
        }
    }
}

/// The back end's side of the login, line by line, on the channel's event loop.
// @unchecked Sendable: used on its channel's event loop only
final class BackendHandshake: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Step { case greeting, startTLS, id, login, capability, done }

    let user: String
    let master: BackendLogin.Credential
    let client: (address: String, port: Int)
    let starttls: NIOSSLContext?
    let host: String
    let promise: EventLoopPromise<String>
    private var step = Step.greeting
    private var buffer: [UInt8] = []
    private var capabilities: String?

    init(user: String, master: BackendLogin.Credential, client: (address: String, port: Int), starttls: NIOSSLContext?, host: String,
         promise: EventLoopPromise<String>) {
        self.user = user
        self.master = master
        self.client = client
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
        while step != .done, let lf = buffer.firstIndex(of: 0x0A) {
            var line = Array(buffer[0...lf])
            buffer.removeFirst(lf + 1)
            while line.last == 0x0A || line.last == 0x0D { line.removeLast() }
            handle(String(decoding: line, as: UTF8.self), context)
        }
        if buffer.count > 64 * 1024 { fail(.unavailable("the back end sent an over-long line"), context) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if step != .done { promise.fail(BackendLogin.Failure.unavailable("the back end closed the connection during login")) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(.unavailable("\(error)"), context)
    }

    private func fail(_ failure: BackendLogin.Failure, _ context: ChannelHandlerContext) {
        guard step != .done else { return }
        step = .done
        promise.fail(failure)
        context.close(promise: nil)
    }

    private func send(_ line: String, _ context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: line + "\r\n")), promise: nil)
    }

    private func quoted(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    private func sendID(_ context: ChannelHandlerContext) {
        step = .id
        send("P1 ID (\"x-originating-ip\" \(quoted(client.address)) \"x-originating-port\" \"\(client.port)\" \"x-proxy\" \"postern\")", context)
    }

    private func handle(_ line: String, _ context: ChannelHandlerContext) {
        let upper = line.uppercased()
        if upper.hasPrefix("* BYE") { return fail(.unavailable("the back end said: \(line)"), context) }
        if upper.hasPrefix("* CAPABILITY ") { capabilities = String(line.dropFirst(13)) }
        switch step {
        case .greeting:
            guard upper.hasPrefix("* OK") else { return fail(.unavailable("unexpected greeting: \(line)"), context) }
            if starttls != nil {
                step = .startTLS
                send("P0 STARTTLS", context)
            } else {
                sendID(context)
            }
        case .startTLS:
            guard upper.hasPrefix("P0 ") else { return }
            guard upper.hasPrefix("P0 OK"), let tls = starttls,
                  let handler = try? NIOSSLClientHandler(context: tls, serverHostname: Self.sniName(host)) else {
                return fail(.unavailable("STARTTLS refused: \(line)"), context)
            }
            do {
                try context.pipeline.syncOperations.addHandler(handler, position: .first)
            } catch {
                return fail(.unavailable("STARTTLS failed: \(error)"), context)
            }
            capabilities = nil
            sendID(context)
        case .id:
            guard upper.hasPrefix("P1 ") else { return }
            step = .login
            let plain = Data((user + "\u{0}" + master.user + "\u{0}" + master.password).utf8).base64EncodedString()
            send("P2 AUTHENTICATE PLAIN \(plain)", context)
        case .login:
            guard upper.hasPrefix("P2 ") else { return }
            guard upper.hasPrefix("P2 OK") else { return fail(.refused(line), context) }
            if let open = line.range(of: "[CAPABILITY ", options: .caseInsensitive), let close = line[open.upperBound...].firstIndex(of: "]") {
                capabilities = String(line[open.upperBound..<close])
            }
            if capabilities != nil { return finish() }
            step = .capability
            send("P3 CAPABILITY", context)
        case .capability:
            guard upper.hasPrefix("P3 ") else { return }
            guard capabilities != nil else { return fail(.unavailable("the back end sent no capabilities"), context) }
            finish()
        case .done:
            break
        }
    }

    private func finish() {
        step = .done
        promise.succeed(capabilities ?? "IMAP4rev1")
    }
}
