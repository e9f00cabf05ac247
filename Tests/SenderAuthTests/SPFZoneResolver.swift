import PluginAPI

/// A DNS zone in memory for the tests that need exact answers without a server: RFC examples
/// and the fuzz test. Names are compared without case; a name with no record of any type does
/// not exist (NXDOMAIN), one with records of other types answers NODATA. Names under
/// `failing` answer as a SERVFAIL would (`DNSError.temporary`).
struct SPFZoneResolver: DNSResolver {
    struct Key: Hashable {
        var name: String
        var type: DNSQuestionType
    }

    var records: [Key: [String]] = [:]
    var failing: Set<String> = []

    mutating func add(_ name: String, _ type: DNSQuestionType, _ values: String...) {
        records[Key(name: name.lowercased(), type: type), default: []] += values
    }

    func records(_ name: String, _ type: DNSQuestionType) async throws -> DNSRecords {
        let name = name.lowercased()
        if failing.contains(where: { name == $0 || name.hasSuffix("." + $0) }) { throw DNSError.temporary("SERVFAIL (test zone)") }
        if let values = records[Key(name: name, type: type)], !values.isEmpty { return .found(values) }
        return records.keys.contains { $0.name == name } ? .noData : .nameError
    }

    func mx(_ domain: String) async throws -> [MXRecord] {
        try await records(domain, .mx).values.enumerated().map { MXRecord(preference: $0.offset, host: $0.element) }
    }

    func addresses(_ host: String) async throws -> [String] {
        try await records(host, .a).values + records(host, .aaaa).values
    }

    func txt(_ name: String) async throws -> [String] { try await records(name, .txt).values }

    func ptr(_ address: String) async throws -> [String] { try await records(address, .ptr).values }
}
