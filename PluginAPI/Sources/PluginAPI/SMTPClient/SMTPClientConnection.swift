import Foundation

/// Where a connection goes.
public enum SMTPConnectTarget: Sendable {
    /// An address already resolved (the smtp-client resolves MX hosts itself, through `DNSResolver`).
    case inet(SocketAddress)
    /// A Unix-domain socket (LMTP).
    case unix(String)
    /// A host name or address literal and a port, resolved by the system when connecting (a
    /// configured submission server: no MX look-up, so no `DNSResolver` needed).
    case host(String, port: Int)
}

/// TLS for STARTTLS or implicit TLS: the context, and the name sent in SNI and checked against the
/// certificate (nil for an address literal: SNI carries names only). The context decides whether
/// the certificate is verified, and against which roots.
// @unchecked Sendable: value type holding a String and an NIOSSLContext, which is immutable and thread-safe once built
public struct SMTPClientTLS: @unchecked Sendable {
    public var context: NIOSSLContext
    public var serverName: String?

    public init(context: NIOSSLContext, serverName: String?) {
        self.context = context
        self.serverName = serverName
    }
}

/// The message a connection sends after DATA, as it is (dot-stuffing and CRLF line ends are
/// the connection's job).
public enum SMTPClientMessage: Sendable {
    /// A file, read a block at a time (a queued message may be large).
    case file(String)
    /// Bytes in memory (a message composed in the webmail).
    case bytes([UInt8])

    /// The whole message, for the 8BITMIME downgrade; nil when the file cannot be read.
    func contents() -> [UInt8]? {
        switch self {
        case .file(let path): return FileManager.default.contents(atPath: path).map { Array($0) }
        case .bytes(let bytes): return bytes
        }
    }

    var name: String {
        switch self {
        case .file(let path): return path
        case .bytes: return "(message in memory)"
        }
    }
}

/// A signed message's way back to its unsigned form and its signer: the downgrade converts the
/// unsigned message and signs the result, so the signature covers what is sent.
public struct SMTPClientSigning: Sendable {
    public let unsigned: SMTPClientMessage
    /// The message with its signature fields on top.
    public let sign: @Sendable ([UInt8]) async -> [UInt8]

    public init(unsigned: SMTPClientMessage, sign: @escaping @Sendable ([UInt8]) async -> [UInt8]) {
        self.unsigned = unsigned
        self.sign = sign
    }
}

/// Runs one `SMTPClientSession` over one new connection: connects, reads replies through
/// `SMTPReplyParser`, performs the session's actions (STARTTLS, message content through
/// `DotStuffingWriter`), and enforces the stage timeouts by closing the connection when one runs
/// out. Always returns a result; errors become outcomes or "try the next host".
///
/// In PluginAPI with the session because every plugin that sends mail needs the same driver
/// (the smtp-client's transports, the webmail's submission through `SMTPSubmission`).
public struct SMTPClientConnection: Sendable {
    public let group: any EventLoopGroup
    public let timeouts: SMTPClientTimeouts
    /// The TLS context for STARTTLS or implicit TLS (`SMTPClientSessionSettings.implicitTLS`);
    /// nil: a STARTTLS fails as a failed handshake, and implicit TLS cannot connect.
    public let tls: SMTPClientTLS?
    public let message: SMTPClientMessage
    /// When `message` is signed: how to sign again after the 8BITMIME downgrade, which changes
    /// the body a signature covers.
    public let signing: SMTPClientSigning?
    public let logger: Logger

    /// Message content is written and timed (`SMTPClientTimeouts.dataBlock`) a block at a time.
    public static let blockSize = 64 * 1024

    public init(group: any EventLoopGroup, timeouts: SMTPClientTimeouts, tls: SMTPClientTLS?, message: SMTPClientMessage,
                signing: SMTPClientSigning? = nil, logger: Logger) {
        self.group = group
        self.timeouts = timeouts
        self.tls = tls
        self.message = message
        self.signing = signing
        self.logger = logger
    }

