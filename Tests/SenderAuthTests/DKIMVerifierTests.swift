import Foundation
import PluginAPI
import XCTest
@testable import PosternSenderAuthCore

/// The verifier against an in-memory key table: the RFC 8463 example, Postern's own signatures,
/// and each way a signature fails.
final class DKIMVerifierTests: XCTestCase {
    let rsaSigner = DKIMSigner(domain: "example.org", selector: "rsa1", key: DKIMFixtures.rsaKey)
    let edSigner = DKIMSigner(domain: "example.org", selector: "ed1", key: DKIMFixtures.ed25519Key)

    var keys: TableResolver {
        DKIMFixtures.resolver(["rsa1._domainkey.example.org": DKIMFixtures.rsaKey.keyRecord,
                               "ed1._domainkey.example.org": DKIMFixtures.ed25519Key.keyRecord])
    }

    func verify(_ message: [UInt8], resolver: TableResolver? = nil, now: Date = DKIMFixtures.now) async -> [DKIMSignatureOutcome] {
        await DKIMVerifier(resolver: resolver ?? keys).verify(message, now: now)
    }

    func testRFC8463ExampleVerifies() async {
        let resolver = DKIMFixtures.resolver(["brisbane._domainkey.football.example.com": DKIMFixtures.rfc8463Ed25519Record,
                                              "test._domainkey.football.example.com": DKIMFixtures.rfc8463RSARecord])
        let outcomes = await verify(Array(DKIMFixtures.rfc8463Message.utf8), resolver: resolver, now: DKIMFixtures.rfc8463Time)
        XCTAssertEqual(outcomes.map(\.result), [.pass, .pass], "\(outcomes)")
        XCTAssertEqual(outcomes.map(\.algorithm), ["ed25519-sha256", "rsa-sha256"])
        XCTAssertEqual(outcomes.map(\.selector), ["brisbane", "test"])
        XCTAssertEqual(outcomes[0].domain, "football.example.com")
        XCTAssertEqual(outcomes[0].identity, "@football.example.com")
        XCTAssertEqual(outcomes[0].signaturePrefix, "/gCrinpc")
    }

    func testRFC8463ExampleBodyHash() {
        var hasher = DKIMBodyHasher(.relaxed)
        hasher.feed(DKIMMessage(Array(DKIMFixtures.rfc8463Message.utf8)).body)
        XCTAssertEqual(Data(hasher.finish()).base64EncodedString(), "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=")
    }

    func testOwnSignaturesVerifyInEveryCanonicalization() async throws {
        for header in [DKIMCanonicalization.simple, .relaxed] {
            for body in [DKIMCanonicalization.simple, .relaxed] {
                for key in [DKIMFixtures.rsaKey, DKIMFixtures.ed25519Key] {
                    let selector = key.algorithm == .rsaSHA256 ? "rsa1" : "ed1"
                    let signer = DKIMSigner(domain: "example.org", selector: selector, key: key,
                                            headerCanonicalization: header, bodyCanonicalization: body)
                    let signed = try DKIMFixtures.signed(DKIMFixtures.message(), by: signer)
                    let outcomes = await verify(signed)
                    XCTAssertEqual(outcomes.map(\.result), [.pass], "\(header)/\(body) \(key.algorithm): \(outcomes)")
                }
            }
        }
    }

    func testNoSignatureGivesNoOutcome() async {
        let outcomes = await verify(DKIMFixtures.message())
        XCTAssertEqual(outcomes, [])
    }

    func testTamperedBodyFailsOnBodyHash() async throws {
        var signed = try DKIMFixtures.signed(DKIMFixtures.message(), by: rsaSigner)
        signed.replaceSubrange(signed.count - 12..<signed.count - 11, with: Array("X".utf8))
        let outcomes = await verify(signed)
        XCTAssertEqual(outcomes.map(\.result), [.fail])
        XCTAssertEqual(outcomes.first?.reason, "body hash did not verify")
    }

    func testTamperedHeaderFailsOnSignature() async throws {
        let signed = try DKIMFixtures.signed(DKIMFixtures.message(), by: edSigner)
        let tampered = Array(String(decoding: signed, as: UTF8.self)
            .replacingOccurrences(of: "Subject: The quarterly report", with: "Subject: The quarterly REPORT").utf8)
        let outcomes = await verify(tampered)
        XCTAssertEqual(outcomes.map(\.result), [.fail])
        XCTAssertEqual(outcomes.first?.reason, "signature did not verify")
    }

