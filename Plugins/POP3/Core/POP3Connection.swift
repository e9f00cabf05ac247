import Foundation
import PluginAPI

/// Drives one `POP3ServerState` from a NIO channel. Bytes go to the state machine one batch at a
/// time; while it works (asking the credential backends or the store), what the client pipelines
/// waits here (RFC 2449 PIPELINING), so replies keep their order. A client that pipelines far more
/// than it waits for is refused rather than buffered forever.
// @unchecked Sendable: ChannelHandler confined to its channel's event loop; state-machine tasks hop back via NIOLoopBound
final class POP3Connection: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let session: Session
    private let state: POP3ServerState
    private let maxPending: Int
    private var pending: [UInt8] = []
    /// A call into the state machine is under way.
    private var busy = false
    private var startingTLS = false
    private var closed = false
    private var drainRequested = false
    private var executor: EventLoopTaskExecutor?

    init(session: Session, state: POP3ServerState, maxLineLength: Int) {
        self.session = session
        self.state = state
        maxPending = maxLineLength * 64
    }

    func channelActive(context: ChannelHandlerContext) {
        apply(state.greeting(), context)
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        session.onDrain {
            loopBound.eventLoop.execute {
                let (me, ctx) = loopBound.value
                me.drainRequested = true
                me.drainIfIdle(ctx)
            }
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        if !busy { state.connectionClosed() }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        guard !closed, !startingTLS else { return }
        pending += buffer.readBytes(length: buffer.readableBytes) ?? []
        if pending.count > maxPending && busy {
            closed = true
            state.connectionClosed()
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "-ERR too much pipelined input\r\n"))).whenComplete { _ in
                context.close(promise: nil)
            }
            return
        }
        pump(context)
    }

    /// Hands what is waiting to the state machine, unless it is still busy.
    private func pump(_ context: ChannelHandlerContext) {
        guard !busy, !closed, !startingTLS, !pending.isEmpty else { return }
        let bytes = pending
        pending = []
        busy = true
        let state = self.state
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        // On the channel's event loop: no hop to the cooperative pool and back per command.
        if executor == nil { executor = EventLoopTaskExecutor(context.eventLoop) }
        Task(executorPreference: executor) {
            let outputs = await state.receive(bytes)
            loopBound.eventLoop.executeOnLoop {
                let (me, ctx) = loopBound.value
                me.busy = false
                if me.closed {
                    me.state.connectionClosed()
                    return
                }
                me.apply(outputs, ctx)
                me.drainIfIdle(ctx)
                me.pump(ctx)
            }
        }
    }

    private func apply(_ outputs: [POP3Output], _ context: ChannelHandlerContext) {
        for output in outputs {
            switch output {
            case .send(let bytes):
                context.write(wrapOutboundOut(ByteBuffer(bytes: bytes)), promise: nil)
            case .startTLS:
                // RFC 2595 §4: plaintext the client pipelined after STLS is dropped.
                startingTLS = true
                pending.removeAll()
                let channel = context.channel
                let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                context.writeAndFlush(wrapOutboundOut(ByteBuffer())).flatMap {
                    self.session.startTLS(on: channel)
                }.whenComplete { result in
                    let (me, ctx) = loopBound.value
                    switch result {
                    case .success:
                        me.startingTLS = false
                        me.state.tlsStarted()
                        me.pump(ctx)
                    case .failure:
                        channel.close(promise: nil)
                    }
                }
                return
            case .close:
                closed = true
                context.writeAndFlush(wrapOutboundOut(ByteBuffer())).whenComplete { _ in context.close(promise: nil) }
                return
            }
        }
        context.flush()
    }

    /// A drain between commands ends the session now; one that came during a command, when that
    /// command has answered.
    private func drainIfIdle(_ context: ChannelHandlerContext) {
        guard drainRequested, !busy, !closed, !startingTLS else { return }
        apply(state.drain(), context)
    }
}
