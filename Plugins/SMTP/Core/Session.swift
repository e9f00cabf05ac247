import PluginAPI

/// Drives one `SMTPServerState` from a NIO channel. Bytes are handed to the state machine one
/// batch at a time; while it works (asking the router, the credential backends, the queue), what
/// the client pipelines waits here, so replies go out in command order (RFC 2920). Reading stops
/// when too much is waiting.
// @unchecked Sendable: ChannelHandler confined to its channel's event loop; state-machine tasks hop back via NIOLoopBound
final class SMTPSessionHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let session: Session
    private let state: SMTPServerState
    /// Idle time before 421; nil: none (LMTP sessions have never timed out).
    private let timeout: TimeAmount?

    private var pending: [UInt8] = []
    /// A call into the state machine is under way.
    private var busy = false
    private var closed = false
    private var inactive = false
    private var drainRequested = false
    private var readingPaused = false
    private var idleTimer: Scheduled<Void>?
    private var executor: EventLoopTaskExecutor?

    /// Past this much unprocessed input, reading stops until the state machine catches up.
    private static let pauseThreshold = 1 << 20

    init(session: Session, state: SMTPServerState, timeout: Double?) {
        self.session = session
        self.state = state
        self.timeout = timeout.map { .milliseconds(Int64($0 * 1000)) }
    }

    func channelActive(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        session.onDrain {
            loopBound.eventLoop.execute {
                let (me, ctx) = loopBound.value
                me.drainRequested = true
                me.closeIfDrainingAndIdle(ctx)
            }
        }
        resetTimer(context)
        let state = self.state
        run(context) { await state.start() }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        inactive = true
        closed = true
        idleTimer?.cancel()
        if !busy {
            let state = self.state
            Task { await state.connectionClosed() }
        }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closed else { return }
        var buffer = unwrapInboundIn(data)
        pending += buffer.readBytes(length: buffer.readableBytes) ?? []
        resetTimer(context)
        if pending.count > Self.pauseThreshold && !readingPaused {
            readingPaused = true
            context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
        }
        pump(context)
    }

    /// Hands what is waiting to the state machine, unless it is still busy.
    private func pump(_ context: ChannelHandlerContext) {
        guard !busy, !closed, !pending.isEmpty else { return }
        let bytes = pending
        pending = []
        if readingPaused {
            readingPaused = false
            context.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
        }
        let state = self.state
        run(context) { await state.receive(bytes) }
    }

    /// Runs one state-machine call as a task on the channel's event loop (see
    /// `EventLoopTaskExecutor`) and applies its outputs there.
    private func run(_ context: ChannelHandlerContext, _ work: @escaping @Sendable () async -> [SMTPOutput]) {
        busy = true
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        if executor == nil { executor = EventLoopTaskExecutor(context.eventLoop) }
        Task(executorPreference: executor) {
            let outputs = await work()
            let eventLoop = loopBound.eventLoop
            eventLoop.executeOnLoop {
                let (me, ctx) = loopBound.value
                me.busy = false
                if me.inactive {
                    let state = me.state
                    Task { await state.connectionClosed() }
                    return
                }
                me.apply(outputs, ctx)
                me.closeIfDrainingAndIdle(ctx)
                me.pump(ctx)
            }
        }
    }

    private func apply(_ outputs: [SMTPOutput], _ context: ChannelHandlerContext) {
        for output in outputs {
            switch output {
            case .reply(let reply):
                context.write(wrapOutboundOut(ByteBuffer(string: reply.encoded())), promise: nil)
            case .startTLS:
                context.flush()
                // The 220 is on its way below the pipeline; from here on every byte read goes
                // through TLS, and plaintext that arrived after STARTTLS is dropped.
                pending.removeAll()
                let state = self.state
                let channel = context.channel
                session.startTLS(on: channel).whenComplete { result in
                    switch result {
                    case .success: state.tlsStarted()
                    case .failure(let error):
                        self.session.logger.warning("cannot start TLS: \(error)")
                        channel.close(promise: nil)
                    }
                }
            case .close:
                closed = true
                idleTimer?.cancel()
                context.writeAndFlush(wrapOutboundOut(ByteBuffer())).whenComplete { _ in
                    context.close(promise: nil)
                }
                return
            }
        }
        context.flush()
    }

    private func closeIfDrainingAndIdle(_ context: ChannelHandlerContext) {
        guard drainRequested, !busy, !closed else { return }
        state.draining = true
        if state.isIdle && pending.isEmpty { apply(state.drainNow(), context) }
    }

    private func resetTimer(_ context: ChannelHandlerContext) {
        idleTimer?.cancel()
        guard !closed, let timeout else { return }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        idleTimer = context.eventLoop.scheduleTask(in: timeout) {
            let (me, ctx) = loopBound.value
            guard !me.closed else { return }
            // Waiting on our own services is not the client's idleness.
            if me.busy { return me.resetTimer(ctx) }
            me.apply(me.state.timedOut(), ctx)
        }
    }
}

/// Answers a connection the service cannot serve (no queue, bad options) with one reply and closes.
final class SMTPRefusalHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let reply: MailReply

    init(reply: MailReply) { self.reply = reply }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: reply.encoded()))).whenComplete { _ in
            context.close(promise: nil)
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}