    func testAddedOverSignedFieldFails() async throws {
        // From, Subject and Date are listed once more than present: a second Subject added
        // above the first breaks the signature.
        let signed = try DKIMFixtures.signed(DKIMFixtures.message(), by: rsaSigner)
        let outcomes = await verify(Array("Subject: Pay this invoice\r\n".utf8) + signed)
        XCTAssertEqual(outcomes.map(\.result), [.fail])
    }

    func testRelaxedSurvivesRefoldingAndCaseWhereSimpleDoesNot() async throws {
        let relaxed = try DKIMFixtures.signed(DKIMFixtures.message(), by: rsaSigner)
        let refold: ([UInt8]) -> [UInt8] = {
            Array(String(decoding: $0, as: UTF8.self)
                .replacingOccurrences(of: "Subject: The quarterly report", with: "SUBJECT:The   quarterly\r\n  report ").utf8)
        }
        let relaxedOutcomes = await verify(refold(relaxed))
        XCTAssertEqual(relaxedOutcomes.map(\.result), [.pass])
        let simpleSigner = DKIMSigner(domain: "example.org", selector: "rsa1", key: DKIMFixtures.rsaKey,
                                      headerCanonicalization: .simple, bodyCanonicalization: .simple)
        let simple = try DKIMFixtures.signed(DKIMFixtures.message(), by: simpleSigner)
        let simpleOutcomes = await verify(refold(simple))
        XCTAssertEqual(simpleOutcomes.map(\.result), [.fail])
    }

    func testBodyLengthLimitIgnoresAppendedText() async throws {
        // The signer never writes l=; a field carrying it is built and signed by hand (relaxed
        // canonical body "Signed part.\r\n": 14 octets).
        let message = DKIMFixtures.message(body: "Signed part.\r\n")
        let signed = try DKIMFixtures.handSigned(message, tags: "v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=rsa1; l=14; h=from:to:subject",
                                                 bodyLength: 14, key: DKIMFixtures.rsaKey)
        let plain = await verify(signed)
        XCTAssertEqual(plain.map(\.result), [.pass], "\(plain)")
        let appended = signed + Array("Unsigned footer added by a list.\r\n".utf8)
        let outcomes = await verify(appended)
        XCTAssertEqual(outcomes.map(\.result), [.pass])
        // Cutting the body below l= fails.
        let cut = Array(signed.dropLast(6)) + Array("\r\n".utf8)
        let cutOutcomes = await verify(cut)
        XCTAssertEqual(cutOutcomes.map(\.result), [.fail])
        XCTAssertEqual(cutOutcomes.first?.reason, "l= exceeds the body length")
    }

    func testExpiredSignatureFails() async throws {
        let signer = DKIMSigner(domain: "example.org", selector: "ed1", key: DKIMFixtures.ed25519Key, expiry: 3600)
        let signed = try DKIMFixtures.signed(DKIMFixtures.message(), by: signer)
        let fresh = await verify(signed, now: DKIMFixtures.now.addingTimeInterval(3599))
        XCTAssertEqual(fresh.map(\.result), [.pass])
        let late = await verify(signed, now: DKIMFixtures.now.addingTimeInterval(3601))
        XCTAssertEqual(late.map(\.result), [.fail])
        XCTAssertEqual(late.first?.reason, "signature expired")
    }

    func testTimestampInTheFutureBeyondAllowanceFails() async throws {
        let signed = try DKIMFixtures.signed(DKIMFixtures.message(), by: edSigner)
        let slightlyBehind = await verify(signed, now: DKIMFixtures.now.addingTimeInterval(-200))
        XCTAssertEqual(slightlyBehind.map(\.result), [.pass])
        let farBehind = await verify(signed, now: DKIMFixtures.now.addingTimeInterval(-3600))
        XCTAssertEqual(farBehind.map(\.result), [.fail])
        XCTAssertEqual(farBehind.first?.reason, "signature timestamp in the future")
    }

