import PosternTestSupport
import Foundation
import PluginAPI
import XCTest
@testable import PosternSMTPCore
@testable import PosternSASLPlainCore
@testable import PosternSASLLoginCore
@testable import PosternTableFileCore

/// The pure pieces: access keys, options, Received:, header sections, xtext, and the
/// file table parser over byte fixtures.
final class SMTPPartsTests: XCTestCase {
    func testAccessKeys() {
        let keys = AccessPolicy.clientKeys(address: IPAddress("192.0.2.77"), hostname: "mail.example.net")
        XCTAssertEqual(keys.prefix(3), ["client:192.0.2.77", "client:192.0.2.76/31", "client:192.0.2.76/30"])
        XCTAssertTrue(keys.contains("client:192.0.2.0/24"))
        XCTAssertTrue(keys.contains("client:192.0.0.0/8"))
        XCTAssertEqual(keys.suffix(3), ["client:mail.example.net", "client:.example.net", "client:.net"])
        XCTAssertEqual(AccessPolicy.clientKeys(address: IPAddress("2001:db8:1:2::5"), hostname: nil),
                       ["client:2001:db8:1:2::5", "client:2001:db8:1:2::/64", "client:2001:db8:1::/56", "client:2001:db8:1::/48", "client:2001:db8::/32"])
        XCTAssertEqual(AccessPolicy.addressKeys("from:", "User@Mail.Example.COM"),
                       ["from:User@mail.example.com", "from:mail.example.com", "from:.example.com", "from:.com", "from:User@"])
        XCTAssertEqual(AccessPolicy.addressKeys("from:", ""), ["from:<>"])
        XCTAssertEqual(AccessAction.parse("reject  go away "), .reject("go away"))
        XCTAssertEqual(AccessAction.parse("OK"), .ok)
        XCTAssertEqual(AccessAction.parse("defer\tlater"), .tempfail("later"))
        XCTAssertEqual(AccessAction.parse("DISCARD"), .discard)
        XCTAssertEqual(AccessAction.parse("relay"), .relay)
        XCTAssertNil(AccessAction.parse("DUNNO"))
        XCTAssertEqual(AccessAction.parse("450 try"), .tempfail("access table misconfigured"))
    }

    func testOptionDefaultsRelayForNobody() throws {
        let mx = try SMTPOptions(ConfigSection(SMTPOptions.schema.applyingDefaults(to: [:])))
        XCTAssertEqual(mx.mode, .mx)
        XCTAssertTrue(mx.mynetworks.isEmpty)
        XCTAssertFalse(mx.requireAuth)
        XCTAssertFalse(mx.senderLoginMatch)
        XCTAssertEqual(mx.maxMessageSize, 50 << 20)
        XCTAssertEqual(mx.bareLineFeed, .reject)
        XCTAssertEqual(mx.timeout, 300)
        let submission = try SMTPOptions(ConfigSection(SMTPOptions.schema.applyingDefaults(to: ["mode": .string("submissions")])))
        XCTAssertTrue(submission.requireAuth)
        XCTAssertTrue(submission.senderLoginMatch)
        let relaxed = try SMTPOptions(ConfigSection(SMTPOptions.schema.applyingDefaults(to: [
            "mode": .string("submission"), "require_auth": .boolean(false), "sender_login_match": .boolean(false),
            "mynetworks": .array([.string("10.0.0.0/8"), .string("2001:db8::/32")]), "timeout": .string("30s"),
        ])))
        XCTAssertFalse(relaxed.requireAuth)
        XCTAssertFalse(relaxed.senderLoginMatch)
        XCTAssertEqual(relaxed.mynetworks.map(\.description), ["10.0.0.0/8", "2001:db8::/32"])
        XCTAssertEqual(relaxed.timeout, 30)
        XCTAssertThrowsError(try SMTPOptions(ConfigSection(SMTPOptions.schema.applyingDefaults(to: ["mynetworks": .array([.string("lan")])]))))
        XCTAssertEqual(SMTPOptions.schema.validate(["mode": .string("relay")]).map(\.description),
                       ["mode: expected one of \"mx\", \"submission\", \"submissions\", found string \"relay\""])
    }

    func testReceivedField() {
        let date = MailDate(secondsSince1970: 1_700_000_000)
        let v6 = ReceivedField.make(helo: "bad(helo);x", clientHostname: nil, clientAddress: IPAddress("2001:db8::1"), hostname: "mx.example.org",
                                    protocolName: "ESMTPS", id: "A.1", recipient: nil, date: date)
        XCTAssertEqual(String(decoding: v6, as: UTF8.self),
                       "Received: from bad_helo__x (unknown [IPv6:2001:db8::1])\r\n\tby mx.example.org (Postern) with ESMTPS id A.1\r\n\t; Tue, 14 Nov 2023 22:13:20 +0000\r\n")
        XCTAssertEqual(ReceivedField.protocolName(extended: false, secure: true, authenticated: true, utf8: false), "SMTP")
        XCTAssertEqual(ReceivedField.protocolName(extended: true, secure: true, authenticated: true, utf8: false), "ESMTPSA")
        XCTAssertEqual(ReceivedField.protocolName(extended: true, secure: false, authenticated: true, utf8: true), "UTF8SMTPA")
    }

