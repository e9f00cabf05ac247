import PluginAPI
#if canImport(Glibc)
import Glibc
#endif

// Claims an API level this host does not have: the loader must refuse it before calling its entry.

@_cdecl("postern_plugin_abi")
public func posternPluginABI() -> UnsafePointer<CChar> {
    UnsafePointer(strdup("postern-plugin-api/\(PluginABI.apiLevelCompiledIn + 998) swift/\(PluginABI.compilerCompiledIn)")!)
}

@_cdecl("postern_plugin_entry")
public func posternPluginEntry() -> UnsafeMutableRawPointer {
    fatalError("the loader must not call the entry point of a plugin with another ABI level")
}
