import PluginAPI
import XCTest
@testable import PosternSenderAuthCore

/// DMARC evaluation (RFC 7489 §6.6) over an in-memory zone and Debian's public suffix list.
final class DMARCEvaluatorTests: XCTestCase {
    static let zone: [String: [String]] = [
        "_dmarc.example.com": ["v=DMARC1; p=reject; rua=mailto:dmarc@example.com"],
        "_dmarc.strict.example": ["v=DMARC1; p=quarantine; adkim=s; aspf=s"],
        "_dmarc.example.org": ["v=DMARC1; p=none; sp=reject"],
        "_dmarc.own.example.org": ["v=DMARC1; p=quarantine"],
        "_dmarc.nosp.example": ["v=DMARC1; p=quarantine"],
        "_dmarc.pct0.example": ["v=DMARC1; p=reject; pct=0"],
        "_dmarc.pct50.example": ["v=DMARC1; p=quarantine; pct=50"],
        "_dmarc.pct100.example": ["v=DMARC1; p=reject; pct=100"],
        "_dmarc.multi.example": ["v=DMARC1; p=reject", "v=DMARC1; p=none"],
        "_dmarc.mixed.example": ["v=spf1 -all", "v=DMARC1; p=reject", "some-verification=xyz"],
        "_dmarc.broken.example": ["v=DMARC1; p=reject; p=none"],
        "_dmarc.nop.example": ["v=DMARC1; sp=reject"],
        "_dmarc.noprua.example": ["v=DMARC1; p=bogus; rua=mailto:r@noprua.example"],
        "_dmarc.other.example": ["v=spf1 -all"],
        "_dmarc.empty.example": [],
        "_dmarc.example.co.uk": ["v=DMARC1; p=reject; sp=quarantine"],
        "_dmarc.alice.blogspot.com": ["v=DMARC1; p=reject"],
    ]

    var resolver: ZoneResolver!
    var psl: PublicSuffixList!

    override func setUpWithError() throws {
        resolver = ZoneResolver(txt: Self.zone, failing: ["_dmarc.temp.example", "_dmarc.temporg.example"])
        // Debian's list (package publicsuffix); missing, every test here fails.
        psl = try PublicSuffixList.shared()
    }

    func evaluate(_ from: String, spf: SPFResult = .fail, spfDomain: String = "elsewhere.example",
                  dkim: [DKIMSignatureOutcome] = [], sample: Int = 0) async -> DMARCOutcome {
        await evaluate(fromFields: [from], spf: spf, spfDomain: spfDomain, dkim: dkim, sample: sample)
    }

    func evaluate(fromFields: [String], spf: SPFResult = .fail, spfDomain: String = "elsewhere.example",
                  dkim: [DKIMSignatureOutcome] = [], sample: Int = 0) async -> DMARCOutcome {
        let evaluator = DMARCEvaluator(resolver: resolver, publicSuffixes: psl, sample: { sample })
        return await evaluator.evaluate(fromFields: fromFields, spf: (spf, spfDomain), dkim: dkim)
    }

    func pass(_ domain: String) -> DKIMSignatureOutcome { DKIMSignatureOutcome(result: .pass, domain: domain, selector: "s1") }

    // MARK: Alignment

    func testSPFOnlyPassAlignedRelaxed() async {
        let o = await evaluate("Alice <alice@example.com>", spf: .pass, spfDomain: "bounces.example.com")
        XCTAssertEqual(o.result, .pass)
        XCTAssertTrue(o.spfAligned)
        XCTAssertFalse(o.dkimAligned)
        XCTAssertEqual(o.disposition, DMARCPolicy.none)
        XCTAssertEqual(o.policyDomain, "example.com")
    }

    func testDKIMOnlyPassAlignedRelaxed() async {
        let o = await evaluate("alice@example.com", dkim: [pass("mail.example.com")])
        XCTAssertEqual(o.result, .pass)
        XCTAssertTrue(o.dkimAligned)
        XCTAssertFalse(o.spfAligned)
    }

