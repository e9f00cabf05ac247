import Foundation
import PosternTestSupport
import PluginAPI
import PosternHost
import PosternImport
import XCTest

/// The RFC 4180 reader behind `postern admin user import`, on fixtures.
final class CSVTests: XCTestCase {
    private func parse(_ text: String) -> [CSV.Record] { CSV.parse(Array(text.utf8)) }
    private func rows(_ text: String) -> [[String]] { parse(text).map { (try? $0.fields.get()) ?? ["<\($0.fields)>"] } }

    func testPlainRecordsAndLineEnds() {
        let expected = [CSV.Record(line: 1, fields: ["email", "password"]), CSV.Record(line: 2, fields: ["a@x.org", "pw"])]
        XCTAssertEqual(parse("email,password\na@x.org,pw\n"), expected)
        XCTAssertEqual(parse("email,password\r\na@x.org,pw\r\n"), expected)
        XCTAssertEqual(parse("email,password\ra@x.org,pw\r"), expected)
        XCTAssertEqual(parse("email,password\r\na@x.org,pw"), expected, "no line break after the last record")
        XCTAssertEqual(parse(""), [])
        XCTAssertEqual(rows("a,,c,\n"), [["a", "", "c", ""]])
        XCTAssertEqual(rows(" a , b \n"), [[" a ", " b "]], "spaces belong to the field")
    }

    func testQuotedFields() {
        XCTAssertEqual(rows(#""a,b","say ""hi""",plain"# + "\n"), [["a,b", #"say "hi""#, "plain"]])
        XCTAssertEqual(rows(#""""","",x"# + "\n"), [[#"""#, "", "x"]])
        XCTAssertEqual(rows(#""""# + "\n"), [[""]], "a quoted empty field is a record, not an empty line")
        XCTAssertEqual(rows("\"pass\r\nword\",y\r\n"), [["pass\r\nword", "y"]])
        XCTAssertEqual(rows("\"é, ü\",日本\n"), [["é, ü", "日本"]])
    }

    func testLineNumbersCountEmptyLinesAndQuotedBreaks() {
        let text = "h1,h2\r\n\r\na,1\r\n\"multi\nline\r\nfield\",2\r\n\n\nb,3\r\n"
        XCTAssertEqual(parse(text), [
            CSV.Record(line: 1, fields: ["h1", "h2"]),
            CSV.Record(line: 3, fields: ["a", "1"]),
            CSV.Record(line: 4, fields: ["multi\nline\r\nfield", "2"]),
            CSV.Record(line: 9, fields: ["b", "3"]),
        ])
    }

    func testByteOrderMark() {
        let bytes: [UInt8] = [0xEF, 0xBB, 0xBF] + Array("email,password\r\na@x.org,pw\r\n".utf8)
        XCTAssertEqual(CSV.parse(bytes), [CSV.Record(line: 1, fields: ["email", "password"]), CSV.Record(line: 2, fields: ["a@x.org", "pw"])])
        // Only at the start of the file.
        XCTAssertEqual(CSV.parse(Array("a,".utf8) + [0xEF, 0xBB, 0xBF] + [0x0A]), [CSV.Record(line: 1, fields: ["a", "\u{FEFF}"])])
    }

    func testMalformedRecordsAreReportedAndReadingGoesOn() {
        XCTAssertEqual(parse("a\"b,c\nok,1\n\"x\"y,z\nok,2\n\"open,3\nnever closed\n"), [
            CSV.Record(line: 1, problem: .quoteInUnquotedField),
            CSV.Record(line: 2, fields: ["ok", "1"]),
            CSV.Record(line: 3, problem: .textAfterClosingQuote),
            CSV.Record(line: 4, fields: ["ok", "2"]),
            CSV.Record(line: 5, problem: .unterminatedQuote),
        ])
        XCTAssertEqual(parse("\"a\" ,b\n"), [CSV.Record(line: 1, problem: .textAfterClosingQuote)])
        XCTAssertEqual(CSV.parse(Array("a,".utf8) + [0xFF, 0xFE] + Array("\nb,c\n".utf8)),
                       [CSV.Record(line: 1, problem: .notUTF8), CSV.Record(line: 2, fields: ["b", "c"])])
        XCTAssertEqual(CSV.Problem.unterminatedQuote.description, "a quoted field is not closed before the end of the file")
    }
}
