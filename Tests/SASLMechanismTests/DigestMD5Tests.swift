import PluginAPI
import XCTest
@testable import PosternSASLDigestMD5Core

/// DIGEST-MD5 byte by byte: RFC 2831's IMAP example (challenge, response, rspauth), every
/// directive malformed, digest-uri checks, wrong secrets, a replayed nonce and nonce-count.
final class DigestMD5Tests: XCTestCase {
    static let realm = "elwood.innosoft.com"
    static let context = SASLExchangeContext(service: "imap", serverHostname: "elwood.innosoft.com", isSecure: false)

    static func mechanism(nonce: String = "OA6MG9tEQGm2hh", ledger: DigestNonceLedger = DigestNonceLedger()) -> DigestMD5Mechanism {
        DigestMD5Mechanism(realm: realm, nonces: ledger, nonce: { nonce })
    }

    static let backend: MemorySecrets = {
        let derive = mechanism().storedSecretDerivation!
        let chris = try! derive.derive(.init(user: "chris", password: "secret", iterations: 4096))
        let gone = try! derive.derive(.init(user: "gone", password: "secret", iterations: 4096))
        let elsewhere = try! DigestMD5Mechanism(realm: "other.example").storedSecretDerivation!
            .derive(.init(user: "moved", password: "secret", iterations: 4096))
        return MemorySecrets(secrets: ["chris": ["DIGEST-MD5": chris], "gone": ["DIGEST-MD5": gone], "moved": ["DIGEST-MD5": elsewhere]],
                             disabled: ["gone"])
    }()

    static let rfcResponse = "charset=utf-8,username=\"chris\",realm=\"elwood.innosoft.com\",nonce=\"OA6MG9tEQGm2hh\",nc=00000001,cnonce=\"OA6MHXh6VqTrRk\",digest-uri=\"imap/elwood.innosoft.com\",response=d388dad90d4bbd760a152321f2143af7,qop=auth"

    func testRFC2831IMAPExample() async {
        let x = Self.mechanism().makeExchange(Self.context)
        XCTAssertEqual(x.start(initialResponse: nil),
                       .challenge(b("realm=\"elwood.innosoft.com\",nonce=\"OA6MG9tEQGm2hh\",qop=\"auth\",charset=utf-8,algorithm=md5-sess")))
        let step = await settle(x, x.respond(b(Self.rfcResponse)), Self.backend)
        XCTAssertEqual(step, .success(SASLIdentity(user: "chris"), serverFinal: b("rspauth=ea40f60335c427b5527b84dbabcdfffd")))
    }

    /// A client's response for `password` with the given directives (the hash as RFC 2831 computes it).
    func response(user: String = "chris", password: String = "secret", realm: String? = realm, nonce: String = "N",
                  nc: String = "00000001", uri: String = "imap/elwood.innosoft.com", authzid: String? = nil) -> String {
        var r = DigestResponse(username: user, realm: realm, nonce: nonce, cnonce: "C", nonceCount: UInt32(nc, radix: 16) ?? 0,
                               nonceCountText: nc, qop: "auth", digestURI: uri, response: "", authzid: authzid)
        let hash = DigestMD5Mechanism.userRealmPasswordHash(user: user, realm: realm ?? "", password: password)
        r.response = DigestMD5Exchange.responseValue(hash: hash, r, a2Prefix: "AUTHENTICATE")
        var text = "username=\"\(user)\",nonce=\"\(nonce)\",cnonce=\"C\",nc=\(nc),qop=auth,digest-uri=\"\(uri)\",response=\(r.response)"
        if let realm { text += ",realm=\"\(realm)\"" }
        if let authzid { text += ",authzid=\"\(authzid)\"" }
        return text
    }

    func attempt(_ text: String, nonce: String = "N", context: SASLExchangeContext = context,
                 ledger: DigestNonceLedger = DigestNonceLedger()) async -> SASLStep {
        let x = Self.mechanism(nonce: nonce, ledger: ledger).makeExchange(context)
        _ = x.start(initialResponse: nil)
        return await settle(x, x.respond(b(text)), Self.backend)
    }

    func testClientComputedResponsesAndAuthzid() async {
        guard case .success(let id, let final?) = await attempt(response()) else { return XCTFail() }
        XCTAssertEqual(id, SASLIdentity(user: "chris"))
        XCTAssertTrue(final.starts(with: b("rspauth=")))
        guard case .success(let other, _) = await attempt(response(authzid: "boss")) else { return XCTFail() }
        XCTAssertEqual(other.authorizationIdentity, "boss")
    }

    func testWrongSecretsAndAccounts() async {
        let wrong = await attempt(response(password: "guess"))
        XCTAssertEqual(wrong, .failure(.authenticationFailed))
        let unknown = await attempt(response(user: "nobody"))
        XCTAssertEqual(unknown, .failure(.authenticationFailed))
        let suspended = await attempt(response(user: "gone"))
        XCTAssertEqual(suspended, .failure(.accountDisabled))
        // A secret stored for another realm cannot match.
        let stale = await attempt(response(user: "moved"))
        XCTAssertEqual(stale, .failure(.authenticationFailed))
        XCTAssertFalse(Self.mechanism().storedSecretDerivation!.isCurrent(Self.backend.secrets["moved"]!["DIGEST-MD5"]!))
        XCTAssertTrue(Self.mechanism().storedSecretDerivation!.isCurrent(Self.backend.secrets["chris"]!["DIGEST-MD5"]!))
    }

