import PluginAPI

// Its entry point throws: the loader must refuse it with the error's text.

struct NoLicence: Error, CustomStringConvertible {
    var description: String { "no licence key configured for this plugin" }
}

@_cdecl("postern_plugin_abi")
public func posternPluginABI() -> UnsafePointer<CChar> { PluginABI.exportedTag() }

@_cdecl("postern_plugin_entry")
public func posternPluginEntry() -> UnsafeMutableRawPointer {
    PluginExport.entry { throw NoLicence() }
}
