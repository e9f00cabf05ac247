import Foundation
import PluginAPI
@testable import PosternSASLAnonymousCore
@testable import PosternSASLExternalCore
import PosternHost
import PosternTestSupport
import XCTest

/// ANONYMOUS (RFC 4505) and EXTERNAL (RFC 4422 App. A) step machines byte by byte, and the
/// certificate-to-account mapping over certificates made with openssl.
final class AnonymousExternalTests: XCTestCase {
    final class Traces: @unchecked Sendable {
        var lines: [String] = []
    }

    func anonymous(_ traces: Traces) -> AnonymousExchange {
        AnonymousExchange(account: "guest@example.org") { traces.lines.append($0) }
    }

    func testAnonymousWithTraceInInitialResponse() {
        let traces = Traces()
        let x = anonymous(traces)
        XCTAssertEqual(x.start(initialResponse: Array("sirhc@example.com".utf8)), .verify(.account(user: "guest@example.org")))
        XCTAssertEqual(x.credentialAnswer(.verified(user: "guest@example.org")),
                       .success(SASLIdentity(user: "guest@example.org", isAnonymous: true), serverFinal: nil))
        XCTAssertEqual(traces.lines, ["sirhc@example.com"])
    }

    func testAnonymousChallengeThenEmptyTrace() {
        let traces = Traces()
        let x = anonymous(traces)
        XCTAssertEqual(x.start(initialResponse: nil), .challenge([]))
        XCTAssertEqual(x.respond([]), .verify(.account(user: "guest@example.org")))
        XCTAssertEqual(traces.lines, [""])
    }

    func testAnonymousRefusesBadTraces() {
        let bad: [(String, [UInt8])] = [
            ("256 characters", Array(String(repeating: "é", count: 256).utf8)),
            ("invalid UTF-8", [0x61, 0xFF, 0x62]),
            ("control character", Array("a\nb".utf8)),
            ("NUL", [0x61, 0x00]),
        ]
        for (name, trace) in bad {
            let traces = Traces()
            guard case .failure(.malformed) = anonymous(traces).start(initialResponse: trace) else { return XCTFail("\(name) accepted") }
            XCTAssertEqual(traces.lines, [], "\(name) logged")
        }
        // 255 characters (510 bytes of UTF-8) is the limit, not 255 bytes.
        XCTAssertEqual(anonymous(Traces()).start(initialResponse: Array(String(repeating: "é", count: 255).utf8)),
                       .verify(.account(user: "guest@example.org")))
    }

    func testAnonymousGuestAccountMissingOrDisabled() {
        let x = anonymous(Traces()), y = anonymous(Traces())
        _ = x.start(initialResponse: [])
        XCTAssertEqual(x.credentialAnswer(.unknownUser), .failure(.authenticationFailed))
        _ = y.start(initialResponse: [])
        XCTAssertEqual(y.credentialAnswer(.suspended(user: "guest@example.org")), .failure(.accountDisabled))
    }

    func testAnonymousIsMarkedForSMTPToRefuse() {
        let m = AnonymousMechanism(account: "g@x") { _ in }
        XCTAssertTrue(m.isAnonymous)
        XCTAssertFalse(m.isPlaintext)
    }

    // MARK: - EXTERNAL

    static var certificates: TestCertificates!

    override class func setUp() {
        super.setUp()
        certificates = try? TestCertificates(TempDir("external-unit"))
    }

    var certs: TestCertificates {
        get throws {
            guard let c = Self.certificates else { throw SystemError.message("openssl could not make the test certificates") }
            return c
        }
    }

    let map = CertificateIdentityMap(sources: [.sanEmail, .subjectEmail, .subjectCN], cnDomain: "example.org")

