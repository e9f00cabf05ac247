import PosternTestSupport
import Foundation
import PluginAPI
import PosternHost
import XCTest
@testable import PosternDNSCore

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
