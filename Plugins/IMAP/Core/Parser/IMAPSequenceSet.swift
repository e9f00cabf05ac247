/// A sequence set (RFC 3501 `sequence-set`) as the client wrote it: numbers, `*`, ranges in
/// either order, comma lists, or `$` for the saved search result (RFC 5182 SEARCHRES). The same
/// type carries message sequence numbers and UIDs; what `*` means depends on which, so it is
/// resolved against the mailbox by the session.
public struct IMAPSequenceSet: Sendable, Hashable, CustomStringConvertible {
    /// One end of a range: a number, or `*` (the largest number in use).
    public enum Bound: Sendable, Hashable {
        case number(UInt32)
        case largest

        func resolved(_ largest: UInt32) -> UInt32 {
            if case .number(let n) = self { return n }
            return largest
        }
    }

    /// `a:b` as written (`b` may be below `a`); a single number has `first == last`.
    public struct Range: Sendable, Hashable {
        public var first: Bound
        public var last: Bound
        public init(_ first: Bound, _ last: Bound) {
            self.first = first
            self.last = last
        }
        public init(_ number: UInt32) { self.init(.number(number), .number(number)) }
    }

    /// The ranges in the order written; empty exactly when `isSavedResult`.
    public private(set) var ranges: [Range]
    /// `$`: the result the last `SEARCH RETURN (SAVE)` kept (RFC 5182); the session substitutes it.
    public let isSavedResult: Bool

    public init(_ ranges: [Range]) {
        precondition(!ranges.isEmpty, "a sequence set has at least one range")
        self.ranges = ranges
        isSavedResult = false
    }

    private init(savedResult: Void) {
        ranges = []
        isSavedResult = true
    }

    /// `$`.
    public static let savedResult = IMAPSequenceSet(savedResult: ())

    /// Numbers compressed into ranges in the order given: each run of consecutive ascending
    /// numbers becomes `a:b`, so `[1, 2, 3, 5]` is `1:3,5`. Order is kept because COPYUID pairs
    /// source and destination UIDs by position; sort first where order means nothing (VANISHED).
    /// Nil for no numbers (a set cannot be empty).
    public init?(numbers: [UInt32]) {
        var ranges: [Range] = []
        var start: UInt32? = nil, end: UInt32 = 0
        for n in numbers {
            if start != nil, end != UInt32.max, n == end + 1 {
                end = n
                continue
            }
            if let s = start { ranges.append(Range(.number(s), .number(end))) }
            start = n
            end = n
        }
        if let s = start { ranges.append(Range(.number(s), .number(end))) }
        guard !ranges.isEmpty else { return nil }
        self.init(ranges)
    }

    /// Numbers sorted, duplicates dropped, compressed (`[5, 1, 3, 2, 2]` is `1:3,5`).
    public init?(sorting numbers: [UInt32]) {
        var sorted = numbers.sorted()
        var last: UInt32? = nil
        sorted.removeAll { n in defer { last = n }; return n == last }
        self.init(numbers: sorted)
    }

    /// Ranges ascending and merged, every one within 1...`largest`, `*` replaced by `largest`.
    /// For message sequence numbers `largest` is the message count; for UIDs it is the largest
    /// UID in use (so `559:*` includes that UID even when it is below 559, RFC 3501 §6.4.8).
    /// Numbers above `largest` are dropped (for UIDs they name nothing; for sequence numbers the
    /// session should answer BAD first: see `exceeds`). A mailbox with nothing in it
    /// (`largest == 0`) gives no ranges. `$` gives no ranges: substitute the saved result.
    public func resolved(largest: UInt32) -> [ClosedRange<UInt32>] {
        guard largest > 0 else { return [] }
        var spans: [ClosedRange<UInt32>] = ranges.compactMap { r in
            let a = r.first.resolved(largest), b = r.last.resolved(largest)
            let low = min(a, b), high = min(max(a, b), largest)
            return low <= high ? low...high : nil
        }
        spans.sort { $0.lowerBound < $1.lowerBound }
        var merged: [ClosedRange<UInt32>] = []
        for s in spans {
            if let last = merged.last, s.lowerBound <= last.upperBound || s.lowerBound - 1 == last.upperBound {
                merged[merged.count - 1] = last.lowerBound...max(last.upperBound, s.upperBound)
            } else {
                merged.append(s)
            }
        }
        return merged
    }