    func testBothAligned() async {
        let o = await evaluate("alice@example.com", spf: .pass, spfDomain: "example.com", dkim: [pass("example.com")])
        XCTAssertEqual(o.result, .pass)
        XCTAssertTrue(o.spfAligned && o.dkimAligned)
    }

    func testDKIMPassForAnUnalignedDomainFails() async {
        let o = await evaluate("alice@example.com", dkim: [pass("example.net")])
        XCTAssertEqual(o.result, .fail)
        XCTAssertFalse(o.dkimAligned)
        XCTAssertEqual(o.disposition, .reject)
        XCTAssertEqual(o.requestedPolicy, .reject)
    }

    func testSPFPassForAnUnalignedDomainFails() async {
        let o = await evaluate("alice@example.com", spf: .pass, spfDomain: "example.com.evil.example")
        XCTAssertEqual(o.result, .fail)
        XCTAssertFalse(o.spfAligned)
    }

    func testAlignedDomainsWithoutPassDoNotCount() async {
        let failing = [DKIMSignatureOutcome(result: .fail, domain: "example.com"),
                       DKIMSignatureOutcome(result: .temperror, domain: "example.com"),
                       DKIMSignatureOutcome(result: .permerror, domain: nil)]
        for spf in [SPFResult.softfail, .neutral, .none, .temperror, .permerror, .fail] {
            let o = await evaluate("alice@example.com", spf: spf, spfDomain: "example.com", dkim: failing)
            XCTAssertEqual(o.result, .fail, "\(spf)")
        }
    }

    func testOneAlignedPassAmongSeveralSignatures() async {
        let o = await evaluate("alice@example.com", dkim: [DKIMSignatureOutcome(result: .fail, domain: "example.com"),
                                                          pass("esp.example"), pass("EXAMPLE.COM")])
        XCTAssertEqual(o.result, .pass)
    }

    func testStrictNeedsTheSameName() async {
        let sub = await evaluate("bob@strict.example", spf: .pass, spfDomain: "mail.strict.example", dkim: [pass("mail.strict.example")])
        XCTAssertEqual(sub.result, .fail)
        XCTAssertEqual(sub.disposition, .quarantine)
        let same = await evaluate("bob@strict.example", spf: .pass, spfDomain: "strict.example")
        XCTAssertEqual(same.result, .pass)
        XCTAssertTrue(same.spfAligned)
        let dkimSame = await evaluate("bob@strict.example", dkim: [pass("Strict.Example.")])
        XCTAssertEqual(dkimSame.result, .pass)
    }

    func testRelaxedAlignmentUnderAMultiLabelSuffix() async {
        // example.co.uk and other.co.uk share co.uk, not an Organizational Domain.
        let aligned = await evaluate("a@mail.example.co.uk", dkim: [pass("example.co.uk")])
        XCTAssertEqual(aligned.result, .pass)
        let unaligned = await evaluate("a@example.co.uk", dkim: [pass("other.co.uk")])
        XCTAssertEqual(unaligned.result, .fail)
    }

    func testPrivateSectionSeparatesOrganizationalDomains() async {
        // blogspot.com is in the private section: bob.blogspot.com does not align with alice's.
        let o = await evaluate("a@alice.blogspot.com", dkim: [pass("bob.blogspot.com")])
        XCTAssertEqual(o.result, .fail)
        XCTAssertEqual(o.disposition, .reject)
    }

    // MARK: Policy discovery

    func testOrganizationalDomainFallbackUsesSubdomainPolicy() async {
        let o = await evaluate("a@mail.example.org")
        XCTAssertEqual(o.result, .fail)
        XCTAssertEqual(o.policyDomain, "example.org")
        XCTAssertTrue(o.subdomainPolicyApplied)
        XCTAssertEqual(o.disposition, .reject)
        XCTAssertEqual(resolver.asked, ["_dmarc.mail.example.org", "_dmarc.example.org"])
    }

