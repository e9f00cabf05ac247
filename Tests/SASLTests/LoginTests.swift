import PosternTestSupport
import PluginAPI
import XCTest
@testable import PosternSASLPlainCore
@testable import PosternSASLLoginCore

/// LOGIN driven byte by byte, without any backend: the test plays the auth service.
final class LoginTests: XCTestCase {
    private func exchange() -> any SASLServerExchange { LoginMechanism().makeExchange(context) }
    private let username = hex("55 73 65 72 6e 61 6d 65 3a")   // "Username:"
    private let password = hex("50 61 73 73 77 6f 72 64 3a")   // "Password:"

    func testMechanismIsPlaintextNamedLOGIN() {
        XCTAssertEqual(LoginMechanism().name, "LOGIN")
        XCTAssertTrue(LoginMechanism().isPlaintext)
    }

    func testFullExchangeWithoutInitialResponse() {
        let x = exchange()
        XCTAssertEqual(x.start(initialResponse: nil), .challenge(username))
        XCTAssertEqual(x.respond(b("user")), .challenge(password))
        XCTAssertEqual(x.respond(b("pencil")), .verify(.password(user: "user", password: "pencil")))
        XCTAssertEqual(x.credentialAnswer(.verified(user: "user")), .success(SASLIdentity(user: "user"), serverFinal: nil))
    }

    func testInitialResponseCarriesTheUsername() {
        let x = exchange()
        XCTAssertEqual(x.start(initialResponse: b("user@example.org")), .challenge(password))
        XCTAssertEqual(x.respond(b("pencil")), .verify(.password(user: "user@example.org", password: "pencil")))
        XCTAssertEqual(x.credentialAnswer(.verified(user: "user@example.org")),
                       .success(SASLIdentity(user: "user@example.org"), serverFinal: nil))
    }

    func testEmptyInitialResponseAsksForTheUsername() {
        let x = exchange()
        XCTAssertEqual(x.start(initialResponse: []), .challenge(username))
        XCTAssertEqual(x.respond(b("user")), .challenge(password))
    }

    func testCanonicalNameFromTheBackendIsTheIdentity() {
        let x = exchange()
        _ = x.start(initialResponse: b("User@Example.ORG"))
        _ = x.respond(b("pencil"))
        XCTAssertEqual(x.credentialAnswer(.verified(user: "user@example.org")),
                       .success(SASLIdentity(user: "user@example.org"), serverFinal: nil))
    }

    func testUTF8UsernameAndPassword() {
        let x = exchange()
        XCTAssertEqual(x.start(initialResponse: hex("6a c3 bc 72 67 65 6e")), .challenge(password))        // jürgen
        XCTAssertEqual(x.respond(hex("70 c3 a4 73 73 20 e2 82 ac f0 9f 94 91")),                           // päss €🔑
                       .verify(.password(user: "j\u{FC}rgen", password: "p\u{E4}ss \u{20AC}\u{1F511}")))
    }

    func testMalformedUsernames() {
        let cases: [([UInt8], String)] = [
            (b("us\0er"), "NUL in username"),
            (b("user\0"), "NUL in username"),
            (hex("c3 28"), "username is not UTF-8"),
            (hex("c0 af"), "username is not UTF-8"),
            (hex("ed a0 80"), "username is not UTF-8"),
            (hex("75 e2 82"), "username is not UTF-8"),
            (b(String(repeating: "u", count: 256)), "username longer than 255 bytes"),
        ]
        for (bytes, text) in cases {
            XCTAssertEqual(malformedText(exchange().start(initialResponse: bytes)), text, "\(bytes)")
            let x = exchange()
            _ = x.start(initialResponse: nil)
            XCTAssertEqual(malformedText(x.respond(bytes)), text, "\(bytes)")
        }
        let x = exchange()
        _ = x.start(initialResponse: nil)
        XCTAssertEqual(malformedText(x.respond([])), "empty username")
        XCTAssertEqual(exchange().start(initialResponse: b(String(repeating: "u", count: 255))), .challenge(password))
    }

    func testMalformedPasswords() {
        let cases: [([UInt8], String)] = [
            ([], "empty password"),
            (b("pen\0cil"), "NUL in password"),
            (hex("70 e9"), "password is not UTF-8"),
            (hex("f4 90 80 80"), "password is not UTF-8"),
            (b(String(repeating: "s3cret", count: 43)), "password longer than 255 bytes"),
        ]
        for (bytes, text) in cases {
            let x = exchange()
            _ = x.start(initialResponse: b("user"))
            let step = x.respond(bytes)
            XCTAssertEqual(malformedText(step), text)
            XCTAssertFalse(text.contains("s3cret"))
            XCTAssertEqual(x.respond(b("pencil")), .failure(.malformed("unexpected response")), "a malformed step ends the exchange")
        }
    }

    func testAnswersMapToStepsWithoutSayingWhichPartWasWrong() {
        func finish(_ answer: CredentialAnswer) -> SASLStep {
            let x = exchange()
            _ = x.start(initialResponse: b("user"))
            _ = x.respond(b("pencil"))
            return x.credentialAnswer(answer)
        }
        XCTAssertEqual(finish(.wrongPassword), .failure(.authenticationFailed))
        XCTAssertEqual(finish(.unknownUser), .failure(.authenticationFailed))
        XCTAssertEqual(finish(.suspended(user: "user")), .failure(.accountDisabled))
        XCTAssertEqual(finish(.unavailable(reason: "db down")), .failure(.temporary("db down")))
        guard case .failure(.temporary) = finish(.secret(user: "user", StoredSecret(scheme: "SCRAM-SHA-256", fields: [:]))) else {
            return XCTFail("a stored secret is never a verified password")
        }
    }

    func testOutOfOrderCallsFail() {
        let early = exchange()
        XCTAssertEqual(early.respond(b("user")), .failure(.malformed("unexpected response")), "respond before start")

        let twice = exchange()
        _ = twice.start(initialResponse: nil)
        XCTAssertEqual(twice.start(initialResponse: nil), .failure(.malformed("exchange already started")))

        let premature = exchange()
        _ = premature.start(initialResponse: nil)
        XCTAssertEqual(premature.credentialAnswer(.verified(user: "user")),
                       .failure(.temporary("credential answer without a pending check")), "no password was sent")

        let extra = exchange()
        _ = extra.start(initialResponse: b("user"))
        _ = extra.respond(b("pencil"))
        XCTAssertEqual(extra.respond(b("more")), .failure(.malformed("unexpected response")))
        XCTAssertEqual(extra.credentialAnswer(.verified(user: "user")), .failure(.temporary("credential answer without a pending check")))
    }
}
