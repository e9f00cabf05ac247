import PluginAPI
import XCTest

/// RFC 5322 dates as mail carries them, including the obsolete forms of §4.3.
final class MailDateTests: XCTestCase {
    func testParsesCurrentAndObsoleteForms() {
        let cases: [(String, MailDate?)] = [
            ("Tue, 1 Jul 2003 10:52:37 +0200", MailDate(year: 2003, month: 7, day: 1, hour: 10, minute: 52, second: 37, offsetMinutes: 120)),
            ("1 Jul 2003 10:52:37 +0200", MailDate(year: 2003, month: 7, day: 1, hour: 10, minute: 52, second: 37, offsetMinutes: 120)),
            ("Mon, 3 Jun 2024 23:30 -0730 (PDT-ish)", MailDate(year: 2024, month: 6, day: 3, hour: 23, minute: 30, offsetMinutes: -450)),
            ("Fri, 21 Nov 97 09:55:06 GMT", MailDate(year: 1997, month: 11, day: 21, hour: 9, minute: 55, second: 6)),
            ("Fri, 21 Nov 03 09:55:06 EST", MailDate(year: 2003, month: 11, day: 21, hour: 9, minute: 55, second: 6, offsetMinutes: -300)),
            ("21 Nov 103 09:55:06 -0000", MailDate(year: 2003, month: 11, day: 21, hour: 9, minute: 55, second: 6)),
            ("Thu,\r\n 13\r\n  Feb\r\n    1969\r\n 23:32\r\n  -0330 (Newfoundland Time)",
             MailDate(year: 1969, month: 2, day: 13, hour: 23, minute: 32, offsetMinutes: -210)),
            ("Sat, 31 Dec 2016 23:59:60 +0000", MailDate(year: 2016, month: 12, day: 31, hour: 23, minute: 59, second: 59)),
            ("yesterday", nil),
            ("32 Jan 2024 10:00:00 +0000", nil),
            ("1 Foo 2024 10:00:00 +0000", nil),
            ("1 Jan 2024 25:00:00 +0000", nil),
            ("1 Jan 2024", nil),
            ("", nil),
        ]
        for (text, expected) in cases { XCTAssertEqual(MailDate(rfc5322: text), expected, text) }
    }

    func testInstantsAndFormats() {
        let d = MailDate(rfc5322: "Mon, 3 Jun 2024 23:30:00 -0700")!
        XCTAssertEqual(d.secondsSince1970, 1_717_482_600)
        XCTAssertEqual(d.dayNumber, MailDate(year: 2024, month: 6, day: 3).dayNumber)
        XCTAssertEqual(MailDate(secondsSince1970: 1_717_482_600).rfc5322, "Tue, 4 Jun 2024 06:30:00 +0000")
        XCTAssertEqual(MailDate(secondsSince1970: 1_717_482_600, offsetMinutes: -420).rfc5322, "Mon, 3 Jun 2024 23:30:00 -0700")
        XCTAssertEqual(MailDate(secondsSince1970: 0).imap, " 1-Jan-1970 00:00:00 +0000")
        XCTAssertEqual(MailDate(secondsSince1970: -1).rfc5322, "Wed, 31 Dec 1969 23:59:59 +0000")
        XCTAssertEqual(MailDate(year: 2000, month: 2, day: 29).dayNumber, 11_016)
        // Round trips over four centuries of days.
        for t in stride(from: Int64(-4_000_000_000), to: 8_000_000_000, by: 7_777_777) {
            XCTAssertEqual(MailDate(rfc5322: MailDate(secondsSince1970: t, offsetMinutes: 330).rfc5322)?.secondsSince1970, t)
        }
    }
}