    func testOrganizationalDomainItselfUsesP() async {
        let o = await evaluate("a@example.org")
        XCTAssertEqual(o.result, .fail)
        XCTAssertFalse(o.subdomainPolicyApplied)
        XCTAssertEqual(o.disposition, DMARCPolicy.none)
        XCTAssertEqual(resolver.asked, ["_dmarc.example.org"])
    }

    func testSubdomainWithItsOwnRecordUsesItsP() async {
        let o = await evaluate("a@own.example.org")
        XCTAssertEqual(o.policyDomain, "own.example.org")
        XCTAssertFalse(o.subdomainPolicyApplied)
        XCTAssertEqual(o.disposition, .quarantine)
    }

    func testSubdomainWithoutSPFallsBackToP() async {
        let o = await evaluate("a@deep.sub.nosp.example")
        XCTAssertEqual(o.policyDomain, "nosp.example")
        XCTAssertTrue(o.subdomainPolicyApplied)
        XCTAssertEqual(o.disposition, .quarantine)
    }

    func testSubdomainPolicyUnderAMultiLabelSuffix() async {
        let o = await evaluate("a@mail.example.co.uk")
        XCTAssertEqual(o.policyDomain, "example.co.uk")
        XCTAssertEqual(o.disposition, .quarantine)
    }

    func testMissingRecordIsNone() async {
        let o = await evaluate("a@norecord.example")
        XCTAssertEqual(o.result, DMARCResult.none)
        XCTAssertEqual(o.disposition, DMARCPolicy.none)
        XCTAssertNil(o.record)
        XCTAssertEqual(o.fromDomain, "norecord.example")
        XCTAssertEqual(resolver.asked, ["_dmarc.norecord.example"])
    }

    func testMissingRecordOnASubdomainAndItsOrganizationalDomain() async {
        let o = await evaluate("a@x.norecord.example")
        XCTAssertEqual(o.result, DMARCResult.none)
        XCTAssertEqual(resolver.asked, ["_dmarc.x.norecord.example", "_dmarc.norecord.example"])
    }

    func testNoDataAndOtherTXTRecordsAreNoRecord() async {
        let empty = await evaluate("a@empty.example")
        XCTAssertEqual(empty.result, DMARCResult.none)
        let other = await evaluate("a@other.example")
        XCTAssertEqual(other.result, DMARCResult.none)
    }

    func testOtherTXTRecordsBesideTheDMARCRecordAreDiscarded() async {
        let o = await evaluate("a@mixed.example")
        XCTAssertEqual(o.result, .fail)
        XCTAssertEqual(o.disposition, .reject)
    }

    func testMultipleRecordsEndDiscovery() async {
        let o = await evaluate("a@multi.example")
        XCTAssertEqual(o.result, DMARCResult.none)
        XCTAssertEqual(o.disposition, DMARCPolicy.none)
        XCTAssertEqual(o.reason, "2 DMARC records at _dmarc.multi.example")
        // No fallback to the Organizational Domain after several records.
        let sub = await evaluate("a@x.multi.example")
        XCTAssertEqual(sub.result, DMARCResult.none)
    }

    func testMalformedRecordIsPermerror() async {
        let o = await evaluate("a@broken.example", dkim: [pass("broken.example")])
        XCTAssertEqual(o.result, .permerror)
        XCTAssertEqual(o.disposition, DMARCPolicy.none)
        XCTAssertTrue(o.reason?.contains("duplicate tag p=") == true, o.reason ?? "")
    }

    func testRecordWithoutPolicyIsPermerror() async {
        let o = await evaluate("a@nop.example")
        XCTAssertEqual(o.result, .permerror)
    }

    func testRecordWithBadPolicyButReportURIActsAsNone() async {
        let o = await evaluate("a@noprua.example")
        XCTAssertEqual(o.result, .fail)
        XCTAssertEqual(o.disposition, DMARCPolicy.none)
        XCTAssertEqual(o.record?.aggregateReportURIs.first?.mailtoAddress, "r@noprua.example")
    }

