import PluginAPI
@testable import PosternSASLOAuthCore
import XCTest

/// OAUTHBEARER and XOAUTH2 client messages, byte by byte: RFC 7628's examples, every malformed
/// shape the parser must refuse, and the step machine's order of verify, account, error challenge.
final class OAuthMessageTests: XCTestCase {
    func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    // RFC 7628 §4.1, with the %x01 separators.
    let rfcExample = Array("n,a=user@example.com,\u{1}host=server.example.com\u{1}port=143\u{1}auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\u{1}\u{1}".utf8)

    func testRFC7628Example() throws {
        let m = try OAuthMessage.parseOAuthBearer(rfcExample).get()
        XCTAssertEqual(m, OAuthClientMessage(token: "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==", user: "user@example.com",
                                             host: "server.example.com", port: 143))
    }

    func testNoAuthzidAndNoHost() throws {
        let m = try OAuthMessage.parseOAuthBearer(bytes("n,,\u{1}auth=bearer abc.def-ghi_jkl~m+n/o\u{1}\u{1}")).get()
        XCTAssertEqual(m.token, "abc.def-ghi_jkl~m+n/o")
        XCTAssertNil(m.user)
        XCTAssertNil(m.port)
    }

    func testEscapedAuthzid() throws {
        let m = try OAuthMessage.parseOAuthBearer(bytes("y,a=we=2Cird=3Dname@example.com,\u{1}auth=Bearer t\u{1}\u{1}")).get()
        XCTAssertEqual(m.user, "we,ird=name@example.com")
    }

    func testMalformedOAuthBearerMessages() {
        let cases: [(String, [UInt8])] = [
            ("empty", []),
            ("the client's error acknowledgement as first message", [0x01]),
            ("no kvsep after header", bytes("n,,auth=Bearer t")),
            ("missing auth", bytes("n,,\u{1}host=h\u{1}port=1\u{1}\u{1}")),
            ("auth not Bearer", bytes("n,,\u{1}auth=Basic dXNlcjpwdw==\u{1}\u{1}")),
            ("empty token", bytes("n,,\u{1}auth=Bearer \u{1}\u{1}")),
            ("token with space", bytes("n,,\u{1}auth=Bearer a b\u{1}\u{1}")),
            ("token with = inside", bytes("n,,\u{1}auth=Bearer a=b\u{1}\u{1}")),
            ("list not closed", bytes("n,,\u{1}auth=Bearer t\u{1}")),
            ("no separator at all after pairs", bytes("n,,\u{1}auth=Bearer t")),
            ("pair without =", bytes("n,,\u{1}authBearer\u{1}\u{1}")),
            ("key not alpha", bytes("n,,\u{1}au th=x\u{1}auth=Bearer t\u{1}\u{1}")),
            ("empty key", bytes("n,,\u{1}=x\u{1}auth=Bearer t\u{1}\u{1}")),
            ("duplicate auth", bytes("n,,\u{1}auth=Bearer t\u{1}auth=Bearer u\u{1}\u{1}")),
            ("NUL in value", [UInt8]("n,,\u{1}host=a".utf8) + [0] + [UInt8]("\u{1}auth=Bearer t\u{1}\u{1}".utf8)),
            ("8-bit byte in value", [UInt8]("n,,\u{1}host=".utf8) + [0xC3, 0xA9] + [UInt8]("\u{1}auth=Bearer t\u{1}\u{1}".utf8)),
            ("bad port", bytes("n,,\u{1}port=99999\u{1}auth=Bearer t\u{1}\u{1}")),
            ("port not digits", bytes("n,,\u{1}port=+1\u{1}auth=Bearer t\u{1}\u{1}")),
            ("channel binding asked", bytes("p=tls-unique,,\u{1}auth=Bearer t\u{1}\u{1}")),
            ("unknown cb flag", bytes("x,,\u{1}auth=Bearer t\u{1}\u{1}")),
            ("gs2 header without trailing comma", bytes("n,a=u\u{1}auth=Bearer t\u{1}\u{1}")),
            ("gs2 extra field", bytes("n,a=u,b,\u{1}auth=Bearer t\u{1}\u{1}")),
            ("authzid field not a=", bytes("n,u=x,\u{1}auth=Bearer t\u{1}\u{1}")),
            ("bad saslname escape", bytes("n,a=x=41,\u{1}auth=Bearer t\u{1}\u{1}")),
            ("gs2 header not UTF-8", [UInt8]("n,a=".utf8) + [0xFF] + [UInt8](",\u{1}auth=Bearer t\u{1}\u{1}".utf8)),
            ("too long", bytes("n,,\u{1}auth=Bearer " + String(repeating: "a", count: 17_000) + "\u{1}\u{1}")),
        ]
        for (name, message) in cases {
            guard case .failure(.malformed) = OAuthMessage.parseOAuthBearer(message) else {
                return XCTFail("\(name): accepted \(message)")
            }
        }
    }

