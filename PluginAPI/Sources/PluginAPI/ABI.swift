#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The plugin ABI tag: the PluginAPI level a binary was compiled against plus the Swift compiler
/// that compiled it. A plugin exports it as the C symbol `postern_plugin_abi`; the host compares it
/// with the tag compiled into libPluginAPI.so before calling anything else in the plugin.
public enum PluginABI {
    /// Raised whenever a public declaration of PluginAPI changes in a way that breaks binaries
    /// built against the previous level. Inlined into each client, so a plugin reports the level
    /// it was *compiled* against, not the level of the library it happens to be loaded with.
    @_alwaysEmitIntoClient
    public static var apiLevelCompiledIn: Int { 9 }

    /// The compiler version that compiled the calling binary (evaluated in the client).
    @_alwaysEmitIntoClient
    public static var compilerCompiledIn: String {
        #if compiler(>=7.0)
        return "7.x"
        #elseif compiler(>=6.5)
        return "6.5"
        #elseif compiler(>=6.4)
        return "6.4"
        #elseif compiler(>=6.3.3)
        return "6.3.3"
        #elseif compiler(>=6.3.2)
        return "6.3.2"
        #elseif compiler(>=6.3.1)
        return "6.3.1"
        #elseif compiler(>=6.3)
        return "6.3.0"
        #elseif compiler(>=6.2)
        return "6.2"
        #else
        return "older"
        #endif
    }

    /// The tag of the calling binary, e.g. `postern-plugin-api/3 swift/6.3.1`.
    @_alwaysEmitIntoClient
    public static var tagCompiledIn: String {
        "postern-plugin-api/\(apiLevelCompiledIn) swift/\(compilerCompiledIn)"
    }

    /// The tag of libPluginAPI.so itself: what every plugin loaded into this process must match.
    public static var libraryTag: String { tagCompiledIn }

    /// For `postern_plugin_abi`: the caller's tag as a C string that lives for the whole process.
    @_alwaysEmitIntoClient
    public static func exportedTag() -> UnsafePointer<CChar> {
        UnsafePointer(strdup(tagCompiledIn)!)
    }
}

/// What `postern_plugin_entry` hands the host: the registration, or the error that prevented it.
/// A class so it can cross the C boundary as one retained pointer.
// @unchecked Sendable: its only stored property is a let Result, immutable after init
public final class PluginEntryOutcome: @unchecked Sendable {
    public let result: Result<PluginRegistration, any Error>

    public init(_ result: Result<PluginRegistration, any Error>) {
        self.result = result
    }
}

/// Helpers a plugin calls from its two exported C functions:
///
/// ```swift
/// @_cdecl("postern_plugin_abi")
/// public func posternPluginABI() -> UnsafePointer<CChar> { PluginABI.exportedTag() }
///
/// @_cdecl("postern_plugin_entry")
/// public func posternPluginEntry() -> UnsafeMutableRawPointer { PluginExport.entry { try MyPlugin.registration() } }
/// ```
public enum PluginExport {
    public static func entry(_ make: () throws -> PluginRegistration) -> UnsafeMutableRawPointer {
        let outcome: PluginEntryOutcome
        do {
            outcome = PluginEntryOutcome(.success(try make()))
        } catch {
            outcome = PluginEntryOutcome(.failure(error))
        }
        return Unmanaged.passRetained(outcome).toOpaque()
    }
}
