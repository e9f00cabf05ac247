import PluginAPI
import XCTest
@testable import PosternSASLCRAMMD5Core

/// CRAM-MD5 byte by byte: RFC 2195's example, the stored HMAC-MD5 contexts against
/// swift-crypto's HMAC, malformed responses, wrong secrets, order.
final class CRAMMD5Tests: XCTestCase {
    static let rfcChallenge = "<1896.697170952@postoffice.reston.mci.net>"
    static let mechanism = CRAMMD5Mechanism(challenge: { _ in rfcChallenge })
    static let backend: MemorySecrets = {
        let derive = mechanism.storedSecretDerivation!
        let tim = try! derive.derive(.init(user: "tim", password: "tanstaaftanstaaf", iterations: 4096))
        let gone = try! derive.derive(.init(user: "gone", password: "tanstaaftanstaaf", iterations: 4096))
        return MemorySecrets(secrets: ["tim": ["CRAM-MD5": tim], "gone": ["CRAM-MD5": gone], "scramonly": [:]], disabled: ["gone"])
    }()
    let context = SASLExchangeContext(service: "imap", serverHostname: "postoffice.reston.mci.net", isSecure: false)

    func testRFC2195Example() async {
        let x = Self.mechanism.makeExchange(context)
        XCTAssertEqual(x.start(initialResponse: nil), .challenge(b(Self.rfcChallenge)))
        let step = await settle(x, x.respond(b("tim b913a602c7eda7a495b4e6e7334d3890")), Self.backend)
        XCTAssertEqual(step, .success(SASLIdentity(user: "tim"), serverFinal: nil))
    }

    func testStoredContextsGiveTheHMACOfAnyMessageAndKeyLength() {
        for password in ["k", "tanstaaftanstaaf", String(repeating: "x", count: 64), String(repeating: "long", count: 40), "p\u{E4}ss"] {
            let context = HMACMD5Context(password: b(password))
            for message in ["", "<1.2@h>", String(repeating: "m", count: 200)] {
                let expected = Array(HMAC<Insecure.MD5>.authenticationCode(for: b(message), using: SymmetricKey(data: b(password))))
                XCTAssertEqual(context.authenticationCode(b(message)), expected, "\(password) / \(message)")
            }
        }
        // Dovecot's {CRAM-MD5} of "tanstaaftanstaaf" is these 32 bytes (inner then outer state).
        let tim = HMACMD5Context(password: b("tanstaaftanstaaf"))
        XCTAssertEqual((tim.inner + tim.outer).count, 32)
    }

    func testWrongSecretUnknownUserSuspendedAndMissingSecret() async {
        let cases: [(String, SASLFailure)] = [
            ("tim b913a602c7eda7a495b4e6e7334d3891", .authenticationFailed),
            ("nobody b913a602c7eda7a495b4e6e7334d3890", .authenticationFailed),
            ("gone b913a602c7eda7a495b4e6e7334d3890", .accountDisabled),
            ("scramonly b913a602c7eda7a495b4e6e7334d3890", .temporary("no CRAM-MD5 secret")),
        ]
        for (response, expected) in cases {
            let x = Self.mechanism.makeExchange(context)
            _ = x.start(initialResponse: nil)
            let step = await settle(x, x.respond(b(response)), Self.backend)
            XCTAssertEqual(step, .failure(expected), response)
        }
        // The right answer to another challenge (a replay) fails.
        let fresh = CRAMMD5Mechanism().makeExchange(context)
        guard case .challenge(let c) = fresh.start(initialResponse: nil) else { return XCTFail() }
        XCTAssertNotEqual(c, b(Self.rfcChallenge))
        XCTAssertTrue(String(decoding: c, as: UTF8.self).hasSuffix("@postoffice.reston.mci.net>"))
        let replay = await settle(fresh, fresh.respond(b("tim b913a602c7eda7a495b4e6e7334d3890")), Self.backend)
        XCTAssertEqual(replay, .failure(.authenticationFailed))
    }

    func testMalformedResponses() {
        let bad: [[UInt8]] = [
            [], b("tim"), b("timb913a602c7eda7a495b4e6e7334d3890"), b(" b913a602c7eda7a495b4e6e7334d3890"),
            b("tim B913A602C7EDA7A495B4E6E7334D3890"), b("tim b913a602c7eda7a495b4e6e7334d389"),
            b("tim b913a602c7eda7a495b4e6e7334d38900"), b("tim b913a602c7eda7a495b4e6e7334d389g"),
            b("tim b913a602c7eda7a495b4e6e7334d3890 "), [0xFF, 0x20] + b("b913a602c7eda7a495b4e6e7334d3890"),
            b("t\u{0}m b913a602c7eda7a495b4e6e7334d3890"), [UInt8](repeating: 0x61, count: 600) + b(" b913a602c7eda7a495b4e6e7334d3890"),
        ]
        for response in bad {
            let x = Self.mechanism.makeExchange(context)
            _ = x.start(initialResponse: nil)
            XCTAssertTrue(isFailure(x.respond(response), .malformed("")), "\(response)")
        }
        // A user name with a space is taken: the digest is after the last space.
        XCTAssertEqual(try CRAMMD5Exchange.parse(b("tim smith b913a602c7eda7a495b4e6e7334d3890")).get().0, "tim smith")
    }

    func testOrder() {
        let x = Self.mechanism.makeExchange(context)
        XCTAssertTrue(isFailure(x.start(initialResponse: b("tim b913a602c7eda7a495b4e6e7334d3890"))), "no initial response")
        let y = Self.mechanism.makeExchange(context)
        XCTAssertTrue(isFailure(y.respond(b("tim b913a602c7eda7a495b4e6e7334d3890"))), "respond before start")
        let z = Self.mechanism.makeExchange(context)
        XCTAssertTrue(isFailure(z.credentialAnswer(.unknownUser)), "answer without a query")
        let w = Self.mechanism.makeExchange(context)
        XCTAssertEqual(w.start(initialResponse: []), .challenge(b(Self.rfcChallenge)), "an empty initial response is no response")
        XCTAssertTrue(isFailure(w.start(initialResponse: nil)), "second start")
    }

    func testDeclaresItsStoredSecret() throws {
        let derivation = try XCTUnwrap(Self.mechanism.storedSecretDerivation)
        XCTAssertEqual(derivation.scheme, "CRAM-MD5")
        XCTAssertThrowsError(try derivation.derive(.init(user: "u", password: "a\u{0}b", iterations: 1)))
        XCTAssertFalse(Self.mechanism.isPlaintext)
        XCTAssertEqual(SASLCRAMMD5Registration.registration.manifest.name, "sasl-cram-md5")
    }
}
