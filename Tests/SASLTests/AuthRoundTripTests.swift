import PosternTestSupport
import PluginAPI
import XCTest
@testable import PosternSASLPlainCore
@testable import PosternSASLLoginCore

/// Accounts whose secrets are SCRAM storage strings, as a database column holds them; every
/// password check parses the string and runs PBKDF2. Checks the password before telling a
/// suspended account apart, so only the owner learns it is suspended.
struct SecretBackend: CredentialBackend {
    struct Account: Sendable {
        var name: String
        var secret: String
        var enabled = true
    }

    var accounts: [String: Account] = [:]

    init(_ accounts: [Account]) {
        for a in accounts { self.accounts[a.name.lowercased()] = a }
    }

    func verifyPassword(user: String, password: String) async throws -> CredentialAnswer {
        guard let account = accounts[user.lowercased()] else { return .unknownUser }
        guard let secret = try? SCRAMSecret(encoded: account.secret) else { return .unavailable(reason: "unreadable secret") }
        guard secret.verify(password: password) else { return .wrongPassword }
        return account.enabled ? .verified(user: account.name) : .suspended(user: account.name)
    }

    func storedSecret(user: String, scheme: String) async throws -> CredentialAnswer {
        guard let account = accounts[user.lowercased()], let secret = try? SCRAMSecret(encoded: account.secret),
              secret.algorithm.rawValue == scheme else { return .unknownUser }
        return .secret(user: account.name, secret.storedSecret)
    }

    func lookupUser(_ user: String) async throws -> UserRecord? {
        accounts[user.lowercased()].map { UserRecord(name: $0.name, enabled: $0.enabled) }
    }
}

/// A backend whose server is down.
struct DownBackend: CredentialBackend {
    struct Down: Error, CustomStringConvertible { var description: String { "connection refused" } }
    func verifyPassword(user: String, password: String) async throws -> CredentialAnswer { throw Down() }
    func storedSecret(user: String, scheme: String) async throws -> CredentialAnswer { throw Down() }
    func lookupUser(_ user: String) async throws -> UserRecord? { throw Down() }
}

/// A stand-in for a mechanism that never sees the password (SCRAM), to show what `offered` keeps.
struct HashedStub: SASLMechanism {
    var name: String { "SCRAM-SHA-256" }
    var isPlaintext: Bool { false }
    func makeExchange(_ context: SASLExchangeContext) -> any SASLServerExchange { PlainMechanism().makeExchange(context) }
}

/// The two mechanisms through the auth service's driver, with real PBKDF2 behind every check.
final class AuthRoundTripTests: XCTestCase {
    // Few iterations keep the suite quick; the RFC vectors elsewhere run the full 4096.
    static let backend = SecretBackend([
        .init(name: "user@example.org", secret: try! SCRAMSecret.derive(password: "pencil", iterations: 64).encoded),
        .init(name: "j\u{FC}rgen@example.org", secret: try! SCRAMSecret.derive(password: "p\u{E4}ss \u{20AC}", iterations: 64).encoded),
        .init(name: "old@example.org", secret: try! SCRAMSecret.derive(password: "legacy", algorithm: .sha1, iterations: 64).encoded),
        .init(name: "gone@example.org", secret: try! SCRAMSecret.derive(password: "pencil", iterations: 64).encoded, enabled: false),
    ])
    static let otherDomain = SecretBackend([
        .init(name: "user@example.net", secret: try! SCRAMSecret.derive(password: "crayon", iterations: 64).encoded),
    ])

    private func service(_ backends: [any CredentialBackend] = [otherDomain, backend]) -> AuthService {
        AuthService(mechanisms: [PlainMechanism(), LoginMechanism()], backends: backends)
    }

    private func plain(_ message: [UInt8], backends: [any CredentialBackend] = [otherDomain, backend]) async throws -> AuthExchange.Progress {
        let x = try XCTUnwrap(service(backends).begin(mechanism: "PLAIN", context: context))
        return await x.start(initialResponse: message)
    }

    private func login(_ user: String, _ password: String) async throws -> AuthExchange.Progress {
        let x = try XCTUnwrap(service().begin(mechanism: "login", context: context))
        let first = await x.start(initialResponse: nil)
        XCTAssertEqual(first, .challenge(b("Username:")))
        let second = await x.respond(b(user))
        XCTAssertEqual(second, .challenge(b("Password:")))
        return await x.respond(b(password))
    }

    func testPlainSucceedsWithTheCanonicalName() async throws {
        let progress = try await plain(b("\0User@Example.ORG\0pencil"))
        XCTAssertEqual(progress, .success(SASLIdentity(user: "user@example.org"), serverFinal: nil))
    }

    func testPlainAfterEmptyChallenge() async throws {
        let x = try XCTUnwrap(service().begin(mechanism: "plain", context: context))
        let challenge = await x.start(initialResponse: nil)
        XCTAssertEqual(challenge, .challenge([]))
        let result = await x.respond(b("\0user@example.org\0pencil"))
        XCTAssertEqual(result, .success(SASLIdentity(user: "user@example.org"), serverFinal: nil))
    }

    func testPlainCarriesAnotherAuthzidForTheServiceToDecide() async throws {
        let progress = try await plain(b("postmaster@example.org\0user@example.org\0pencil"))
        XCTAssertEqual(progress, .success(SASLIdentity(user: "user@example.org", authorizationIdentity: "postmaster@example.org"), serverFinal: nil))
    }

