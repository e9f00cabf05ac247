import Foundation
import PosternTestSupport
import PosternHost
import PosternImport
import XCTest

/// `postern admin import mbox` through the binary: every message back byte for byte.
final class MboxImportTests: XCTestCase {
    /// Writes messages as mboxrd does: any `>*From ` line gets one more `>`, one empty line after each.
    private func mboxrd(_ messages: [(from: String, bytes: [UInt8])]) -> [UInt8] {
        var out: [UInt8] = []
        for m in messages {
            out += Array("From \(m.from)\n".utf8)
            var start = 0
            while start < m.bytes.count {
                let end = m.bytes[start...].firstIndex(of: 10).map { $0 + 1 } ?? m.bytes.count
                let line = m.bytes[start..<end]
                if line.drop(while: { $0 == UInt8(ascii: ">") }).starts(with: Array("From ".utf8)) { out.append(UInt8(ascii: ">")) }
                out += line
                start = end
            }
            out.append(10)
        }
        return out
    }

    func testEveryMessageIntact() throws {
        let f = try AdminFixture("mbox")
        var messages: [(from: String, bytes: [UInt8], flags: [String], date: Int64)] = []
        for i in 1...40 {
            var text = "Message-ID: <m\(i)@example.net>\nFrom: a@example.net\nSubject: message \(i)\n"
            var flags: [String] = []
            if i % 3 == 0 { text += "Status: RO\n"; flags.append("\\Seen") }
            if i % 4 == 0 { text += "X-Status: AF\n"; flags += ["\\Answered", "\\Flagged"] }
            text += "\n"
            text += "From the start of a line.\n>From quoted already.\n>>From twice.\n\nFrom after an empty line.\n"
            text += "Käse, \u{1F600} and a line with only spaces:\n   \n"
            if i % 5 == 0 { text = text.replacingOccurrences(of: "\n", with: "\r\n") }   // a CRLF message among LF ones
            if i % 7 == 0 { text += "\n\n" }   // trailing empty lines of its own
            let date: Int64 = 1_600_000_000 + Int64(i) * 86_413
            let from = "a@example.net " + asctime(date)
            messages.append((from, Array(text.utf8), flags, date))
        }
        let file = f.dir.write("old.mbox", mboxrd(messages.map { ($0.from, $0.bytes) }))

        let r = f.admin("import", "mbox", file, "--user", f.user, "--mailbox", "Old/Mail")
        XCTAssertEqual(r.status, 0, String(decoding: r.stderr, as: UTF8.self))
        XCTAssertEqual(String(decoding: r.stdout, as: UTF8.self), "Old/Mail: 40 messages\ntotal: 40 messages imported, 0 refused\n")

        let listed = f.list("Old/Mail")
        XCTAssertEqual(listed.count, messages.count)
        for (m, l) in zip(messages, listed) {
            XCTAssertEqual(f.get("Old/Mail", l.uid), m.bytes, "message \(l.uid)")
            XCTAssertEqual(l.flags, m.flags.sorted(), "message \(l.uid)")
            XCTAssertEqual(l.date, iso(m.date), "message \(l.uid)")
        }
    }

    func testRefusalsAreReportedAndTheRestImported() throws {
        let f = try AdminFixture("mbox-refused")
        let file = f.dir.write("broken.mbox", Array("""
            stray text, no From line

            From a Mon Jan  1 00:00:00 2024
            Message-ID: <ok@example.net>

            fine

            From b Mon Jan  1 00:00:00 2024

            """.utf8))
        let r = f.admin("import", "mbox", file, "--user", f.user)
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(String(decoding: r.stdout, as: UTF8.self), """
            refused \(file):1: text before the first 'From ' line: not an mbox message, skipped
            refused \(file):8: empty message, skipped
            INBOX: 1 message
            total: 1 message imported, 2 refused

            """)
        XCTAssertEqual(f.list("INBOX").map(\.messageID), ["<ok@example.net>"])
        XCTAssertEqual(f.list("INBOX").map(\.date), [iso(1_704_067_200)])

        // An unknown account refuses the whole import.
        let u = f.admin("import", "mbox", file, "--user", "nobody@example.org")
        XCTAssertEqual(u.status, 1)
    }
}

/// `Tue Mar  5 10:00:00 2024` (UTC), as mbox From lines carry dates.
func asctime(_ seconds: Int64) -> String {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "UTC")
    formatter.dateFormat = "EEE MMM d HH:mm:ss yyyy"
    let text = formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
    // asctime pads the day to two characters with a space.
    let parts = text.split(separator: " ")
    return "\(parts[0]) \(parts[1]) \(parts[2].count == 1 ? " " : "")\(parts[2]) \(parts[3]) \(parts[4])"
}
