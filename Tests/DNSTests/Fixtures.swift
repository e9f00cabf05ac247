import PosternTestSupport
import XCTest
@testable import PosternDNSCore

/// Bytes from hex (whitespace ignored), for packets that must be exact.
func hex(_ text: String) -> [UInt8] {
    let digits = Array(text.filter { !$0.isWhitespace })
    precondition(digits.count % 2 == 0, "odd number of hex digits")
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
}

func dnsName(_ text: String) -> DNSName { try! DNSName(text) }

/// Responses captured from unbound 1.17.1 serving the zones of UnboundServer.swift (asked with
/// RD and EDNS0 at 1232 octets). unbound compresses names, so these exercise pointers as real
/// servers use them.
enum Captured {
    /// example.test MX: 10 mx1, 10 mx2, 20 backup; every name a pointer to the question.
    static let mx = hex("""
        bd6185800001000300000001076578616d706c65047465737400000f0001c00c000f00010000012c0008000a036d7831c00c\
        c00c000f00010000012c0008000a036d7832c00cc00c000f00010000012c000b0014066261636b7570c00c00002904d0000000000000
        """)
    /// nope.example.test A: NXDOMAIN with the zone's SOA (TTL 60, MINIMUM 60) in the authority section.
    static let nxdomain = hex("""
        de1e85830001000000010001046e6f7065076578616d706c6504746573740000010001c011000600010000003c0026026e73c011\
        0a686f73746d6173746572c0110000000100000e1000000258000151800000003c00002904d0000000000000
        """)
    /// example.test TXT: NODATA (NOERROR, no answer, SOA).
    static let nodata = hex("""
        d67e85800001000000010001076578616d706c6504746573740000100001c00c000600010000003c0026026e73c00c0a686f73\
        746d6173746572c00c0000000100000e1000000258000151800000003c00002904d0000000000000
        """)
    /// mx1.example.test AAAA 2001:db8::25.
    static let aaaa = hex("""
        c71085800001000100000001036d7831076578616d706c65047465737400001c0001c00c001c00010000012c001020010db800\
        000000000000000000002500002904d0000000000000
        """)
    /// 25.0.0.127.in-addr.arpa PTR mail.example.test (uncompressed target).
    static let ptr = hex("""
        f63f85800001000100000001023235013001300331323707696e2d61646472046172706100000c0001c00c000c000100000e10\
        0013046d61696c076578616d706c6504746573740000002904d0000000000000
        """)
    /// alias1.example.test A: only the CNAME to alias2 (unbound does not chase local data).
    static let cname = hex("""
        1c068580000100010000000106616c69617331076578616d706c6504746573740000010001c00c000500010000012c00090661\
        6c69617332c01300002904d0000000000000
        """)
    /// x.refused.test A: REFUSED.
    static let refused = hex("ca6385850001000000000001017807726566757365640474657374000001000100002904d0000000000000")
    /// big.example.test A over UDP: TC set, no records (100 A records do not fit in 1232 octets).
    static let truncated = hex("a3188780000100000000000103626967076578616d706c650474657374000001000100002904d0000000000000")
    /// long.example.test TXT: one record of two character-strings, 200 × "a" and 100 × "b".
    static let longTXT = hex("950085800001000100000001046c6f6e67076578616d706c6504746573740000100001c00c001000010000012c012ec8"
                             + String(repeating: "61", count: 200) + "64" + String(repeating: "62", count: 100)
                             + "00002904d0000000000000")

    static let all = [mx, nxdomain, nodata, aaaa, ptr, cname, refused, truncated, longTXT]
}
