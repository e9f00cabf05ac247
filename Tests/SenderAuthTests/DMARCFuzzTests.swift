import PluginAPI
import PosternTestSupport
import XCTest
@testable import PosternSenderAuthCore

/// Seeded mutations of DMARC records and From fields: parsing and evaluation always end in a
/// result, never a crash, and results stay within what the RFC allows.
final class DMARCFuzzTests: XCTestCase {
    static let records = [
        "v=DMARC1; p=reject; sp=quarantine; pct=20; adkim=s; aspf=r; rua=mailto:a@example.com!10m,mailto:b@example.org; ruf=mailto:f@example.com; fo=1:d; rf=afrf; ri=3600",
        "v=DMARC1;\r\n\tp=none;;",
        "v=DMARC1; p=quarantine; rua=mailto:%61@example.com!5k",
    ]
    static let fromFields = [
        "\"Alice \\\"A\\\" Smith\" (comment (nested)) <alice@example.com>",
        "Team: a@example.com, \"b@c\"@example.com;",
        "=?utf-8?q?J=C3=B6rg?= <jorg@example.com>, bob@EXAMPLE.com.",
    ]
    static let alphabet: [UInt8] = Array("v=DMARC1;p:!,@<>()\"\\ \t\r\n.%kx0".utf8) + [0x00, 0x7F, 0xC3, 0xFF]

    func mutate(_ text: String, _ random: inout SeededRandom) -> [UInt8] {
        var bytes = Array(text.utf8)
        for _ in 0..<Int.random(in: 1...6, using: &random) {
            let position = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &random)
            switch Int.random(in: 0..<5, using: &random) {
            case 0 where !bytes.isEmpty: bytes.remove(at: position)
            case 1: bytes.insert(Self.alphabet.randomElement(using: &random)!, at: position)
            case 2 where !bytes.isEmpty: bytes[position] = UInt8.random(in: 0...255, using: &random)
            case 3 where !bytes.isEmpty:
                bytes.removeSubrange(position..<min(bytes.count, position + Int.random(in: 1...20, using: &random)))
            default:
                bytes.insert(contentsOf: random.bytes(Int.random(in: 1...8, using: &random)), at: position)
            }
        }
        return bytes
    }

    func testMutatedRecordsParseToAResult() {
        var random = SeededRandom(seed: 7489)
        var kinds = [0, 0, 0]
        for i in 0..<6_000 {
            let bytes = mutate(Self.records[i % Self.records.count], &random)
            switch DMARCRecord.parse(bytes) {
            case .notDMARC: kinds[0] += 1
            case .invalid(let reason): kinds[1] += 1; XCTAssertFalse(reason.isEmpty)
            case .record(let record):
                kinds[2] += 1
                XCTAssertNotNil(record.policy)
                XCTAssertTrue((0...100).contains(record.percent))
                XCTAssertFalse(record.failureOptions.isEmpty)
                XCTAssertFalse(record.reportFormats.isEmpty)
            }
        }
        // The mutations reach every outcome.
        XCTAssertTrue(kinds.allSatisfy { $0 > 100 }, "\(kinds)")
    }

    func testMutatedFromFieldsGiveADomainOrAFailure() {
        var random = SeededRandom(seed: 5322)
        var found = 0
        for i in 0..<6_000 {
            let bytes = mutate(Self.fromFields[i % Self.fromFields.count], &random)
            if case .success(let domain) = AuthorDomain.extract(fromFields: [String(decoding: bytes, as: UTF8.self)]) {
                found += 1
                XCTAssertFalse(domain.isEmpty)
                XCTAssertTrue(domain.utf8.allSatisfy { $0 < 0x80 && $0 != 0x20 && !(0x41...0x5A).contains($0) }, domain)
            }
        }
        XCTAssertGreaterThan(found, 500)
    }

    func testEvaluationOfMutatedRecordsAndFromFieldsEndsInAnRFCResult() async throws {
        var random = SeededRandom(seed: 6376)
        let psl = try PublicSuffixList.shared()
        for i in 0..<5_000 {
            let record = String(decoding: mutate(Self.records[i % Self.records.count], &random), as: UTF8.self)
            let from = i % 2 == 0 ? "a@example.com" : String(decoding: mutate(Self.fromFields[i % Self.fromFields.count], &random), as: UTF8.self)
            let resolver = ZoneResolver(txt: ["_dmarc.example.com": [record]])
            let sample = Int.random(in: 0..<100, using: &random)
            let outcome = await DMARCEvaluator(resolver: resolver, publicSuffixes: psl, sample: { sample })
                .evaluate(fromFields: [from], spf: (.pass, "example.com"), dkim: [DKIMSignatureOutcome(result: .fail, domain: "example.com")])
            XCTAssertNotEqual(outcome.result, .temperror)
            if outcome.result != .fail { XCTAssertEqual(outcome.disposition, DMARCPolicy.none) }
            if outcome.result == .pass { XCTAssertTrue(outcome.spfAligned) }
        }
    }
}