    /// The session's result, and whether it ended under TLS.
    public func run(_ start: SMTPClientSession, to target: SMTPConnectTarget) async -> (SMTPClientSessionResult, secure: Bool) {
        let (result, session) = await runSession(start, to: target)
        return (result, session.isSecure)
    }

    /// The session's result and the session as it ended (`isSecure`, `failure`, `extensions`).
    public func runSession(_ start: SMTPClientSession, to target: SMTPConnectTarget) async -> (result: SMTPClientSessionResult, session: SMTPClientSession) {
        var session = start
        let peer = session.settings.peer
        let implicitTLS = session.settings.implicitTLS
        if implicitTLS && tls == nil {
            let result = Self.finishResult(session.tlsFailed("no TLS context")) ?? .tryNextHost(MailReply(421, "4.7.5", "no TLS context"))
            return (result, session)
        }
        let loop = group.next()
        // Implicit TLS: the handshake is awaited before the greeting is read, so a failed one is
        // reported as TLS trouble rather than as a lost connection.
        let handshake: EventLoopPromise<Void>? = implicitTLS ? loop.makePromise(of: Void.self) : nil
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            let bootstrap = ClientBootstrap(group: loop)
                .connectTimeout(.nanoseconds(Int64(timeouts.connect * 1e9)))
                .channelOption(ChannelOptions.socketOption(.so_keepalive), value: 1)
            let tls = self.tls
            let wrap: @Sendable (any Channel) -> EventLoopFuture<NIOAsyncChannel<ByteBuffer, ByteBuffer>> = { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let handshake, let tls {
                        let handler = try NIOSSLClientHandler(context: tls.context, serverHostname: tls.serverName)
                        try channel.pipeline.syncOperations.addHandler(handler)
                        try channel.pipeline.syncOperations.addHandler(HandshakeWatcher(handshake))
                    }
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
            switch target {
            case .inet(let address): channel = try await bootstrap.connect(to: address, channelInitializer: wrap)
            case .unix(let path): channel = try await bootstrap.connect(unixDomainSocketPath: path, channelInitializer: wrap)
            case .host(let host, let port): channel = try await bootstrap.connect(host: host, port: port, channelInitializer: wrap)
            }
        } catch {
            handshake?.fail(error)
            return (.tryNextHost(MailReply(421, "4.4.1", "connect to \(peer): \(Self.describe(error))")), session)
        }
        let watchdog = SMTPClientWatchdog(channel: channel.channel)
        defer { watchdog.cancel() }
        if let handshake {
            watchdog.arm(timeouts.command)
            do {
                try await handshake.futureResult.get()
            } catch {
                let why = watchdog.expired ? "timed out" : Self.describe(error)
                try? await channel.executeThenClose { _, _ in }
                let result = Self.finishResult(session.tlsFailed(why))
                    ?? .tryNextHost(MailReply(421, "4.7.5", "TLS handshake with \(peer) failed: \(why)"))
                return (result, session)
            }
        }
        do {
            return try await channel.executeThenClose { inbound, outbound in
                var replies = inbound.makeAsyncIterator()
                var parser = SMTPReplyParser()
                var downgradedMessage: [UInt8]?
                var pending: [SMTPClientAction] = []
                while true {
                    guard !pending.isEmpty else {
                        watchdog.arm(timeouts.seconds(for: session.stage))
                        do {
                            if let reply = try await Self.nextReply(&parser, &replies) {
                                logger.trace("S: \(reply)", metadata: ["peer": "\(peer)"])
                                pending = session.received(reply)
                            } else {
                                pending = session.connectionLost(watchdog.expired ? "conversation timed out" : "lost connection")
                            }
                        } catch let error as SMTPReplyError {
                            pending = session.connectionLost("protocol error (\(error))")
                        } catch {
                            pending = session.connectionLost(watchdog.expired ? "conversation timed out" : "lost connection (\(Self.describe(error)))")
                        }
                        continue
                    }
                    var action = pending.removeFirst()
                    var logged: String?
                    if case .sendSecret(let line) = action {
                        // Written as any command; the log shows only that credentials went.
                        action = .send([line])
                        logged = "(SASL credentials)"
                    }
                    switch action {
                    case .send(let lines):
                        logger.trace("C: \(logged ?? lines.joined(separator: "\\n"))", metadata: ["peer": "\(peer)"])
                        watchdog.arm(timeouts.command)
                        do {
                            try await outbound.write(ByteBuffer(string: lines.map { $0 + "\r\n" }.joined()))
                        } catch {
                            // A failed QUIT changes nothing: the session has its result already.
                            if !session.isFinished {
                                pending = session.connectionLost(watchdog.expired ? "conversation timed out" : "lost connection (\(Self.describe(error)))")
                            }
                        }

                    case .startTLS:
                        pending = await startTLS(on: channel.channel, parser: parser, session: &session, watchdog: watchdog)

                    case .sendSecret:
                        break   // made a `.send` above
                    case .prepareDowngrade:
                        watchdog.cancel()
                        let source = signing?.unsigned ?? message
                        guard let original = source.contents() else {
                            pending = session.connectionLost("cannot read the queued message \(source.name)")
                            continue
                        }
                        switch EightBitDowngrade.convert(original) {
                        case .success(var converted):
                            if let signing { converted = await signing.sign(converted) }
                            downgradedMessage = converted
                            pending = session.downgradePrepared(.success(converted.count))
                        case .failure(let why):
                            pending = session.downgradePrepared(.failure(why))
                        }

                    case .sendMessage(let downgraded):
                        do {
                            try await sendMessage(downgraded ? downgradedMessage : nil, to: outbound, watchdog: watchdog)
                            pending = session.messageSent()
                        } catch {
                            pending = session.connectionLost(watchdog.expired ? "conversation timed out" : "lost connection (\(Self.describe(error)))")
                        }

                    case .finish(let result):
                        return (result, session)
                    }
                }
            }
        } catch {
            return (.tryNextHost(MailReply(421, "4.4.2", "lost connection with \(peer): \(Self.describe(error))")), session)
        }
    }

