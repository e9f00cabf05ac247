import XCTest
@testable import PosternSenderAuthCore

/// The public suffix list and the Organizational Domain (RFC 7489 §3.2): a small list written
/// here for each rule kind, then the list Debian installs (package publicsuffix).
final class DMARCPublicSuffixListTests: XCTestCase {
    /// Rules of each kind, in the file's layout (sections, comments, a rule followed by text).
    static let sample = PublicSuffixList(text: """
        // a comment line
        // ===BEGIN ICANN DOMAINS===
        com
        uk
        co.uk
        jp
        *.kawasaki.jp
        !city.kawasaki.jp
        *.ck
        !www.ck
        公司.cn
        cn
        example    trailing words are ignored
        // ===END ICANN DOMAINS===
        // ===BEGIN PRIVATE DOMAINS===
        blogspot.com
        // ===END PRIVATE DOMAINS===
        """)

    func testExactRules() {
        let list = Self.sample
        XCTAssertEqual(list.publicSuffix(of: "www.example.co.uk"), "co.uk")
        XCTAssertEqual(list.organizationalDomain(of: "www.example.co.uk"), "example.co.uk")
        XCTAssertEqual(list.organizationalDomain(of: "a.b.c.example.com"), "example.com")
        XCTAssertEqual(list.organizationalDomain(of: "example.com"), "example.com")
    }

    func testWildcardMakesEveryLabelBelowPublic() {
        let list = Self.sample
        XCTAssertEqual(list.publicSuffix(of: "www.shop.kawasaki.jp"), "shop.kawasaki.jp")
        XCTAssertEqual(list.organizationalDomain(of: "www.shop.kawasaki.jp"), "www.shop.kawasaki.jp")
        XCTAssertEqual(list.organizationalDomain(of: "a.b.shop.kawasaki.jp"), "b.shop.kawasaki.jp")
        XCTAssertEqual(list.organizationalDomain(of: "mail.foo.ck"), "mail.foo.ck")
    }

    func testExceptionWinsOverItsWildcard() {
        let list = Self.sample
        XCTAssertEqual(list.publicSuffix(of: "city.kawasaki.jp"), "kawasaki.jp")
        XCTAssertEqual(list.organizationalDomain(of: "mail.city.kawasaki.jp"), "city.kawasaki.jp")
        XCTAssertEqual(list.organizationalDomain(of: "www.ck"), "www.ck")
        XCTAssertEqual(list.organizationalDomain(of: "a.www.ck"), "www.ck")
    }

    func testPrivateSectionCountsUnlessLeftOut() {
        XCTAssertEqual(Self.sample.organizationalDomain(of: "mail.alice.blogspot.com"), "alice.blogspot.com")
        let icannOnly = PublicSuffixList(text: """
            // ===BEGIN ICANN DOMAINS===
            com
            // ===END ICANN DOMAINS===
            // ===BEGIN PRIVATE DOMAINS===
            blogspot.com
            // ===END PRIVATE DOMAINS===
            """, sections: [.icann])
        XCTAssertEqual(icannOnly.ruleCount, 1)
        XCTAssertEqual(icannOnly.organizationalDomain(of: "mail.alice.blogspot.com"), "blogspot.com")
    }

    func testUnknownTopLevelDomainIsItsOwnSuffix() {
        XCTAssertEqual(Self.sample.publicSuffix(of: "mail.example.zzunknown"), "zzunknown")
        XCTAssertEqual(Self.sample.organizationalDomain(of: "mail.example.zzunknown"), "example.zzunknown")
    }

    func testAPublicSuffixIsItsOwnOrganizationalDomain() {
        XCTAssertEqual(Self.sample.organizationalDomain(of: "co.uk"), "co.uk")
        XCTAssertEqual(Self.sample.organizationalDomain(of: "com"), "com")
    }

    func testCaseTrailingDotAndUnicodeRulesCompareAsLowercaseASCII() {
        let list = Self.sample
        XCTAssertEqual(list.organizationalDomain(of: "WWW.Example.CO.UK."), "example.co.uk")
        // 公司.cn is xn--55qx5d.cn (RFC 3492 Punycode).
        XCTAssertEqual(list.organizationalDomain(of: "mail.shop.xn--55qx5d.cn"), "shop.xn--55qx5d.cn")
        XCTAssertEqual(list.organizationalDomain(of: "mail.shop.公司.cn"), "shop.xn--55qx5d.cn")
    }

    func testNamesThatAreNoDomains() {
        XCTAssertNil(Self.sample.publicSuffix(of: ""))
        XCTAssertNil(Self.sample.publicSuffix(of: "a..example.com"))
        XCTAssertNil(Self.sample.publicSuffix(of: String(repeating: "a", count: 64) + ".com"))
        XCTAssertEqual(Self.sample.organizationalDomain(of: "A..B"), "a..b")
    }

    func testUnicodeLabelsBecomeALabels() {
        // PluginAPI's Punycode (RFC 3492), label by label.
        XCTAssertEqual(PublicSuffixList.asciiDomain("Bücher.Example."), "xn--bcher-kva.example")
        XCTAssertEqual(PublicSuffixList.asciiDomain("plain.example"), "plain.example")
        XCTAssertNil(PublicSuffixList.asciiDomain("a\u{FFFD}.example"))
    }

    func testDebiansListIsReadOnceAndShared() throws {
        // The installed list (scripts/install-deps.sh: publicsuffix); missing, the test fails.
        let list = try PublicSuffixList.shared()
        XCTAssertGreaterThan(list.ruleCount, 5_000)
        XCTAssertEqual(list.organizationalDomain(of: "mail.example.co.uk"), "example.co.uk")
        XCTAssertEqual(list.organizationalDomain(of: "a.b.example.com"), "example.com")
        XCTAssertEqual(list.organizationalDomain(of: "x.city.kawasaki.jp"), "city.kawasaki.jp")
        XCTAssertEqual(list.organizationalDomain(of: "www.foo.bar.kawasaki.jp"), "foo.bar.kawasaki.jp")
        XCTAssertEqual(list.organizationalDomain(of: "alice.blogspot.com"), "alice.blogspot.com")
        XCTAssertEqual(list.organizationalDomain(of: "mail.shop.xn--55qx5d.cn"), "shop.xn--55qx5d.cn")
        let again = try PublicSuffixList.shared()
        XCTAssertEqual(again.ruleCount, list.ruleCount)
    }

    func testMissingFileIsAClearError() {
        XCTAssertThrowsError(try PublicSuffixList(contentsOf: "/nonexistent/psl.dat")) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/psl.dat"), "\(error)")
        }
    }
}
