import Foundation
import PluginAPI

/// An in-memory `DNSResolver` for the DMARC unit tests: TXT answers by name, names that fail
/// temporarily, and a log of the names asked (the end-to-end tests use a real unbound).
final class ZoneResolver: DNSResolver, @unchecked Sendable {
    private let txt: [String: [String]]
    private let failing: Set<String>
    private let lock = NSLock()
    private var askedNames: [String] = []

    init(txt: [String: [String]], failing: Set<String> = []) {
        self.txt = txt
        self.failing = failing
    }

    var asked: [String] { lock.withLock { askedNames } }

    func records(_ name: String, _ type: DNSQuestionType) async throws -> DNSRecords {
        lock.withLock { askedNames.append(name) }
        let key = name.lowercased()
        if failing.contains(key) { throw DNSError.temporary("SERVFAIL for \(name)") }
        guard type == .txt, let values = txt[key] else { return .nameError }
        return values.isEmpty ? .noData : .found(values)
    }

    func mx(_ domain: String) async throws -> [MXRecord] { [] }
    func addresses(_ host: String) async throws -> [String] { [] }
    func txt(_ name: String) async throws -> [String] { try await records(name, .txt).values }
    func ptr(_ address: String) async throws -> [String] { [] }
}