    func testMissingKeyIsPermerror() async throws {
        let signed = try DKIMFixtures.signed(DKIMFixtures.message(), by: rsaSigner)
        for answer in [TableResolver.Answer.noData, nil] {
            let resolver = TableResolver()
            if let answer { resolver.set("rsa1._domainkey.example.org", answer) }
            let outcomes = await verify(signed, resolver: resolver)
            XCTAssertEqual(outcomes.map(\.result), [.permerror])
            XCTAssertEqual(outcomes.first?.reason, "no key for signature")
        }
    }

    func testTemporaryDNSFailureIsTemperrorAndNotCached() async throws {
        let signed = try DKIMFixtures.signed(DKIMFixtures.message(), by: rsaSigner)
        let resolver = TableResolver(["rsa1._domainkey.example.org": .temporary])
        let verifier = DKIMVerifier(resolver: resolver)
        let first = await verifier.verify(signed, now: DKIMFixtures.now)
        XCTAssertEqual(first.map(\.result), [.temperror])
        resolver.set("rsa1._domainkey.example.org", .txt([DKIMFixtures.rsaKey.keyRecord]))
        let second = await verifier.verify(signed, now: DKIMFixtures.now)
        XCTAssertEqual(second.map(\.result), [.pass])
    }

    func testKeysAreCachedForTheVerifiersLifetime() async throws {
        let signed = try DKIMFixtures.signed(DKIMFixtures.message(), by: rsaSigner)
        let twice = try DKIMFixtures.signed(signed, by: rsaSigner)
        let resolver = keys
        let verifier = DKIMVerifier(resolver: resolver)
        let outcomes = await verifier.verify(twice, now: DKIMFixtures.now)
        XCTAssertEqual(outcomes.map(\.result), [.pass, .pass])
        _ = await verifier.verify(signed, now: DKIMFixtures.now)
        XCTAssertEqual(resolver.questionCount, 1)
        // Past the cache's age limit the key is asked again.
        _ = await verifier.verify(signed, now: DKIMFixtures.now.addingTimeInterval(3601))
        XCTAssertEqual(resolver.questionCount, 2)
    }

    func testKeyCacheDropsTheLeastRecentlyUsed() {
        let cache = DKIMKeyCache<Int>(capacity: 2)
        let now = DKIMFixtures.now
        cache.store(1, for: "a", now: now)
        cache.store(2, for: "b", now: now)
        XCTAssertEqual(cache.value(for: "a", now: now), 1)
        cache.store(3, for: "c", now: now)
        XCTAssertEqual(cache.count, 2)
        XCTAssertNil(cache.value(for: "b", now: now))
        XCTAssertEqual(cache.value(for: "a", now: now), 1)
        XCTAssertEqual(cache.value(for: "c", now: now), 3)
    }

    func testRevokedKeyIsPermerror() async throws {
        let signed = try DKIMFixtures.signed(DKIMFixtures.message(), by: rsaSigner)
        let outcomes = await verify(signed, resolver: DKIMFixtures.resolver(["rsa1._domainkey.example.org": "v=DKIM1; k=rsa; p="]))
        XCTAssertEqual(outcomes.map(\.result), [.permerror])
        XCTAssertEqual(outcomes.first?.reason, "key revoked")
    }

    func testStrictIdentityFlagRefusesSubdomainIdentity() async throws {
        let record = DKIMFixtures.ed25519Key.keyRecord.replacingOccurrences(of: "v=DKIM1;", with: "v=DKIM1; t=s;")
        let resolver = DKIMFixtures.resolver(["ed1._domainkey.example.org": record])
        let sub = DKIMSigner(domain: "example.org", selector: "ed1", key: DKIMFixtures.ed25519Key, identity: "alice@mail.example.org")
        let subOutcomes = await verify(try DKIMFixtures.signed(DKIMFixtures.message(), by: sub), resolver: resolver)
        XCTAssertEqual(subOutcomes.map(\.result), [.permerror])
        XCTAssertEqual(subOutcomes.first?.reason, "key forbids i= in a subdomain of d= (t=s)")
        let same = DKIMSigner(domain: "example.org", selector: "ed1", key: DKIMFixtures.ed25519Key, identity: "alice@example.org")
        let sameOutcomes = await verify(try DKIMFixtures.signed(DKIMFixtures.message(), by: same), resolver: resolver)
        XCTAssertEqual(sameOutcomes.map(\.result), [.pass])
    }

