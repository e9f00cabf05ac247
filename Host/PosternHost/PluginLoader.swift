import Foundation
import PluginAPI

/// Why a plugin was not loaded: one line naming the file, what was expected and what was found.
public struct PluginRefusal: Error, Sendable, Equatable, CustomStringConvertible, Codable {
    public var plugin: String
    public var file: String?
    public var reason: String

    public var description: String {
        "refused plugin '\(plugin)'\(file.map { " (\($0))" } ?? ""): \(reason)"
    }
}

/// A plugin mapped into this process with its registration. Never unloaded: unloading a Swift
/// image breaks later conformance look-ups, so handles are opened with RTLD_NODELETE and kept.
public struct LoadedPlugin: Sendable {
    public var file: String
    public var registration: PluginRegistration
    public var manifest: PluginManifest { registration.manifest }
}

/// Finds, maps and checks plugins.
///
/// `dlopen` with RTLD_NOW binds every symbol at load, so a plugin built against another library
/// fails here with a message rather than at its first call (libltdl binds lazily: an
/// incompatible plugin loaded, then the process died at first use). Serving processes only load
/// plugins that a throw-away probe process has loaded first (see `Probe`).
public final class PluginLoader {
    public let searchPath: [String]

    /// Symbols whose address must be the same seen from the plugin as from libPluginAPI.so. A
    /// different address means the plugin carries a private copy of that module: its types would
    /// not be the host's types and its globals (log handler, metrics factory) not the host's.
    public static let sharedModuleSentinels: [(module: String, symbol: String)] = [
        ("PluginAPI", "$s9PluginAPI0A12EntryOutcomeCMn"),
        ("NIOCore", "$s7NIOCore10ByteBufferVMn"),
        ("NIOCore", "$s7NIOCore14ChannelHandlerMp"),
        ("NIOPosix", "$s8NIOPosix27MultiThreadedEventLoopGroupCMn"),
        ("NIOSSL", "$s6NIOSSL13NIOSSLContextCMn"),
        ("Logging", "$s7Logging6LoggerVMn"),
        ("CoreMetrics", "$s11CoreMetrics0B6SystemOMn"),
        ("Crypto", "$s6Crypto6SHA256VMn"),
    ]

    /// The plugin search path: the configured directories, then the directory of the `postern`
    /// executable (where `swift build` puts the bundled plugins) and `../lib/postern` beside it.
    public init(configuredPath: [String]) {
        let exeDir = (Self.executablePath() as NSString).deletingLastPathComponent
        var path = configuredPath
        for dir in [exeDir, (exeDir as NSString).appendingPathComponent("../lib/postern")] {
            let std = (dir as NSString).standardizingPath
            if !path.contains(std) { path.append(std) }
        }
        searchPath = path
    }

    static func executablePath() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// The file for plugin `name`: `libPostern<Name>.so`, matching letters without case or `-`
    /// (`store-sqlite` is `libPosternStoreSQLite.so` or `libPosternStoreSqlite.so`).
    public func locate(_ name: String) -> String? {
        let want = Self.fold(name)
        for dir in searchPath {
            guard let entries = try? FileManager.default.contentsOfDirectory(atPath: dir) else { continue }
            for entry in entries.sorted() where entry.hasPrefix("libPostern") && entry.hasSuffix(".so") {
                let stem = entry.dropFirst("libPostern".count).dropLast(".so".count)
                if Self.fold(String(stem)) == want { return (dir as NSString).appendingPathComponent(entry) }
            }
        }
        return nil
    }

    static func fold(_ s: String) -> String { s.lowercased().filter { $0 != "-" && $0 != "_" } }

    /// Maps one file and runs every check, then calls its entry point.
    public func load(file: String, expectedName: String) -> Result<LoadedPlugin, PluginRefusal> {
        func refuse(_ reason: String) -> Result<LoadedPlugin, PluginRefusal> {
            .failure(PluginRefusal(plugin: expectedName, file: file, reason: reason))
        }
        guard let handle = dlopen(file, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE) else {
            return refuse("cannot load: \(String(cString: dlerror()))")
        }
        guard let abiSymbol = dlsym(handle, "postern_plugin_abi") else {
            return refuse("not a Postern plugin: expected the symbol postern_plugin_abi, found none")
        }
        typealias ABIFunction = @convention(c) () -> UnsafePointer<CChar>
        let tag = String(cString: unsafeBitCast(abiSymbol, to: ABIFunction.self)())
        guard tag == PluginABI.libraryTag else {
            return refuse("ABI mismatch: expected \"\(PluginABI.libraryTag)\", found \"\(tag)\"; rebuild the plugin against this PluginAPI with this compiler")
        }
        if let copy = Self.privateCopy(in: handle) {
            return refuse("carries its own copy of \(copy) (expected the one in libPluginAPI.so, found one inside the plugin); depend on the PluginAPI product only, never on NIO, swift-log or swift-metrics directly")
        }
        guard let entrySymbol = dlsym(handle, "postern_plugin_entry") else {
            return refuse("not a Postern plugin: expected the symbol postern_plugin_entry, found none")
        }
        typealias EntryFunction = @convention(c) () -> UnsafeMutableRawPointer?
        guard let raw = unsafeBitCast(entrySymbol, to: EntryFunction.self)() else {
            return refuse("entry point returned nothing")
        }
        let outcome = Unmanaged<PluginEntryOutcome>.fromOpaque(raw).takeRetainedValue()
        switch outcome.result {
        case .failure(let error):
            return refuse("entry point failed: \(error)")
        case .success(let registration):
            let m = registration.manifest
            guard m.name == expectedName else {
                return refuse("expected plugin '\(expectedName)', found plugin '\(m.name)' in this file")
            }
            guard !m.kinds.isEmpty else { return refuse("its manifest declares no plugin kind") }
            if m.kinds.contains(.protocolService) && m.protocols.isEmpty {
                return refuse("declares kind 'protocol' but no protocol service in its manifest")
            }
            return .success(LoadedPlugin(file: file, registration: registration))
        }
    }

