import NIOCore
import PluginAPI

// Built with its own NIOCore (its target lists swift-nio directly): the loader must refuse it.

@_cdecl("postern_plugin_abi")
public func posternPluginABI() -> UnsafePointer<CChar> { PluginABI.exportedTag() }

@_cdecl("postern_plugin_entry")
public func posternPluginEntry() -> UnsafeMutableRawPointer {
    PluginExport.entry {
        PluginRegistration(
            manifest: PluginManifest(name: "private-nio", version: "1.0.0", kinds: [.protocolService],
                                     protocols: ["private-nio": ConfigSchema()]),
            activate: { _ in PrivateNIOPlugin() })
    }
}

final class PrivateNIOPlugin: Plugin, ProtocolService, @unchecked Sendable {
    var services: [ProvidedService] { [.protocolService(name: "private-nio", self)] }

    func startSession(on channel: any Channel, session: Session) -> EventLoopFuture<Void> {
        var buffer = channel.allocator.buffer(capacity: 16)
        buffer.writeString("220 private\r\n")
        return channel.writeAndFlush(buffer)
    }
}