    func testMappingEachKindOfName() throws {
        let c = try certs
        XCTAssertEqual(map.account(certificateDER: c.sanAlice.der), .success("alice@example.org"))
        XCTAssertEqual(map.account(certificateDER: c.subjectEmailBob.der), .success("bob@example.org"))
        XCTAssertEqual(map.account(certificateDER: c.cnOnlyCarol.der), .success("carol@example.org"))
        XCTAssertEqual(map.account(certificateDER: c.nameless.der), .failure(.noName))
        // Without subject-cn (the default map), a CN-only certificate names nobody.
        let strict = CertificateIdentityMap(sources: [.sanEmail, .subjectEmail], cnDomain: nil)
        XCTAssertEqual(strict.account(certificateDER: c.cnOnlyCarol.der), .failure(.noName))
        guard case .failure(.unreadable) = map.account(certificateDER: [0x30, 0x03, 0x02, 0x01]) else { return XCTFail("garbage DER parsed") }
    }

    func external(_ certificate: [UInt8]?) -> ExternalExchange {
        ExternalExchange(certificate: certificate, map: map) { _ in }
    }

    func testExternalWithEmptyAndMatchingAuthzid() throws {
        let der = try certs.sanAlice.der
        let x = external(der)
        XCTAssertEqual(x.start(initialResponse: []), .verify(.account(user: "alice@example.org")))
        XCTAssertEqual(x.credentialAnswer(.verified(user: "alice@example.org")), .success(SASLIdentity(user: "alice@example.org"), serverFinal: nil))
        let y = external(der)
        XCTAssertEqual(y.start(initialResponse: nil), .challenge([]))
        XCTAssertEqual(y.respond(Array("Alice@Example.org".utf8)), .verify(.account(user: "alice@example.org")))
    }

    func testExternalRefusals() throws {
        let der = try certs.sanAlice.der
        XCTAssertEqual(external(der).start(initialResponse: Array("bob@example.org".utf8)), .failure(.authorizationFailed))
        XCTAssertEqual(external(nil).start(initialResponse: []), .failure(.authenticationFailed))
        XCTAssertEqual(external(try certs.nameless.der).start(initialResponse: []), .failure(.authenticationFailed))
        guard case .failure(.malformed) = external(der).start(initialResponse: [0xFF]) else { return XCTFail("bad UTF-8 authzid") }
        guard case .failure(.malformed) = external(der).start(initialResponse: Array(repeating: 0x61, count: 256)) else { return XCTFail("long authzid") }
        let disabled = external(der)
        _ = disabled.start(initialResponse: [])
        XCTAssertEqual(disabled.credentialAnswer(.suspended(user: "alice@example.org")), .failure(.accountDisabled))
        let unknown = external(der)
        _ = unknown.start(initialResponse: [])
        XCTAssertEqual(unknown.credentialAnswer(.unknownUser), .failure(.authenticationFailed))
    }

    func testAccountQueryThroughTheAuthService() async throws {
        struct Accounts: CredentialBackend {
            func verifyPassword(user: String, password: String) async throws -> CredentialAnswer { .unknownUser }
            func storedSecret(user: String, scheme: String) async throws -> CredentialAnswer { .unknownUser }
            func lookupUser(_ user: String) async throws -> UserRecord? {
                switch user.lowercased() {
                case "alice@example.org": return UserRecord(name: "alice@example.org")
                case "carol@example.org": return UserRecord(name: "carol@example.org", enabled: false)
                default: return nil
                }
            }
        }
        let service = AuthService(mechanisms: [ExternalMechanism(map: map) { _ in }], backends: [Accounts()])
        let c = try certs
        func run(_ der: [UInt8]) async -> AuthExchange.Progress? {
            let x = service.begin(mechanism: "external", context: SASLExchangeContext(service: "imap", serverHostname: "h", isSecure: true,
                                                                                       clientCertificate: der))
            return await x?.start(initialResponse: [])
        }
        let alice = await run(c.sanAlice.der)
        XCTAssertEqual(alice, .success(SASLIdentity(user: "alice@example.org"), serverFinal: nil))
        let carol = await run(c.cnOnlyCarol.der)
        XCTAssertEqual(carol, .failure(.accountDisabled))
        let bob = await run(c.subjectEmailBob.der)
        XCTAssertEqual(bob, .failure(.authenticationFailed))
    }
}
