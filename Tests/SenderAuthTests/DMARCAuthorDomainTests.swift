import XCTest
@testable import PosternSenderAuthCore

/// The From field's mailbox-list read byte by byte (RFC 5322 §3.4) for the author domain.
final class DMARCAuthorDomainTests: XCTestCase {
    func domain(_ value: String) -> Result<String, AuthorDomain.Failure> { AuthorDomain.extract(fromFields: [value]) }

    func testWellFormedFields() {
        let fixtures: [(String, String)] = [
            ("alice@example.com", "example.com"),
            (" Alice Example <alice@Example.COM>", "example.com"),
            ("\"Example, Alice\" <alice@example.com>", "example.com"),
            ("alice@example.com (Alice (the \\) one))", "example.com"),
            ("Team: alice@example.com, bob@example.com;", "example.com"),
            ("alice@example.com.", "example.com"),
            ("Jörg <jorg@bücher.example>", "xn--bcher-kva.example"),
            ("Alice\r\n <alice@example.com>", "example.com"),
            ("<@route.example:alice@example.com>", "example.com"),
        ]
        for (value, expected) in fixtures {
            XCTAssertEqual(domain(value), .success(expected), value)
        }
    }

    func testMalformedFields() {
        let fixtures: [(String, AuthorDomain.Failure)] = [
            ("\"unterminated <a@example.com>", .unparseable("unterminated quoted-string")),
            ("(unterminated a@example.com", .unparseable("unterminated comment")),
            ("<a@example.com", .unparseable("unterminated <")),
            ("a@example.com>", .unparseable("> without <")),
            ("<a@example.com> <b@example.com>", .unparseable("second < in a mailbox")),
            ("<a@example.com> trailing", .unparseable("text after >")),
            ("two words@example.com", .unparseable("mailbox is not an address")),
            ("no-at-sign", .unparseable("address without @")),
            ("a@exa mple.com", .unparseable("mailbox is not an address")),
            ("a@[192.0.2.1]", .badDomain("[192.0.2.1]")),
            // A quoted-string is kept as one `"`, which no domain may hold.
            ("a@exa\"mple\".com", .badDomain("exa\".com")),
            ("a@", .badDomain("")),
            ("a@example..com", .badDomain("example..com")),
            ("group:;", .noAddress),
        ]
        for (value, expected) in fixtures {
            XCTAssertEqual(domain(value), .failure(expected), value)
        }
        // Bytes that are no UTF-8 become U+FFFD, which is no DNS name.
        let invalid = String(decoding: Array("a@ex".utf8) + [0xFF] + Array("ample.com".utf8), as: UTF8.self)
        guard case .failure(.badDomain) = domain(invalid) else { return XCTFail("\(domain(invalid))") }
    }
}
