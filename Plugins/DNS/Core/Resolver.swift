import PluginAPI

// The stub resolver behind `DNSResolver`: asks recursive nameservers (UDP, then TCP when the
// answer is truncated), tries the next server on SERVFAIL/REFUSED/timeouts, follows CNAME chains
// across queries, and answers from the cache while TTLs last.

struct ResolverSettings: Sendable {
    var nameservers: [NameserverAddress]
    /// For one UDP or TCP exchange with one server.
    var timeout: TimeAmount
    /// Exchanges per question before giving up with a temporary error, rotating through the servers.
    var attempts: Int
    var cacheEntries: Int
    /// CNAMEs followed from the name asked, in one response or across several (RFC 1034 §3.6.2
    /// asks resolvers to bound chains; 8 is what common resolvers allow and then some).
    var maxCNAMEHops = 8
}

/// The counters this resolver exports on `/metrics` (labelled with the plugin's name).
struct ResolverMetrics: Sendable {
    /// Queries actually sent, by transport: what a cache hit saves.
    var udpQueries: Counter
    var tcpQueries: Counter
    var cacheHits: Counter
    /// Questions given up with a temporary error after every attempt.
    var failures: Counter

    init(counter: (String, [(String, String)]) -> Counter) {
        udpQueries = counter("postern_dns_queries_total", [("transport", "udp")])
        tcpQueries = counter("postern_dns_queries_total", [("transport", "tcp")])
        cacheHits = counter("postern_dns_cache_hits_total", [])
        failures = counter("postern_dns_failures_total", [])
    }
}

final class StubResolver: DNSResolver {
    let settings: ResolverSettings
    private let servers: [(address: NameserverAddress, socket: SocketAddress)]
    private let transport: DNSTransport
    private let cache: DNSCache
    private let metrics: ResolverMetrics
    private let logger: Logger

    init(settings: ResolverSettings, group: any EventLoopGroup, metrics: ResolverMetrics, logger: Logger) throws {
        precondition(!settings.nameservers.isEmpty && settings.attempts > 0)
        self.settings = settings
        self.servers = try settings.nameservers.map { ($0, try SocketAddress(ipAddress: $0.ip, port: $0.port)) }
        self.transport = DNSTransport(group: group)
        self.cache = DNSCache(capacity: settings.cacheEntries)
        self.metrics = metrics
        self.logger = logger
    }

    // MARK: DNSResolver

    func mx(_ domain: String) async throws -> [MXRecord] {
        switch try await lookup(try name(domain), .mx) {
        case .records(let records): return Self.mailExchangers(records)
        case .noData, .nameError: return []
        }
    }

    func mxOrNotFound(_ domain: String) async throws -> [MXRecord] {
        switch try await lookup(try name(domain), .mx) {
        case .records(let records): return Self.mailExchangers(records)
        case .noData: return []
        case .nameError: throw DNSError.notFound
        }
    }

    func addresses(_ host: String) async throws -> [String] {
        if let literal = IPAddressText.parse(host) { return [IPAddressText.format(literal)] }
        let name = try name(host)
        async let v4 = outcome { try await self.lookup(name, .a) }
        async let v6 = outcome { try await self.lookup(name, .aaaa) }
        let results = await [v4, v6]
        var addresses: [String] = []
        var failure: Error?
        for result in results {
            switch result {
            case .success(.records(let records)):
                for record in records {
                    if case .a(let bytes) = record.data { addresses.append(IPAddressText.format(bytes)) }
                    if case .aaaa(let bytes) = record.data { addresses.append(IPAddressText.format(bytes)) }
                }
            case .success: break
            case .failure(let error): failure = failure ?? error
            }
        }
        // One family failing while the other answered is enough to deliver; both failing, or one
        // failing where the other has nothing, may mean addresses were missed: try later.
        if let failure, addresses.isEmpty { throw failure }
        return addresses
    }

    func txt(_ name: String) async throws -> [String] {
        switch try await lookup(try self.name(name), .txt) {
        case .records(let records):
            return records.compactMap {
                guard case .txt(let strings) = $0.data else { return nil }
                return String(decoding: strings.joined(), as: UTF8.self)
            }
        case .noData, .nameError: return []
        }
    }

    func records(_ name: String, _ type: DNSQuestionType) async throws -> DNSRecords {
        let answer: DNSLookupResult
        switch type {
        case .a: answer = try await lookup(try self.name(name), .a)
        case .aaaa: answer = try await lookup(try self.name(name), .aaaa)
        case .mx: answer = try await lookup(try self.name(name), .mx)
        case .txt: answer = try await lookup(try self.name(name), .txt)
        case .ptr:
            guard let reverse = IPAddressText.reverseName(name) else {
                throw DNSError.invalidName("'\(name)' is not an IPv4 or IPv6 address")
            }
            answer = try await lookup(reverse, .ptr)
        }
        switch answer {
        case .nameError: return .nameError
        case .noData: return .noData
        case .records(let records):
            var values: [String] = []
            if type == .mx {
                values = Self.mailExchangers(records).map(\.host)
            } else {
                for record in records {
                    switch record.data {
                    case .a(let bytes) where type == .a, .aaaa(let bytes) where type == .aaaa:
                        values.append(IPAddressText.format(bytes))
                    case .txt(let strings) where type == .txt:
                        values.append(String(decoding: strings.joined(), as: UTF8.self))
                    case .ptr(let target) where type == .ptr:
                        values.append(target.description)
                    default: break
                    }
                }
            }
            return values.isEmpty ? .noData : .found(values)
        }
    }

