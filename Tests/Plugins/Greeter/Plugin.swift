import PluginAPI

// A small line protocol used by the host's tests (reload under load, crash restart): it greets,
// then answers PING, ECHO, SLEEP, STARTTLS, TLS and QUIT. Replaced by the SMTP plugin in those tests once SMTP
// exists.

@_cdecl("postern_plugin_abi")
public func posternPluginABI() -> UnsafePointer<CChar> { PluginABI.exportedTag() }

@_cdecl("postern_plugin_entry")
public func posternPluginEntry() -> UnsafeMutableRawPointer {
    PluginExport.entry {
        PluginRegistration(
            manifest: PluginManifest(
                name: "greeter", version: "1.0.0", summary: "greeting line protocol for tests",
                kinds: [.protocolService],
                config: ConfigSchema([ConfigField("suffix", .string, default: .string(""), help: "appended to the greeting")]),
                protocols: ["greeter": ConfigSchema([
                    ConfigField("max_line", .integer(16...65536), default: .integer(512)),
                ])]),
            activate: { context in GreeterPlugin(suffix: context.config.string("suffix") ?? "") })
    }
}

final class GreeterPlugin: Plugin, ProtocolService, @unchecked Sendable {
    let greeting: String

    init(suffix: String) {
        greeting = builtGreeting + suffix
    }

    var services: [ProvidedService] { [.protocolService(name: "greeter", self)] }

    func startSession(on channel: any Channel, session: Session) -> EventLoopFuture<Void> {
        let maxLine = session.listener.options.int("max_line") ?? 512
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineFrameDecoder(maxLength: maxLine)), name: "lines")
            try channel.pipeline.syncOperations.addHandler(GreeterHandler(greeting: greeting, session: session, maxLine: maxLine))
        }
    }
}

final class GreeterHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = LineSplitter.Event
    typealias OutboundOut = ByteBuffer
    let greeting: String
    let session: Session
    let maxLine: Int
    /// Set between STARTTLS and the end of the handshake: lines the client pipelined in
    /// plaintext after STARTTLS are discarded (RFC 3207 §4.2).
    private var startingTLS = false

    init(greeting: String, session: Session, maxLine: Int) {
        self.greeting = greeting
        self.session = session
        self.maxLine = maxLine
    }

    // The host calls startSession before the connection is active, so channelActive comes after
    // this handler is in place.
    func channelActive(context: ChannelHandlerContext) {
        reply(context, "220 \(greeting)")
        context.fireChannelActive()
    }

    private func reply(_ context: ChannelHandlerContext, _ text: String) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: text + "\r\n")), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .tooLong:
            reply(context, "500 line too long")
        case .bareLineFeed:
            reply(context, "500 bare LF")
        case .line(let bytes):
            if startingTLS { return }
            let line = String(decoding: bytes, as: UTF8.self)
            let verb = line.prefix { $0 != " " }.uppercased()
            let argument = line.drop { $0 != " " }.dropFirst()
            switch verb {
            case "PING":
                reply(context, "250 PONG")
            case "ECHO":
                reply(context, "250 \(argument)")
            case "SLEEP":
                let ms = min(Int(argument) ?? 0, 60_000)
                let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                context.eventLoop.scheduleTask(in: .milliseconds(Int64(ms))) {
                    let (handler, ctx) = loopBound.value
                    handler.reply(ctx, "250 slept \(ms)")
                }
            case "TLS":
                reply(context, "250 secure=\(session.isSecure)")
            case "STARTTLS":
                guard session.canStartTLS else {
                    reply(context, "454 TLS not available")
                    return
                }
                startingTLS = true
                let channel = context.channel
                let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "220 go ahead\r\n"))).flatMap {
                    // A fresh decoder: nothing buffered in plaintext survives into the TLS session.
                    channel.pipeline.removeHandler(name: "lines")
                }.flatMap {
                    self.session.startTLS(on: channel)
                }.flatMapThrowing {
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(LineFrameDecoder(maxLength: self.maxLine)), name: "lines",
                        position: .before(loopBound.value.0))
                    loopBound.value.0.startingTLS = false
                }.whenFailure { _ in channel.close(promise: nil) }
            case "QUIT":
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "221 bye\r\n"))).whenComplete { _ in
                    context.close(promise: nil)
                }
            default:
                reply(context, "500 unknown command")
            }
        }
    }
}
