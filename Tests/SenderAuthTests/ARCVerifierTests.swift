import Foundation
import PluginAPI
import XCTest
@testable import PosternSenderAuthCore

/// The ARC verifier on chains Postern seals, then broken one way at a time: each must fail with
/// a reason that names what broke (RFC 8617 §5.2). Keys from a table resolver; the interop
/// tests ask unbound for them.
final class ARCVerifierTests: XCTestCase {
    func verify(_ message: [UInt8], records: [String: String] = ARCFixtures.records) async -> ARCOutcome {
        await ARCFixtures.verifier(records).verify(message, now: Date())
    }

    /// A two-set chain: Postern (RSA) at i=1, Postern (Ed25519) at i=2.
    func twoSets() throws -> [UInt8] {
        let first = try ARCFixtures.sealed(ARCFixtures.message, by: ARCFixtures.rsaSealer)
        return try ARCFixtures.sealed(first, by: ARCFixtures.ed25519Sealer, arc: "pass")
    }

    func assertFails(_ message: [UInt8], because words: String, file: StaticString = #filePath, line: UInt = #line) async {
        let outcome = await verify(message)
        XCTAssertEqual(outcome.result, .fail, "\(outcome)", file: file, line: line)
        XCTAssertTrue(outcome.reason?.contains(words) == true, "reason \(outcome.reason ?? "nil"), expected \(words)", file: file, line: line)
    }

    func testNoARCFieldsIsNone() async {
        let outcome = await verify(ARCFixtures.withResults(ARCFixtures.message))
        XCTAssertEqual(outcome, ARCOutcome(result: .none))
    }

    func testOneAndTwoSetsPass() async throws {
        for sealer in [ARCFixtures.rsaSealer, ARCFixtures.ed25519Sealer] {
            let one = try ARCFixtures.sealed(ARCFixtures.message, by: sealer)
            let outcome = await verify(one)
            XCTAssertEqual(outcome, ARCOutcome(result: .pass, instances: 1), sealer.selector)
        }
        let outcome = await verify(try twoSets())
        XCTAssertEqual(outcome, ARCOutcome(result: .pass, instances: 2))
    }

    /// A hop that adds fields above the chain (Received, its own Authentication-Results) before
    /// verifying does not break it: the sets need not be the topmost fields.
    func testFieldsAboveTheChainDoNotMatter() async throws {
        let arrived = Array("Received: from mx.arc.test by next.example.net; Tue, 02 Jan 2024 10:00:09 +0000\r\n".utf8)
            + ARCFixtures.withResults(try twoSets(), authservID: "next.example.net", arc: nil)
        let outcome = await verify(arrived)
        XCTAssertEqual(outcome, ARCOutcome(result: .pass, instances: 2))
    }

    func testBodyChangedAfterSealing() async throws {
        let changed = ARCFixtures.replacing("the report is attached", with: "the report is not attached", in: try twoSets())
        await assertFails(changed, because: "body hash did not verify")
    }

    func testSignedHeaderChangedAfterSealing() async throws {
        let changed = ARCFixtures.replacing("Subject: The quarterly report", with: "Subject: The yearly report", in: try twoSets())
        await assertFails(changed, because: "ARC-Message-Signature i=2: signature did not verify")
    }

    /// An unsigned field (Authentication-Results, which hops may remove) may change.
    func testUnsignedFieldChangedAfterSealing() async throws {
        // (Only the Authentication-Results fields: the same text in an ARC-Authentication-Results is sealed.)
        let message = try twoSets()
        let changed = ARCFixtures.replacing("Authentication-Results: mx.arc.test; spf=pass", with: "Authentication-Results: mx.arc.test; spf=neutral", in: message)
        XCTAssertNotEqual(changed, message)
        let outcome = await verify(changed)
        XCTAssertEqual(outcome.result, .pass, "\(outcome)")
    }

    /// `message` with the `b=` of the seal of set `instance` changed in its first character
    /// (still base64 of the same length).
    func corruptingSeal(_ instance: Int, of message: [UInt8]) throws -> [UInt8] {
        let seal = try XCTUnwrap(DKIMMessage(message).fields.first { $0.lowercasedName == "arc-seal" && ARCChain.instance(of: $0) == instance })
        let b = try XCTUnwrap(try DKIMTagList.parse(Array(seal.value))["b"])
        return ARCFixtures.replacing(b, with: (b.first == "A" ? "B" : "A") + b.dropFirst(), in: message)
    }

    func testCorruptedSealSignature() async throws {
        for sealer in [ARCFixtures.rsaSealer, ARCFixtures.ed25519Sealer] {
            let one = try ARCFixtures.sealed(ARCFixtures.message, by: sealer)
            await assertFails(try corruptingSeal(1, of: one), because: "ARC-Seal i=1: signature did not verify")
        }
        let two = try twoSets()
        await assertFails(try corruptingSeal(2, of: two), because: "ARC-Seal i=2: signature did not verify")
        // The older seal is sealed by the newer one, whose check (the first) fails already.
        await assertFails(try corruptingSeal(1, of: two), because: "ARC-Seal i=2: signature did not verify")
    }

