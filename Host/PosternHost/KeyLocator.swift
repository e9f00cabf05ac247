import Foundation

/// Finds the line of a key in a TOML file, so that every configuration error names file, line and
/// key. TOMLKit reports positions for syntax errors only; values carry none. This scanner follows
/// table headers (`[a.b]`, `[[listener]]` with its running index) and `key = value` lines, skipping
/// multi-line strings and arrays. It only locates: the document was already parsed by TOMLKit.
public struct KeyLocator: Sendable {
    private var lines: [[String]: Int] = [:]

    public init(source: String) {
        var table: [String] = []
        var arrayCounts: [[String]: Int] = [:]
        var openBrackets = 0
        var inMultilineString: String? = nil
        for (index, rawLine) in source.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNumber = index + 1
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if let delimiter = inMultilineString {
                if line.contains(delimiter) { inMultilineString = nil }
                continue
            }
            if openBrackets > 0 {
                openBrackets += Self.bracketBalance(line)
                continue
            }
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("[[") {
                let path = Self.splitKey(String(line.dropFirst(2).prefix { $0 != "]" }))
                // Parents resolve to their newest element; the array itself does not.
                let resolved = Self.resolve(Array(path.dropLast()), arrayCounts: arrayCounts) + [path.last!]
                let n = arrayCounts[resolved, default: 0]
                arrayCounts[resolved] = n + 1
                table = resolved + [String(n)]
                lines[table] = lines[table] ?? lineNumber
                lines[resolved] = lines[resolved] ?? lineNumber
                continue
            }
            if line.hasPrefix("[") {
                table = Self.resolve(Self.splitKey(String(line.dropFirst().prefix { $0 != "]" })), arrayCounts: arrayCounts)
                lines[table] = lines[table] ?? lineNumber
                continue
            }
            guard let eq = Self.assignmentIndex(line) else { continue }
            let key = table + Self.splitKey(String(line[..<eq]))
            lines[key] = lines[key] ?? lineNumber
            let value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            for delimiter in ["\"\"\"", "'''"] where value.hasPrefix(delimiter) {
                if !value.dropFirst(3).contains(delimiter) { inMultilineString = delimiter }
            }
            if inMultilineString == nil { openBrackets = max(0, Self.bracketBalance(value)) }
        }
    }

    /// The line of `keyPath`, or of its nearest located parent; nil when nothing matches.
    public func line(of keyPath: [String]) -> Int? {
        var path = keyPath
        while !path.isEmpty {
            if let line = lines[path] { return line }
            path.removeLast()
        }
        return nil
    }

    /// `a.b` inside the newest element of array-of-tables `a` means `a.N.b`.
    private static func resolve(_ path: [String], arrayCounts: [[String]: Int]) -> [String] {
        var out: [String] = []
        for segment in path {
            out.append(segment)
            if let n = arrayCounts[out] { out.append(String(n - 1)) }
        }
        return out
    }

    /// Splits a dotted key, honouring quoted segments (`"example.org"`).
    static func splitKey(_ text: String) -> [String] {
        var segments: [String] = []
        var current = ""
        var quote: Character? = nil
        for ch in text {
            if let q = quote {
                if ch == q { quote = nil } else { current.append(ch) }
            } else if ch == "\"" || ch == "'" {
                quote = ch
            } else if ch == "." {
                segments.append(current.trimmingCharacters(in: .whitespaces))
                current = ""
            } else {
                current.append(ch)
            }
        }
        segments.append(current.trimmingCharacters(in: .whitespaces))
        return segments
    }

    /// The index of the `=` of a `key = value` line, outside quotes.
    private static func assignmentIndex(_ line: String) -> String.Index? {
        var quote: Character? = nil
        var i = line.startIndex
        while i < line.endIndex {
            let ch = line[i]
            if let q = quote {
                if ch == q { quote = nil }
            } else if ch == "\"" || ch == "'" {
                quote = ch
            } else if ch == "=" {
                return i
            }
            i = line.index(after: i)
        }
        return nil
    }

    /// Opening minus closing brackets and braces outside strings and comments.
    private static func bracketBalance(_ text: String) -> Int {
        var balance = 0
        var quote: Character? = nil
        for ch in text {
            if let q = quote {
                if ch == q { quote = nil }
                continue
            }
            switch ch {
            case "\"", "'": quote = ch
            case "#": return balance
            case "[", "{": balance += 1
            case "]", "}": balance -= 1
            default: break
            }
        }
        return balance
    }
}
