import Foundation
import PluginAPI

/// One IMAP connection on a NIO channel: the channel handler turns reads, closes and writability
/// into the session's input stream, and the transport carries the session's writes, STARTTLS and
/// close back to the channel. The session itself (Session/IMAPSession.swift) runs in its own task,
/// on the channel's event loop.
// @unchecked Sendable: writable/writableWaiters under `lock`; started on the event loop; imap handed from loop to session task
final class IMAPConnection: IMAPTransport, @unchecked Sendable {
    let channel: any Channel
    let session: Session
    let handler: Handler
    /// Set right after init (the session needs this transport); released when the session ends,
    /// which breaks the session ↔ connection cycle.
    private var imap: IMAPSession?
    private let inputs: AsyncStream<IMAPSessionInput>
    private let continuation: AsyncStream<IMAPSessionInput>.Continuation

    private let lock = NSLock()
    private var writable = true
    private var writableWaiters: [CheckedContinuation<Void, Never>] = []

    init(channel: any Channel, session: Session, settings: IMAPSessionSettings, services: IMAPSessionServices, maxBufferedInput: Int) {
        self.channel = channel
        self.session = session
        (inputs, continuation) = AsyncStream.makeStream(of: IMAPSessionInput.self)
        handler = Handler(input: continuation, maxBufferedInput: maxBufferedInput,
                          tickInterval: max(0.2, min(5, settings.loginTimeout / 4, settings.idleTimeout / 4)))
        handler.connection = self
        imap = IMAPSession(settings: settings, transport: self, services: services, logger: session.logger, input: continuation)
        let continuation = self.continuation
        session.onDrain { continuation.yield(.drain) }
    }

    /// Starts the session's task (from `channelActive`, so the greeting is written to an active
    /// channel; with implicit TLS NIOSSL holds it until the handshake is done).
    private var started = false

    func start() {
        started = true
        guard let imap else { return }
        let inputs = self.inputs
        // On the channel's event loop: input yielded by the handler and replies written by the
        // session need no hop to the cooperative pool and back (EventLoopTaskExecutor).
        Task(executorPreference: EventLoopTaskExecutor(channel.eventLoop)) {
            await imap.run(inputs)
            self.imap = nil
        }
    }

    /// A channel that closed before it was ever active: the session never ran, so its
    /// reference is dropped here instead.
    fileprivate func channelEnded() {
        if !started { imap = nil }
    }

    // MARK: IMAPTransport

    func send(_ bytes: [UInt8]) {
        channel.writeAndFlush(ByteBuffer(bytes: bytes), promise: nil)
    }

