import Foundation
import PluginAPI
import PosternTestSupport
import XCTest
@testable import PosternSenderAuthCore

/// Broken signatures and key records: a clear permerror, never a crash; and a seeded fuzz of
/// signed messages, signature fields and key records.
final class DKIMMalformedTests: XCTestCase {
    let edSigner = DKIMSigner(domain: "example.org", selector: "ed1", key: DKIMFixtures.ed25519Key)
    var resolver: TableResolver { DKIMFixtures.resolver(["ed1._domainkey.example.org": DKIMFixtures.ed25519Key.keyRecord]) }

    /// The outcome of a message whose only signature field has `value`.
    func outcome(_ value: String) async -> DKIMSignatureOutcome? {
        let message = Array("DKIM-Signature: \(value)\r\n".utf8) + DKIMFixtures.message()
        return await DKIMVerifier(resolver: resolver).verify(message, now: DKIMFixtures.now).first
    }

    func testMalformedSignaturesArePermerrors() async {
        let good = "v=1; a=ed25519-sha256; d=example.org; s=ed1; h=from; bh=AAAA; b=AAAA"
        let cases: [(String, String)] = [
            ("a=ed25519-sha256; d=example.org; s=ed1; h=from; bh=AAAA; b=AAAA", "missing required tag v="),
            ("v=1; d=example.org; s=ed1; h=from; bh=AAAA; b=AAAA", "missing required tag a="),
            ("v=1; a=ed25519-sha256; d=example.org; s=ed1; h=from; bh=AAAA", "missing required tag b="),
            ("v=1; a=ed25519-sha256; s=ed1; h=from; bh=AAAA; b=AAAA", "missing required tag d="),
            ("v=2; a=ed25519-sha256; d=example.org; s=ed1; h=from; bh=AAAA; b=AAAA", "unsupported version v=2"),
            (good.replacingOccurrences(of: "b=AAAA", with: "b=A*A!"), "b= is not base64"),
            (good.replacingOccurrences(of: "bh=AAAA", with: "bh=%%"), "bh= is not base64"),
            (good.replacingOccurrences(of: "ed25519-sha256", with: "dsa-sha512"), "unknown algorithm a=dsa-sha512"),
            (good + "; d=example.com", "malformed tag list: duplicate tag d="),
            (good.replacingOccurrences(of: "h=from", with: "h=to:subject"), "h= does not include From"),
            (good.replacingOccurrences(of: "h=from", with: "h=from::to"), "h= holds an empty or invalid field name"),
            (good + "; c=fancy/simple", "unknown canonicalization c=fancy/simple"),
            (good + "; i=alice@example.com", "i= is not within d="),
            (good + "; i=nobody", "i= has no '@'"),
            (good + "; l=-5", "l= is not a number"),
            (good + "; x=soon", "x= is not a number"),
            (good + "; t=100; x=50", "x= is not after t="),
            (good + "; q=http/well-known", "no supported query method in q=http/well-known"),
            (good.replacingOccurrences(of: "d=example.org", with: "d=exa mple..org"), "d= is not a domain name"),
            ("v=1; a", "malformed tag list: tag a has no '='"),
            ("v=1; 9a=x", "malformed tag list: a tag name cannot start with '9'"),
            ("", "missing required tag v="),
        ]
        for (value, reason) in cases {
            let result = await outcome(value)
            XCTAssertEqual(result?.result, .permerror, value)
            XCTAssertEqual(result?.reason, reason, value)
        }
    }

    func testRSASHA1IsRefused() async {
        let result = await outcome("v=1; a=rsa-sha1; d=example.org; s=ed1; h=from; bh=AAAA; b=AAAA")
        XCTAssertEqual(result?.result, .fail)
        XCTAssertEqual(result?.reason, "rsa-sha1 is not accepted (RFC 8301)")
    }

    func testOutcomeNamesWhatParsed() async {
        let result = await outcome("v=1; a=dsa-sha512; d=Example.ORG; s=sel; h=from; bh=AAAA; b=QUJDREVGR0hJSktM")
        XCTAssertEqual(result?.domain, "example.org")
        XCTAssertEqual(result?.selector, "sel")
        XCTAssertEqual(result?.algorithm, "dsa-sha512")
        XCTAssertEqual(result?.signaturePrefix, "QUJDREVG")
    }

    func testKeyRecordParser() throws {
        XCTAssertThrowsError(try DKIMKeyRecord.parse("v=DKIM1; p=AAAA; p=BBBB"))
        XCTAssertThrowsError(try DKIMKeyRecord.parse("v=DKIM2; p=AAAA"))
        XCTAssertThrowsError(try DKIMKeyRecord.parse("v=DKIM1; p=!!"))
        XCTAssertThrowsError(try DKIMKeyRecord.parse("v=DKIM1; p=\u{1}"))
        let record = try DKIMKeyRecord.parse("v=DKIM1; t=y:s; h=sha1:SHA256; k=ED25519; p=AA AA")
        XCTAssertEqual(record.keyType, .ed25519)
        XCTAssertEqual(record.hashes, ["sha1", "sha256"])
        XCTAssertTrue(record.testing)
        XCTAssertTrue(record.strictIdentity)
        XCTAssertEqual(record.publicKey, [0, 0, 0])
        XCTAssertTrue(try DKIMKeyRecord.parse("p=").isRevoked)
    }

