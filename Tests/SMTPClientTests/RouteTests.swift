import PosternTestSupport
import PluginAPI
import XCTest
@testable import PosternSMTPClientCore

/// Next-hop syntax (`Destination`) and MX routing (`RouteResolver`) against a scripted resolver.
final class RouteTests: XCTestCase {
    /// Answers from a table; names not in it do not exist.
    struct ScriptedResolver: DNSResolver {
        var mxRecords: [String: Result<[MXRecord], DNSError>] = [:]
        var hosts: [String: Result<[String], DNSError>] = [:]

        func mx(_ domain: String) async throws -> [MXRecord] {
            do { return try await mxOrNotFound(domain) } catch DNSError.notFound { return [] }
        }
        func mxOrNotFound(_ domain: String) async throws -> [MXRecord] {
            guard let answer = mxRecords[domain] else { throw DNSError.notFound }
            return try answer.get()
        }
        func addresses(_ host: String) async throws -> [String] { try hosts[host]?.get() ?? [] }
        func txt(_ name: String) async throws -> [String] { [] }
        func ptr(_ address: String) async throws -> [String] { [] }
    }

    func testSMTPNextHops() throws {
        XCTAssertEqual(try Destination.smtp(nextHop: "Relay.Example.ORG", defaultPort: 25), .mailDomain("relay.example.org", port: 25))
        XCTAssertEqual(try Destination.smtp(nextHop: "relay.example.org:587", defaultPort: 25), .mailDomain("relay.example.org", port: 587))
        XCTAssertEqual(try Destination.smtp(nextHop: "[relay.example.org]", defaultPort: 2525), .host("relay.example.org", port: 2525))
        XCTAssertEqual(try Destination.smtp(nextHop: "[relay.example.org]:587", defaultPort: 25), .host("relay.example.org", port: 587))
        XCTAssertEqual(try Destination.smtp(nextHop: "[192.0.2.7]:2525", defaultPort: 25), .host("192.0.2.7", port: 2525))
        XCTAssertEqual(try Destination.smtp(nextHop: "[IPv6:2001:db8::1]:25", defaultPort: 25), .host("2001:db8::1", port: 25))
        XCTAssertEqual(try Destination.smtp(nextHop: "[2001:db8::1]", defaultPort: 26), .host("2001:db8::1", port: 26))
        XCTAssertEqual(try Destination.smtp(nextHop: " relay.example.org ", defaultPort: 25), .mailDomain("relay.example.org", port: 25))
        for bad in ["", "[relay", "[]", "[relay]x", "[relay]:0", "[relay]:65536", "relay:port", "2001:db8::1", "relay.example.org:",
                    "bad host", "[a b]"] {
            XCTAssertThrowsError(try Destination.smtp(nextHop: bad, defaultPort: 25), bad)
        }
        XCTAssertEqual(try Destination.smtp(domain: "Example.ORG", port: 25), .mailDomain("example.org", port: 25))
        XCTAssertEqual(try Destination.smtp(domain: "[192.0.2.1]", port: 2525), .host("192.0.2.1", port: 2525))
        XCTAssertEqual(try Destination.smtp(domain: "[IPv6:2001:db8::5]", port: 25), .host("2001:db8::5", port: 25))
        XCTAssertEqual(Destination.mailDomain("example.org", port: 25).description, "example.org")
        XCTAssertEqual(Destination.mailDomain("example.org", port: 2525).description, "example.org:2525")
    }

    func testLMTPNextHops() throws {
        XCTAssertEqual(try Destination.lmtp(nextHop: "unix:/run/lmtp.sock", defaultPort: 24), .unixSocket("/run/lmtp.sock"))
        XCTAssertEqual(try Destination.lmtp(nextHop: "/run/lmtp.sock", defaultPort: 24), .unixSocket("/run/lmtp.sock"))
        XCTAssertEqual(try Destination.lmtp(nextHop: "[10.0.0.5]:2424", defaultPort: 24), .host("10.0.0.5", port: 2424))
        XCTAssertEqual(try Destination.lmtp(nextHop: "store.example.org", defaultPort: 24), .host("store.example.org", port: 24))
        XCTAssertEqual(try Destination.lmtp(nextHop: "inet:store.example.org:2424", defaultPort: 24), .host("store.example.org", port: 2424))
        XCTAssertThrowsError(try Destination.lmtp(nextHop: "unix:relative.sock", defaultPort: 24))
        XCTAssertThrowsError(try Destination.lmtp(nextHop: "inet:", defaultPort: 24))
    }

    func resolve(_ destination: Destination, _ resolver: ScriptedResolver?, max: Int = 10) async -> Route {
        await RouteResolver(resolver: resolver, maxAddresses: max).resolve(destination)
    }