    func testHeaderSection() {
        let message = Array("Received: x\r\nSubject: a\r\n b\r\nTo: c\r\n\r\nbody\r\n".utf8)
        var section = HeaderSection(parsing: message)
        XCTAssertEqual(section.fields.map(\.name), ["Received", "Subject", "To"])
        XCTAssertEqual(section.encoded, Array(message[0..<section.bodyOffset]))
        XCTAssertEqual(Array(message[section.bodyOffset...]), Array("body\r\n".utf8))
        XCTAssertEqual(section.unfolded.map(\.value), ["x", "a b", "c"])
        section.apply(.changeHeader(name: "TO", index: 1, value: "d\ne"))
        section.apply(.changeHeader(name: "To", index: 2, value: "nothing"))
        section.apply(.changeHeader(name: "received", index: 1, value: nil))
        section.apply(.addHeader(name: "X-A", value: "1"))
        XCTAssertEqual(String(decoding: section.encoded, as: UTF8.self), "Subject: a\r\n b\r\nTo: d\r\n\te\r\nX-A: 1\r\n\r\n")
        // Without a body or an empty line; with bare LF; with a line that is not a field first.
        let bare = HeaderSection(parsing: Array("A: 1\nB: 2\n\nbody".utf8))
        XCTAssertEqual(bare.separator, [10])
        XCTAssertEqual(bare.encoded, Array("A: 1\nB: 2\n\n".utf8))
        var headerOnly = HeaderSection(parsing: Array("A: 1".utf8))
        headerOnly.apply(.addHeader(name: "B", value: "2"))
        XCTAssertEqual(String(decoding: headerOnly.encoded, as: UTF8.self), "A: 1\r\nB: 2\r\n\r\n")
        let empty = HeaderSection(parsing: Array("\r\nbody".utf8))
        XCTAssertEqual(empty.fields.count, 0)
        XCTAssertEqual(empty.bodyOffset, 2)
    }

    func testXTextAndBase64() {
        XCTAssertTrue(XText.isValid("abc+2Bdef"))
        XCTAssertTrue(XText.isValid("rfc822"))
        XCTAssertFalse(XText.isValid("a=b"))
        XCTAssertFalse(XText.isValid("a+2"))
        XCTAssertFalse(XText.isValid("a+zz"))
        XCTAssertFalse(XText.isValid("a b"))
        XCTAssertEqual(Base64.decode("AGFAYgBj"), [0, 97, 64, 98, 0, 99])
        XCTAssertNil(Base64.decode("AGFAYgB"))
        XCTAssertNil(Base64.decode("AGFA YgBj"))
        XCTAssertEqual(Base64.decode(""), [])
    }

    // MARK: - The file table (Plugins/TableFile), byte for byte

    func table(_ bytes: [UInt8]) throws -> FileTable { try FileTable(parsing: bytes) }

    func testFileTableFormat() async throws {
        let fixture: [UInt8] = Array("""
            # access table\r
            client:192.0.2.0/24   REJECT  no thanks \r
            \r
               # an indented comment\r
            From:Spammer@Example.COM\tREJECT go\r
              away\r
            to:example.org RELAY
            to:example.org OK
            helo:x ünïcödé value

            """.utf8)
        let t = try table(fixture)
        let a = try await t.lookup("client:192.0.2.0/24")
        XCTAssertEqual(a, ["REJECT  no thanks"])
        let b = try await t.lookup("from:spammer@example.com")
        XCTAssertEqual(b, ["REJECT go away"])
        let c = try await t.lookup("TO:EXAMPLE.ORG")
        XCTAssertEqual(c, ["RELAY"])
        let d = try await t.lookup("helo:x")
        XCTAssertEqual(d, ["ünïcödé value"])
        let none = try await t.lookup("client:192.0.2.1")
        XCTAssertNil(none)
        XCTAssertEqual(t.entries.count, 4)
        XCTAssertEqual(t.duplicates.map(\.key), ["to:example.org"])
        XCTAssertEqual(t.duplicates.map(\.line), [8])
        XCTAssertEqual(try table([]).entries.count, 0)
        XCTAssertEqual(try table(Array("\n\n# only comments\n".utf8)).entries.count, 0)
    }

    func testFileTableErrors() {
        XCTAssertThrowsError(try table(Array("a 1\nlonely\n".utf8))) {
            XCTAssertEqual($0 as? FileTable.ParseError, .missingValue(line: 2, key: "lonely"))
            XCTAssertEqual("\($0)", "line 2: expected 'key value', found only the key 'lonely'")
        }
        XCTAssertThrowsError(try table(Array(" continued value\n".utf8))) {
            XCTAssertEqual($0 as? FileTable.ParseError, .continuationFirst(line: 1))
        }
        XCTAssertThrowsError(try table([0x61, 0x20, 0x31, 0x0a, 0x62, 0x20, 0xff, 0x0a])) {
            XCTAssertEqual($0 as? FileTable.ParseError, .notUTF8(line: 2))
        }
        // A key whose value only arrives on a continuation line is fine.
        XCTAssertEqual(try table(Array("key\n  value\n".utf8)).entries, ["key": "value"])
    }
}