    func testWrongPasswordAndUnknownUserLookAlike() async throws {
        let wrong = try await plain(b("\0user@example.org\0Pencil"))
        let unknown = try await plain(b("\0nobody@example.org\0pencil"))
        XCTAssertEqual(wrong, .failure(.authenticationFailed))
        XCTAssertEqual(unknown, .failure(.authenticationFailed))
        let loginWrong = try await login("user@example.org", "pencil!")
        let loginUnknown = try await login("nobody@example.org", "pencil")
        XCTAssertEqual(loginWrong, .failure(.authenticationFailed))
        XCTAssertEqual(loginUnknown, .failure(.authenticationFailed))
    }

    func testSuspendedAccountOnlyWithTheRightPassword() async throws {
        let right = try await plain(b("\0gone@example.org\0pencil"))
        let wrong = try await plain(b("\0gone@example.org\0guess"))
        XCTAssertEqual(right, .failure(.accountDisabled))
        XCTAssertEqual(wrong, .failure(.authenticationFailed))
        let viaLogin = try await login("gone@example.org", "pencil")
        XCTAssertEqual(viaLogin, .failure(.accountDisabled))
    }

    func testUTF8AccountAndPasswordThroughPBKDF2() async throws {
        let message = hex("00 6a c3 bc 72 67 65 6e 40 65 78 61 6d 70 6c 65 2e 6f 72 67 00 70 c3 a4 73 73 20 e2 82 ac")
        let progress = try await plain(message)
        XCTAssertEqual(progress, .success(SASLIdentity(user: "j\u{FC}rgen@example.org"), serverFinal: nil))
        let viaLogin = try await login("j\u{FC}rgen@example.org", "p\u{E4}ss \u{20AC}")
        XCTAssertEqual(viaLogin, .success(SASLIdentity(user: "j\u{FC}rgen@example.org"), serverFinal: nil))
    }

    func testSHA1SecretsServePasswordChecksToo() async throws {
        let progress = try await plain(b("\0old@example.org\0legacy"))
        XCTAssertEqual(progress, .success(SASLIdentity(user: "old@example.org"), serverFinal: nil))
    }

    func testLoginRoundTrip() async throws {
        let progress = try await login("user@example.org", "pencil")
        XCTAssertEqual(progress, .success(SASLIdentity(user: "user@example.org"), serverFinal: nil))
        let x = try XCTUnwrap(service().begin(mechanism: "LOGIN", context: context))
        let first = await x.start(initialResponse: b("user@example.net"))
        XCTAssertEqual(first, .challenge(b("Password:")))
        let result = await x.respond(b("crayon"))
        XCTAssertEqual(result, .success(SASLIdentity(user: "user@example.net"), serverFinal: nil), "answered by the first backend")
    }

    func testBackendDownIsTemporaryUnlessAnotherKnowsTheUser() async throws {
        let downOnly = try await plain(b("\0user@example.org\0pencil"), backends: [DownBackend()])
        XCTAssertEqual(downOnly, .failure(.temporary("connection refused")))
        let downFirst = try await plain(b("\0user@example.org\0pencil"), backends: [DownBackend(), Self.backend])
        XCTAssertEqual(downFirst, .success(SASLIdentity(user: "user@example.org"), serverFinal: nil))
        let unknownElsewhere = try await plain(b("\0nobody@example.org\0pencil"), backends: [DownBackend(), Self.backend])
        XCTAssertEqual(unknownElsewhere, .failure(.temporary("connection refused")), "cannot tell it is unknown while a backend is down")
    }

    func testMalformedMessagesNeverReachTheBackends() async throws {
        let progress = try await plain(b("\0user@example.org\0pencil\0"), backends: [DownBackend()])
        XCTAssertEqual(progress, .failure(.malformed("more than two NUL separators")))
    }

    func testStoredSecretAnswerServesSCRAMLater() async throws {
        let answer = await AuthService.ask([Self.backend], .storedSecret(user: "USER@example.org", scheme: "SCRAM-SHA-256"))
        guard case .secret(let user, let stored) = answer else { return XCTFail("\(answer)") }
        XCTAssertEqual(user, "user@example.org")
        XCTAssertTrue(try SCRAMSecret(stored).verify(password: "pencil"))
    }

    func testUnknownMechanismIsNotBegun() {
        XCTAssertNil(service().begin(mechanism: "CRAM-MD5", context: context))
        XCTAssertNotNil(service().begin(mechanism: "Login", context: context))
    }

    func testOfferedHidesBothOnInsecureNonLoopback() {
        let auth = AuthService(mechanisms: [PlainMechanism(), LoginMechanism(), HashedStub()], backends: [Self.backend])
        XCTAssertEqual(auth.offered(secure: false, loopback: false, plaintextOnLoopback: true), ["SCRAM-SHA-256"])
        XCTAssertEqual(auth.offered(secure: false, loopback: false, plaintextOnLoopback: false), ["SCRAM-SHA-256"])
        XCTAssertEqual(auth.offered(secure: false, loopback: true, plaintextOnLoopback: false), ["SCRAM-SHA-256"])
        XCTAssertEqual(auth.offered(secure: false, loopback: true, plaintextOnLoopback: true), ["PLAIN", "LOGIN", "SCRAM-SHA-256"])
        XCTAssertEqual(auth.offered(secure: true, loopback: false, plaintextOnLoopback: false), ["PLAIN", "LOGIN", "SCRAM-SHA-256"])
        XCTAssertEqual(service().offered(secure: false, loopback: false, plaintextOnLoopback: false), [])
    }
}
