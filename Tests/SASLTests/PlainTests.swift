import PosternTestSupport
import PluginAPI
import XCTest
@testable import PosternSASLPlainCore
@testable import PosternSASLLoginCore

/// PLAIN (RFC 4616) driven byte by byte, without any backend: the test plays the auth service.
final class PlainTests: XCTestCase {
    private func exchange() -> any SASLServerExchange { PlainMechanism().makeExchange(context) }

    func testMechanismIsPlaintextNamedPLAIN() {
        XCTAssertEqual(PlainMechanism().name, "PLAIN")
        XCTAssertTrue(PlainMechanism().isPlaintext)
    }

    func testInitialResponseAsksBackendThenSucceeds() {
        let x = exchange()
        XCTAssertEqual(x.start(initialResponse: hex("00 75736572 00 70656e63696c")),   // \0user\0pencil
                       .verify(.password(user: "user", password: "pencil")))
        XCTAssertEqual(x.credentialAnswer(.verified(user: "user")),
                       .success(SASLIdentity(user: "user"), serverFinal: nil))
    }

    func testWithoutInitialResponseSendsEmptyChallenge() {
        let x = exchange()
        XCTAssertEqual(x.start(initialResponse: nil), .challenge([]))
        XCTAssertEqual(x.respond(b("\0user\0pencil")), .verify(.password(user: "user", password: "pencil")))
        XCTAssertEqual(x.credentialAnswer(.verified(user: "user")), .success(SASLIdentity(user: "user"), serverFinal: nil))
    }

    func testEmptyInitialResponseMeansSendEmptyChallenge() {
        let x = exchange()
        XCTAssertEqual(x.start(initialResponse: []), .challenge([]))
        XCTAssertEqual(x.respond(b("\0user\0pencil")), .verify(.password(user: "user", password: "pencil")))
    }

    func testAuthzidDifferentFromUserTravelsInTheIdentity() {
        let x = exchange()
        XCTAssertEqual(x.start(initialResponse: b("admin@example.org\0user@example.org\0pencil")),
                       .verify(.password(user: "user@example.org", password: "pencil")))
        XCTAssertEqual(x.credentialAnswer(.verified(user: "user@example.org")),
                       .success(SASLIdentity(user: "user@example.org", authorizationIdentity: "admin@example.org"), serverFinal: nil))
    }

    func testAuthzidNamingTheUserItselfIsDropped() {
        let same = exchange()
        _ = same.start(initialResponse: b("user\0user\0pencil"))
        XCTAssertEqual(same.credentialAnswer(.verified(user: "user")), .success(SASLIdentity(user: "user"), serverFinal: nil))
        // The backend canonicalised "User" to "user"; an authzid of either names the same account.
        for authzid in ["User", "user"] {
            let x = exchange()
            _ = x.start(initialResponse: b("\(authzid)\0User\0pencil"))
            XCTAssertEqual(x.credentialAnswer(.verified(user: "user")), .success(SASLIdentity(user: "user"), serverFinal: nil))
        }
    }

    func testUTF8NamesAndPasswordAreKeptAsSent() {
        // authzid "zoë", authcid "jürgen@bücher.example", password "pässwörd €" in precomposed UTF-8.
        let message = hex("""
            7a 6f c3 ab 00
            6a c3 bc 72 67 65 6e 40 62 c3 bc 63 68 65 72 2e 65 78 61 6d 70 6c 65 00
            70 c3 a4 73 73 77 c3 b6 72 64 20 e2 82 ac
            """)
        let x = exchange()
        XCTAssertEqual(x.start(initialResponse: message),
                       .verify(.password(user: "j\u{FC}rgen@b\u{FC}cher.example", password: "p\u{E4}ssw\u{F6}rd \u{20AC}")))
        XCTAssertEqual(x.credentialAnswer(.verified(user: "j\u{FC}rgen@b\u{FC}cher.example")),
                       .success(SASLIdentity(user: "j\u{FC}rgen@b\u{FC}cher.example", authorizationIdentity: "zo\u{EB}"), serverFinal: nil))
        // A four-byte scalar (U+1F511) in the password.
        XCTAssertEqual(PlainMessage.parse(hex("00 75 00 f0 9f 94 91")),
                       .success(PlainMessage(authzid: nil, authcid: "u", password: "\u{1F511}")))
    }

    func testMissingNULs() {
        XCTAssertEqual(malformedText(exchange().start(initialResponse: b("userpencil"))), "expected authzid NUL authcid NUL password")
        XCTAssertEqual(malformedText(exchange().start(initialResponse: b("user\0pencil"))), "expected authzid NUL authcid NUL password")
        XCTAssertEqual(malformedText(exchange().start(initialResponse: b("\0"))), "expected authzid NUL authcid NUL password")
    }

    func testExtraNULs() {
        for message in ["\0user\0pen\0cil", "\0user\0pencil\0", "a\0user\0\0", "\0\0\0", "\0\0user\0pencil"] {
            XCTAssertEqual(malformedText(exchange().start(initialResponse: b(message))), "more than two NUL separators", message.debugDescription)
        }
    }

