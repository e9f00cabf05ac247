import Foundation
import PluginAPI
import PosternHost
import XCTest

final class MetricsMergeTests: XCTestCase {
    func testMergesFamiliesAndLabelsWorkers() {
        let master = "# TYPE postern_generation gauge\npostern_generation 2.0\n"
        let worker = """
            # TYPE postern_connections_total counter
            postern_connections_total{listener="a",plugin="p"} 3
            # TYPE latency histogram
            latency_bucket{le="0.1"} 1
            latency_bucket{le="+Inf"} 2
            latency_sum 0.3
            latency_count 2
            """
        let merged = MetricsMerge.merge([
            .init(label: nil, text: master),
            .init(label: ("worker", "10"), text: worker),
            .init(label: ("worker", "11"), text: worker.replacingOccurrences(of: "} 3", with: "} 4")),
        ])
        XCTAssertEqual(merged, """
            # TYPE postern_generation gauge
            postern_generation 2.0
            # TYPE postern_connections_total counter
            postern_connections_total{worker="10",listener="a",plugin="p"} 3
            postern_connections_total{worker="11",listener="a",plugin="p"} 4
            # TYPE latency histogram
            latency_bucket{worker="10",le="0.1"} 1
            latency_bucket{worker="10",le="+Inf"} 2
            latency_sum{worker="10"} 0.3
            latency_count{worker="10"} 2
            latency_bucket{worker="11",le="0.1"} 1
            latency_bucket{worker="11",le="+Inf"} 2
            latency_sum{worker="11"} 0.3
            latency_count{worker="11"} 2

            """)
    }
}

final class PluginABITests: XCTestCase {
    /// The loader detects private copies by comparing these symbols; each must exist in
    /// libPluginAPI.so, or the check silently stops checking that module.
    func testEverySentinelSymbolExistsInPluginAPI() throws {
        let api = try XCTUnwrap(dlopen("libPluginAPI.so", RTLD_NOW | RTLD_NOLOAD), "libPluginAPI.so is linked into the tests")
        for sentinel in PluginLoader.sharedModuleSentinels {
            XCTAssertNotNil(dlsym(api, sentinel.symbol), "\(sentinel.module): \(sentinel.symbol) not exported")
        }
    }

    func testTagNamesLevelAndCompiler() {
        XCTAssertTrue(PluginABI.libraryTag.hasPrefix("postern-plugin-api/9 swift/"), PluginABI.libraryTag)
        XCTAssertEqual(PluginABI.tagCompiledIn, PluginABI.libraryTag, "tests and library built by one compiler")
    }

    func testPluginNames() {
        XCTAssertTrue(PluginManifest.isValidName("store-sqlite"))
        XCTAssertFalse(PluginManifest.isValidName("Store"))
        XCTAssertFalse(PluginManifest.isValidName("-x"))
        XCTAssertFalse(PluginManifest.isValidName(""))
    }
}

/// The host services that combine plugins: the filter chain and the auth service's driver loop.
final class HostServicesTests: XCTestCase {
    final class FixedFilter: MailFilter, FilterTransaction, @unchecked Sendable {
        let rcptVerdict: FilterVerdict
        let modification: FilterModification?
        var calls = 0
        init(_ v: FilterVerdict, _ m: FilterModification? = nil) { rcptVerdict = v; modification = m }
        func makeTransaction(_ connection: FilterConnection) -> any FilterTransaction { self }
        func rcptTo(_ recipient: String, parameters: [String: String]) async -> FilterVerdict { calls += 1; return rcptVerdict }
        func endOfMessage() async -> (FilterVerdict, [FilterModification]) { (.continue, modification.map { [$0] } ?? []) }
    }

    func testFilterChainMostSevereWinsAndAcceptStopsAsking() async {
        let reject = FilterVerdict.reject(MailReply(550, "5.7.1", "no"))
        let accepting = FixedFilter(.accept)
        let chain = FilterChain(filters: [("a", FixedFilter(.continue, .addHeader(name: "X-A", value: "1"))),
                                          ("b", accepting),
                                          ("c", FixedFilter(.tempfail(MailReply(451, nil, "later")))),
                                          ("d", FixedFilter(reject, .addHeader(name: "X-D", value: "2")))])
        let t = chain.begin(FilterConnection(peerAddress: "192.0.2.1", listener: "mx", isSecure: false))
        let v = await t.run { await $0.rcptTo("u@example.org", parameters: [:]) }
        XCTAssertEqual(v, reject)
        _ = await t.run { await $0.rcptTo("v@example.org", parameters: [:]) }
        XCTAssertEqual(accepting.calls, 1, "a filter that accepted is not asked again for this message")
        let (final, mods) = await t.endOfMessage()
        XCTAssertEqual(final, .continue)
        XCTAssertEqual(mods, [.addHeader(name: "X-A", value: "1"), .addHeader(name: "X-D", value: "2")])
    }

