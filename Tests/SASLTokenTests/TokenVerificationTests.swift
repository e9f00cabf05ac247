import Foundation
import PluginAPI
import PluginCredentials
import PosternHost
@testable import PosternSASLOAuthCore
import PosternTestSupport
import XCTest

/// The token checks: `TokenPolicy` over claims, JWTs through jwt-kit against a JWKS made here
/// (good, expired, not yet valid, wrong audience and issuer, another key's signature, alg=none,
/// garbage), and RFC 7662 introspection against a real HTTP endpoint (Python's http.server),
/// with its cache.
final class TokenVerificationTests: XCTestCase {
    let policy = TokenPolicy(issuer: TestIssuer.issuer, audiences: [TestIssuer.audience], leeway: 60,
                             userClaim: "email", userDomain: nil, requiredScope: nil)
    let now = Date().timeIntervalSince1970

    func testPolicyAcceptsAGoodTokenAndNamesTheAccount() {
        XCTAssertEqual(policy.account(from: TestIssuer.claims(email: "alice@example.org"), source: .jwt, now: now), .success("alice@example.org"))
    }

    func testPolicyRefusals() {
        let cases: [([String: ClaimValue], TokenRejection)] = [
            (["iss": .string("https://evil.test")], .wrongIssuer),
            (["iss": .other], .missingClaim("iss")),
            (["aud": .string("someone-else")], .wrongAudience),
            (["aud": .other], .missingClaim("aud")),
            (["exp": .number(now - 61)], .expired),
            (["exp": .other], .missingClaim("exp")),
            (["nbf": .number(now + 120)], .notYetValid),
            (["email": .other], .missingClaim("email")),
            (["email": .string("alice")], .noAccountName("email has no @domain and user_domain is not set")),
        ]
        for (changes, rejection) in cases {
            XCTAssertEqual(policy.account(from: TestIssuer.claims(email: "alice@example.org", changes), source: .jwt, now: now),
                           .failure(rejection), "\(changes)")
        }
    }

    func testLeewayForgivesSmallClockDifferences() {
        let claims = TestIssuer.claims(email: "a@example.org", ["exp": .number(now - 30), "nbf": .number(now + 30)])
        XCTAssertEqual(policy.account(from: claims, source: .jwt, now: now), .success("a@example.org"))
    }

    func testSubPlusDomainAndRequiredScope() {
        var p = policy
        p.userClaim = "sub"
        p.userDomain = "example.org"
        p.requiredScope = "mail"
        XCTAssertEqual(p.account(from: TestIssuer.claims(email: "x@y", ["sub": .string("bob")]), source: .jwt, now: now), .success("bob@example.org"))
        XCTAssertEqual(p.account(from: TestIssuer.claims(email: "x@y", ["scope": .string("openid")]), source: .jwt, now: now),
                       .failure(.missingScope("mail")))
        XCTAssertEqual(p.account(from: TestIssuer.claims(email: "x@y", ["scope": .other, "scp": .strings(["mail"]), "sub": .string("c")]),
                                 source: .jwt, now: now), .success("c@example.org"))
    }

    func testIntrospectionAnswersMustBeActive() {
        XCTAssertEqual(policy.account(from: ["active": .bool(false), "email": .string("a@b")], source: .introspection, now: now), .failure(.inactive))
        XCTAssertEqual(policy.account(from: ["email": .string("a@b")], source: .introspection, now: now), .failure(.inactive))
        // No iss in the answer is fine there; no exp either (the endpoint vouches for it).
        XCTAssertEqual(policy.account(from: ["active": .bool(true), "email": .string("a@b"), "aud": .string(TestIssuer.audience)],
                                      source: .introspection, now: now), .success("a@b"))
    }

    // MARK: - JWTs through jwt-kit

    func verifier(_ issuer: TestIssuer) throws -> JWTVerifier {
        try JWTVerifier(jwksJSON: Array(issuer.jwksJSON.utf8), policy: policy)
    }

    func testGoodJWT() async throws {
        let issuer = TestIssuer()
        let token = try await issuer.token(TestIssuer.claims(email: "alice@example.org"))
        XCTAssertTrue(JWTVerifier.looksLikeJWT(token))
        let result = try await verifier(issuer).verify(token)
        XCTAssertEqual(result, .success("alice@example.org"))
    }

    func testExpiredWrongAudienceWrongIssuerJWTs() async throws {
        let issuer = TestIssuer()
        let v = try verifier(issuer)
        let cases: [([String: ClaimValue], TokenRejection)] = [
            (["exp": .number((now - 3600).rounded())], .expired),
            (["aud": .string("someone-else")], .wrongAudience),
            (["iss": .string("https://evil.test")], .wrongIssuer),
            (["nbf": .number((now + 3600).rounded())], .notYetValid),
        ]
        for (changes, rejection) in cases {
            let token = try await issuer.token(TestIssuer.claims(email: "alice@example.org", changes))
            let result = await v.verify(token)
            XCTAssertEqual(result, .failure(rejection), "\(changes)")
        }
    }

    func testSignatureOfAnotherKeyIsRefused() async throws {
        let issuer = TestIssuer(), forger = TestIssuer()   // same kid, different key
        let token = try await forger.token(TestIssuer.claims(email: "alice@example.org"))
        guard case .failure(.signature) = try await verifier(issuer).verify(token) else { return XCTFail("forged signature accepted") }
    }