    /// Names the first shared module the plugin has a private copy of, or nil.
    static func privateCopy(in handle: UnsafeMutableRawPointer) -> String? {
        // libPluginAPI.so is already mapped (the host links it); by its soname, dlopen returns it.
        guard let api = dlopen("libPluginAPI.so", RTLD_NOW | RTLD_NOLOAD) else { return nil }
        for sentinel in sharedModuleSentinels {
            guard let shared = dlsym(api, sentinel.symbol) else { continue }
            // Looked up from the plugin's handle, the plugin's own definition comes first.
            if let seen = dlsym(handle, sentinel.symbol), seen != shared { return sentinel.module }
        }
        return nil
    }

    /// Loads `names` and every plugin they depend on; returns them in dependency order (each after
    /// what it needs) and the refusals. A plugin whose dependency is refused is refused too.
    public func loadAll(_ names: [String]) -> (loaded: [LoadedPlugin], refused: [PluginRefusal]) {
        var loaded: [String: LoadedPlugin] = [:]
        var refused: [String: PluginRefusal] = [:]
        var queue = names
        var order: [String] = []
        while !queue.isEmpty {
            let name = queue.removeFirst()
            if loaded[name] != nil || refused[name] != nil { continue }
            guard let file = locate(name) else {
                refused[name] = PluginRefusal(plugin: name, file: nil,
                    reason: "no file libPostern<Name>.so for it in the search path \(searchPath)")
                continue
            }
            switch load(file: file, expectedName: name) {
            case .success(let plugin):
                loaded[name] = plugin
                order.append(name)
                queue += plugin.manifest.dependencies
            case .failure(let refusal):
                refused[name] = refusal
            }
        }
        // Dependencies: missing or refused ones refuse the dependent, transitively.
        var changed = true
        while changed {
            changed = false
            for name in order where refused[name] == nil {
                let plugin = loaded[name]!
                for dep in plugin.manifest.dependencies where loaded[dep] == nil || refused[dep] != nil {
                    let why: String
                    if let depRefusal = refused[dep], depRefusal.file == nil {
                        why = "depends on plugin '\(dep)', expected libPostern<Name>.so for it in the search path \(searchPath), found none"
                    } else {
                        why = "depends on plugin '\(dep)', which was refused"
                    }
                    refused[name] = PluginRefusal(plugin: name, file: plugin.file, reason: why)
                    changed = true
                    break
                }
            }
        }
        // Topological order over the survivors; a cycle refuses its members.
        var sorted: [LoadedPlugin] = []
        var state: [String: Int] = [:]  // 1 visiting, 2 done
        func visit(_ name: String, _ stack: [String]) -> Bool {
            if state[name] == 2 { return true }
            if state[name] == 1 {
                let cycle = (stack.drop { $0 != name } + [name]).joined(separator: " -> ")
                refused[name] = PluginRefusal(plugin: name, file: loaded[name]?.file, reason: "dependency cycle: \(cycle)")
                return false
            }
            state[name] = 1
            for dep in loaded[name]!.manifest.dependencies where !visit(dep, stack + [name]) {
                if refused[name] == nil {
                    refused[name] = PluginRefusal(plugin: name, file: loaded[name]?.file, reason: "depends on plugin '\(dep)', which was refused")
                }
                state[name] = 2
                return false
            }
            state[name] = 2
            if refused[name] == nil { sorted.append(loaded[name]!) }
            return refused[name] == nil
        }
        for name in order where refused[name] == nil { _ = visit(name, []) }
        // A dependency that was never found is reported in its dependent's refusal only.
        let refusals = names.compactMap { refused[$0] }
            + refused.keys.sorted().filter { !names.contains($0) && refused[$0]!.file != nil }.map { refused[$0]! }
        return (sorted, refusals)
    }
}
