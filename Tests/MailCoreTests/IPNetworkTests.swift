import XCTest
import PluginAPI

/// PluginAPI's `IPAddress` and `IPNetwork`, as smtp (`mynetworks`, DNSBL checks) and filter-rules
/// (`trusted_networks`, `client_network`, `dnsbl`) use them.
final class IPNetworkTests: XCTestCase {
    func testAddresses() {
        XCTAssertEqual(IPAddress("192.0.2.1")?.description, "192.0.2.1")
        XCTAssertEqual(IPAddress("::ffff:192.0.2.1"), IPAddress("192.0.2.1"))
        XCTAssertEqual(IPAddress("2001:DB8:0::1")?.description, "2001:db8::1")
        XCTAssertNil(IPAddress("192.0.2"))
        XCTAssertNil(IPAddress("example.org"))
        XCTAssertTrue(IPAddress("127.8.9.10")!.isLoopback)
        XCTAssertTrue(IPAddress("::1")!.isLoopback)
        XCTAssertFalse(IPAddress("::2")!.isLoopback)
        // A peer address in brackets or with an IPv6 zone.
        XCTAssertEqual(IPAddress("[2001:db8::1]"), IPAddress("2001:db8::1"))
        XCTAssertEqual(IPAddress("[192.0.2.1]"), IPAddress("192.0.2.1"))
        XCTAssertEqual(IPAddress("fe80::1%eth0"), IPAddress("fe80::1"))
        XCTAssertNil(IPAddress("[example.org]"))
    }

    func testNetworks() {
        let net = IPNetwork("192.0.2.77/24")!
        XCTAssertEqual(net.description, "192.0.2.0/24")
        XCTAssertTrue(net.contains(IPAddress("192.0.2.200")!))
        XCTAssertFalse(net.contains(IPAddress("192.0.3.1")!))
        XCTAssertFalse(net.contains(IPAddress("2001:db8::1")!))
        XCTAssertTrue(net.contains(IPAddress("::ffff:192.0.2.9")!), "IPv4-mapped counts as IPv4")
        XCTAssertTrue(IPNetwork("2001:db8::/32")!.contains(IPAddress("2001:db8:ffff::1")!))
        XCTAssertFalse(IPNetwork("2001:db8::/32")!.contains(IPAddress("192.0.2.1")!))
        XCTAssertTrue(IPNetwork("10.1.2.3")!.contains(IPAddress("10.1.2.3")!))
        XCTAssertFalse(IPNetwork("10.1.2.3")!.contains(IPAddress("10.1.2.4")!))
        XCTAssertTrue(IPNetwork("0.0.0.0/0")!.contains(IPAddress("198.51.100.1")!))
        XCTAssertTrue(IPNetwork("::ffff:10.0.0.0/104")!.contains(IPAddress("10.9.9.9")!))
        XCTAssertEqual(IPNetwork("::ffff:10.0.0.0/104")?.description, "10.0.0.0/8")
        for bad in ["192.0.2.0/33", "192.0.2.0/-1", "192.0.2.0/", "host/24", "2001:db8::/129", "::ffff:10.0.0.0/95"] {
            XCTAssertNil(IPNetwork(bad), bad)
        }
    }

    func testDNSBLNames() {
        XCTAssertEqual(IPAddress("203.0.113.9")!.dnsblName(zone: "zen.example"), "9.113.0.203.zen.example")
        // RFC 5782 §2.4's own example.
        XCTAssertEqual(IPAddress("2001:db8:1:2:3:4:567:89ab")!.dnsblName(zone: "ugly.example.com"),
                       "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ugly.example.com")
        XCTAssertEqual(IPAddress("::ffff:203.0.113.9")!.dnsblName(zone: "zen.example"), "9.113.0.203.zen.example", "IPv4-mapped: the IPv4 form")
    }
}
