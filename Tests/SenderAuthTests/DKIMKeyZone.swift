import Foundation
import PluginAPI
import PluginCredentials
import PosternTestSupport
@testable import PosternSenderAuthCore

/// DKIM key records of one domain, served two ways: by a throw-away unbound that Postern asks
/// through the built DNS plugin (libPosternDNS.so), and by a file dkimpy's `dnsfunc` reads. Shared
/// by the DKIM and ARC interop tests.
final class DKIMKeyZone {
    let domain: String
    /// Record text by selector.
    let records: [String: String]
    let server: UnboundServer
    let resolver: any DNSResolver

    init(domain: String, records: [String: String]) throws {
        self.domain = domain
        self.records = records
        var zones = [
            "local-zone: \"\(domain).\" static",
            "local-data: \"\(domain). 300 IN SOA ns.\(domain). hostmaster.\(domain). 1 3600 600 86400 60\"",
        ]
        for (selector, record) in records.sorted(by: { $0.key < $1.key }) {
            let strings = DKIMKeyGeneration.characterStrings(record).map { "\"\($0)\"" }.joined(separator: " ")
            zones.append("local-data: '\(selector)._domainkey.\(domain). 300 IN TXT \(strings)'")
        }
        server = try UnboundServer(zones: zones.map { "  " + $0 }.joined(separator: "\n"))
        do {
            resolver = try DNSPluginFile.resolver(DNSPluginFile.config(nameservers: [server.address]))
        } catch {
            server.stop()
            throw error
        }
    }

    func stop() { server.stop() }

    /// Writes the records as `SELECTOR._domainkey.DOMAIN. RECORD` lines (the names dkimpy asks
    /// for, with the final dot) into `work`; the file for `dkimpyDNS`'s first argument.
    func recordsFile(in work: TempDir) -> String {
        work.write("records-\(UUID().uuidString.prefix(6)).txt",
                   records.map { "\($0.key)._domainkey.\(domain). \($0.value)" }.joined(separator: "\n"))
    }

    /// Python that defines `dns(name, timeout)`, a dkimpy `dnsfunc` answering from the records
    /// file named by `sys.argv[1]` (None for any other name: no key).
    static let dkimpyDNS = """
        import sys
        records = dict(line.split(" ", 1) for line in open(sys.argv[1]).read().splitlines())
        def dns(name, timeout=5):
            value = records.get(name.decode())
            return value.encode() if value else None
        """
}