    private static func finishResult(_ actions: [SMTPClientAction]) -> SMTPClientSessionResult? {
        for action in actions { if case .finish(let result) = action { return result } }
        return nil
    }

    /// Reads until the parser has a reply; nil when the connection ended first.
    private static func nextReply(_ parser: inout SMTPReplyParser,
                                  _ stream: inout NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator) async throws -> SMTPReply? {
        while true {
            if let reply = try parser.next() { return reply }
            guard let buffer = try await stream.next() else { return nil }
            parser.feed(buffer.readableBytesView)
        }
    }

    /// Puts TLS in front of the pipeline after `220` to STARTTLS and waits for the handshake.
    private func startTLS(on channel: any Channel, parser: SMTPReplyParser, session: inout SMTPClientSession,
                          watchdog: SMTPClientWatchdog) async -> [SMTPClientAction] {
        // Bytes after the 220 came before the handshake, unprotected: a man in the middle may
        // have put them there to be taken as replies inside TLS (CVE-2011-0411).
        if parser.hasBufferedInput { return session.connectionLost("protocol error (data after the 220 reply to STARTTLS)") }
        guard let tls else { return session.tlsFailed("no TLS context") }
        watchdog.arm(timeouts.command)
        let handshake = channel.eventLoop.makePromise(of: Void.self)
        do {
            try await channel.eventLoop.submit {
                let handler = try NIOSSLClientHandler(context: tls.context, serverHostname: tls.serverName)
                try channel.pipeline.syncOperations.addHandler(handler, position: .first)
                try channel.pipeline.syncOperations.addHandler(HandshakeWatcher(handshake), position: .after(handler))
            }.get()
            try await handshake.futureResult.get()
        } catch {
            handshake.fail(error)
            return session.tlsFailed(watchdog.expired ? "timed out" : Self.describe(error))
        }
        return session.tlsEstablished()
    }

