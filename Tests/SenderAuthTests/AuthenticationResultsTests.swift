import XCTest
@testable import PosternSenderAuthCore

final class AuthenticationResultsTests: XCTestCase {
    func testWritesOneMethodPerFoldedLine() {
        let field = AuthenticationResultsField(authservID: "mx.example.net", entries: [
            .init(method: "spf", result: "pass", properties: [.init("smtp", "mailfrom", "alice@example.org")]),
            .init(method: "dkim", result: "fail", reason: "body hash did not verify",
                  properties: [.init("header", "d", "example.org"), .init("header", "s", "sel1"), .init("header", "b", "abc+/DEF")]),
            .init(method: "dmarc", result: "pass", properties: [.init("header", "from", "example.org")]),
        ])
        XCTAssertEqual(field.value, """
             mx.example.net;\r
            \tspf=pass smtp.mailfrom=alice@example.org;\r
            \tdkim=fail reason="body hash did not verify" header.d=example.org header.s=sel1 header.b="abc+/DEF";\r
            \tdmarc=pass header.from=example.org
            """)
    }

    func testNoMethodIsNone() {
        XCTAssertEqual(AuthenticationResultsField(authservID: "mx", entries: []).value, " mx; none")
    }

    func testQuotesWhatIsNoToken() {
        XCTAssertEqual(AuthenticationResultsField.propertyValue("@example.org"), "@example.org")
        XCTAssertEqual(AuthenticationResultsField.propertyValue("a b\"c"), "\"a b\\\"c\"")
        XCTAssertEqual(AuthenticationResultsField.propertyValue("x@"), "\"x@\"")
        XCTAssertEqual(AuthenticationResultsField.quoted("line\r\nbreak"), "\"linebreak\"")
    }

    func testReadsTheAuthservIDPastCommentsAndFolds() {
        XCTAssertEqual(AuthenticationResultsField.authservID(of: " mx.example.net; spf=pass"), "mx.example.net")
        XCTAssertEqual(AuthenticationResultsField.authservID(of: " (a (nested) comment)\r\n\tMX.example.net 1; none"), "MX.example.net")
        XCTAssertEqual(AuthenticationResultsField.authservID(of: " \"quoted\\\"id\"; none"), "quoted\"id")
        XCTAssertNil(AuthenticationResultsField.authservID(of: " ; none"))
        XCTAssertNil(AuthenticationResultsField.authservID(of: " \"unterminated"))
        XCTAssertNil(AuthenticationResultsField.authservID(of: ""))
        XCTAssertTrue(AuthenticationResultsField.claims(" mx.EXAMPLE.net; dkim=pass", authservID: "MX.example.NET"))
        XCTAssertFalse(AuthenticationResultsField.claims(" mx.example.net.evil; dkim=pass", authservID: "mx.example.net"))
    }
}