    func testEmptyAuthcidOrPassword() {
        XCTAssertEqual(malformedText(exchange().start(initialResponse: b("\0\0pencil"))), "empty authcid")
        XCTAssertEqual(malformedText(exchange().start(initialResponse: b("admin\0\0pencil"))), "empty authcid")
        XCTAssertEqual(malformedText(exchange().start(initialResponse: b("\0user\0"))), "empty password")
        XCTAssertEqual(malformedText(exchange().start(initialResponse: b("\0\0"))), "empty authcid")
    }

    func testFieldsUpTo255BytesAndNoLonger() {
        let max = String(repeating: "a", count: 255), over = String(repeating: "a", count: 256)
        // 255 bytes made of two-byte scalars and one more byte: the limit counts bytes, not characters.
        let utf8Max = String(repeating: "\u{E9}", count: 127) + "x"
        XCTAssertEqual(utf8Max.utf8.count, 255)
        XCTAssertEqual(PlainMessage.parse(b("\(max)\0\(utf8Max)\0\(max)")),
                       .success(PlainMessage(authzid: max, authcid: utf8Max, password: max)))
        XCTAssertEqual(malformedText(exchange().start(initialResponse: b("\(over)\0user\0pencil"))), "authzid longer than 255 bytes")
        XCTAssertEqual(malformedText(exchange().start(initialResponse: b("\0\(over)\0pencil"))), "authcid longer than 255 bytes")
        XCTAssertEqual(malformedText(exchange().start(initialResponse: b("\0user\0\(over)"))), "password longer than 255 bytes")
        XCTAssertEqual(malformedText(exchange().start(initialResponse: b("\0user\0" + utf8Max + "\u{E9}"))), "password longer than 255 bytes")
    }

    func testInvalidUTF8InEachField() {
        let invalid: [(String, [UInt8])] = [
            ("lone continuation", hex("80")),
            ("bad second byte", hex("c3 28")),
            ("overlong slash", hex("c0 af")),
            ("overlong NUL", hex("c0 80")),
            ("surrogate", hex("ed a0 80")),
            ("truncated", hex("e2 82")),
            ("beyond U+10FFFF", hex("f4 90 80 80")),
            ("Latin-1", hex("e9")),
        ]
        for (what, bad) in invalid {
            XCTAssertEqual(malformedText(exchange().start(initialResponse: bad + [0] + b("user") + [0] + b("pw"))), "authzid is not UTF-8", what)
            XCTAssertEqual(malformedText(exchange().start(initialResponse: [0] + b("u") + bad + [0] + b("pw"))), "authcid is not UTF-8", what)
            XCTAssertEqual(malformedText(exchange().start(initialResponse: [0] + b("user") + [0] + b("p") + bad)), "password is not UTF-8", what)
        }
    }

    func testErrorTextsNeverCarryThePassword() {
        for message in [b("\0user\0s3cret\0"), b("\0user\0") + hex("c3 28") + b("s3cret"), b("\0user\0" + String(repeating: "s3cret", count: 50))] {
            let text = malformedText(exchange().start(initialResponse: message))
            XCTAssertNotNil(text)
            XCTAssertFalse(text?.contains("s3cret") ?? true)
        }
    }

    func testAnswersMapToStepsWithoutSayingWhichPartWasWrong() {
        func finish(_ answer: CredentialAnswer) -> SASLStep {
            let x = exchange()
            _ = x.start(initialResponse: b("\0user\0pencil"))
            return x.credentialAnswer(answer)
        }
        XCTAssertEqual(finish(.wrongPassword), .failure(.authenticationFailed))
        XCTAssertEqual(finish(.unknownUser), .failure(.authenticationFailed))
        XCTAssertEqual(finish(.suspended(user: "user")), .failure(.accountDisabled))
        XCTAssertEqual(finish(.unavailable(reason: "ldap down")), .failure(.temporary("ldap down")))
        guard case .failure(.temporary) = finish(.secret(user: "user", StoredSecret(scheme: "SCRAM-SHA-256", fields: [:]))) else {
            return XCTFail("a stored secret is never a verified password")
        }
    }

    func testOutOfOrderCallsFail() {
        let x = exchange()
        XCTAssertEqual(x.start(initialResponse: nil), .challenge([]))
        XCTAssertEqual(x.start(initialResponse: nil), .failure(.malformed("exchange already started")))
        XCTAssertEqual(x.respond(b("\0user\0pencil")), .failure(.malformed("unexpected response")), "the exchange is over")

        let y = exchange()
        _ = y.start(initialResponse: b("\0user\0pencil"))
        XCTAssertEqual(y.respond(b("\0user\0pencil")), .failure(.malformed("unexpected response")), "one message only")
        XCTAssertEqual(y.credentialAnswer(.verified(user: "user")), .failure(.temporary("credential answer without a pending check")))

        let z = exchange()
        XCTAssertEqual(z.credentialAnswer(.verified(user: "user")), .failure(.temporary("credential answer without a pending check")))
        XCTAssertEqual(z.respond(b("\0user\0pencil")), .failure(.malformed("unexpected response")))
    }

    func testAfterSuccessNothingMoreIsAccepted() {
        let x = exchange()
        _ = x.start(initialResponse: b("\0user\0pencil"))
        _ = x.credentialAnswer(.verified(user: "user"))
        XCTAssertEqual(x.credentialAnswer(.verified(user: "user")), .failure(.temporary("credential answer without a pending check")))
        XCTAssertEqual(x.respond(b("\0other\0pw")), .failure(.malformed("unexpected response")))
    }
}
