import Foundation

/// A rule's regular expression (ICU syntax, through NSRegularExpression), case-insensitive unless
/// the pattern turns that off with `(?-i)`. Only ever run on bounded text: header values and the
/// decoded text parts up to `max_scan_bytes`.
// @unchecked Sendable: NSRegularExpression is immutable once made and documented as safe to use
// from several threads at once.
struct Pattern: @unchecked Sendable, CustomStringConvertible {
    let source: String
    private let regex: NSRegularExpression

    init(_ source: String) throws {
        self.source = source
        regex = try NSRegularExpression(pattern: source, options: [.caseInsensitive])
    }

    func matches(_ text: String) -> Bool {
        regex.firstMatch(in: text, options: [], range: NSRange(text.startIndex..., in: text)) != nil
    }

    var description: String { source }
}

/// A phrase searched without regard to case or to how words are spaced (a body rule's `body`):
/// a phrase wrapped over two lines, or split by HTML tags, still matches.
struct Phrase: Sendable, Equatable {
    let normalised: String

    init(_ text: String) { normalised = Self.normalised(text) }

    /// `text` is `normalised` already (done once per message, not per rule).
    func occurs(in normalisedText: String) -> Bool { normalisedText.containsUTF8(normalised) }

    /// Lower-cased, every run of white space one space.
    static func normalised(_ text: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        var inSpace = false
        for c in text.lowercased().unicodeScalars {
            if c.isWhitespaceFast {
                if !inSpace { out.append(0x20) }
                inSpace = true
            } else {
                out.append(contentsOf: UTF8.encode(c)!)
                inSpace = false
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