    func testTemporaryDNSErrorIsTemperror() async {
        let o = await evaluate("a@temp.example", dkim: [pass("temp.example")])
        XCTAssertEqual(o.result, .temperror)
        XCTAssertEqual(o.disposition, DMARCPolicy.none)
    }

    func testTemporaryDNSErrorAtTheOrganizationalDomainIsTemperror() async {
        let o = await evaluate("a@mail.temporg.example")
        XCTAssertEqual(o.result, .temperror)
        XCTAssertEqual(o.policyDomain, "temporg.example")
    }

    // MARK: Sampling

    func testPctZeroStepsRejectDownToQuarantine() async {
        for sample in [0, 50, 99] {
            let o = await evaluate("a@pct0.example", sample: sample)
            XCTAssertEqual(o.result, .fail)
            XCTAssertEqual(o.requestedPolicy, .reject)
            XCTAssertTrue(o.sampledOut)
            XCTAssertEqual(o.disposition, .quarantine)
        }
    }

    func testPctFiftySamples() async {
        let inside = await evaluate("a@pct50.example", sample: 49)
        XCTAssertFalse(inside.sampledOut)
        XCTAssertEqual(inside.disposition, .quarantine)
        let outside = await evaluate("a@pct50.example", sample: 50)
        XCTAssertTrue(outside.sampledOut)
        XCTAssertEqual(outside.disposition, DMARCPolicy.none)
    }

    func testPctHundredAlwaysApplies() async {
        let o = await evaluate("a@pct100.example", sample: 99)
        XCTAssertFalse(o.sampledOut)
        XCTAssertEqual(o.disposition, .reject)
    }

    func testPassIsNeverSampled() async {
        let o = await evaluate("a@pct0.example", dkim: [pass("pct0.example")], sample: 99)
        XCTAssertEqual(o.result, .pass)
        XCTAssertFalse(o.sampledOut)
        XCTAssertNil(o.requestedPolicy)
    }

    // MARK: The From field

    func testNoFromFieldIsPermerror() async {
        let o = await evaluate(fromFields: [])
        XCTAssertEqual(o.result, .permerror)
        XCTAssertEqual(o.reason, "no From field")
        XCTAssertEqual(resolver.asked, [])
    }

    func testSeveralFromFieldsArePermerror() async {
        let o = await evaluate(fromFields: ["a@example.com", "b@example.com"])
        XCTAssertEqual(o.result, .permerror)
        XCTAssertEqual(o.reason, "2 From fields")
    }

    func testSeveralMailboxesOfOneDomainAreEvaluated() async {
        let o = await evaluate("Alice <alice@example.com>, bob@EXAMPLE.com", dkim: [pass("example.com")])
        XCTAssertEqual(o.result, .pass)
        XCTAssertEqual(o.fromDomain, "example.com")
    }

    func testMailboxesOfSeveralDomainsArePermerror() async {
        let o = await evaluate("alice@example.com, mallory@example.net")
        XCTAssertEqual(o.result, .permerror)
        XCTAssertEqual(o.reason, "From field names several domains (example.com, example.net)")
    }

    func testFromWithoutAddressIsPermerror() async {
        for value in ["", "undisclosed-recipients:;", "Just A Name", "<>", "alice@[192.0.2.1]"] {
            let o = await evaluate(value)
            XCTAssertEqual(o.result, .permerror, value)
        }
    }

    func testDisplayNamesCommentsAndQuotesDoNotFoolTheDomain() async {
        let o = await evaluate("\"alice@example.net\" (bank@example.net) <alice@example.com>", dkim: [pass("example.com")])
        XCTAssertEqual(o.fromDomain, "example.com")
        XCTAssertEqual(o.result, .pass)
        let quotedLocal = await evaluate("\"a@b\"@Example.COM")
        XCTAssertEqual(quotedLocal.fromDomain, "example.com")
    }
}
