import PluginAPI
import XCTest
@testable import PosternIMAPCore

/// SORT (RFC 5256): the command's parse, the base subject, and sorting on the real store.
final class SortTests: XCTestCase {
    func testSortCommandParses() {
        assertCommand("a1 UID SORT (REVERSE DATE subject) UTF-8 SEEN FROM \"x\"\r\n",
                      .sort(IMAPSortCommand(criteria: [IMAPSortCriterion(.date, reverse: true), IMAPSortCriterion(.subject)],
                                            search: IMAPSearchCommand(charset: "UTF-8", key: .and([.seen, .from(b("x"))]), byUID: true))))
        assertCommand("a1 SORT (ARRIVAL) us-ascii ALL\r\n",
                      .sort(IMAPSortCommand(criteria: [IMAPSortCriterion(.arrival)], search: IMAPSearchCommand(charset: "US-ASCII", key: .all))))
    }

    func testMalformedSortCommandsAreRefused() {
        assertRefused("a1 SORT (BOGUS) UTF-8 ALL\r\n", "a1 BAD Unknown sort key BOGUS\r\n")
        for line in ["a1 SORT () UTF-8 ALL\r\n", "a1 SORT (DATE) ALL\r\n", "a1 SORT DATE UTF-8 ALL\r\n",
                     "a1 SORT (REVERSE) UTF-8 ALL\r\n", "a1 SORT (DATE) UTF-8\r\n", "a1 SORT\r\n"] {
            let got = events(line)
            XCTAssertEqual(got.count, 1, line)
            guard case .error(let error)? = got.first else { XCTFail("\(line) was accepted: \(got)"); continue }
            XCTAssertTrue(String(decoding: error.responseBytes, as: UTF8.self).hasPrefix("a1 BAD "), line)
        }
    }

    func testBaseSubject() {
        XCTAssertEqual(SortHeaders.baseSubject("Re: Re:  hello   world"), "HELLO WORLD")
        XCTAssertEqual(SortHeaders.baseSubject("Fwd: [list] Re: Hi (fwd)"), "HI")
        XCTAssertEqual(SortHeaders.baseSubject("RE[2]: Hi"), "HI")
        XCTAssertEqual(SortHeaders.baseSubject("[fwd: Hello]"), "HELLO")
        XCTAssertEqual(SortHeaders.baseSubject("[only a tag]"), "[ONLY A TAG]", "a blob is kept when nothing would remain")
        XCTAssertEqual(SortHeaders.baseSubject(""), "")
    }

    func testSortOnTheStore() throws {
        let store = try SessionStore()
        let c = SessionClient(store)
        c.login()
        // One internal date for all three: ARRIVAL ties, whatever second the appends fall in.
        let arrival = "02-Jan-2006 15:04:05 +0000"
        c.append(message(1, subject: "Re: beta", from: "zed@example.net", body: "a long body that makes this the largest\r\n"), date: arrival)
        c.append(message(2, subject: "alpha", from: "ann@example.net"), date: arrival)
        c.append(message(3, subject: "Gamma", from: "Bob@example.net"), date: arrival)
        _ = c.command("a1 SELECT INBOX")
        XCTAssertEqual(c.command("a2 SORT (SUBJECT) UTF-8 ALL"), ["* SORT 2 1 3", "a2 OK Sort completed."])
        XCTAssertEqual(c.command("a3 SORT (REVERSE FROM) UTF-8 ALL"), ["* SORT 1 3 2", "a3 OK Sort completed."])
        XCTAssertEqual(c.command("a4 UID SORT (REVERSE SIZE) UTF-8 ALL"), ["* SORT 1 2 3", "a4 OK Sort completed."], "ties in mailbox order")
        XCTAssertEqual(c.command("a5 SORT (REVERSE ARRIVAL) UTF-8 ALL"), ["* SORT 1 2 3", "a5 OK Sort completed."], "one internal date: equal, so mailbox order")
        XCTAssertEqual(c.command("a6 SORT (DATE) KOI8-R ALL"), ["a6 NO [BADCHARSET (US-ASCII UTF-8)] Unsupported charset"])
        XCTAssertTrue(c.command("a7 CAPABILITY").first?.contains(" SORT") ?? false)
    }
}