    func testTamperedPayloadIsRefused() async throws {
        let issuer = TestIssuer()
        let token = try await issuer.token(TestIssuer.claims(email: "alice@example.org"))
        let parts = token.split(separator: ".")
        let evil = TestIssuer.base64URL(Array(try JSONEncoder().encode(TokenClaims(claims: TestIssuer.claims(email: "admin@example.org")))))
        let tampered = "\(parts[0]).\(evil).\(parts[2])"
        guard case .failure(.signature) = try await verifier(issuer).verify(tampered) else { return XCTFail("tampered payload accepted") }
    }

    func testAlgNoneIsRefused() async throws {
        let issuer = TestIssuer()
        let token = try issuer.unsignedToken(TestIssuer.claims(email: "alice@example.org"))
        XCTAssertTrue(token.hasSuffix("."))
        guard case .failure(.signature) = try await verifier(issuer).verify(token) else { return XCTFail("alg=none accepted") }
    }

    func testGarbageTokensAreRefused() async throws {
        let v = try verifier(TestIssuer())
        for token in ["a.b.c", "not-a-jwt", "..", "eyJhbGciOiJFUzI1NiJ9.e30.", String(repeating: "A", count: 5000)] {
            guard case .failure = await v.verify(token) else { return XCTFail("\(token) accepted") }
        }
    }

    func testBrokenJWKSIsAConfigError() {
        XCTAssertThrowsError(try JWTVerifier(jwksJSON: Array("{}".utf8), policy: policy))
        XCTAssertThrowsError(try JWTVerifier(jwksJSON: Array(#"{"keys":[]}"#.utf8), policy: policy))
        XCTAssertThrowsError(try JWTVerifier(jwksJSON: Array("not json".utf8), policy: policy))
    }

    // MARK: - Introspection against a real endpoint

    func testIntrospectionThroughTheBackend() async throws {
        let dir = TempDir("token-introspection")
        let server = try IntrospectionServer(dir)
        defer { server.stop() }
        let group = MultiThreadedEventLoopGroup.singleton
        let client = try IntrospectionClient(endpoint: IntrospectionEndpoint(url: server.url, clientID: server.clientID, clientSecret: server.clientSecret),
                                             group: group, timeout: .seconds(5))
        let backend = OAuthTokenBackend(jwt: nil, introspection: client, introspectionPolicy: policy,
                                        cache: IntrospectionCache(lifetime: 60), logger: Logger(label: "test"))
        var answer = try await backend.verifyBearerToken("opaque-alice")
        XCTAssertEqual(answer, .verified(user: "alice@example.org"))
        XCTAssertEqual(try server.requestCount, 1)
        // The positive answer is cached: no second request.
        answer = try await backend.verifyBearerToken("opaque-alice")
        XCTAssertEqual(answer, .verified(user: "alice@example.org"))
        XCTAssertEqual(try server.requestCount, 1)
        for token in ["opaque-expired", "opaque-wrong-aud", "unknown-token"] {
            answer = try await backend.verifyBearerToken(token)
            XCTAssertEqual(answer, .wrongPassword, token)
        }
        // Negative answers are not cached.
        _ = try await backend.verifyBearerToken("unknown-token")
        XCTAssertEqual(try server.requestCount, 5)
        // Password questions are not this backend's business.
        let password = try await backend.verifyPassword(user: "alice@example.org", password: "opaque-alice")
        XCTAssertEqual(password, .unknownUser)
    }

    func testIntrospectionWithWrongClientSecretOrDeadEndpointIsTemporary() async throws {
        let dir = TempDir("token-introspection-bad")
        let server = try IntrospectionServer(dir)
        defer { server.stop() }
        let group = MultiThreadedEventLoopGroup.singleton
        let wrong = try IntrospectionClient(endpoint: IntrospectionEndpoint(url: server.url, clientID: server.clientID, clientSecret: "wrong"),
                                            group: group, timeout: .seconds(5))
        var backend = OAuthTokenBackend(jwt: nil, introspection: wrong, introspectionPolicy: policy,
                                        cache: IntrospectionCache(lifetime: 60), logger: Logger(label: "test"))
        guard case .unavailable = try await backend.verifyBearerToken("opaque-alice") else { return XCTFail("401 from the endpoint not temporary") }
        let dead = try IntrospectionClient(endpoint: IntrospectionEndpoint(url: "http://127.0.0.1:\(freePort())/x", clientID: "a", clientSecret: "b"),
                                           group: group, timeout: .seconds(2))
        backend = OAuthTokenBackend(jwt: nil, introspection: dead, introspectionPolicy: policy,
                                    cache: IntrospectionCache(lifetime: 60), logger: Logger(label: "test"))
        guard case .unavailable = try await backend.verifyBearerToken("opaque-alice") else { return XCTFail("dead endpoint not temporary") }
    }

    func testCacheStopsAtTheTokensExpiry() async {
        let cache = IntrospectionCache(lifetime: 60)
        await cache.remember("t", user: "a@b", expires: now + 10, now: now)
        let early = await cache.user(for: "t", now: now + 5)
        let late = await cache.user(for: "t", now: now + 11)
        XCTAssertEqual(early, "a@b")
        XCTAssertNil(late)
        let off = IntrospectionCache(lifetime: 0)
        await off.remember("t", user: "a@b", expires: nil, now: now)
        let count = await off.count
        XCTAssertEqual(count, 0)
    }
}