    func testXOAuth2Message() throws {
        // Google's documented example shape.
        let m = try OAuthMessage.parseXOAuth2(bytes("user=someuser@example.com\u{1}auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\u{1}\u{1}")).get()
        XCTAssertEqual(m, OAuthClientMessage(token: "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg", user: "someuser@example.com"))
    }

    func testMalformedXOAuth2Messages() {
        let cases: [(String, [UInt8])] = [
            ("missing user", bytes("auth=Bearer t\u{1}\u{1}")),
            ("empty user", bytes("user=\u{1}auth=Bearer t\u{1}\u{1}")),
            ("missing auth", bytes("user=a@b\u{1}\u{1}")),
            ("not closed", bytes("user=a@b\u{1}auth=Bearer t\u{1}")),
            ("no separators", bytes("user=a@b auth=Bearer t")),
            ("an OAUTHBEARER message", bytes("n,,\u{1}auth=Bearer t\u{1}\u{1}")),
            ("empty", []),
        ]
        for (name, message) in cases {
            guard case .failure(.malformed) = OAuthMessage.parseXOAuth2(message) else { return XCTFail("\(name): accepted") }
        }
    }

    func testErrorMessages() {
        XCTAssertFalse("\(OAuthMessage.parseOAuthBearer(bytes("n,,\u{1}auth=Bearer a b\u{1}\u{1}")))".contains("a b"),
                       "error texts never quote the token")
    }

    // MARK: - The step machine

    let details = OAuthErrorDetails(scope: "mail", openIDConfiguration: "https://issuer.test/.well-known/openid-configuration")

    func testOAuthBearerSuccess() {
        let x = OAuthExchange(format: .oauthBearer, errorDetails: details)
        XCTAssertEqual(x.start(initialResponse: rfcExample),
                       .verify(.bearerToken(token: "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==", claimedUser: "user@example.com")))
        XCTAssertEqual(x.credentialAnswer(.verified(user: "User@Example.com")), .verify(.account(user: "User@Example.com")))
        XCTAssertEqual(x.credentialAnswer(.verified(user: "user@example.com")),
                       .success(SASLIdentity(user: "user@example.com"), serverFinal: nil))
        XCTAssertEqual(x.respond([0x01]), .failure(.malformed("unexpected response")))
    }

    func testEmptyChallengeWithoutInitialResponse() {
        let x = OAuthExchange(format: .xoauth2, errorDetails: details)
        XCTAssertEqual(x.start(initialResponse: nil), .challenge([]))
        XCTAssertEqual(x.respond(bytes("user=a@example.org\u{1}auth=Bearer tok\u{1}\u{1}")),
                       .verify(.bearerToken(token: "tok", claimedUser: "a@example.org")))
    }

