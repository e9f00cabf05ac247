import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest
@testable import PosternDNSCore

/// The built plugin against a real recursive server: a throw-away unbound serving the zones of
/// UnboundServer.swift. Counters of queries actually sent come from the plugin's metrics.
final class ResolverTests: XCTestCase {
    var unbound: UnboundServer!
    var resolver: (any DNSResolver)!

    override func setUpWithError() throws {
        unbound = try UnboundServer()
        resolver = try DNSPluginFile.resolver(DNSPluginFile.config(nameservers: [unbound.address]))
    }

    override func tearDown() {
        unbound?.stop()
        unbound = nil
        resolver = nil
    }

    func testPluginFileAndManifest() throws {
        let loaded = try DNSPluginFile.load()
        XCTAssertTrue(loaded.file.hasSuffix("/libPosternDNS.so"), loaded.file)
        XCTAssertEqual(loaded.manifest.kinds, [.hostService])
        XCTAssertEqual(loaded.manifest.config.fields.map(\.name), ["nameservers", "timeout", "attempts", "cache_entries"])
        XCTAssertEqual(loaded.manifest.config.validate(["attempts": .integer(0)]).map(\.message),
                       ["expected integer in 1...10, found integer 0"])
        XCTAssertEqual(loaded.manifest.config.validate(["timeout": .string("soon")]).count, 1)
        XCTAssertThrowsError(try DNSPluginFile.resolver(["nameservers": .array([.string("dns.example.org")])])) {
            XCTAssertEqual("\($0)", "nameserver 'dns.example.org': 'dns.example.org' is not an IPv4 or IPv6 address")
        }
        XCTAssertThrowsError(try DNSPluginFile.resolver(["timeout": .integer(0)])) {
            XCTAssertEqual("\($0)", "timeout: must be more than 0s")
        }
        // No nameservers configured: /etc/resolv.conf (or 127.0.0.1) is used; activation works.
        XCTAssertNoThrow(try DNSPluginFile.resolver([:]))
    }

    func testMXPreferencesAndHosts() async throws {
        var firstHosts: Set<String> = []
        for _ in 0..<40 {
            let records = try await resolver.mx("example.test")
            XCTAssertEqual(records.map(\.preference), [10, 10, 20])
            XCTAssertEqual(Set(records.prefix(2).map(\.host)), ["mx1.example.test", "mx2.example.test"])
            XCTAssertEqual(records.last, MXRecord(preference: 20, host: "backup.example.test"))
            firstHosts.insert(records[0].host)
        }
        XCTAssertEqual(firstHosts, ["mx1.example.test", "mx2.example.test"], "equal preferences come in random order (RFC 5321 §5.1)")
        let upper = try await resolver.mx("EXAMPLE.Test.")
        XCTAssertEqual(upper.count, 3, "case and a trailing dot do not matter")
        let idn = try await resolver.mx("bücher.example.test")
        XCTAssertEqual(idn, [MXRecord(preference: 10, host: "mx1.example.test")], "U-labels are asked as A-labels")
        let viaAlias = try await resolver.mx("mxalias.example.test")
        XCTAssertEqual(viaAlias.count, 3, "a CNAME to the domain is followed for MX too")
    }

    func testNoMXNullMXAndNoSuchDomain() async throws {
        let nomx = try await resolver.mx("nomx.example.test")
        XCTAssertEqual(nomx, [], "NODATA: the caller applies the implicit MX")
        let nomxStrict = try await resolver.mxOrNotFound("nomx.example.test")
        XCTAssertEqual(nomxStrict, [])
        let implicit = try await resolver.addresses("nomx.example.test")
        XCTAssertEqual(implicit, ["192.0.2.20"])
        let nullMX = try await resolver.mx("nullmx.example.test")
        XCTAssertEqual(nullMX, [MXRecord(preference: 0, host: ".")], "RFC 7505 null MX")
        let missing = try await resolver.mx("nope.example.test")
        XCTAssertEqual(missing, [], "NXDOMAIN gives an empty answer too")
        let error = await thrownError { try await self.resolver.mxOrNotFound("nope.example.test") }
        XCTAssertEqual(error as? DNSError, .notFound, "mxOrNotFound tells NXDOMAIN from NODATA")
    }