    func waitUntilWritable() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let ready = lock.withLock { () -> Bool in
                if writable || !channel.isActive { return true }
                writableWaiters.append(waiter)
                return false
            }
            if ready { waiter.resume() }
        }
    }

    /// From the event loop.
    fileprivate func writabilityChanged(_ isWritable: Bool) {
        let waiters = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
            writable = isWritable
            guard isWritable else { return [] }
            defer { writableWaiters = [] }
            return writableWaiters
        }
        waiters.forEach { $0.resume() }
    }

    func startTLS(after reply: [UInt8]) async -> Bool {
        let channel = self.channel, session = self.session, continuation = self.continuation
        let promise = channel.eventLoop.makePromise(of: Void.self)
        // One event-loop turn: the reply goes out in plaintext, TLS goes in front of the
        // pipeline, and the marker enters the input, with no read in between. Bytes read before
        // the marker were sent before the handshake and are dropped by the session.
        channel.eventLoop.execute {
            channel.writeAndFlush(ByteBuffer(bytes: reply), promise: nil)
            session.startTLS(on: channel).whenComplete { result in
                if case .success = result { continuation.yield(.tlsStarted) }
                promise.completeWith(result)
            }
        }
        do {
            try await promise.futureResult.get()
            return true
        } catch {
            return false
        }
    }

    func startCompression(after reply: [UInt8]) async -> Bool {
        let channel = self.channel, handler = self.handler, continuation = self.continuation
        let limit = max(16 * 1024 * 1024, handler.maxBufferedInput * 16)
        let promise = channel.eventLoop.makePromise(of: Void.self)
        // As for STARTTLS: the OK uncompressed, then DEFLATE between TLS and this handler, and the
        // marker, all in one event-loop turn.
        channel.eventLoop.execute {
            channel.writeAndFlush(ByteBuffer(bytes: reply), promise: nil)
            do {
                try channel.pipeline.syncOperations.addHandler(DeflateHandler(maxInflatedPerRead: limit), position: .before(handler))
                continuation.yield(.compressionStarted)
                promise.succeed()
            } catch {
                promise.fail(error)
            }
        }
        do {
            try await promise.futureResult.get()
            return true
        } catch {
            return false
        }
    }

    func close() {
        let channel = self.channel
        // After everything queued before it has been written.
        channel.writeAndFlush(ByteBuffer(), promise: nil)
        channel.eventLoop.execute { channel.close(promise: nil) }
        writabilityChanged(true)
    }

    func consumed(_ count: Int) { handler.consumed(count) }
    func acknowledgeReceipt() { channel.acknowledgeReceivedBytes() }

    var isSecure: Bool { session.isSecure }
    var canStartTLS: Bool { session.canStartTLS }
    var canCompress: Bool { true }
    var isLoopback: Bool { session.isLoopback }
    var peerAddress: String { session.peer?.ipAddress ?? "unknown" }
    func clientCertificate() async -> [UInt8]? { try? await channel.verifiedClientCertificate().get() }
    var channelBindings: [String: [UInt8]] { session.channelBindings }

    // MARK: - The channel handler

    /// Reads into the session's input, with back-pressure: once more than `maxBufferedInput`
    /// bytes wait for the session (a client pipelining while a long command runs), the channel
    /// is not read again until the session has taken half of them.
    // @unchecked Sendable: buffered under `lock`; paused, readWanted, ticker, connection on the event loop; context set once
    final class Handler: ChannelDuplexHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        let input: AsyncStream<IMAPSessionInput>.Continuation
        let maxBufferedInput: Int
        let tickInterval: Double
        /// Held while the channel lives.
        var connection: IMAPConnection?

        private let lock = NSLock()
        private var buffered = 0
        // Event loop only.
        private var paused = false
        private var readWanted = false
        private var context: ChannelHandlerContext?
        private var ticker: RepeatedTask?

        init(input: AsyncStream<IMAPSessionInput>.Continuation, maxBufferedInput: Int, tickInterval: Double) {
            self.input = input
            self.maxBufferedInput = maxBufferedInput
            self.tickInterval = tickInterval
        }

        func handlerAdded(context: ChannelHandlerContext) { self.context = context }

        func channelActive(context: ChannelHandlerContext) {
            let input = self.input
            let interval = TimeAmount.milliseconds(Int64(tickInterval * 1000))
            ticker = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in input.yield(.tick) }
            connection?.start()
            context.fireChannelActive()
        }

        func channelInactive(context: ChannelHandlerContext) {
            ticker?.cancel()
            ticker = nil
            input.yield(.closed)
            input.finish()
            connection?.writabilityChanged(true)
            connection?.channelEnded()
            connection = nil
            context.fireChannelInactive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = unwrapInboundIn(data)
            guard let bytes = buffer.readBytes(length: buffer.readableBytes), !bytes.isEmpty else { return }
            let total = lock.withLock { () -> Int in
                buffered += bytes.count
                return buffered
            }
            input.yield(.bytes(bytes))
            if total > maxBufferedInput { paused = true }
        }

        func read(context: ChannelHandlerContext) {
            if paused {
                readWanted = true
            } else {
                context.read()
            }
        }

        func channelWritabilityChanged(context: ChannelHandlerContext) {
            connection?.writabilityChanged(context.channel.isWritable)
            context.fireChannelWritabilityChanged()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // TLS failures and resets: the session ends with the channel; nothing to answer.
            context.close(promise: nil)
        }

        /// The session took `count` bytes; resumes reading once it has caught up.
        func consumed(_ count: Int) {
            let total = lock.withLock { () -> Int in
                buffered -= count
                return buffered
            }
            guard total <= maxBufferedInput / 2, let loop = context?.eventLoop else { return }
            loop.execute { [self] in
                guard paused, let context else { return }
                paused = false
                if readWanted {
                    readWanted = false
                    context.read()
                }
            }
        }
    }
}
