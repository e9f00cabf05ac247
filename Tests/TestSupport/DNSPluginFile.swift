import Foundation
import PluginAPI
import PosternHost
import XCTest

/// The built libPosternDNS.so (beside the test bundle, on the loader's search path), loaded with
/// the host's PluginLoader and every check a worker runs, then activated with a config section
/// validated against its own manifest, as the host does. Shared by the DNS tests and the tests
/// of plugins that resolve through it (sender authentication).
public enum DNSPluginFile {
    public struct NoTLS: TLSProvider {
        public struct None: Error {}
        public init() {}
        public func serverContext(listener: String) -> NIOSSLContext? { nil }
        public func clientContext() throws -> NIOSSLContext { throw None() }
    }

    public static let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    public static func load() throws -> LoadedPlugin {
        let loader = PluginLoader(configuredPath: [])
        let file = try XCTUnwrap(loader.locate("dns"), "libPosternDNS.so not built in \(loader.searchPath)")
        return try loader.load(file: file, expectedName: "dns").get()
    }

    /// Activates the plugin with `config` as `[plugin.dns]` and returns the resolver it registers.
    public static func resolver(_ config: [String: ConfigValue]) throws -> any DNSResolver {
        // Counters must exist in the process's registry for the tests to read them.
        PosternMetrics.bootstrap()
        let loaded = try load()
        let issues = loaded.manifest.config.validate(config)
        guard issues.isEmpty else { throw SystemError.message("config refused: \(issues)") }
        let section = ConfigSection(loaded.manifest.config.applyingDefaults(to: config))
        let context = PluginContext(pluginName: "dns", role: "all-in-one", logger: Logger(label: "dns"), config: section,
                                    dataDirectory: NSTemporaryDirectory(), eventLoopGroup: group,
                                    services: HostServices(tls: NoTLS()))
        let services = try loaded.registration.activate(context).services
        guard services.count == 1, case .dnsResolver(let resolver)? = services.first else {
            throw SystemError.message("the dns plugin registered \(services.map(\.name)), expected one DNS resolver")
        }
        return resolver
    }

    public static func config(nameservers: [String], timeout: String = "2s", attempts: Int = 2,
                       cacheEntries: Int = 1000) -> [String: ConfigValue] {
        ["nameservers": .array(nameservers.map { .string($0) }), "timeout": .string(timeout),
         "attempts": .integer(attempts), "cache_entries": .integer(cacheEntries)]
    }
}

