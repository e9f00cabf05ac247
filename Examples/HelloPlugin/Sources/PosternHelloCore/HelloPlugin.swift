import PluginAPI

// A complete protocol plugin: its core (this file: the manifest with its config schema, the
// service, and the session's handler) and its entry (Sources/PosternHello/Entry.swift: the two
// exported C symbols). Protocol: the server greets with
// `200 <greeting>`; `NAME <who>` answers `200 Hello, <who>!`; `BYE` answers `221 bye` and closes.

// 1. The registration: the manifest (name, kinds, config schema, protocol services) and how to
// activate the plugin in a worker. The entry point (Sources/PosternHello/Entry.swift) hands it to
// the host; it lives here, in the core, where tests can reach it.
package enum HelloRegistration {
    package static var registration: PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: "hello", version: "0.1.0", summary: "example third-party protocol plugin",
                kinds: [.protocolService],
                config: ConfigSchema([
                    ConfigField("greeting", .string, default: .string("hello from a third-party plugin")),
                ]),
                protocols: ["hello": ConfigSchema([
                    ConfigField("max_line", .integer(16...4096), default: .integer(256)),
                ])]),
            activate: { context in
                context.logger.info("hello plugin activated")
                return HelloPlugin(greeting: context.config.string("greeting")!, greeted: context.counter("hello_names_total"))
            })
    }
}

// 2. (The two exported C symbols are in Sources/PosternHello/Entry.swift.)

// 3. The plugin and its protocol service.
final class HelloPlugin: Plugin, ProtocolService, @unchecked Sendable {
    let greeting: String
    let greeted: Counter

    init(greeting: String, greeted: Counter) {
        self.greeting = greeting
        self.greeted = greeted
    }

    var services: [ProvidedService] { [.protocolService(name: "hello", self)] }

    func startSession(on channel: any Channel, session: Session) -> EventLoopFuture<Void> {
        let maxLine = session.listener.options.int("max_line")!
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineFrameDecoder(maxLength: maxLine)))
            try channel.pipeline.syncOperations.addHandler(HelloHandler(plugin: self, session: session))
        }
    }
}

// 4. One session: a handler over the shared line codec.
final class HelloHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = LineSplitter.Event
    typealias OutboundOut = ByteBuffer
    let plugin: HelloPlugin
    let session: Session

    init(plugin: HelloPlugin, session: Session) {
        self.plugin = plugin
        self.session = session
    }

    // The host calls startSession before the connection is active, so channelActive comes after
    // this handler is in place.
    func channelActive(context: ChannelHandlerContext) {
        send(context, "200 \(plugin.greeting)")
        context.fireChannelActive()
    }

    private func send(_ context: ChannelHandlerContext, _ line: String) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: line + "\r\n")), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .line(let bytes) = unwrapInboundIn(data) else {
            send(context, "500 line too long")
            return
        }
        let line = String(decoding: bytes, as: UTF8.self)
        if line.uppercased().hasPrefix("NAME ") {
            plugin.greeted.increment()
            session.logger.info("greeted someone")
            send(context, "200 Hello, \(line.dropFirst(5))!")
        } else if line.uppercased() == "BYE" {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "221 bye\r\n"))).whenComplete { _ in context.close(promise: nil) }
        } else {
            send(context, "500 try NAME <who> or BYE")
        }
    }
}
