import Foundation
import PluginAPI
import PosternTestSupport
import XCTest
@testable import PosternSenderAuthCore

/// Seeded mutations of sealed messages through the chain parser, the verifier and the sealer:
/// none may crash, whatever the bytes. The same seed gives the same cases on every run.
final class ARCFuzzTests: XCTestCase {
    static let cases = 5_000

    /// Text that ARC fields are made of, to mutate with more than random bytes.
    static let fragments = [
        "i=", "i=1;", "i=2;", "i=0;", "i=51;", "i=99999999999999999999;", "cv=", "cv=pass;", "cv=fail;", "cv=none;",
        "b=", "bh=", "b=;", "h=", "h=from:from:arc-seal;", "a=rsa-sha1;", "a=ed25519-sha256;", "c=simple/relaxed;",
        "c=;", "c=relaxed/relaxed/relaxed;", "d=;", "s=;", "d=..;", ";", ";;", "=", ":", "\r\n", "\r\n\t", "\n", "\r",
        "\t", " ", "\0", "\u{7F}", "é", "ARC-Seal: ", "ARC-Message-Signature: ", "ARC-Authentication-Results: ",
        "ARC-Seal: i=1; a=rsa-sha256; cv=none; d=arc.test; s=prsa; b=AAAA", "Authentication-Results: mx.arc.test; arc=pass\r\n",
        "ARC-Authentication-Results: i=1;", "ARC-Authentication-Results: i=", "ARC-Authentication-Results: ;",
    ]

    /// Sealed starting points: one and two sets, RSA and Ed25519, and a dkimpy-free hand seal.
    func seeds() throws -> [[UInt8]] {
        let rsa = try ARCFixtures.sealed(ARCFixtures.message, by: ARCFixtures.rsaSealer)
        let ed = try ARCFixtures.sealed(ARCFixtures.message, by: ARCFixtures.ed25519Sealer)
        let two = try ARCFixtures.sealed(rsa, by: ARCFixtures.ed25519Sealer, arc: "pass")
        let hand = try ARCFixtures.handSealed(ARCFixtures.withResults(ARCFixtures.message), instance: 1, cv: "none")
        return [rsa, ed, two, hand]
    }

    static func mutate(_ message: [UInt8], _ random: inout SeededRandom) -> [UInt8] {
        var bytes = message
        for _ in 0..<Int.random(in: 1...4, using: &random) {
            guard !bytes.isEmpty else { return Array(fragments.randomElement(using: &random)!.utf8) }
            let at = Int.random(in: 0..<bytes.count, using: &random)
            switch Int.random(in: 0..<7, using: &random) {
            case 0: bytes[at] = UInt8.random(in: 0...255, using: &random)
            case 1: bytes.insert(contentsOf: Array(fragments.randomElement(using: &random)!.utf8), at: at)
            case 2: bytes.removeSubrange(at..<min(bytes.count, at + Int.random(in: 1...40, using: &random)))
            case 3: bytes = Array(bytes[..<at])
            case 4:
                // A stretch repeated (a duplicated line, tag or set).
                let end = min(bytes.count, at + Int.random(in: 1...300, using: &random))
                bytes.insert(contentsOf: bytes[at..<end], at: end)
            case 5: bytes.insert(contentsOf: random.bytes(Int.random(in: 1...8, using: &random)), at: at)
            default:
                // An ARC field's value replaced with fragments.
                let parsed = DKIMMessage(bytes)
                let arcFields = parsed.fields.filter { ARCChain.fieldNames.contains($0.lowercasedName) }
                guard let field = arcFields.randomElement(using: &random) else { continue }
                let value = (0..<Int.random(in: 0...6, using: &random)).map { _ in fragments.randomElement(using: &random)! }.joined()
                bytes = Array(parsed.bytes[..<field.valueStart]) + Array(value.utf8) + Array(parsed.bytes[field.raw.endIndex...])
            }
        }
        return bytes
    }

    func testSeededMutationsNeverCrash() async throws {
        let seeds = try seeds()
        let verifier = ARCFixtures.verifier()
        // The unmutated seeds pass: the mutations start from chains that hold.
        for seed in seeds {
            let outcome = await verifier.verify(seed, now: Date())
            XCTAssertEqual(outcome.result, .pass, "\(outcome)")
        }
        var random = SeededRandom(seed: 0xA8C_8617)
        var results: [ARCResult: Int] = [:]
        for index in 0..<Self.cases {
            let mutated = Self.mutate(seeds[index % seeds.count], &random)
            let chain = ARCChain(DKIMMessage(mutated))
            let outcome = await verifier.verify(mutated, now: Date())
            results[outcome.result, default: 0] += 1
            switch (chain, outcome.result) {
            case (.none, let result): XCTAssertEqual(result, .none, "case \(index)")
            case (.malformed, let result): XCTAssertEqual(result, .fail, "case \(index)")
            case (.sets(let sets), .pass): XCTAssertEqual(outcome.instances, sets.count, "case \(index)")
            case (.sets, _): XCTAssertNotNil(outcome.reason, "case \(index)")
            }
            // The sealer on the same bytes, with our results on top: a set or a refusal, no crash.
            let arrived = ARCFixtures.withResults(mutated, arc: "pass")
            if let set = try? ARCFixtures.ed25519Sealer.seal(arrived, authservID: ARCFixtures.authservID, now: Date()) {
                XCTAssertEqual(set.count, 3, "case \(index)")
            }
        }
        // The mutations reached every outcome, not just the form check.
        XCTAssertGreaterThan(results[.fail, default: 0], Self.cases / 4, "\(results)")
        XCTAssertGreaterThan(results[.pass, default: 0], 0, "\(results)")
        XCTAssertGreaterThan(results[.none, default: 0], 0, "\(results)")
    }

    /// ARC field values alone, random and from fragments, through the `i=` reader and the chain.
    func testFieldValuesNeverCrash() {
        var random = SeededRandom(seed: 8617)
        for _ in 0..<Self.cases {
            let name = ["ARC-Seal", "ARC-Message-Signature", "ARC-Authentication-Results"].randomElement(using: &random)!
            let value: [UInt8] = Bool.random(using: &random)
                ? random.bytes(Int.random(in: 0...60, using: &random))
                : Array((0..<Int.random(in: 0...8, using: &random)).map { _ in Self.fragments.randomElement(using: &random)! }.joined().utf8)
            let message = Array("\(name):".utf8) + value + Array("\r\nFrom: a@example.org\r\n\r\nbody\r\n".utf8)
            let parsed = DKIMMessage(message)
            for field in parsed.fields { _ = ARCChain.instance(of: field) }
            if case .none = ARCChain(parsed), parsed.fields.contains(where: { ARCChain.fieldNames.contains($0.lowercasedName) }) {
                XCTFail("an ARC field was not seen: \(String(decoding: message, as: UTF8.self).debugDescription)")
            }
        }
    }
}