    func testDigestURIMustNameThisServiceAndHost() async {
        for uri in ["smtp/elwood.innosoft.com", "imap/evil.example", "imap", "imap/", "imap/elwood.innosoft.com/evil.example",
                    "imap//elwood.innosoft.com"] {
            let step = await attempt(response(uri: uri))
            XCTAssertTrue(isFailure(step, .malformed("")), "\(uri): \(step)")
        }
        guard case .success = await attempt(response(uri: "IMAP/Elwood.Innosoft.com")) else { return XCTFail("case-insensitive") }
        // An extra host name from the config.
        let m = DigestMD5Mechanism(realm: Self.realm, extraHostnames: ["mail.example.org"], nonce: { "N" })
        let x = m.makeExchange(Self.context)
        _ = x.start(initialResponse: nil)
        guard case .success = await settle(x, x.respond(b(response(uri: "imap/mail.example.org"))), Self.backend) else { return XCTFail() }
    }

    func testReplayedNonceAndNonceCountAreRefused() async {
        let ledger = DigestNonceLedger()
        guard case .success = await attempt(response(), ledger: ledger) else { return XCTFail() }
        // The same nonce handed out again (a server bug or a replay of a recorded exchange).
        let replay = await attempt(response(), ledger: ledger)
        XCTAssertTrue(isFailure(replay, .malformed("")), "\(replay)")
        // nc other than 1 (subsequent authentication is not offered).
        let second = await attempt(response(nc: "00000002"))
        XCTAssertTrue(isFailure(second, .malformed("")))
        // A nonce this exchange did not issue.
        let foreign = await attempt(response(nonce: "M"))
        XCTAssertTrue(isFailure(foreign, .malformed("")))
        // A second response in the same exchange.
        let x = Self.mechanism(nonce: "N").makeExchange(Self.context)
        _ = x.start(initialResponse: nil)
        _ = await settle(x, x.respond(b(response(password: "guess"))), Self.backend)
        XCTAssertTrue(isFailure(x.respond(b(response()))))
    }

    func testMalformedDirectives() async {
        let good = response()
        let bad: [String] = [
            "", "username", "username=", "username=\"chris", "username=\"chris\"junk", "=x",
            good + ",username=\"chris\"",                        // twice
            good.replacingOccurrences(of: "nc=00000001", with: "nc=1"),
            good.replacingOccurrences(of: "nc=00000001", with: "nc=0000000g"),
            good.replacingOccurrences(of: "qop=auth", with: "qop=auth-int"),
            good.replacingOccurrences(of: "qop=auth", with: "qop=auth-conf,cipher=rc4"),
            good + ",cipher=rc4",
            good + ",charset=iso-8859-1",
            good + ",maxbuf=lots",
            good + ",authzid=\"\"",
            good.replacingOccurrences(of: ",realm=\"elwood.innosoft.com\"", with: ""),
            good.replacingOccurrences(of: "realm=\"elwood.innosoft.com\"", with: "realm=\"other\""),
            good.replacingOccurrences(of: "cnonce=\"C\",", with: ""),
            good.replacingOccurrences(of: "username=\"chris\",", with: ""),
            good.replacingOccurrences(of: "digest-uri=\"imap/elwood.innosoft.com\"", with: "digest-uri=imap/elwood.innosoft.com"),
            String(good.dropLast(40)),
            good.uppercased(),
            good + ",x=\"a\u{1}b\"",
            String(repeating: "a=b,", count: 1100),
        ]
        for text in bad {
            let step = await attempt(text)
            XCTAssertTrue(isFailure(step, .malformed("")), "\(text): \(step)")
        }
        // Not UTF-8.
        let x = Self.mechanism().makeExchange(Self.context)
        _ = x.start(initialResponse: nil)
        XCTAssertTrue(isFailure(x.respond([0xFF, 0xFE])))
        // Unknown directives, spaces and empty list elements are allowed.
        guard case .success = await attempt(" ,," + good.replacingOccurrences(of: ",", with: " , ") + ",future=\"x\\\"y\"") else {
            return XCTFail("lenient list syntax")
        }
    }

    func testOrder() {
        let m = Self.mechanism()
        XCTAssertTrue(isFailure(m.makeExchange(Self.context).start(initialResponse: b(Self.rfcResponse))), "no initial response")
        XCTAssertTrue(isFailure(m.makeExchange(Self.context).respond(b(Self.rfcResponse))), "respond before start")
        XCTAssertTrue(isFailure(m.makeExchange(Self.context).credentialAnswer(.unknownUser)), "answer with nothing pending")
        let x = m.makeExchange(Self.context)
        _ = x.start(initialResponse: nil)
        XCTAssertTrue(isFailure(x.start(initialResponse: nil)), "second start")
        XCTAssertEqual(SASLDigestMD5Registration.registration.manifest.name, "sasl-digest-md5")
    }
}