    /// The AAR of an older set is sealed too: changing it breaks that set's seal and every later one.
    func testChangedResultsOfAnOlderSet() async throws {
        let message = try twoSets()
        let changed = ARCFixtures.replacing("i=1; mx.arc.test; spf=pass", with: "i=1; mx.arc.test; spf=fail", in: message)
        XCTAssertNotEqual(changed, message)
        await assertFails(changed, because: "ARC-Seal i=2: signature did not verify")
    }

    func testMissingFieldOfASet() async throws {
        for name in ["ARC-Seal", "ARC-Message-Signature", "ARC-Authentication-Results"] {
            for instance in [1, 2] {
                let message = ARCFixtures.removingField(name, instance: instance, from: try twoSets())
                XCTAssertEqual(DKIMMessage(message).fields.filter { ARCChain.fieldNames.contains($0.lowercasedName) }.count, 5)
                await assertFails(message, because: "ARC set \(instance) is incomplete")
            }
        }
    }

    func testDuplicateSet() async throws {
        let message = try twoSets()
        let fields = DKIMMessage(message).fields.filter { ARCChain.fieldNames.contains($0.lowercasedName) && ARCChain.instance(of: $0) == 1 }
        XCTAssertEqual(fields.count, 3)
        let again = ARCFixtures.prepending(fields.map { String(decoding: $0.raw, as: UTF8.self) }, to: message)
        await assertFails(again, because: "ARC set 1 has a field more than once")
    }

    func testGapInTheInstances() async throws {
        // The second set renumbered 3: i=1 and i=3, no i=2.
        let message = try twoSets()
        let gap = ARCFixtures.replacing("i=2;", with: "i=3;", in: message)
        XCTAssertEqual(DKIMMessage(gap).fields.compactMap(ARCChain.instance).sorted(), [1, 1, 1, 3, 3, 3])
        await assertFails(gap, because: "ARC set 2 is incomplete")
    }

    func testInstancesOutOfRange() async throws {
        for bad in ["i=0;", "i=51;", "i=-1;", "i=01x;", "i=;", "i=100;"] {
            let message = ARCFixtures.replacing("i=1;", with: bad, in: try ARCFixtures.sealed(ARCFixtures.message))
            await assertFails(message, because: "without a valid i= tag")
        }
        // A set without i= at all.
        let message = ARCFixtures.replacing("ARC-Seal: i=1;", with: "ARC-Seal:", in: try ARCFixtures.sealed(ARCFixtures.message))
        await assertFails(message, because: "ARC-Seal without a valid i= tag")
    }

    func testChainValidationValues() async throws {
        let unsealed = ARCFixtures.withResults(ARCFixtures.message)
        // Properly signed seals whose cv= is wrong for their place in the chain.
        let passOnFirst = try ARCFixtures.handSealed(unsealed, instance: 1, cv: "pass")
        await assertFails(passOnFirst, because: "ARC-Seal i=1 has cv=pass, not none")
        let first = try ARCFixtures.handSealed(unsealed, instance: 1, cv: "none")
        let firstOutcome = await verify(first)
        XCTAssertEqual(firstOutcome, ARCOutcome(result: .pass, instances: 1), "the hand-made set itself is sound")
        let noneOnSecond = try ARCFixtures.handSealed(first, instance: 2, cv: "none")
        await assertFails(noneOnSecond, because: "ARC-Seal i=2 has cv=none, not pass")
        let failOnNewest = try ARCFixtures.handSealed(first, instance: 2, cv: "fail")
        await assertFails(failOnNewest, because: "ARC-Seal i=2 says the chain failed")
        let passed = try ARCFixtures.handSealed(first, instance: 2, cv: "pass")
        let passedOutcome = await verify(passed)
        XCTAssertEqual(passedOutcome, ARCOutcome(result: .pass, instances: 2))
        let unknown = try ARCFixtures.handSealed(first, instance: 2, cv: "maybe")
        await assertFails(unknown, because: "ARC-Seal i=2 has cv=maybe")
    }

    /// A seal with h=, and a message signature whose h= names ARC-Seal, fail even when signed
    /// properly: the hand-made set signs over the altered tags.
    func testForbiddenTags() async throws {
        let unsealed = ARCFixtures.withResults(ARCFixtures.message)
        let sealWithH = try ARCFixtures.handSealed(unsealed, instance: 1, cv: "none", sealTags: ["h=from;"])
        await assertFails(sealWithH, because: "ARC-Seal: h= is not allowed")
        let first = try ARCFixtures.handSealed(unsealed, instance: 1, cv: "none")
        let signsSeal = try ARCFixtures.handSealed(first, instance: 2, cv: "pass", signedFields: ["from", "subject", "arc-seal"])
        await assertFails(signsSeal, because: "ARC-Message-Signature: h= signs ARC-Seal")
    }