    func ptr(_ address: String) async throws -> [String] {
        guard let reverse = IPAddressText.reverseName(address) else {
            throw DNSError.invalidName("'\(address)' is not an IPv4 or IPv6 address")
        }
        switch try await lookup(reverse, .ptr) {
        case .records(let records):
            return records.compactMap { if case .ptr(let target) = $0.data { return target.description } else { return nil } }
        case .noData, .nameError: return []
        }
    }

    // MARK: Lookups

    /// The answer for one question: from the cache, from a lookup already in flight, or asked.
    func lookup(_ name: DNSName, _ type: DNSRecordType) async throws -> DNSLookupResult {
        let (result, source) = try await cache.value(for: DNSCacheKey(name: name, type: type)) {
            try await self.resolve(name, type)
        }
        if source == .cache { metrics.cacheHits.increment() }
        return result
    }

    /// Asks the servers, following CNAMEs that leave a response into new queries, and returns
    /// the answer with how long it may be cached.
    private func resolve(_ name: DNSName, _ type: DNSRecordType) async throws -> (DNSLookupResult, ttl: UInt32?) {
        var current = name
        var hops = 0
        var chainTTL = UInt32.max
        // Every round but the last follows at least one CNAME, so the hop limit bounds the rounds.
        for _ in 0...settings.maxCNAMEHops {
            let response = try await query(current, type)
            switch DNSAnswer.interpret(response, name: current, type: type, maxHops: settings.maxCNAMEHops - hops) {
            case .records(let records, let ttl):
                return (.records(records), min(ttl, chainTTL))
            case .noData(let ttl):
                return (.noData, ttl.map { min($0, chainTTL) })
            case .nameError(let ttl):
                return (.nameError, ttl.map { min($0, chainTTL) })
            case .failure(let why):
                throw DNSError.temporary(why)
            case .alias(let target, let ttl, let followed):
                hops += followed
                chainTTL = min(chainTTL, ttl)
                current = target
            }
        }
        throw DNSError.temporary("CNAME chain from \(name) longer than \(settings.maxCNAMEHops)")
    }

    /// One question, up to `attempts` exchanges, rotating through the servers. A response counts
    /// when it is NOERROR or NXDOMAIN; anything else (SERVFAIL, REFUSED, a timeout) moves on.
    private func query(_ name: DNSName, _ type: DNSRecordType) async throws -> DNSMessage {
        var failures: [String] = []
        for attempt in 0..<settings.attempts {
            try Task.checkCancellation()
            let server = servers[attempt % servers.count]
            let query = DNSMessage.query(id: UInt16.random(in: 0...UInt16.max), name: name, type: type)
            do {
                metrics.udpQueries.increment()
                var response = try await transport.udp(query, to: server.socket, timeout: settings.timeout)
                if response.header.truncated {
                    metrics.tcpQueries.increment()
                    response = try await transport.tcp(query, to: server.socket, timeout: settings.timeout)
                }
                let rcode = response.responseCode
                if rcode == .noError || rcode == .nameError { return response }
                failures.append("\(server.address) answered \(rcode)")
            } catch {
                failures.append("\(server.address): \(error)")
            }
        }
        metrics.failures.increment()
        let why = "\(name) \(type): " + failures.joined(separator: "; ")
        logger.debug("DNS lookup failed", metadata: ["reason": "\(why)"])
        throw DNSError.temporary(why)
    }

    // MARK: Helpers

    /// A name as the caller wrote it, checked, with IDNA U-labels turned into A-labels.
    private func name(_ text: String) throws -> DNSName {
        var ascii = text
        if !text.allSatisfy(\.isASCII) {
            do { ascii = try IDNA.toASCII(text) } catch { throw DNSError.invalidName("'\(text)': \(error)") }
        }
        let name: DNSName
        do { name = try DNSName(ascii) } catch { throw DNSError.invalidName("'\(text)': \(error)") }
        // The root has no MX, addresses or TXT a mail system could want; an empty name is a caller's slip.
        guard !name.labels.isEmpty else { throw DNSError.invalidName("empty name") }
        return name
    }

    /// MX records ordered by preference; equal preferences shuffled so that load spreads over
    /// them (RFC 5321 §5.1).
    static func mailExchangers(_ records: [DNSResourceRecord]) -> [MXRecord] {
        let all = records.compactMap { record -> MXRecord? in
            guard case .mx(let preference, let exchange) = record.data else { return nil }
            return MXRecord(preference: Int(preference), host: exchange.description)
        }
        return Dictionary(grouping: all, by: \.preference).sorted { $0.key < $1.key }.flatMap { $0.value.shuffled() }
    }

    private func outcome(_ body: @escaping @Sendable () async throws -> DNSLookupResult) async -> Result<DNSLookupResult, Error> {
        do { return .success(try await body()) } catch { return .failure(error) }
    }
}
