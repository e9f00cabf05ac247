import PosternTestSupport
import XCTest
@testable import PosternDNSCore

/// Nameserver addresses from the config and resolv.conf, and the reverse names of PTR lookups.
final class NameserverTests: XCTestCase {
    func testConfiguredForms() throws {
        XCTAssertEqual(try NameserverAddress(parsing: "127.0.0.1:53").description, "127.0.0.1:53")
        XCTAssertEqual(try NameserverAddress(parsing: "192.0.2.1"), try NameserverAddress(parsing: "192.0.2.1:53"))
        XCTAssertEqual(try NameserverAddress(parsing: "[::1]:5353").description, "[::1]:5353")
        XCTAssertEqual(try NameserverAddress(parsing: "[::1]").port, 53)
        XCTAssertEqual(try NameserverAddress(parsing: "2001:DB8:0:0::1").description, "[2001:db8::1]:53", "bare IPv6, canonical form")
        XCTAssertTrue(try NameserverAddress(parsing: "[::1]:53").isIPv6)
    }

    func testRefusedForms() {
        let cases = [
            ("localhost:53", "nameserver 'localhost:53': 'localhost' is not an IPv4 or IPv6 address"),
            ("127.0.0.1:0", "nameserver '127.0.0.1:0': port 0 is not in 1...65535"),
            ("127.0.0.1:99999", "nameserver '127.0.0.1:99999': port 99999 is not in 1...65535"),
            ("127.0.0.1:x", "nameserver '127.0.0.1:x': the port is not a number"),
            ("[::1", "nameserver '[::1': missing ']'"),
            ("[::1]53", "nameserver '[::1]53': expected ':PORT' after ']'"),
            ("", "nameserver '': '' is not an IPv4 or IPv6 address"),
            ("300.1.1.1", "nameserver '300.1.1.1': '300.1.1.1' is not an IPv4 or IPv6 address"),
        ]
        for (text, message) in cases {
            XCTAssertThrowsError(try NameserverAddress(parsing: text), text) { XCTAssertEqual("\($0)", message) }
        }
    }

    func testResolvConf() {
        let text = """
            # generated
            search example.org
            nameserver 10.0.0.1
            nameserver   2001:db8::53
            ;nameserver 10.9.9.9
            options timeout:2
            nameserver fe80::1%eth0
            nameserver 10.0.0.2:5353
            nameserver
            """
        let (servers, skipped) = ResolvConf.nameservers(in: text)
        XCTAssertEqual(servers.map(\.description), ["10.0.0.1:53", "[2001:db8::53]:53"])
        XCTAssertEqual(skipped, ["fe80::1%eth0", "10.0.0.2:5353"])
        XCTAssertEqual(ResolvConf.nameservers(in: "").servers, [])
        XCTAssertEqual(ResolvConf.fallback.map(\.description), ["127.0.0.1:53"])
    }

    func testReverseNames() {
        XCTAssertEqual(IPAddressText.reverseName("192.0.2.25")?.description, "25.2.0.192.in-addr.arpa")
        XCTAssertEqual(IPAddressText.reverseName("2001:db8::567:89ab")?.description,
                       "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", "RFC 3596 §2.5's example")
        XCTAssertNil(IPAddressText.reverseName("mail.example.org"))
        XCTAssertNil(IPAddressText.reverseName("1.2.3"))
    }

    func testAddressText() {
        XCTAssertEqual(IPAddressText.format([192, 0, 2, 1]), "192.0.2.1")
        XCTAssertEqual(IPAddressText.format(hex("20010db8000000000000000000000025")), "2001:db8::25")
        XCTAssertEqual(IPAddressText.parse("::ffff:192.0.2.1")?.count, 16)
    }
}