    func testAddressesIPv4First() async throws {
        let mx1 = try await resolver.addresses("mx1.example.test")
        XCTAssertEqual(mx1, ["192.0.2.1", "2001:db8::25"])
        let multi = try await resolver.addresses("multi.example.test")
        XCTAssertEqual(multi.count, 4)
        XCTAssertEqual(Set(multi.prefix(2)), ["192.0.2.11", "192.0.2.12"])
        XCTAssertEqual(Set(multi.suffix(2)), ["2001:db8::1", "2001:db8::2"])
        let missing = try await resolver.addresses("nope.example.test")
        XCTAssertEqual(missing, [])
        let literal = try await resolver.addresses("192.0.2.200")
        XCTAssertEqual(literal, ["192.0.2.200"], "an address literal needs no lookup")
        let v6literal = try await resolver.addresses("2001:DB8:0::7")
        XCTAssertEqual(v6literal, ["2001:db8::7"])
    }

    func testCNAMEChainsAreFollowedAndBounded() async throws {
        let before = DNSCounters.read()
        let viaChain = try await resolver.addresses("alias1.example.test")
        XCTAssertEqual(viaChain, ["192.0.2.1", "2001:db8::25"], "alias1 → alias2 → alias3 → mx1")
        // unbound answers each CNAME alone: four queries per type for the three-link chain.
        XCTAssertEqual((DNSCounters.read() - before).udp, 8)
        let otherZone = try await resolver.addresses("ext.example.test")
        XCTAssertEqual(otherZone, ["192.0.2.77"])
        let loop = await thrownError { try await self.resolver.addresses("loop1.example.test") }
        guard case .temporary(let why)? = loop as? DNSError else { return XCTFail("expected a temporary error, got \(String(describing: loop))") }
        XCTAssertTrue(why.contains("CNAME chain from"), why)
    }

    func testTXTJoinsCharacterStrings() async throws {
        let spf = try await resolver.txt("txt.example.test")
        XCTAssertEqual(Set(spf), ["v=spf1 -all", "second record"], "each record's strings joined, one string per record")
        let long = try await resolver.txt("long.example.test")
        XCTAssertEqual(long, [String(repeating: "a", count: 200) + String(repeating: "b", count: 100)])
        let none = try await resolver.txt("mx1.example.test")
        XCTAssertEqual(none, [])
    }

    func testPTR() async throws {
        let v4 = try await resolver.ptr("127.0.0.25")
        XCTAssertEqual(v4, ["mail.example.test"])
        let v6 = try await resolver.ptr("2001:db8::25")
        XCTAssertEqual(v6, ["mx1.example.test"])
        let none = try await resolver.ptr("127.0.0.99")
        XCTAssertEqual(none, [])
        let error = await thrownError { try await self.resolver.ptr("mail.example.test") }
        XCTAssertEqual(error as? DNSError, .invalidName("'mail.example.test' is not an IPv4 or IPv6 address"))
    }

    func testRecordsTellNoSuchNameFromNoSuchRecords() async throws {
        let txt = try await resolver.records("txt.example.test", .txt)
        XCTAssertEqual(Set(txt.values), ["v=spf1 -all", "second record"])
        let noData = try await resolver.records("mx1.example.test", .txt)
        XCTAssertEqual(noData, .noData)
        let nameError = try await resolver.records("nope.example.test", .txt)
        XCTAssertEqual(nameError, .nameError)
        let a = try await resolver.records("mx1.example.test", .a)
        XCTAssertEqual(a, .found(["192.0.2.1"]))
        let aaaa = try await resolver.records("mx1.example.test", .aaaa)
        XCTAssertEqual(aaaa, .found(["2001:db8::25"]))
        let mx = try await resolver.records("nullmx.example.test", .mx)
        XCTAssertEqual(mx, .found(["."]))
        let ptr = try await resolver.records("127.0.0.25", .ptr)
        XCTAssertEqual(ptr, .found(["mail.example.test"]))
        let noPTR = try await resolver.records("127.0.0.99", .ptr)
        XCTAssertNotEqual(noPTR, .found([]))
        let error = await thrownError { try await self.resolver.records("mail.example.test", .ptr) }
        XCTAssertEqual(error as? DNSError, .invalidName("'mail.example.test' is not an IPv4 or IPv6 address"))
    }

