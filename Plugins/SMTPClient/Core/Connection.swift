import Foundation
import PluginAPI

/// Where a connection goes.
enum ConnectTarget: Sendable {
    case inet(SocketAddress)
    case unix(String)
}

/// TLS for STARTTLS: the context, and the name sent in SNI and checked against the certificate
/// (nil for an address literal: SNI carries names only).
// @unchecked Sendable: value type holding a String and an NIOSSLContext, which is immutable and thread-safe once built
struct ClientTLS: @unchecked Sendable {
    var context: NIOSSLContext
    var serverName: String?
}

/// Runs one `ClientSession` over one new connection: connects, reads replies through
/// `SMTPReplyParser`, performs the session's actions (STARTTLS, message content through
/// `DotStuffingWriter`), and enforces the stage timeouts by closing the connection when one runs
/// out. Always returns a result; errors become outcomes or "try the next host".
struct ClientConnection: Sendable {
    let group: any EventLoopGroup
    let timeouts: ClientTimeouts
    let tls: ClientTLS?
    let messagePath: String
    let logger: Logger

    static let blockSize = 64 * 1024

    /// The session's result, and whether it ended under TLS.
    func run(_ start: ClientSession, to target: ConnectTarget) async -> (ClientSessionResult, secure: Bool) {
        var session = start
        let peer = session.settings.peer
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            let bootstrap = ClientBootstrap(group: group.next())
                .connectTimeout(.nanoseconds(Int64(timeouts.connect * 1e9)))
                .channelOption(ChannelOptions.socketOption(.so_keepalive), value: 1)
            let wrap: @Sendable (any Channel) -> EventLoopFuture<NIOAsyncChannel<ByteBuffer, ByteBuffer>> = { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
            switch target {
            case .inet(let address): channel = try await bootstrap.connect(to: address, channelInitializer: wrap)
            case .unix(let path): channel = try await bootstrap.connect(unixDomainSocketPath: path, channelInitializer: wrap)
            }
        } catch {
            return (.tryNextHost(MailReply(421, "4.4.1", "connect to \(peer): \(Self.describe(error))")), false)
        }
        let watchdog = Watchdog(channel: channel.channel)
        defer { watchdog.cancel() }
        do {
            return try await channel.executeThenClose { inbound, outbound in
                var replies = inbound.makeAsyncIterator()
                var parser = SMTPReplyParser()
                var downgradedMessage: [UInt8]?
                var pending: [ClientAction] = []
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
                        guard let original = FileManager.default.contents(atPath: messagePath) else {
                            pending = session.connectionLost("cannot read the queued message \(messagePath)")
                            continue
                        }
                        switch EightBitDowngrade.convert(Array(original)) {
                        case .success(let converted):
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
                        return (result, session.isSecure)
                    }
                }
            }
        } catch {
            return (.tryNextHost(MailReply(421, "4.4.2", "lost connection with \(peer): \(Self.describe(error))")), false)
        }
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
    private func startTLS(on channel: any Channel, parser: SMTPReplyParser, session: inout ClientSession,
                          watchdog: Watchdog) async -> [ClientAction] {
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
    private func sendMessage(_ converted: [UInt8]?, to outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, watchdog: Watchdog) async throws {
        var writer = DotStuffingWriter()
        if let converted {
            var offset = 0
            while offset < converted.count {
                let end = min(offset + Self.blockSize, converted.count)
                watchdog.arm(timeouts.dataBlock)
                try await outbound.write(ByteBuffer(bytes: writer.write(converted[offset..<end])))
                offset = end
            }
        } else {
            guard let file = FileHandle(forReadingAtPath: messagePath) else {
                throw ClientConnectionError.unreadableMessage(messagePath)
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
    static func describe(_ error: any Error) -> String {
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

enum ClientConnectionError: Error, CustomStringConvertible {
    case unreadableMessage(String)

    var description: String {
        switch self {
        case .unreadableMessage(let path): return "cannot read the queued message \(path)"
        }
    }
}

/// Closes the connection when the current stage's time runs out; the session then sees the
/// connection end and `expired` tells why.
// @unchecked Sendable: timer and fired are only read and written under `lock`; channel is let
final class Watchdog: @unchecked Sendable {
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