    /// A minimal PLAIN-shaped mechanism, to drive the auth service's verify round trip.
    struct TestPlain: SASLMechanism {
        final class Exchange: SASLServerExchange {
            func start(initialResponse: [UInt8]?) -> SASLStep {
                guard let r = initialResponse else { return .challenge([]) }
                return respond(r)
            }
            func respond(_ response: [UInt8]) -> SASLStep {
                let parts = response.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
                guard parts.count == 3 else { return .failure(.malformed("expected authzid NUL authcid NUL passwd")) }
                return .verify(.password(user: parts[1], password: parts[2]))
            }
            func credentialAnswer(_ answer: CredentialAnswer) -> SASLStep {
                switch answer {
                case .verified(let user): return .success(SASLIdentity(user: user), serverFinal: nil)
                case .unavailable(let why): return .failure(.temporary(why))
                case .suspended: return .failure(.accountDisabled)
                default: return .failure(.authenticationFailed)
                }
            }
        }
        var name: String { "PLAIN" }
        var isPlaintext: Bool { true }
        func makeExchange(_ context: SASLExchangeContext) -> any SASLServerExchange { Exchange() }
    }

    struct Table: CredentialBackend {
        let users: [String: String]
        let down: Bool
        func verifyPassword(user: String, password: String) async throws -> CredentialAnswer {
            if down { throw SystemError.message("ldap down") }
            guard let p = users[user] else { return .unknownUser }
            return p == password ? .verified(user: user) : .wrongPassword
        }
        func storedSecret(user: String, scheme: String) async throws -> CredentialAnswer { .unknownUser }
        func lookupUser(_ user: String) async throws -> UserRecord? { users[user].map { _ in UserRecord(name: user) } }
    }

    func testAuthServiceOffersPlaintextOnlyWhenSafeAndAsksBackendsInOrder() async {
        let auth = AuthService(mechanisms: [TestPlain()],
                               backends: [Table(users: [:], down: true), Table(users: ["a@x": "pw"], down: false)])
        XCTAssertEqual(auth.offered(secure: false, loopback: false, plaintextOnLoopback: true), [])
        XCTAssertEqual(auth.offered(secure: false, loopback: true, plaintextOnLoopback: true), ["PLAIN"])
        XCTAssertEqual(auth.offered(secure: true, loopback: false, plaintextOnLoopback: false), ["PLAIN"])
        let ctx = SASLExchangeContext(service: "smtp", serverHostname: "mx", isSecure: true)
        let ok = await auth.begin(mechanism: "plain", context: ctx)!.start(initialResponse: Array("\0a@x\0pw".utf8))
        XCTAssertEqual(ok, .success(SASLIdentity(user: "a@x"), serverFinal: nil))
        // Refused by the second while the first is down: the password may be right on the first.
        let bad = await auth.begin(mechanism: "PLAIN", context: ctx)!.start(initialResponse: Array("\0a@x\0no".utf8))
        XCTAssertEqual(bad, .failure(.temporary("ldap down")))
        let refused = await AuthService(mechanisms: [TestPlain()], backends: [Table(users: ["a@x": "pw"], down: false)])
            .begin(mechanism: "PLAIN", context: ctx)!.start(initialResponse: Array("\0a@x\0no".utf8))
        XCTAssertEqual(refused, .failure(.authenticationFailed))
        let exchange = auth.begin(mechanism: "PLAIN", context: ctx)!
        let first = await exchange.start(initialResponse: nil)
        XCTAssertEqual(first, .challenge([]))
        let garbage = await exchange.respond(Array("garbage".utf8))
        XCTAssertEqual(garbage, .failure(.malformed("expected authzid NUL authcid NUL passwd")))
        let onlyDown = AuthService(mechanisms: [TestPlain()], backends: [Table(users: [:], down: true)])
        let tempfail = await onlyDown.begin(mechanism: "PLAIN", context: ctx)!.start(initialResponse: Array("\0a@x\0pw".utf8))
        XCTAssertEqual(tempfail, .failure(.temporary("ldap down")))
        XCTAssertNil(auth.begin(mechanism: "CRAM-MD5", context: ctx))
    }
}