    func testDNSBLStyleLookups() async throws {
        let listed = try await resolver.addresses("2.0.0.127.dnsbl.test")
        XCTAssertEqual(listed, ["127.0.0.2"])
        let reason = try await resolver.txt("2.0.0.127.dnsbl.test")
        XCTAssertEqual(reason, ["listed: test entry"])
        let notListed = try await resolver.addresses("3.0.0.127.dnsbl.test")
        XCTAssertEqual(notListed, [])
    }

    func testTruncatedUDPAnswerIsAskedAgainOverTCP() async throws {
        let before = DNSCounters.read()
        let big = try await resolver.addresses("big.example.test")
        XCTAssertEqual(big.count, 100)
        XCTAssertEqual(Set(big).count, 100)
        XCTAssertTrue(big.contains("10.0.0.1") && big.contains("10.0.0.100"))
        let sent = DNSCounters.read() - before
        XCTAssertEqual(sent.udp, 2, "A and AAAA over UDP")
        XCTAssertEqual(sent.tcp, 1, "the truncated A answer again over TCP")
    }

    func testNXDOMAINIsAnAnswerSERVFAILAndREFUSEDAreTemporary() async throws {
        let nx = try await resolver.txt("nope.example.test")
        XCTAssertEqual(nx, [])
        let before = DNSCounters.read()
        let servfail = await thrownError { try await self.resolver.mx("a.servfail.test") }
        guard case .temporary(let why)? = servfail as? DNSError else { return XCTFail("expected temporary, got \(String(describing: servfail))") }
        XCTAssertTrue(why.contains("answered SERVFAIL"), why)
        let sent = DNSCounters.read() - before
        XCTAssertEqual(sent.udp, 2, "both attempts were made")
        XCTAssertEqual(sent.failures, 1)
        let refused = await thrownError { try await self.resolver.addresses("x.refused.test") }
        guard case .temporary(let refusedWhy)? = refused as? DNSError else { return XCTFail("expected temporary, got \(String(describing: refused))") }
        XCTAssertTrue(refusedWhy.contains("answered REFUSED"), refusedWhy)
        // Failures are not cached: asking again asks again.
        let again = DNSCounters.read()
        _ = await thrownError { try await self.resolver.mx("a.servfail.test") }
        XCTAssertEqual((DNSCounters.read() - again).udp, 2)
    }

    func testServerWhereNothingListensIsATemporaryErrorAndQuick() async throws {
        let dead = try DNSPluginFile.resolver(DNSPluginFile.config(nameservers: ["127.0.0.1:\(freePort())"], timeout: "300ms", attempts: 2))
        let started = Date()
        let error = await thrownError { try await dead.mx("example.test") }
        let elapsed = Date().timeIntervalSince(started)
        guard case .temporary(let why)? = error as? DNSError else { return XCTFail("expected temporary, got \(String(describing: error))") }
        XCTAssertTrue(why.hasPrefix("example.test MX: 127.0.0.1:"), why)
        XCTAssertLessThan(elapsed, 1.5, "two attempts of at most 0.3 s each")
    }

    func testNextServerAfterAFailure() async throws {
        let rotating = try DNSPluginFile.resolver(DNSPluginFile.config(
            nameservers: ["127.0.0.1:\(freePort())", unbound.address], timeout: "300ms", attempts: 2))
        let records = try await rotating.mx("example.test")
        XCTAssertEqual(records.count, 3, "the second attempt goes to the second server")
        let single = try DNSPluginFile.resolver(DNSPluginFile.config(
            nameservers: ["127.0.0.1:\(freePort())", unbound.address], timeout: "300ms", attempts: 1))
        let error = await thrownError { try await single.mx("example.test") }
        XCTAssertNotNil(error as? DNSError, "one attempt only asks the first server")
    }

