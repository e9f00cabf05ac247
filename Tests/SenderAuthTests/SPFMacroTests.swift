import XCTest
@testable import PosternSenderAuthCore

/// Macro strings (RFC 7208 §7): the examples of §7.4 as byte fixtures, then the escapes, the
/// URL-escaping of uppercase letters, and macro text that must be refused.
final class SPFMacroTests: XCTestCase {
    /// The values of RFC 7208 §7.4: sender strong-bad@email.example.com, client 192.0.2.3 (or
    /// 2001:db8::cb01), domain email.example.com.
    func values(ip: String = "192.0.2.3") -> SPFMacroValues {
        SPFMacroValues(sender: "strong-bad@email.example.com", localPart: "strong-bad", senderDomain: "email.example.com",
                       domain: "email.example.com", client: SPFAddress(ip)!, helo: "mx.example.org",
                       receiver: "mx.example.net", timestamp: 1_000_000_000)
    }

    func expanded(_ text: String, kind: SPFMacroString.Kind = .domainSpec, ip: String = "192.0.2.3",
                  validatedName: String = "unknown", file: StaticString = #filePath, line: UInt = #line) -> String? {
        do {
            return try SPFMacroString(parsing: Substring(text), kind: kind, term: "test").expand(values(ip: ip), validatedName: validatedName)
        } catch {
            XCTFail("'\(text)' refused: \(error)", file: file, line: line)
            return nil
        }
    }

    func testRFC7208Section74Examples() {
        // RFC 7208 §7.4, the examples in the order given there.
        let examples: [(String, String)] = [
            ("%{s}", "strong-bad@email.example.com"),
            ("%{o}", "email.example.com"),
            ("%{d}", "email.example.com"),
            ("%{d4}", "email.example.com"),
            ("%{d3}", "email.example.com"),
            ("%{d2}", "example.com"),
            ("%{d1}", "com"),
            ("%{dr}", "com.example.email"),
            ("%{d2r}", "example.email"),
            ("%{l}", "strong-bad"),
            ("%{l-}", "strong.bad"),
            ("%{lr}", "strong-bad"),
            ("%{lr-}", "bad.strong"),
            ("%{l1r-}", "strong"),
            ("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"),
            ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
            ("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"),
            ("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"),
            ("%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"),
        ]
        for (text, expected) in examples {
            XCTAssertEqual(expanded(text, kind: text.hasSuffix("}") ? .modifierValue : .domainSpec), expected, text)
        }
        // The IPv6 example of §7.4.
        XCTAssertEqual(expanded("%{ir}.%{v}._spf.%{d2}", ip: "2001:db8::cb01"),
                       "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com")
    }

    func testExplanationOnlyLettersAndEscapes() {
        XCTAssertEqual(expanded("%{c} %{r} %{t} %{h} %{i} %{v}", kind: .explanation),
                       "192.0.2.3 mx.example.net 1000000000 mx.example.org 192.0.2.3 in-addr")
        XCTAssertEqual(expanded("%{c}", kind: .explanation, ip: "2001:db8::cb01"), "2001:db8::cb01")
        XCTAssertEqual(expanded("%{v}", kind: .explanation, ip: "2001:db8::cb01"), "ip6")
        XCTAssertEqual(expanded("100%%%_sure%-really", kind: .explanation), "100% sure%20really")
        XCTAssertEqual(expanded("%{p}", kind: .explanation, validatedName: "mail.example.com"), "mail.example.com")
        XCTAssertEqual(expanded("%{p}", kind: .explanation), "unknown")
    }

    func testUppercaseLettersAreURLEscaped() {
        // §7.3: uppercase macro letters escape every octet outside RFC 3986 `unreserved`.
        let plus = SPFMacroValues(sender: "a+b c@example.com", localPart: "a+b/c~d", senderDomain: "example.com",
                                  domain: "example.com", client: SPFAddress("192.0.2.3")!, helo: "h", receiver: "r", timestamp: 0)
        let text = try! SPFMacroString(parsing: "%{L}|%{l}|%{S}", kind: .explanation, term: "test")
        XCTAssertEqual(text.expand(plus), "a%2Bb%2Fc~d|a+b/c~d|a%2Bb%20c%40example.com")
        XCTAssertEqual(SPFMacroString.urlEscaped("é"), "%C3%A9")
    }

    func testDelimitersAndTransformers() {
        XCTAssertEqual(expanded("%{l+-=}", kind: .modifierValue), "strong.bad")
        XCTAssertEqual(expanded("%{d0000002}", kind: .modifierValue), "example.com")
        XCTAssertEqual(expanded("%{d99r}", kind: .modifierValue), "com.example.email")
        XCTAssertEqual(expanded("%{o1}.x.example", kind: .domainSpec), "com.x.example")
        XCTAssertEqual(expanded("%{S}", kind: .modifierValue), "strong-bad%40email.example.com")
        XCTAssertEqual(expanded("%{dR}", kind: .modifierValue), "com.example.email")
    }

    func testMalformedMacroStringsAreRefusedWithTheReason() {
        let refused: [(String, SPFMacroString.Kind, String)] = [
            ("%", .modifierValue, "'%' at the end"),
            ("%x", .modifierValue, "'%x' is not a macro"),
            ("%{", .modifierValue, "unterminated macro"),
            ("%{d", .modifierValue, "unterminated macro"),
            ("%{d2", .modifierValue, "unterminated macro"),
            ("%{x}", .modifierValue, "unknown macro letter 'x'"),
            ("%{}", .modifierValue, "unknown macro letter '}'"),
            ("%{d0}", .modifierValue, "transformer 0"),
            ("%{d2rr}", .modifierValue, "unexpected 'r'"),
            ("%{d!}", .modifierValue, "unexpected '!'"),
            ("%{c}.example.com", .domainSpec, "only in explanations"),
            ("%{t}", .modifierValue, "only in explanations"),
            ("example", .domainSpec, "must end in a top label"),
            ("example.123", .domainSpec, "must end in a top label"),
            ("example.-com", .domainSpec, "must end in a top label"),
            ("a b.com", .domainSpec, "character 0x20 not allowed"),
            ("a\u{7F}b.com", .domainSpec, "character 0x7f not allowed"),
        ]
        for (text, kind, reason) in refused {
            XCTAssertThrowsError(try SPFMacroString(parsing: Substring(text), kind: kind, term: "test"), text) { error in
                XCTAssertTrue((error as? SPFSyntaxError)?.message.contains(reason) == true, "\(text): \(error)")
            }
        }
        // Allowed ends: a top label with a trailing dot, inner hyphens, a macro.
        for text in ["example.com.", "x.xn--p1ai", "x.c0m", "%{d}", "_spf.%{d2}", "%%.com"] {
            XCTAssertNotNil(try? SPFMacroString(parsing: Substring(text), kind: .domainSpec, term: "test"), text)
        }
    }
}
