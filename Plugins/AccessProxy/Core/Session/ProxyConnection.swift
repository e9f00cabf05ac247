import Foundation
import PluginAPI

/// Drives one front end (`ProxySession` for IMAP, `POP3ProxySession`) from the client's channel until login, then steps aside: the
/// client's channel and the back end's are joined (`SpliceHandler`) and bytes pass untouched. A
/// client that has not logged in within the login timeout is disconnected.
// @unchecked Sendable: ChannelHandler confined to its channel's event loop; session tasks hop back via NIOLoopBound
final class ProxyConnection: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let session: Session
    private let state: any ProxyFrontEnd
    private let loginTimeout: TimeAmount
    private var pending: [UInt8] = []
    private var busy = false
    private var startingTLS = false
    private var closed = false
    private var spliced = false
    private var timer: Scheduled<Void>?
    private var executor: EventLoopTaskExecutor?

    init(session: Session, state: any ProxyFrontEnd, loginTimeout: TimeAmount) {
        self.session = session
        self.state = state
        self.loginTimeout = loginTimeout
    }

    func channelActive(context: ChannelHandlerContext) {
        apply(state.greeting(), context)
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: loginTimeout) {
            let (me, ctx) = loopBound.value
            guard !me.spliced, !me.closed else { return }
            me.apply([.send(me.state.bye("Autologout; idle for too long")), .close], ctx)
        }
        // A drain before login ends the session; a spliced session belongs to its back end and
        // runs on until the client or the back end ends it.
        session.onDrain {
            loopBound.eventLoop.execute {
                let (me, ctx) = loopBound.value
                guard !me.spliced, !me.busy, !me.closed else { return }
                me.apply([.send(me.state.bye("Server shutting down; reconnect")), .close], ctx)
            }
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        timer?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        guard !closed, !startingTLS, !spliced else { return }
        pending += buffer.readBytes(length: buffer.readableBytes) ?? []
        if pending.count > 256 * 1024 {
            apply([.send(state.bye("Too much input before login")), .close], context)
            return
        }
        pump(context)
    }

    private func pump(_ context: ChannelHandlerContext) {
        guard !busy, !closed, !startingTLS, !spliced, !pending.isEmpty else { return }
        let bytes = pending
        pending = []
        busy = true
        let state = self.state
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        if executor == nil { executor = EventLoopTaskExecutor(context.eventLoop) }
        Task(executorPreference: executor) {
            let outputs = await state.receive(bytes)
            loopBound.eventLoop.executeOnLoop {
                let (me, ctx) = loopBound.value
                me.busy = false
                if me.closed {
                    for case .splice(let backend, _, _) in outputs { backend.close(promise: nil) }
                    return
                }
                me.apply(outputs, ctx)
                me.pump(ctx)
            }
        }
    }

    private func apply(_ outputs: [ProxyOutput], _ context: ChannelHandlerContext) {
        for output in outputs {
            switch output {
            case .send(let bytes):
                context.write(wrapOutboundOut(ByteBuffer(bytes: bytes)), promise: nil)
            case .startTLS:
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
            case .splice(let backend, let reply, let early):
                splice(context, backend: backend, reply: reply, early: early + pending)
                return
            }
        }
        context.flush()
    }

    /// Joins the client's channel to the back end's and leaves the pipeline.
    private func splice(_ context: ChannelHandlerContext, backend: any Channel, reply: [UInt8], early: [UInt8]) {
        spliced = true
        timer?.cancel()
        pending = []
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: reply)), promise: nil)
        let (front, back) = SpliceHandler.pair()
        let client = context.channel
        do {
            try client.pipeline.syncOperations.addHandler(front)
            try backend.pipeline.syncOperations.addHandler(back)
        } catch {
            client.close(promise: nil)
            backend.close(promise: nil)
            return
        }
        if !early.isEmpty {
            backend.writeAndFlush(ByteBuffer(bytes: early), promise: nil)
        }
        // The back end may have closed while the client was told it is logged in.
        if !backend.isActive { client.close(promise: nil) }
        backend.closeFuture.whenComplete { _ in client.close(promise: nil) }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