    func testTagListKeepsRawValueRanges() throws {
        let text = Array("v=1; b= ab\r\n cd ;x=2;".utf8)
        let list = try DKIMTagList.parse(text)
        XCTAssertEqual(list.tags.map(\.name), ["v", "b", "x"])
        XCTAssertEqual(list["b"], "ab\r\n cd")
        let range = try XCTUnwrap(list.tag("b")).rawValueRange
        XCTAssertEqual(String(decoding: text[range], as: UTF8.self), " ab\r\n cd ")
    }

    /// 6,000 seeded mutations: of a signed message (bytes flipped, inserted, deleted, lines
    /// duplicated), of its DKIM-Signature value, and of key records. Nothing may crash; an
    /// unmutated message must pass, and a mutated one gives one outcome per signature field.
    func testSeededMutationsNeverCrash() async throws {
        var random = SeededRandom(seed: 0xD1C1_2024)
        let rsa = DKIMSigner(domain: "example.org", selector: "rsa1", key: DKIMFixtures.rsaKey,
                             headerCanonicalization: .simple, bodyCanonicalization: .simple)
        let messages = [try DKIMFixtures.signed(DKIMFixtures.message(), by: edSigner),
                        try DKIMFixtures.signed(DKIMFixtures.message(), by: rsa)]
        let records = [DKIMFixtures.ed25519Key.keyRecord, DKIMFixtures.rsaKey.keyRecord]
        let resolver = DKIMFixtures.resolver(["ed1._domainkey.example.org": records[0], "rsa1._domainkey.example.org": records[1]])
        let verifier = DKIMVerifier(resolver: resolver)
        for message in messages {
            let outcomes = await verifier.verify(message, now: DKIMFixtures.now)
            XCTAssertEqual(outcomes.map(\.result), [.pass])
        }
        let alphabet = Array("=; :\t\r\n@.-_abvhdsAZ019+/".utf8) + [0x00, 0x7F, 0xFF]
        func mutate(_ bytes: [UInt8]) -> [UInt8] {
            var bytes = bytes
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let position = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &random)
                let byte = Bool.random(using: &random) ? alphabet.randomElement(using: &random)! : UInt8.random(in: 0...255, using: &random)
                switch Int.random(in: 0..<4, using: &random) {
                case 0 where !bytes.isEmpty: bytes[position] = byte
                case 1: bytes.insert(byte, at: position)
                case 2 where !bytes.isEmpty: bytes.remove(at: position)
                default:
                    let length = Int.random(in: 0...20, using: &random)
                    bytes.insert(contentsOf: bytes[position..<min(bytes.count, position + length)], at: position)
                }
            }
            return bytes
        }
        var results: [DKIMResult: Int] = [:]
        for round in 0..<6_000 {
            switch round % 3 {
            case 0:
                let mutated = mutate(messages[round % 2])
                let fieldCount = DKIMMessage(mutated).fields.filter { $0.lowercasedName == "dkim-signature" }.count
                let outcomes = await verifier.verify(mutated, now: DKIMFixtures.now)
                XCTAssertEqual(outcomes.count, fieldCount)
                for outcome in outcomes { results[outcome.result, default: 0] += 1 }
            case 1:
                let field = DKIMMessage(messages[round % 2]).fields[0]
                let value = mutate(Array(field.value))
                if let parsed = try? DKIMSignature.parse(value) {
                    XCTAssertTrue(parsed.signedHeaders.contains { $0.lowercased() == "from" })
                }
                let message = Array("DKIM-Signature:".utf8) + value + Array("\r\n".utf8) + DKIMFixtures.message()
                _ = await verifier.verify(message, now: DKIMFixtures.now)
            default:
                let record = String(decoding: mutate(Array(records[round % 2].utf8)), as: UTF8.self)
                _ = try? DKIMKeyRecord.parse(record)
                let name = (round % 2 == 0 ? "ed1" : "rsa1") + "._domainkey.example.org"
                let perMessage = DKIMVerifier(resolver: DKIMFixtures.resolver([name: record]))
                let outcomes = await perMessage.verify(messages[round % 2], now: DKIMFixtures.now)
                XCTAssertEqual(outcomes.count, 1)
            }
        }
        // The mutations reach every kind of outcome, not only parse errors.
        XCTAssertGreaterThan(results[.fail, default: 0], 100, "\(results)")
        XCTAssertGreaterThan(results[.permerror, default: 0], 100, "\(results)")
        XCTAssertGreaterThan(results[.pass, default: 0], 10, "\(results)")
    }
}
