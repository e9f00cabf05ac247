import Foundation
import PluginAPI

/// Splits an mbox file into messages for `postern admin import mbox`. Pure: bytes in, messages out.
///
/// - A message starts at a `From ` line at the start of the file or after an empty line; the
///   empty line before it (and one at the end of the file) is the separator, not message text.
/// - From-quoting is undone line by line: mboxrd (Dovecot, Postfix, mutt) `>From ` -> `From ` and
///   `>>From ` -> `>From `; mboxo only `>From ` -> `From `. The format is not guessed (one file
///   rarely shows which it is): mboxrd unless told.
/// - Every other byte is kept: CRLF stays CRLF and LF stays LF (IMAP servers store what they are
///   given; Dovecot keeps LF too), and `Status:`/`X-Status:` stay in the message.
/// - Flags: `Status:` R -> `\Seen` (O only means "not recent"); `X-Status:` A -> `\Answered`,
///   F -> `\Flagged`, D -> `\Deleted`, T -> `\Draft`; `X-Keywords:` (Dovecot) adds keywords.
/// - The internal date is the `From ` line's date, read as UTC (Dovecot writes it so) unless the
///   line carries a numeric zone.
public enum Mbox {
    public enum Format: String, Sendable, CaseIterable { case mboxrd, mboxo }

    /// One message and where it started.
    public struct Message: Sendable, Equatable {
        /// The line number (from 1) of its `From ` line.
        public var line: Int
        public var bytes: [UInt8]
        public var flags: [String]
        /// Seconds since 1970; nil when the `From ` line carries no readable date.
        public var internalDate: Int64?

        public init(line: Int, bytes: [UInt8], flags: [String], internalDate: Int64?) {
            self.line = line
            self.bytes = bytes
            self.flags = flags
            self.internalDate = internalDate
        }
    }

    /// Something in the file that is not a message.
    public struct Problem: Sendable, Equatable, CustomStringConvertible {
        public var line: Int
        public var reason: String
        public init(line: Int, reason: String) {
            self.line = line
            self.reason = reason
        }
        public var description: String { "line \(line): \(reason)" }
    }

    public static func parse(_ bytes: [UInt8], format: Format = .mboxrd) -> (messages: [Message], problems: [Problem]) {
        var messages: [Message] = [], problems: [Problem] = []
        var current: (line: Int, fromLine: ArraySlice<UInt8>, bytes: [UInt8])?
        var leading = 0   // non-empty lines before the first From line
        var lineNumber = 0, previousEmpty = true, start = 0

        func finish() {
            guard var m = current else { return }
            // The empty line before the next From line (or at the end of the file) is the separator.
            if m.bytes == [10] || m.bytes == [13, 10] {
                m.bytes = []
            } else if m.bytes.suffix(4) == [13, 10, 13, 10] {
                m.bytes.removeLast(2)
            } else if m.bytes.suffix(2) == [10, 10] {
                m.bytes.removeLast()
            }
            if m.bytes.isEmpty {
                problems.append(Problem(line: m.line, reason: "empty message, skipped"))
            } else {
                messages.append(Message(line: m.line, bytes: m.bytes, flags: flags(m.bytes), internalDate: date(fromLine: m.fromLine)))
            }
            current = nil
        }

        while start < bytes.count {
            let end = bytes[start...].firstIndex(of: 10).map { $0 + 1 } ?? bytes.count
            let line = bytes[start..<end]
            lineNumber += 1
            let content = line.last == 10 ? line.dropLast() : line[...]
            let isEmpty = content.isEmpty || content.elementsEqual([13])
            if previousEmpty && line.starts(with: fromPrefix) {
                finish()
                current = (lineNumber, content, [])
            } else if current != nil {
                current!.bytes += unquoted(line, format: format)
            } else if !isEmpty {
                leading += 1
                if leading == 1 { problems.append(Problem(line: lineNumber, reason: "text before the first 'From ' line: not an mbox message, skipped")) }
            }
            previousEmpty = isEmpty
            start = end
        }
        finish()
        return (messages, problems)
    }

    private static let fromPrefix = Array("From ".utf8)

    /// One line with its From-quoting undone.
    static func unquoted(_ line: ArraySlice<UInt8>, format: Format) -> ArraySlice<UInt8> {
        guard line.first == UInt8(ascii: ">") else { return line }
        let afterQuotes = line.drop { $0 == UInt8(ascii: ">") }
        guard afterQuotes.starts(with: fromPrefix) else { return line }
        switch format {
        case .mboxrd: return line.dropFirst()
        case .mboxo: return afterQuotes.startIndex - line.startIndex == 1 ? line.dropFirst() : line
        }
    }

    /// Flags from the mbox status headers of a message.
    static func flags(_ message: [UInt8]) -> [String] {
        let header = MailHeaderBlock(parsing: message)
        var flags: [String] = []
        if let status = header.first("Status")?.text, status.contains("R") { flags.append("\\Seen") }
        if let x = header.first("X-Status")?.text {
            for (letter, flag) in [("A", "\\Answered"), ("F", "\\Flagged"), ("D", "\\Deleted"), ("T", "\\Draft")] where x.contains(letter) {
                flags.append(flag)
            }
        }
        if let keywords = header.first("X-Keywords")?.text {
            flags += keywords.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "\t" }).map(String.init)
        }
        return flags
    }

    private static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

    /// The date of a `From sender Tue Mar  5 10:00:00 2024` line (asctime, optionally with a zone
    /// before or after the year), in seconds since 1970.
    public static func date<Bytes: Collection>(fromLine line: Bytes) -> Int64? where Bytes.Element == UInt8 {
        let tokens = String(decoding: line, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
        // The sender is the token after "From"; the date starts at the first month name after it.
        guard tokens.count > 2, let m = tokens.indices.dropFirst(2).first(where: { months.contains(tokens[$0].lowercased()) }),
              m + 2 < tokens.count, let day = Int(tokens[m + 1]) else { return nil }
        let month = months.firstIndex(of: tokens[m].lowercased())! + 1
        let clock = tokens[m + 2].split(separator: ":").map { Int($0) }
        guard clock.count >= 2, clock.count <= 3, !clock.contains(nil) else { return nil }
        var year: Int?, offset = 0
        for token in tokens[(m + 3)...] {
            if token.count == 4, let y = Int(token) { year = y } else if token.count == 5, token.first == "+" || token.first == "-",
                                                                        let z = Int(token.dropFirst()) {
                offset = (z / 100 * 3600 + z % 100 * 60) * (token.first == "-" ? -1 : 1)
            }
        }
        guard let year, (1...31).contains(day), let h = clock[0], let mi = clock[1] else { return nil }
        let s = clock.count == 3 ? clock[2]! : 0
        return Int64(daysFromCivil(year, month, day) * 86400 + h * 3600 + mi * 60 + s - offset)
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }
}
