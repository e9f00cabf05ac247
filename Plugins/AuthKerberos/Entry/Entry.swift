import PluginAPI
import PosternAuthKerberosCore

// libPosternAuthKerberos.so: the two C symbols the host looks up (PLUGINS.md). Loaded by
// `postern authproxyd` only; everything else is in Core/ (PosternAuthKerberosCore).

/// The ABI tag this plugin was compiled against; the loader refuses a mismatch before calling anything else.
@_cdecl("postern_plugin_abi")
public func posternPluginABI() -> UnsafePointer<CChar> { PluginABI.exportedTag() }

/// Describes the plugin to the loader; cheap, activation happens in authproxyd.
@_cdecl("postern_plugin_entry")
public func posternPluginEntry() -> UnsafeMutableRawPointer {
    PluginExport.entry { AuthKerberosRegistration.registration }
}
