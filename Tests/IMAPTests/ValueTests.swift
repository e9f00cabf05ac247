import PosternTestSupport
import PluginAPI
import XCTest
@testable import PosternIMAPCore

/// Modified UTF-7, sequence sets, dates.
final class ValueTests: XCTestCase {
    func testModifiedUTF7RFC3501Example() {
        XCTAssertEqual(ModifiedUTF7.decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-"), "~peter/mail/台北/日本語")
        XCTAssertEqual(ModifiedUTF7.encode("~peter/mail/台北/日本語"), "~peter/mail/&U,BTFw-/&ZeVnLIqe-")
    }

    func testModifiedUTF7RoundTrips() {
        let cases: [(String, String)] = [
            ("INBOX", "INBOX"), ("", ""), ("&", "&-"), ("A&B", "A&-B"), ("&&", "&-&-"),
            ("Entwürfe", "Entw&APw-rfe"), ("ä", "&AOQ-"), ("Ünïcødé", "&ANw-n&AO8-c&APg-d&AOk-"),
            ("😀", "&2D3eAA-"), ("a😀b€", "a&2D3eAA-b&IKw-"), ("日本語", "&ZeVnLIqe-"), ("tab\there", "tab&AAk-here"),
            ("~/€&x", "~/&IKw-&-x"), ("ÄÖÜ", "&AMQA1gDc-"),
        ]
        for (name, wire) in cases {
            XCTAssertEqual(ModifiedUTF7.encode(name), wire, name)
            XCTAssertEqual(ModifiedUTF7.decode(wire), name, wire)
        }
    }

    func testMalformedModifiedUTF7IsRefused() {
        for bad in [
            "&", "&AOQ", "&AOQ-&APw-",   // unterminated; two shifted runs side by side
            "&AGE-",                     // "a" in base64: printable ASCII must stand for itself
            "&ACY-",                     // "&" in base64
            "&AO-", "&AOQA-", "&AOR-",   // not whole UTF-16 / non-zero padding bits
            "&2D0-", "&3gA-",            // unpaired surrogates
            "&AOQ=-", "&AO/-",           // "=" and "/" are not in the alphabet
            "caf\u{E9}",                 // 8-bit
            "a\u{7F}b", "a\tb",          // controls
        ] {
            XCTAssertNil(ModifiedUTF7.decode(bad), bad)
        }
    }

    func testSequenceSetParseAndDescription() {
        XCTAssertEqual(set("1:*"), IMAPSequenceSet([.init(.number(1), .largest)]))
        XCTAssertEqual(set("*:4"), IMAPSequenceSet([.init(.largest, .number(4))]))
        XCTAssertEqual(set("*"), IMAPSequenceSet([.init(.largest, .largest)]))
        XCTAssertEqual(set("5:3,7,9:*").description, "5:3,7,9:*")
        XCTAssertEqual(set("$"), .savedResult)
        XCTAssertEqual(IMAPSequenceSet.savedResult.description, "$")
        for bad in ["", "0", "1:0", "01", ",", "1,", ":1", "1::2", "a", "1:2:3", "4294967296", "$,1", "**"] {
            XCTAssertNil(IMAPSequenceSet.parse(Array(bad.utf8)), bad)
        }
    }

    func testSequenceSetResolution() {
        // Message numbers in a mailbox of 10.
        XCTAssertEqual(set("1:*").resolved(largest: 10), [1...10])
        XCTAssertEqual(set("*:4").resolved(largest: 10), [4...10])
        XCTAssertEqual(set("*").resolved(largest: 10), [10...10])
        XCTAssertEqual(set("3,1:2,7:5,6,9").resolved(largest: 10), [1...3, 5...7, 9...9])
        XCTAssertEqual(set("4,3,1:2,7:5,6,9").resolved(largest: 10), [1...7, 9...9])
        XCTAssertEqual(set("8:12").resolved(largest: 10), [8...10])
        XCTAssertTrue(set("8:12").exceeds(10))
        XCTAssertFalse(set("1:*").exceeds(10))
        // UIDs: 559:* includes the largest UID even when it is below 559 (RFC 3501 §6.4.8).
        XCTAssertEqual(set("559:*").resolved(largest: 300), [300...300])
        XCTAssertTrue(set("559:*").contains(300, largest: 300))
        XCTAssertFalse(set("559:*").contains(299, largest: 300))
        XCTAssertTrue(set("2,4:6").contains(5, largest: 10))
        XCTAssertFalse(set("2,4:6").contains(3, largest: 10))
        // An empty mailbox: nothing; `$` resolves to nothing here.
        XCTAssertEqual(set("1:*").resolved(largest: 0), [])
        XCTAssertEqual(IMAPSequenceSet.savedResult.resolved(largest: 5), [])
        XCTAssertEqual(set("4294967295").resolved(largest: .max), [.max ... .max])
        XCTAssertTrue(set("1,*").mentionsLargest)
    }

    func testDates() {
        XCTAssertEqual(IMAPDate.parse(b("1-Feb-1994")), date(1994, 2, 1))
        XCTAssertEqual(IMAPDate.parse(b("01-feb-1994")), date(1994, 2, 1))
        XCTAssertEqual(IMAPDate.parse(b("29-Feb-2000")), date(2000, 2, 29))
        for bad in ["29-Feb-1900", "31-Apr-2020", "32-Jan-2020", "0-Jan-2020", "1-Jan-0000", "1-Jan-20", "1-January-2020", "1 Jan 2020", "1-Jan-2020x", "-Jan-2020"] {
            XCTAssertNil(IMAPDate.parse(b(bad)), bad)
        }
        XCTAssertEqual(date(1970, 1, 1).daysSince1970, 0)
        XCTAssertEqual(date(2000, 3, 1).daysSince1970, 11017)
        XCTAssertEqual(date(1969, 12, 31).daysSince1970, -1)
        XCTAssertEqual(IMAPDate(daysSince1970: 11017), date(2000, 3, 1))
        XCTAssertEqual(date(2024, 2, 29).description, "29-Feb-2024")
    }

    func testDateTimes() {
        let t = IMAPDateTime.parse(b("17-Jul-1996 02:44:25 -0700"))!
        XCTAssertEqual(t.description, "17-Jul-1996 02:44:25 -0700")
        XCTAssertEqual(t.secondsSince1970, 837_596_665)
        XCTAssertEqual(IMAPDateTime(secondsSince1970: 837_596_665, zoneMinutes: -420), t)
        XCTAssertEqual(IMAPDateTime(secondsSince1970: 0).description, " 1-Jan-1970 00:00:00 +0000")
        XCTAssertEqual(IMAPDateTime.parse(b(" 1-Jan-1970 00:00:00 +0000"))?.secondsSince1970, 0)
        XCTAssertEqual(IMAPDateTime(secondsSince1970: -1, zoneMinutes: 90).description, " 1-Jan-1970 01:29:59 +0130")
        for bad in ["17-Jul-1996 02:44:25", "17-Jul-1996 24:00:00 +0000", "17-Jul-1996 02:60:00 +0000", "17-Jul-1996 2:44:25 +0000",
                    "17-Jul-1996 02:44:25 -07", "17-Jul-1996 02:44:25 +0060", "31-Jun-1996 02:44:25 +0000", "17-Jul-1996  02:44:25 +0000"] {
            XCTAssertNil(IMAPDateTime.parse(b(bad)), bad)
        }
    }
}
