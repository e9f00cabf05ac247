import Foundation

/// A text/plain mail body as HTML for the webmail: escaped, line breaks kept (pre-wrap), http(s)
/// URLs made into links that open outside the webmail, and `>` quote levels optionally shown as
/// nested blockquotes.
package enum PlainTextRenderer {
    package static func render(_ text: String, markQuotes: Bool = true) -> String {
        var output = #"<div style="white-space: pre-wrap">"#
        var depth = 0
        // CR LF is one Character in Swift, so it must be named as a separator of its own.
        var lines = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }
        if lines.last?.isEmpty == true, lines.count > 1 { lines.removeLast() }
        for (index, line) in lines.enumerated() {
            var body = Substring(line)
            if markQuotes {
                let (level, rest) = quoteLevel(of: body)
                body = rest
                if level != depth {
                    // A quote block starts or ends on a line of its own: drop the newline that
                    // would otherwise show as an empty line at the edge of the block.
                    if output.hasSuffix("\n") { output.removeLast() }
                    while depth < level {
                        output += "<blockquote>"
                        depth += 1
                    }
                    while depth > level {
                        output += "</blockquote>"
                        depth -= 1
                    }
                }
            }
            appendLinkified(body, to: &output)
            if index < lines.count - 1 { output += "\n" }
        }
        output += String(repeating: "</blockquote>", count: depth)
        return output + "</div>"
    }

    /// `> > text` and `>>text` are both level 2; one space after the markers belongs to them.
    static func quoteLevel(of line: Substring) -> (Int, Substring) {
        var level = 0
        var rest = line
        while true {
            if rest.first == ">" {
                level += 1
                rest = rest.dropFirst()
            } else if rest.first == " ", rest.dropFirst().first == ">" {
                rest = rest.dropFirst()
            } else {
                break
            }
        }
        if level > 0, rest.first == " " { rest = rest.dropFirst() }
        return (level, rest)
    }

    private static let urlStops: Set<Character> = [" ", "\t", "<", ">", "\"", "\u{A0}"]
    private static let trailingPunctuation: Set<Character> = [".", ",", ";", ":", "!", "?", "'", ")", "]"]

    private static func appendLinkified(_ line: Substring, to output: inout String) {
        var rest = line
        while let start = urlStart(in: rest) {
            output += HTMLEscaping.escaped(String(rest[..<start]))
            var end = rest[start...].firstIndex(where: { urlStops.contains($0) }) ?? rest.endIndex
            // "(see http://x/y)." ends before ")." but "http://x/a_(b)" keeps its balanced bracket.
            // The bracket counts are kept as the end moves, so a run of `)))` stays linear.
            let opening = rest[start..<end].filter { $0 == "(" }.count
            var closing = rest[start..<end].filter { $0 == ")" }.count
            while end > start, let last = rest[..<end].last, trailingPunctuation.contains(last) {
                if last == ")" {
                    if opening >= closing { break }
                    closing -= 1
                }
                end = rest.index(before: end)
            }
            let url = String(rest[start..<end])
            if url.count > "https://".count {
                output += #"<a href=""# + HTMLEscaping.escaped(url) + #"" rel=""# + HTMLSanitizer.linkRel + #"" target="_blank">"#
                output += HTMLEscaping.escaped(url) + "</a>"
            } else {
                output += HTMLEscaping.escaped(url)
            }
            rest = rest[end...]
        }
        output += HTMLEscaping.escaped(String(rest))
    }

    /// The next `http://` or `https://` (any case) that does not continue a word.
    private static func urlStart(in text: Substring) -> Substring.Index? {
        var searchFrom = text.startIndex
        while let colon = text[searchFrom...].range(of: "://")?.lowerBound {
            for scheme in ["https", "http"] {
                guard let start = text.index(colon, offsetBy: -scheme.count, limitedBy: text.startIndex),
                      text[start..<colon].lowercased() == scheme else { continue }
                if start == text.startIndex || !(text[text.index(before: start)].isLetter || text[text.index(before: start)].isNumber) {
                    return start
                }
            }
            searchFrom = text.index(after: colon)
        }
        return nil
    }
}