    func testKeyRecordRestrictions() async throws {
        let signed = try DKIMFixtures.signed(DKIMFixtures.message(), by: edSigner)
        let p = DKIMFixtures.ed25519Key.keyRecord.components(separatedBy: "p=")[1]
        let cases: [(String, String)] = [
            (DKIMFixtures.rsaKey.keyRecord, "key type rsa does not match a=ed25519-sha256"),
            ("v=DKIM1; k=rsa; p=\(p)", "key record: p= is not an RSA public key"),
            ("v=DKIM1; k=ed25519; h=sha1; p=\(p)", "key does not allow sha256"),
            ("v=DKIM1; k=ed25519; s=tlsrpt; p=\(p)", "key record: key not for email (s=tlsrpt)"),
            ("k=ed25519; v=DKIM1; p=\(p)", "key record: v= is not the first tag"),
            ("v=DKIM1; k=ed25519", "key record: no p= in key record"),
            ("v=DKIM1; k=ed25519; p=AAAA", "key record: p= is not an Ed25519 public key"),
            ("v=DKIM1; k=dsa; p=\(p)", "key record: unknown key type k=dsa"),
        ]
        for (record, reason) in cases {
            let outcomes = await verify(signed, resolver: DKIMFixtures.resolver(["ed1._domainkey.example.org": record]))
            XCTAssertEqual(outcomes.map(\.result), [.permerror], record)
            XCTAssertEqual(outcomes.first?.reason, reason, record)
        }
        // s=email and unknown tags are fine.
        let fine = await verify(signed, resolver: DKIMFixtures.resolver(["ed1._domainkey.example.org":
            "v=DKIM1; k=ed25519; s=email:*; n=note; h=sha256; p=\(p)"]))
        XCTAssertEqual(fine.map(\.result), [.pass])
    }

    func testTwoKeyRecordsArePermerror() async throws {
        let signed = try DKIMFixtures.signed(DKIMFixtures.message(), by: edSigner)
        let record = DKIMFixtures.ed25519Key.keyRecord
        let outcomes = await verify(signed, resolver: TableResolver(["ed1._domainkey.example.org": .txt([record, record])]))
        XCTAssertEqual(outcomes.map(\.result), [.permerror])
    }

    func testRSAKeysShorterThan1024BitsAreRefusedAnd1024Accepted() async throws {
        // Keys from openssl (a real peer), PKCS#8 and PKCS#1.
        for (bits, expected) in [(512, DKIMResult.permerror), (1024, .pass)] {
            let pem = try Shell.openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:\(bits)"])
            let spki = try Shell.openssl(["pkey", "-pubout", "-outform", "DER"], input: pem, binary: true)
            let record = "v=DKIM1; k=rsa; p=" + Data(spki).base64EncodedString()
            // Signing refuses the 512-bit key outright; sign the 512-bit case with a forged field
            // through the 1024-bit path below is not possible, so check the record alone there.
            if bits < 1024 {
                let signed = try DKIMFixtures.signed(DKIMFixtures.message(), by: rsaSigner)
                let outcomes = await verify(signed, resolver: DKIMFixtures.resolver(["rsa1._domainkey.example.org": record]))
                XCTAssertEqual(outcomes.map(\.result), [expected])
                XCTAssertEqual(outcomes.first?.reason, "RSA key shorter than 1024 bits")
                XCTAssertThrowsError(try DKIMSigningKey(pem: String(decoding: pem, as: UTF8.self)))
            } else {
                let key = try DKIMSigningKey(pem: String(decoding: pem, as: UTF8.self))
                let signer = DKIMSigner(domain: "example.org", selector: "short", key: key)
                let signed = try DKIMFixtures.signed(DKIMFixtures.message(), by: signer)
                let outcomes = await verify(signed, resolver: DKIMFixtures.resolver(["short._domainkey.example.org": record]))
                XCTAssertEqual(outcomes.map(\.result), [expected], "\(outcomes)")
            }
        }
    }

    func testMaxSignaturesLeavesTheRestNeutral() async throws {
        var message = DKIMFixtures.message()
        for _ in 0..<7 { message = try DKIMFixtures.signed(message, by: edSigner) }
        let outcomes = await DKIMVerifier(resolver: keys, maxSignatures: 5).verify(message, now: DKIMFixtures.now)
        // Each later signature covers the earlier ones only through the body; all verify.
        XCTAssertEqual(outcomes.map(\.result), [.pass, .pass, .pass, .pass, .pass, .neutral, .neutral])
    }
}
