import PluginAPI
import PosternTestSupport
import XCTest
@testable import PosternSenderAuthCore

/// The record parser (RFC 7208 §4.6, §12) on byte fixtures, well-formed and not, and a fuzz test
/// of seeded mutations through parsing and evaluation.
final class SPFRecordTests: XCTestCase {
    func parsed(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> SPFRecord? {
        do { return try SPFRecord(parsing: text) } catch {
            XCTFail("'\(text)' refused: \(error)", file: file, line: line)
            return nil
        }
    }

    func testRecordSelection() {
        XCTAssertTrue(SPFRecord.isSPF("v=spf1"))
        XCTAssertTrue(SPFRecord.isSPF("v=spf1 -all"))
        XCTAssertTrue(SPFRecord.isSPF("V=SPF1 -all"))
        XCTAssertFalse(SPFRecord.isSPF("v=spf10 -all"))
        XCTAssertFalse(SPFRecord.isSPF("v=spf1-all"))
        XCTAssertFalse(SPFRecord.isSPF(" v=spf1 -all"))
        XCTAssertFalse(SPFRecord.isSPF("spf2.0/pra -all"))
        XCTAssertFalse(SPFRecord.isSPF(""))
    }

    func testMechanismsQualifiersAndCIDRForms() throws {
        let record = try XCTUnwrap(parsed("v=spf1 +all -include:_spf.example.com ~a ?a:mail.example.com/24 a/28//64 mx//48 "
                                          + "MX:example.org/30 ptr ptr:example.com ip4:192.0.2.0/24 ip6:2001:db8::/32 ip4:192.0.2.1 "
                                          + "exists:%{ir}.list.example.com"))
        XCTAssertEqual(record.directives.map(\.qualifier), [.pass, .fail, .softfail, .neutral] + Array(repeating: .pass, count: 9))
        XCTAssertEqual(record.directives.map(\.text)[1], "-include:_spf.example.com")
        guard case .a(let domain, let cidr) = record.directives[3].mechanism else { return XCTFail("\(record.directives[3])") }
        XCTAssertEqual(domain?.text, "mail.example.com")
        XCTAssertEqual(cidr, SPFDualCIDR(ip4: 24, ip6: 128))
        XCTAssertEqual(record.directives[4].mechanism, .a(nil, SPFDualCIDR(ip4: 28, ip6: 64)))
        XCTAssertEqual(record.directives[5].mechanism, .mx(nil, SPFDualCIDR(ip4: 32, ip6: 48)))
        guard case .mx(let mxDomain, let mxCIDR) = record.directives[6].mechanism else { return XCTFail() }
        XCTAssertEqual(mxDomain?.text, "example.org")
        XCTAssertEqual(mxCIDR.ip4, 30)
        XCTAssertEqual(record.directives[7].mechanism, .ptr(nil))
        XCTAssertEqual(record.directives[9].mechanism, .ip4(SPFAddress("192.0.2.0")!, prefix: 24))
        XCTAssertEqual(record.directives[10].mechanism, .ip6(SPFAddress("2001:db8::")!, prefix: 32))
        XCTAssertEqual(record.directives[11].mechanism, .ip4(SPFAddress("192.0.2.1")!, prefix: 32))
        XCTAssertEqual(record.directives.filter(\.mechanism.queriesDNS).count, 9)
    }

    func testModifiers() throws {
        let record = try XCTUnwrap(parsed("v=spf1 mx redirect=_spf.example.com exp=explain.%{d} x-Custom=%{l}anything moo.cow-far_out=m"))
        XCTAssertEqual(record.redirect?.text, "_spf.example.com")
        XCTAssertEqual(record.explanation?.text, "explain.%{d}")
        XCTAssertEqual(record.unknownModifiers.map(\.name), ["x-custom", "moo.cow-far_out"])
        XCTAssertEqual(try XCTUnwrap(parsed("v=spf1")).directives, [])
        XCTAssertEqual(try XCTUnwrap(parsed("v=spf1   -all  ")).directives.count, 1)
    }

    func testSyntaxErrorsNameTheTerm() {
        let refused: [(String, String)] = [
            ("v=spf1 foo", "unknown mechanism 'foo'"),
            ("v=spf1 -", "a qualifier without a mechanism"),
            ("v=spf1 +-all", "unknown mechanism '-'"),
            ("v=spf1 all:x.com", "'all' takes no argument"),
            ("v=spf1 include", "needs ':' and a domain"),
            ("v=spf1 include:", "needs ':' and a domain"),
            ("v=spf1 exists", "needs ':' and a domain"),
            ("v=spf1 a:", "expected ':' and a domain"),
            ("v=spf1 a/33", "bad IPv4 prefix length"),
            ("v=spf1 a//129", "bad IPv6 prefix length"),
            ("v=spf1 a/024", "bad IPv4 prefix length"),
            ("v=spf1 mx:example", "must end in a top label"),
            ("v=spf1 ip4", "needs ':' and an address"),
            ("v=spf1 ip4:192.0.2.256", "is not an IPv4 address"),
            ("v=spf1 ip4:192.0.2.01", "is not an IPv4 address"),
            ("v=spf1 ip4:192.0.2.0/33", "bad prefix length"),
            ("v=spf1 ip4:192.0.2.0/", "bad prefix length"),
            ("v=spf1 ip4:2001:db8::1", "is not an IPv4 address"),
            ("v=spf1 ip6:192.0.2.1", "is not an IPv6 address"),
            ("v=spf1 ip6:2001:db8:::1", "is not an IPv6 address"),
            ("v=spf1 ip6:1:2:3:4:5:6:7:8:9", "is not an IPv6 address"),
            ("v=spf1 ip6:2001:db8::/129", "bad prefix length"),
            ("v=spf1 redirect=a.com redirect=b.com", "redirect= appears more than once"),
            ("v=spf1 exp=a.com exp=b.com", "exp= appears more than once"),
            ("v=spf1 redirect=", "redirect= without a domain"),
            ("v=spf1 exp=", "exp= without a domain"),
            ("v=spf1 x=%{q}", "unknown macro letter 'q'"),
            ("v=spf1 a:%{c}.example.com", "only in explanations"),
            ("v=spf1 -all\u{00E9}", "printable ASCII"),
            ("v=spf1 -all\tmx", "printable ASCII"),
            ("v=spf2 -all", "does not start with 'v=spf1'"),
        ]
        for (text, reason) in refused {
            XCTAssertThrowsError(try SPFRecord(parsing: text), text) { error in
                XCTAssertTrue((error as? SPFSyntaxError)?.message.contains(reason) == true, "\(text): \(error)")
            }
        }
    }

    func testAddresses() {
        XCTAssertEqual(SPFAddress("::ffff:192.0.2.1")?.unmapped.description, "192.0.2.1")
        XCTAssertEqual(SPFAddress("2001:DB8:0:0:1:0:0:1")?.description, "2001:db8::1:0:0:1")
        XCTAssertEqual(SPFAddress("2001:db8::")?.description, "2001:db8::")
        XCTAssertEqual(SPFAddress("::")?.description, "::")
        XCTAssertEqual(SPFAddress("1:0:2:0:0:3:0:4")?.description, "1:0:2::3:0:4")
        for bad in ["", ".", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.-4", ":::", "1::2::3", "12345::", "g::1", "::1.2.3", "[::1]"] {
            XCTAssertNil(SPFAddress(bad), bad)
        }
        let network = SPFAddress("192.0.2.128")!
        XCTAssertTrue(network.matches(SPFAddress("192.0.2.131")!, prefix: 30))
        XCTAssertFalse(network.matches(SPFAddress("192.0.2.132")!, prefix: 30))
        XCTAssertTrue(network.matches(SPFAddress("10.0.0.1")!, prefix: 0))
        XCTAssertFalse(network.matches(SPFAddress("2001:db8::1")!, prefix: 0))
    }

    /// Seeded mutations of well-formed records (bytes replaced, inserted, deleted, terms
    /// duplicated) through the parser and through a whole check against an in-memory zone. Each
    /// must end in a result, a record that does not parse in permerror.
    func testFuzzedRecordsNeverCrash() async {
        let seeds = [
            "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all",
            "v=spf1 a mx/24//64 ptr:example.com ~all",
            "v=spf1 include:inc.example.com exists:%{ir}.%{v}._spf.%{d2} ?all",
            "v=spf1 a:%{l1r-}.%{d}/24 redirect=other.example.com",
            "v=spf1 -exists:%{p}.%{h}.%{o} exp=exp.%{d} x=%{S}%{L}%%%_%-",
            "v=spf1 mx:example.com//64 -ip4:192.0.2.1/32 ~ptr +all",
        ]
        var zone = SPFZoneResolver()
        zone.add("example.com", .a, "192.0.2.10")
        zone.add("example.com", .mx, "mail.example.com")
        zone.add("mail.example.com", .a, "192.0.2.20")
        zone.add("inc.example.com", .txt, "v=spf1 include:fuzz.example.com -all")
        zone.add("other.example.com", .txt, "v=spf1 redirect=fuzz.example.com")
        zone.add("exp.fuzz.example.com", .txt, "%{i} %{c} %{t} %{r} %{p}")
        zone.add("192.0.2.10", .ptr, "example.com")
        var random = SeededRandom(seed: 7208)
        let alphabet = Array("v=spf1 :/.%{}+-~?_aimpxeshdlorctiv0123456789".utf8) + [0, 0x09, 0x7F, 0xC3, 0xFF]
        var permerrors = 0
        for round in 0..<5_000 {
            var bytes = Array(seeds[round % seeds.count].utf8)
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let position = Int.random(in: 0...bytes.count, using: &random)
                switch Int.random(in: 0..<4, using: &random) {
                case 0 where position < bytes.count: bytes[position] = alphabet.randomElement(using: &random)!
                case 1: bytes.insert(alphabet.randomElement(using: &random)!, at: position)
                case 2 where position < bytes.count: bytes.remove(at: position)
                default:
                    let start = Int.random(in: 0...bytes.count, using: &random)
                    bytes.insert(contentsOf: bytes[start..<min(bytes.count, start + 12)], at: position)
                }
            }
            let text = String(decoding: bytes, as: UTF8.self)
            let parses = (try? SPFRecord(parsing: text)) != nil
            var roundZone = zone
            roundZone.add("fuzz.example.com", .txt, text)
            let evaluator = SPFEvaluator(resolver: roundZone)
            for ip in ["192.0.2.10", "2001:db8::1"] {
                let outcome = await evaluator.check(ip: ip, mailFrom: "a-b+c@fuzz.example.com", helo: "h.example.com", receiver: "mx.test")
                if SPFRecord.isSPF(text) && !parses {
                    XCTAssertEqual(outcome.result, .permerror, text)
                    permerrors += 1
                }
                if !SPFRecord.isSPF(text) { XCTAssertEqual(outcome.result, .none, text) }
                XCTAssertFalse(ReceivedSPFField(outcome).value.isEmpty)
            }
        }
        // The mutations must reach the error paths, not only the valid ones.
        XCTAssertGreaterThan(permerrors, 1_000)
    }
}