    func testKeyMissingOrUnsuitable() async throws {
        let sealed = try ARCFixtures.sealed(ARCFixtures.message, by: ARCSealer(domain: ARCFixtures.domain, selector: "nosuch", key: DKIMFixtures.rsaKey))
        await assertFails(sealed, because: "nosuch._domainkey.arc.test")
        // The Ed25519 record under the RSA selector: the key type does not match a=.
        let outcome = await verify(try ARCFixtures.sealed(ARCFixtures.message), records: ["prsa": DKIMFixtures.ed25519Key.keyRecord])
        XCTAssertEqual(outcome.result, .fail)
        XCTAssertTrue(outcome.reason?.contains("does not match a=rsa-sha256") == true, "\(outcome)")
    }

    func testFiftySetsPassAndTheSealerStops() async throws {
        var message = ARCFixtures.message
        for instance in 1...50 {
            message = try ARCFixtures.sealed(message, by: ARCFixtures.ed25519Sealer, arc: instance == 1 ? "none" : "pass")
        }
        let outcome = await verify(message)
        XCTAssertEqual(outcome, ARCOutcome(result: .pass, instances: 50))
        let full = ARCFixtures.withResults(message, arc: "pass")
        XCTAssertNil(try ARCFixtures.ed25519Sealer.seal(full, authservID: ARCFixtures.authservID, now: Date()))
    }

    func testSealerRefuses() throws {
        let sealer = ARCFixtures.rsaSealer
        // No Authentication-Results of ours: another host's only.
        let theirs = ARCFixtures.withResults(ARCFixtures.message, authservID: "mx.example.net")
        XCTAssertNil(try sealer.seal(theirs, authservID: ARCFixtures.authservID, now: Date()))
        XCTAssertNil(try sealer.seal(ARCFixtures.message, authservID: ARCFixtures.authservID, now: Date()))
        // A chain that failed on arrival, or whose result we did not record.
        let chain = try ARCFixtures.sealed(ARCFixtures.message)
        for arc in ["fail", "none", nil] as [String?] {
            let arrived = ARCFixtures.withResults(chain, arc: arc)
            XCTAssertNil(try sealer.seal(arrived, authservID: ARCFixtures.authservID, now: Date()), "arc=\(arc ?? "absent")")
        }
        // A malformed chain is not sealed over even when our results said pass.
        let broken = ARCFixtures.withResults(ARCFixtures.removingField("ARC-Seal", instance: 1, from: chain), arc: "pass")
        XCTAssertNil(try sealer.seal(broken, authservID: ARCFixtures.authservID, now: Date()))
    }

    func testSealedSetShape() throws {
        let arrived = ARCFixtures.withResults(ARCFixtures.message)
        let set = try XCTUnwrap(try ARCFixtures.rsaSealer.seal(arrived, authservID: ARCFixtures.authservID, now: DKIMFixtures.now))
        XCTAssertTrue(set[0].hasPrefix("ARC-Seal: i=1; a=rsa-sha256; t=1704189600; cv=none; d=arc.test; s=prsa;"), set[0])
        XCTAssertTrue(set[1].hasPrefix("ARC-Message-Signature: i=1; a=rsa-sha256; c=relaxed/relaxed; d=arc.test;"), set[1])
        XCTAssertEqual(set[2], "ARC-Authentication-Results: i=1; mx.arc.test; spf=pass smtp.mailfrom=alice@example.org;\r\n\tdkim=none (no signature);\r\n\tarc=none")
        // The signatures are folded under 78 columns; the AAR keeps the Authentication-Results' folding.
        for field in set {
            XCTAssertFalse(field.hasSuffix("\r\n"))
            let limit = field.hasPrefix("ARC-Authentication-Results:") ? 998 : 78
            for line in field.components(separatedBy: "\r\n") { XCTAssertLessThanOrEqual(line.count, limit, line) }
        }
        // The AMS never signs the chain's own fields or Authentication-Results (RFC 8617 §4.1.2).
        let tags = try DKIMTagList.parse(Array(set[1].utf8.dropFirst("ARC-Message-Signature:".utf8.count)))
        let signed = try XCTUnwrap(tags["h"]).split(separator: ":").map { String($0.trimmingWhiteSpace).lowercased() }
        XCTAssertTrue(signed.contains("from"))
        XCTAssertTrue(Set(signed).isDisjoint(with: ARCSealer.unsignedFields), "\(signed)")
        // The seal has no h= (§4.1.3).
        XCTAssertNil(try DKIMTagList.parse(Array(set[0].utf8.dropFirst("ARC-Seal:".utf8.count)))["h"])
    }
}
