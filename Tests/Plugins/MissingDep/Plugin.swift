import PluginAPI

// Depends on a plugin that does not exist: the loader must refuse it, naming the dependency.

@_cdecl("postern_plugin_abi")
public func posternPluginABI() -> UnsafePointer<CChar> { PluginABI.exportedTag() }

@_cdecl("postern_plugin_entry")
public func posternPluginEntry() -> UnsafeMutableRawPointer {
    PluginExport.entry {
        PluginRegistration(
            manifest: PluginManifest(name: "missing-dep", version: "1.0.0", kinds: [.lookupTable], dependencies: ["ghost"]),
            activate: { _ in MissingDepPlugin() })
    }
}

final class MissingDepPlugin: Plugin, LookupTable, @unchecked Sendable {
    var services: [ProvidedService] { [.lookupTable(name: "missing-dep", self)] }
    func lookup(_ key: String) async throws -> [String]? { nil }
}
