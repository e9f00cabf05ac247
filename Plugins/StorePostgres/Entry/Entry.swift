import PluginAPI
import PosternStorePostgresCore

// libPosternStorePostgres.so: the two C symbols the host looks up (PLUGINS.md). Everything else, the
// registration included, is in Core/ (the PosternStorePostgresCore target), where the tests reach it.

/// The ABI tag this plugin was compiled against; the loader refuses a mismatch before calling anything else.
@_cdecl("postern_plugin_abi")
public func posternPluginABI() -> UnsafePointer<CChar> { PluginABI.exportedTag() }

/// Describes the plugin to the loader; cheap, activation happens per worker.
@_cdecl("postern_plugin_entry")
public func posternPluginEntry() -> UnsafeMutableRawPointer {
    PluginExport.entry { StorePostgresPlugin.registration }
}
