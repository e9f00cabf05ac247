import PluginAPI

/// A Postfix-style `key value` table read from a file (the format of postmap(5) sources):
///
/// - a logical line starts with non-whitespace text; a line that starts with whitespace
///   continues the previous one (joined with one space);
/// - empty lines, whitespace-only lines and lines whose first non-whitespace character is `#`
///   are ignored;
/// - the key ends at the first space or tab; the value is the rest, trimmed; a key with no value
///   is an error;
/// - keys are case-folded (looked up without case); values are kept as written;
/// - a key given twice keeps its first value (as postmap does), and the duplicate is reported.
///
/// Lookups return the value as one element; callers split lists (`a, b`) as their format needs.
struct FileTable: LookupTable {
    enum ParseError: Error, Equatable, CustomStringConvertible {
        case notUTF8(line: Int)
        case missingValue(line: Int, key: String)
        case continuationFirst(line: Int)

        var description: String {
            switch self {
            case .notUTF8(let line): return "line \(line): not UTF-8"
            case .missingValue(let line, let key): return "line \(line): expected 'key value', found only the key '\(key)'"
            case .continuationFirst(let line): return "line \(line): a continuation line (starting with whitespace) with nothing to continue"
            }
        }
    }

    let entries: [String: String]
    /// Keys that appeared more than once, with the line of the ignored repeat.
    let duplicates: [(key: String, line: Int)]

    init(entries: [String: String]) {
        self.entries = entries
        duplicates = []
    }

    /// Parses the bytes of a table file.
    init(parsing bytes: [UInt8]) throws {
        // Logical lines with the number of the physical line each starts on.
        var logical: [(line: Int, text: String)] = []
        var number = 0
        for raw in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            number += 1
            var physical = Array(raw)
            if physical.last == UInt8(ascii: "\r") { physical.removeLast() }
            guard let text = String(validating: physical, as: UTF8.self) else { throw ParseError.notUTF8(line: number) }
            let trimmed = text.trimmingWhitespace
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            if text.first == " " || text.first == "\t" {
                guard !logical.isEmpty else { throw ParseError.continuationFirst(line: number) }
                logical[logical.count - 1].text += " " + trimmed
            } else {
                logical.append((number, trimmed))
            }
        }
        var entries: [String: String] = [:]
        var duplicates: [(String, Int)] = []
        for (line, text) in logical {
            let keyEnd = text.firstIndex(where: { $0 == " " || $0 == "\t" }) ?? text.endIndex
            let key = String(text[..<keyEnd]).lowercased()
            let value = String(text[keyEnd...]).trimmingWhitespace
            guard !value.isEmpty else { throw ParseError.missingValue(line: line, key: key) }
            if entries[key] != nil {
                duplicates.append((key, line))
            } else {
                entries[key] = value
            }
        }
        self.entries = entries
        self.duplicates = duplicates
    }

    func lookup(_ key: String) async throws -> [String]? {
        entries[key.lowercased()].map { [$0] }
    }
}

extension String {
    fileprivate var trimmingWhitespace: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }
}