    func testRefusedTokenGetsTheJSONErrorThenFailsAfterKvsep() throws {
        let x = OAuthExchange(format: .oauthBearer, errorDetails: details)
        _ = x.start(initialResponse: rfcExample)
        guard case .challenge(let json) = x.credentialAnswer(.wrongPassword) else { return XCTFail("no error challenge") }
        XCTAssertEqual(String(decoding: json, as: UTF8.self),
                       #"{"status":"invalid_token","scope":"mail","openid-configuration":"https://issuer.test/.well-known/openid-configuration"}"#)
        let object = try JSONSerialization.jsonObject(with: Data(json)) as? [String: String]
        XCTAssertEqual(object?["status"], "invalid_token")
        XCTAssertEqual(x.respond([0x01]), .failure(.authenticationFailed))
    }

    func testErrorAcknowledgementMustBeKvsep() {
        let x = OAuthExchange(format: .oauthBearer, errorDetails: details)
        _ = x.start(initialResponse: rfcExample)
        _ = x.credentialAnswer(.unknownUser)
        guard case .failure(.malformed) = x.respond(bytes("again")) else { return XCTFail("accepted a non-%x01 acknowledgement") }
    }

    func testXOAuth2ErrorFormatAndEmptyAcknowledgement() {
        let x = OAuthExchange(format: .xoauth2, errorDetails: details)
        _ = x.start(initialResponse: bytes("user=a@example.org\u{1}auth=Bearer tok\u{1}\u{1}"))
        XCTAssertEqual(x.credentialAnswer(.wrongPassword), .challenge(bytes(#"{"status":"401","schemes":"bearer","scope":"mail"}"#)))
        XCTAssertEqual(x.respond([]), .failure(.authenticationFailed))
    }

    func testAuthzidOtherThanTheTokensAccountIsRefused() {
        let x = OAuthExchange(format: .oauthBearer, errorDetails: details)
        _ = x.start(initialResponse: rfcExample)
        guard case .challenge = x.credentialAnswer(.verified(user: "mallory@example.com")) else { return XCTFail("no error challenge") }
        XCTAssertEqual(x.respond([0x01]), .failure(.authorizationFailed))
        let y = OAuthExchange(format: .xoauth2, errorDetails: details)
        _ = y.start(initialResponse: bytes("user=alice@example.org\u{1}auth=Bearer tok\u{1}\u{1}"))
        guard case .challenge = y.credentialAnswer(.verified(user: "bob@example.org")) else { return XCTFail("no error challenge") }
        XCTAssertEqual(y.respond([]), .failure(.authenticationFailed))
    }

    func testValidTokenForMissingOrDisabledAccount() {
        for (answer, failure) in [(CredentialAnswer.unknownUser, SASLFailure.authenticationFailed), (.suspended(user: "u@x"), .accountDisabled)] {
            let x = OAuthExchange(format: .oauthBearer, errorDetails: details)
            _ = x.start(initialResponse: rfcExample)
            _ = x.credentialAnswer(.verified(user: "user@example.com"))
            guard case .challenge = x.credentialAnswer(answer) else { return XCTFail("no error challenge for \(answer)") }
            XCTAssertEqual(x.respond([0x01]), .failure(failure))
        }
    }

    func testBackendDownIsTemporaryWithoutChallenge() {
        let x = OAuthExchange(format: .oauthBearer, errorDetails: details)
        _ = x.start(initialResponse: rfcExample)
        XCTAssertEqual(x.credentialAnswer(.unavailable(reason: "endpoint down")), .failure(.temporary("endpoint down")))
    }

    func testOutOfOrderCalls() {
        let x = OAuthExchange(format: .oauthBearer, errorDetails: details)
        XCTAssertEqual(x.respond(rfcExample), .failure(.malformed("unexpected response")))
        let y = OAuthExchange(format: .oauthBearer, errorDetails: details)
        guard case .failure(.temporary) = y.credentialAnswer(.verified(user: "a@b")) else { return XCTFail("answer without a check") }
        let z = OAuthExchange(format: .oauthBearer, errorDetails: details)
        _ = z.start(initialResponse: nil)
        guard case .failure(.malformed) = z.start(initialResponse: nil) else { return XCTFail("second start accepted") }
    }

    func testMechanismsAreOfferedOnlyWhereAPasswordWouldBe() {
        let m = OAuthMechanism(format: .oauthBearer, errorDetails: details)
        let service = AuthService(mechanisms: [m, OAuthMechanism(format: .xoauth2, errorDetails: details)], backends: [])
        XCTAssertEqual(service.offered(secure: false, loopback: false, plaintextOnLoopback: false), [])
        XCTAssertEqual(service.offered(secure: true, loopback: false, plaintextOnLoopback: false), ["OAUTHBEARER", "XOAUTH2"])
        XCTAssertFalse(m.isAnonymous)
    }
}