    func testIPv6Nameserver() async throws {
        XCTAssertTrue(unbound.hasIPv6, "this machine cannot bind ::1, so unbound does not listen there")
        guard unbound.hasIPv6 else { return }
        let v6 = try DNSPluginFile.resolver(DNSPluginFile.config(nameservers: ["[::1]:\(unbound.port)"]))
        let records = try await v6.mx("example.test")
        XCTAssertEqual(records.count, 3)
    }

    func testCacheAnswersWithoutAQuery() async throws {
        let before = DNSCounters.read()
        let first = try await resolver.mx("example.test")
        let afterFirst = DNSCounters.read() - before
        XCTAssertEqual(afterFirst.udp, 1)
        let second = try await resolver.mx("Example.Test")
        let afterSecond = DNSCounters.read() - before
        XCTAssertEqual(Set(second.map(\.host)), Set(first.map(\.host)))
        XCTAssertEqual(afterSecond.udp, 1, "no query for a cached answer: \(afterSecond)")
        XCTAssertEqual(afterSecond.cacheHits, 1)
        // Negative answers are cached for the SOA's minimum (60 s here).
        _ = try await resolver.mx("nope.example.test")
        _ = try await resolver.mx("nope.example.test")
        XCTAssertEqual((DNSCounters.read() - before).udp, 2)
        // With the server gone, cached answers still come.
        unbound.stop()
        let afterStop = try await resolver.mx("example.test")
        XCTAssertEqual(afterStop.count, 3)
        let stillMissing = try await resolver.mx("nope.example.test")
        XCTAssertEqual(stillMissing, [])
        XCTAssertEqual((DNSCounters.read() - before).udp, 2)
    }

    func testTTLExpiry() async throws {
        let before = DNSCounters.read()
        let first = try await resolver.addresses("ttl1.example.test")
        XCTAssertEqual(first, ["192.0.2.9"])
        XCTAssertEqual((DNSCounters.read() - before).udp, 2, "A and AAAA")
        _ = try await resolver.addresses("ttl1.example.test")
        XCTAssertEqual((DNSCounters.read() - before).udp, 2, "both cached: the A for 1 s, the AAAA NODATA for 60 s")
        try await Task.sleep(nanoseconds: 2_000_000_000)
        let again = try await resolver.addresses("ttl1.example.test")
        XCTAssertEqual(again, ["192.0.2.9"])
        XCTAssertEqual((DNSCounters.read() - before).udp, 3, "the A expired and was asked again; the NODATA had not")
    }

    func testConcurrentIdenticalQueriesShareOneLookup() async throws {
        let before = DNSCounters.read()
        let answers = try await withThrowingTaskGroup(of: [MXRecord].self) { group in
            for _ in 0..<25 { group.addTask { try await self.resolver.mx("shared.example.test") } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        XCTAssertEqual(answers.count, 25)
        XCTAssertTrue(answers.allSatisfy { $0 == [MXRecord(preference: 5, host: "mx1.example.test")] })
        XCTAssertEqual((DNSCounters.read() - before).udp, 1, "25 callers, one query")
    }

    func testCacheCanBeDisabled() async throws {
        let uncached = try DNSPluginFile.resolver(DNSPluginFile.config(nameservers: [unbound.address], cacheEntries: 0))
        let before = DNSCounters.read()
        for _ in 0..<3 { _ = try await uncached.mx("example.test") }
        XCTAssertEqual((DNSCounters.read() - before).udp, 3)
    }

    func testInvalidNames() async throws {
        let empty = await thrownError { try await self.resolver.mx("a..example.test") }
        guard case .invalidName? = empty as? DNSError else { return XCTFail("got \(String(describing: empty))") }
        let long = await thrownError { try await self.resolver.txt(String(repeating: "x", count: 64) + ".example.test") }
        guard case .invalidName? = long as? DNSError else { return XCTFail("got \(String(describing: long))") }
        let root = await thrownError { try await self.resolver.mx(".") }
        XCTAssertEqual(root as? DNSError, .invalidName("empty name"))
    }
}