    /// Whether `n` is in the set once `*` is `largest` (`$` contains nothing here).
    public func contains(_ n: UInt32, largest: UInt32) -> Bool {
        ranges.contains { r in
            let a = r.first.resolved(largest), b = r.last.resolved(largest)
            return n >= min(a, b) && n <= max(a, b)
        }
    }

    /// Whether a number written out is above `largest`: for message sequence numbers that makes
    /// the command invalid (RFC 3501 §9 seq-number; servers answer BAD).
    public func exceeds(_ largest: UInt32) -> Bool {
        ranges.contains { r in
            for bound in [r.first, r.last] { if case .number(let n) = bound, n > largest { return true } }
            return false
        }
    }

    /// Whether `*` appears.
    public var mentionsLargest: Bool { ranges.contains { $0.first == .largest || $0.last == .largest } }

    /// The wire form (`1:3,5,7:*` or `$`).
    public var description: String {
        if isSavedResult { return "$" }
        func text(_ b: Bound) -> String {
            if case .number(let n) = b { return String(n) }
            return "*"
        }
        return ranges.map { $0.first == $0.last ? text($0.first) : "\(text($0.first)):\(text($0.last))" }
            .joined(separator: ",")
    }

    /// Parses the wire form (`1:3,5,7:*`, `$`); nil when malformed (0 is not a number here).
    public init?(_ text: String) {
        guard let set = IMAPSequenceSet.parse(Array(text.utf8)) else { return nil }
        self = set
    }

    /// Parses a whole sequence set from bytes; nil when malformed (0 is not a sequence number).
    static func parse<Bytes: Collection>(_ bytes: Bytes, allowSavedResult: Bool = true) -> IMAPSequenceSet? where Bytes.Element == UInt8 {
        let text = Array(bytes)
        if text == [UInt8(ascii: "$")] { return allowSavedResult ? .savedResult : nil }
        var ranges: [Range] = []
        for item in text.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
            let ends = item.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
            guard ends.count == 1 || ends.count == 2 else { return nil }
            var bounds: [Bound] = []
            for end in ends {
                guard let bound = parseBound(end) else { return nil }
                bounds.append(bound)
            }
            ranges.append(Range(bounds[0], bounds.last!))
        }
        guard !ranges.isEmpty else { return nil }
        return IMAPSequenceSet(ranges)
    }

    private static func parseBound(_ text: ArraySlice<UInt8>) -> Bound? {
        if text.count == 1 && text.first == UInt8(ascii: "*") { return .largest }
        guard let n = parseNonZeroNumber(text) else { return nil }
        return .number(n)
    }
}

/// `nz-number`: digits, no leading zero, 1...UInt32.max.
func parseNonZeroNumber<Bytes: Collection>(_ text: Bytes) -> UInt32? where Bytes.Element == UInt8 {
    guard let first = text.first, first != UInt8(ascii: "0"), let n = parseNumber(text), n > 0 else { return nil }
    return n
}

/// `number`: 1*DIGIT within 32 bits.
func parseNumber<Bytes: Collection>(_ text: Bytes) -> UInt32? where Bytes.Element == UInt8 {
    guard let n = parseNumber64(text), n <= UInt64(UInt32.max) else { return nil }
    return UInt32(n)
}

/// `number64` (RFC 9051) / `mod-sequence-value` (RFC 7162): 1*DIGIT up to 2^63-1.
func parseNumber64<Bytes: Collection>(_ text: Bytes) -> UInt64? where Bytes.Element == UInt8 {
    guard !text.isEmpty, text.count <= 19 else { return nil }
    var n: UInt64 = 0
    for b in text {
        guard IMAPCharacters.isDigit(b) else { return nil }
        n = n * 10 + UInt64(b - 0x30)
    }
    return n <= UInt64(Int64.max) ? n : nil
}
