import Foundation
import PluginAPI

// LMTP (RFC 2033): local delivery into the store, with one reply per recipient after DATA. Serves
// TCP and Unix-socket listeners; meant for the MTA on the same host or network, so it has no AUTH.

/// What `postern_plugin_entry` (Entry/Entry.swift) hands the host: the manifest and how to
/// activate the plugin. Here rather than in the entry so that tests can read it.
package enum LMTPRegistration {
    package static var registration: PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: "lmtp", version: "1.0.0", summary: "LMTP delivery into the store (RFC 2033)",
                kinds: [.protocolService],
                uses: [.storage],
                roles: ["all-in-one", "store"],
                config: ConfigSchema([
                    ConfigField("hostname", .string, default: .string(""), help: "name in the greeting; default: the host name"),
                ]),
                protocols: ["lmtp": LMTPOptions.schema]),
            activate: { context in try LMTPPlugin(context: context) })
    }
}

/// A listener's `[listener.options]`.
struct LMTPOptions {
    static let schema = ConfigSchema([
        ConfigField("max_message_size", .size, default: .string("50M")),
        ConfigField("max_recipients", .integer(1...100_000), default: .integer(1000)),
        ConfigField("max_line_length", .integer(512...65536), default: .integer(2048)),
        ConfigField("store", .string, default: .string(""), help: "the storage plugin to deliver to; default: the first loaded"),
    ])

    var maxMessageSize: Int
    var maxRecipients: Int
    var maxLineLength: Int
    var store: String?

    init(_ section: ConfigSection) {
        maxMessageSize = section.size("max_message_size")!
        maxRecipients = section.int("max_recipients")!
        maxLineLength = section.int("max_line_length")!
        store = section.string("store").flatMap { $0.isEmpty ? nil : $0 }
    }
}

// @unchecked Sendable: all stored properties are let (hostname, spool, two Counters)
final class LMTPPlugin: Plugin, ProtocolService, @unchecked Sendable {
    let hostname: String
    let spool: String
    let deliveries: Counter
    let refusedRecipients: Counter

    init(context: PluginContext) throws {
        let configured = context.config.string("hostname")!
        hostname = configured.isEmpty ? (ProcessInfo.processInfo.hostName) : configured
        spool = context.dataDirectory + "/spool/lmtp"
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        deliveries = context.counter("postern_lmtp_recipients_total", dimensions: [("result", "delivered")])
        refusedRecipients = context.counter("postern_lmtp_recipients_total", dimensions: [("result", "refused")])
    }

    var services: [ProvidedService] { [.protocolService(name: "lmtp", self)] }

    func startSession(on channel: any Channel, session: Session) -> EventLoopFuture<Void> {
        let options = LMTPOptions(session.listener.options)
        guard let store = session.services.store(named: options.store) else {
            session.logger.error("no storage plugin loaded: LMTP cannot deliver")
            // Written once the channel is active: a write before that never reaches the client.
            return channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(RefuseService(reply: "421 4.3.0 no message store configured\r\n"))
            }
        }
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(LMTPSession(plugin: self, session: session, store: store, options: options))
        }
    }
}

/// Answers one line and closes: the greeting of a listener that cannot serve.
final class RefuseService: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let reply: String
    init(reply: String) { self.reply = reply }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: reply))).whenComplete { _ in context.close(promise: nil) }
    }
}
