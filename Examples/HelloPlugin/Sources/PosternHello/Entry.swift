import PluginAPI
import PosternHelloCore

// libPosternHello.so: the two C symbols the host looks up, and nothing else.

/// The ABI tag: lets the host refuse a plugin built against another PluginAPI or compiler.
@_cdecl("postern_plugin_abi")
public func posternPluginABI() -> UnsafePointer<CChar> { PluginABI.exportedTag() }

/// The entry point: hands the host the registration from the core.
@_cdecl("postern_plugin_entry")
public func posternPluginEntry() -> UnsafeMutableRawPointer {
    PluginExport.entry { HelloRegistration.registration }
}