    /// Writes the message dot-stuffed with CRLF line ends and the final dot, a block at a time,
    /// each block within the data timeout.
    private func sendMessage(_ converted: [UInt8]?, to outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, watchdog: SMTPClientWatchdog) async throws {
        var writer = DotStuffingWriter()
        var inMemory = converted
        if inMemory == nil, case .bytes(let bytes) = message { inMemory = bytes }
        if let inMemory {
            var offset = 0
            while offset < inMemory.count {
                let end = min(offset + Self.blockSize, inMemory.count)
                watchdog.arm(timeouts.dataBlock)
                try await outbound.write(ByteBuffer(bytes: writer.write(inMemory[offset..<end])))
                offset = end
            }
        } else if case .file(let messagePath) = message {
            guard let file = FileHandle(forReadingAtPath: messagePath) else {
                throw SMTPClientConnectionError.unreadableMessage(messagePath)
            }
            defer { try? file.close() }
            while let block = try file.read(upToCount: Self.blockSize), !block.isEmpty {
                watchdog.arm(timeouts.dataBlock)
                try await outbound.write(ByteBuffer(bytes: writer.write(block)))
            }
        }
        watchdog.arm(timeouts.dataBlock)
        try await outbound.write(ByteBuffer(bytes: writer.finish()))
    }

    /// An error as a short text for outcome replies: the system's words for errno values.
    public static func describe(_ error: any Error) -> String {
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)) }
        if case ChannelError.connectTimeout(let amount)? = error as? ChannelError {
            return "connection timed out after \(Double(amount.nanoseconds) / 1e9)s"
        }
        if let connect = error as? NIOConnectionError, let first = connect.connectionErrors.first {
            return describe(first.error)
        }
        let text = "\(error)"
        // BoringSSL's errors carry a code, a reason and a source path: the reason is what a
        // postmaster reading a bounce or a log needs ("certificate verify failed").
        let reasons = text.components(separatedBy: "OPENSSL_internal:").dropFirst().map {
            $0.prefix { $0 != " " && $0 != "]" && $0 != ")" }.lowercased().replacingOccurrences(of: "_", with: " ")
        }
        return reasons.isEmpty ? text : reasons.joined(separator: ", ")
    }
}

public enum SMTPClientConnectionError: Error, CustomStringConvertible {
    case unreadableMessage(String)

    public var description: String {
        switch self {
        case .unreadableMessage(let path): return "cannot read the queued message \(path)"
        }
    }
}

/// Closes the connection when the current stage's time runs out; the session then sees the
/// connection end and `expired` tells why.
// @unchecked Sendable: timer and fired are only read and written under `lock`; channel is let
final class SMTPClientWatchdog: @unchecked Sendable {
    private let channel: any Channel
    private let lock = NIOLock()
    private var timer: Scheduled<Void>?
    private var fired = false

    init(channel: any Channel) {
        self.channel = channel
    }

    var expired: Bool { lock.withLock { fired } }

    func arm(_ seconds: Double) {
        let channel = self.channel
        let next = channel.eventLoop.scheduleTask(in: .nanoseconds(Int64(seconds * 1e9))) { [weak self] in
            guard let self else { return }
            self.lock.withLock { self.fired = true }
            channel.close(promise: nil)
        }
        lock.withLock {
            timer?.cancel()
            timer = next
        }
    }

    func cancel() {
        lock.withLock {
            timer?.cancel()
            timer = nil
        }
    }
}

/// Completes a promise when the TLS handshake is done, or fails it with the handshake's error or
/// the connection's end.
private final class HandshakeWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let promise: EventLoopPromise<Void>

    init(_ promise: EventLoopPromise<Void>) {
        self.promise = promise
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted? = event as? TLSUserEvent { promise.succeed(()) }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(ChannelError.eof)
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        promise.fail(ChannelError.ioOnClosedChannel)
    }
}
