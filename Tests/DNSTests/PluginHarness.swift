import PosternTestSupport
import Foundation
import PluginAPI
import PosternHost
import XCTest
@testable import PosternDNSCore

/// The built libPosternDNS.so (beside the test bundle, on the loader's search path), loaded with
/// the host's PluginLoader and every check a worker runs, then activated with a config section
/// validated against its own manifest, as the host does.
enum DNSPluginFile {
    struct NoTLS: TLSProvider {
        struct None: Error {}
        func serverContext(listener: String) -> NIOSSLContext? { nil }
        func clientContext() throws -> NIOSSLContext { throw None() }
    }

    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    static func load() throws -> LoadedPlugin {
        let loader = PluginLoader(configuredPath: [])
        let file = try XCTUnwrap(loader.locate("dns"), "libPosternDNS.so not built in \(loader.searchPath)")
        return try loader.load(file: file, expectedName: "dns").get()
    }

    /// Activates the plugin with `config` as `[plugin.dns]` and returns the resolver it registers.
    static func resolver(_ config: [String: ConfigValue]) throws -> any DNSResolver {
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

    static func config(nameservers: [String], timeout: String = "2s", attempts: Int = 2,
                       cacheEntries: Int = 1000) -> [String: ConfigValue] {
        ["nameservers": .array(nameservers.map { .string($0) }), "timeout": .string(timeout),
         "attempts": .integer(attempts), "cache_entries": .integer(cacheEntries)]
    }
}

/// The plugin's counters on this process's metrics exposition (`plugin="dns"`), as `/metrics`
/// would show them. Tests read differences, so counts from earlier tests do not matter.
struct DNSCounters: Equatable, CustomStringConvertible {
    var udp: Int
    var tcp: Int
    var cacheHits: Int
    var failures: Int

    static func read() -> DNSCounters {
        let lines = PosternMetrics.exposition().split(separator: "\n")
        func value(_ name: String, _ labels: [String]) -> Int {
            let line = lines.first { line in
                line.hasPrefix(name + "{") && line.contains("plugin=\"dns\"") && labels.allSatisfy { line.contains($0) }
            }
            return line.flatMap { Double($0.split(separator: " ").last!) }.map { Int($0) } ?? 0
        }
        return DNSCounters(udp: value("postern_dns_queries_total", ["transport=\"udp\""]),
                           tcp: value("postern_dns_queries_total", ["transport=\"tcp\""]),
                           cacheHits: value("postern_dns_cache_hits_total", []),
                           failures: value("postern_dns_failures_total", []))
    }

    static func - (lhs: DNSCounters, rhs: DNSCounters) -> DNSCounters {
        DNSCounters(udp: lhs.udp - rhs.udp, tcp: lhs.tcp - rhs.tcp, cacheHits: lhs.cacheHits - rhs.cacheHits,
                    failures: lhs.failures - rhs.failures)
    }

    var description: String { "udp \(udp), tcp \(tcp), cache hits \(cacheHits), failures \(failures)" }
}

/// Runs `body` and returns what it threw, failing the test when it threw nothing.
func thrownError<T>(_ body: () async throws -> T, file: StaticString = #filePath, line: UInt = #line) async -> Error? {
    do {
        let value = try await body()
        XCTFail("expected an error, got \(value)", file: file, line: line)
        return nil
    } catch {
        return error
    }
}