    func testMXOrderAndAddresses() async {
        var dns = ScriptedResolver()
        dns.mxRecords["example.org"] = .success([MXRecord(preference: 10, host: "mx1.example.org"), MXRecord(preference: 20, host: "mx2.example.org"),
                                                 MXRecord(preference: 30, host: "gone.example.org"), MXRecord(preference: 40, host: "flaky.example.org")])
        dns.hosts["mx1.example.org"] = .success(["192.0.2.1", "2001:db8::1"])
        dns.hosts["mx2.example.org"] = .success(["192.0.2.2"])
        dns.hosts["flaky.example.org"] = .failure(.temporary("SERVFAIL"))
        let route = await resolve(.mailDomain("example.org", port: 2525), dns)
        XCTAssertEqual(route, .candidates([Candidate(host: "mx1.example.org", address: "192.0.2.1", port: 2525),
                                           Candidate(host: "mx1.example.org", address: "2001:db8::1", port: 2525),
                                           Candidate(host: "mx2.example.org", address: "192.0.2.2", port: 2525)],
                                          notes: ["gone.example.org: no address (A/AAAA) records",
                                                  "flaky.example.org: temporary DNS failure: SERVFAIL"]))
        // The address limit counts over every MX host.
        guard case .candidates(let limited, _) = await resolve(.mailDomain("example.org", port: 25), dns, max: 2) else { return XCTFail() }
        XCTAssertEqual(limited.map(\.address), ["192.0.2.1", "2001:db8::1"])
        XCTAssertEqual(limited[0].description, "mx1.example.org[192.0.2.1]:25")
    }

    func testImplicitMXNullMXAndMissingDomains() async {
        var dns = ScriptedResolver()
        dns.mxRecords["nomx.example.org"] = .success([])
        dns.hosts["nomx.example.org"] = .success(["192.0.2.20"])
        dns.mxRecords["nothing.example.org"] = .success([])
        dns.mxRecords["nullmx.example.org"] = .success([MXRecord(preference: 0, host: ".")])
        dns.mxRecords["mixed.example.org"] = .success([MXRecord(preference: 0, host: "."), MXRecord(preference: 10, host: "mx.example.org")])
        dns.hosts["mx.example.org"] = .success(["192.0.2.9"])
        dns.mxRecords["broken.example.org"] = .failure(.temporary("timeout"))
        dns.mxRecords["dead.example.org"] = .success([MXRecord(preference: 10, host: "nx.example.org")])

        await XCTAssertEqualAsync(await resolve(.mailDomain("nomx.example.org", port: 25), dns),
                                  .candidates([Candidate(host: "nomx.example.org", address: "192.0.2.20", port: 25)], notes: []))
        await XCTAssertEqualAsync(await resolve(.mailDomain("nullmx.example.org", port: 25), dns),
                                  .failed(MailReply(556, "5.1.10", "Domain nullmx.example.org does not accept mail (null MX)")))
        await XCTAssertEqualAsync(await resolve(.mailDomain("mixed.example.org", port: 25), dns),
                                  .candidates([Candidate(host: "mx.example.org", address: "192.0.2.9", port: 25)], notes: []))
        await XCTAssertEqualAsync(await resolve(.mailDomain("missing.example.org", port: 25), dns),
                                  .failed(MailReply(550, "5.1.2", "Host or domain name not found: missing.example.org does not exist (NXDOMAIN)")))
        guard case .failed(let temporary) = await resolve(.mailDomain("broken.example.org", port: 25), dns) else { return XCTFail() }
        XCTAssertEqual(temporary.code, 451)
        XCTAssertEqual(temporary.enhanced, "4.4.3")
        guard case .failed(let noAddress) = await resolve(.mailDomain("nothing.example.org", port: 25), dns) else { return XCTFail() }
        XCTAssertEqual(noAddress.enhanced, "5.4.4")
        guard case .failed(let deadMX) = await resolve(.mailDomain("dead.example.org", port: 25), dns) else { return XCTFail() }
        XCTAssertEqual(deadMX, MailReply(550, "5.4.4", "no MX host of dead.example.org has an address: nx.example.org: no address (A/AAAA) records"))
        // Without a resolver nothing but literals can be reached.
        guard case .failed(let noResolver) = await resolve(.mailDomain("example.org", port: 25), nil) else { return XCTFail() }
        XCTAssertEqual(noResolver.enhanced, "4.3.5")
        await XCTAssertEqualAsync(await resolve(.host("192.0.2.1", port: 25), nil),
                                  .candidates([Candidate(host: "192.0.2.1", address: "192.0.2.1", port: 25)], notes: []))
    }

    func testBracketedHostsSkipMX() async {
        var dns = ScriptedResolver()
        dns.mxRecords["relay.example.org"] = .success([MXRecord(preference: 10, host: "elsewhere.example.org")])
        dns.hosts["relay.example.org"] = .success(["192.0.2.30"])
        await XCTAssertEqualAsync(await resolve(.host("relay.example.org", port: 587), dns),
                                  .candidates([Candidate(host: "relay.example.org", address: "192.0.2.30", port: 587)], notes: []))
        await XCTAssertEqualAsync(await resolve(.unixSocket("/run/lmtp"), dns),
                                  .candidates([Candidate(host: "/run/lmtp", address: "/run/lmtp", port: 0)], notes: []))
        XCTAssertTrue(RouteResolver.isAddressLiteral("::1"))
        XCTAssertTrue(RouteResolver.isAddressLiteral("127.0.0.1"))
        XCTAssertFalse(RouteResolver.isAddressLiteral("mx.example.org"))
    }
}

func XCTAssertEqualAsync<T: Equatable>(_ a: @autoclosure () async -> T, _ b: @autoclosure () async -> T,
                                       file: StaticString = #filePath, line: UInt = #line) async {
    let x = await a(), y = await b()
    XCTAssertEqual(x, y, file: file, line: line)
}
