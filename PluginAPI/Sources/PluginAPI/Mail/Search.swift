/// What a message search asks of a store (IMAP SEARCH, webmail search, admin tools), after the
/// protocol has turned its own notions into store terms: sequence numbers into UIDs, `\Recent`
/// and NEW into UID sets, FROM/TO/CC/BCC/SUBJECT into `.header`.
public indirect enum SearchQuery: Sendable, Equatable {
    case all
    case and([SearchQuery])
    case or(SearchQuery, SearchQuery)
    case not(SearchQuery)
    /// UIDs in these ranges.
    case uids([ClosedRange<UInt32>])
    /// Has this flag or keyword (system flags and keywords compare without case).
    case flag(String)
    /// A header field of this name contains `value` (decoded, without case); an empty value
    /// matches every message that has the field (RFC 3501 §6.4.4 HEADER).
    case header(name: String, value: String)
    /// The body (text parts, transfer encoding and charset decoded) contains the text.
    case body(String)
    /// The header or the body contains the text.
    case text(String)
    case larger(Int)
    case smaller(Int)
    /// The internal (arrival) date's day, in UTC, compared with `day` (days since 1970).
    case internalDate(DayComparison, day: Int64)
    /// The `Date:` header's day as written, compared with `day`; messages without a parsable
    /// Date never match.
    case sentDate(DayComparison, day: Int64)
    /// MODSEQ at least this (RFC 7162 §3.1.5).
    case modseqAtLeast(UInt64)

    public enum DayComparison: Sendable, Equatable { case before, on, since }

    /// Whether answering needs the message's content, not only the index.
    public var needsContent: Bool {
        switch self {
        case .header, .body, .text, .sentDate: return true
        case .and(let qs): return qs.contains { $0.needsContent }
        case .or(let a, let b): return a.needsContent || b.needsContent
        case .not(let q): return q.needsContent
        default: return false
        }
    }
}

/// What the matcher reads of one message: index fields at once, content only when asked (a
/// search on flags over 100,000 messages must not open 100,000 files).
public struct SearchCandidate {
    public var uid: UInt32
    public var flags: [String]
    public var size: Int
    public var internalDate: Int64
    public var modseq: UInt64
    public var content: () throws -> [UInt8]

    public init(uid: UInt32, flags: [String], size: Int, internalDate: Int64, modseq: UInt64, content: @escaping () throws -> [UInt8]) {
        self.uid = uid
        self.flags = flags
        self.size = size
        self.internalDate = internalDate
        self.modseq = modseq
        self.content = content
    }
}

/// Evaluates a `SearchQuery` against messages: shared by every store so that they answer alike.
/// Text matching is substring without case over decoded text (RFC 2047 words in headers; the
/// transfer encoding and charset of text parts in bodies), as Dovecot does without an index.
public struct SearchMatcher {
    public let query: SearchQuery

    public init(_ query: SearchQuery) { self.query = Self.lowercasingFlags(query) }

    /// The query with flag names lowercased once, so matching a flag allocates nothing.
    private static func lowercasingFlags(_ q: SearchQuery) -> SearchQuery {
        switch q {
        case .flag(let f): return .flag(f.lowercased())
        case .and(let qs): return .and(qs.map(lowercasingFlags))
        case .or(let a, let b): return .or(lowercasingFlags(a), lowercasingFlags(b))
        case .not(let sub): return .not(lowercasingFlags(sub))
        default: return q
        }
    }

    /// `flag` (already lowercase) equals `candidate` without regard to ASCII case: flags are
    /// atoms, so ASCII is all there is to fold, and this runs once per message and flag.
    static func flag(_ candidate: String, equalsLowercased flag: String) -> Bool {
        var a = candidate.utf8.makeIterator(), b = flag.utf8.makeIterator()
        while true {
            switch (a.next(), b.next()) {
            case (nil, nil): return true
            case (let x?, let y?):
                let folded = (x >= 0x41 && x <= 0x5A) ? x | 0x20 : x
                if folded != y { return false }
            default: return false
            }
        }
    }

    /// Content parsed once per message, however many criteria (or queries) read it.
    public final class Parsed {
        let bytes: [UInt8]
        lazy var message = MIMEMessage(parsing: bytes)
        /// Only the top-level header: what header criteria read, without parsing the body.
        lazy var header = MailHeaderBlock(parsing: bytes)
        lazy var headerText: String = SearchableText.headerText(header)
        lazy var bodyText: String = SearchMatcher.bodyText(of: message.root, in: bytes).lowercased()
        public init(bytes: [UInt8]) { self.bytes = bytes }
    }

    public func matches(_ candidate: SearchCandidate) throws -> Bool { try matches(candidate, parsed: nil) }

    /// The same with the content given, parsed as far as earlier queries needed: many queries
    /// over one message (a scan to compare an index with) parse it once.
    public func matches(_ candidate: SearchCandidate, parsed given: Parsed?) throws -> Bool {
        var parsed = given
        func content() throws -> Parsed {
            if let parsed { return parsed }
            let p = Parsed(bytes: try candidate.content())
            parsed = p
            return p
        }
        // Depth-first with an explicit stack would be needed for hostile depths; queries come
        // from protocol parsers that bound nesting, so plain recursion stays shallow.
        func eval(_ q: SearchQuery) throws -> Bool {
            switch q {
            case .all: return true
            case .and(let qs):
                // Index-only criteria first: they may settle it without reading the content.
                for sub in qs where !sub.needsContent { if try !eval(sub) { return false } }
                for sub in qs where sub.needsContent { if try !eval(sub) { return false } }
                return true
            case .or(let a, let b):
                let (first, second) = a.needsContent && !b.needsContent ? (b, a) : (a, b)
                return try eval(first) || eval(second)
            case .not(let sub): return try !eval(sub)
            case .uids(let ranges): return ranges.contains { $0.contains(candidate.uid) }
            case .flag(let flag): return candidate.flags.contains { Self.flag($0, equalsLowercased: flag) }
            case .larger(let n): return candidate.size > n
            case .smaller(let n): return candidate.size < n
            case .modseqAtLeast(let m): return candidate.modseq >= m
            case .internalDate(let cmp, let day):
                return Self.compare(MailDate(secondsSince1970: candidate.internalDate).dayNumber, cmp, day)
            case .sentDate(let cmp, let day):
                guard let sent = SearchableText.sentDay(try content().header) else { return false }
                return Self.compare(sent, cmp, day)
            case .header(let name, let value):
                let p = try content()
                let fields = p.header.all(name)
                if value.isEmpty { return !fields.isEmpty }
                let needle = value.lowercased()
                return fields.contains { SearchableText.fieldText($0).contains(needle) }
            case .body(let text):
                return try content().bodyText.contains(text.lowercased())
            case .text(let text):
                let p = try content(), needle = text.lowercased()
                return p.headerText.contains(needle) || p.bodyText.contains(needle)
            }
        }
        return try eval(query)
    }

    static func compare(_ value: Int64, _ cmp: SearchQuery.DayComparison, _ day: Int64) -> Bool {
        switch cmp {
        case .before: return value < day
        case .on: return value == day
        case .since: return value >= day
        }
    }

    /// The searchable text of a part: text leaves decoded to UTF-8; enclosed messages' headers
    /// and bodies; other leaves (images, archives) contribute nothing.
    static func bodyText(of part: MIMEPart, in bytes: [UInt8]) -> String {
        var out = ""
        var stack: [MIMEPart] = [part]
        while let p = stack.popLast() {
            if p.isMessage, let inner = p.enclosedMessage {
                // An attached message's own header is part of the outer message's body.
                out += inner.fields.map { "\($0.name): \(EncodedWords.decode($0.value))" }.joined(separator: "\n") + "\n"
                stack.append(inner)
                continue
            }
            if p.isMultipart {
                stack.append(contentsOf: p.children.reversed())
                continue
            }
            // Parts without Content-Type are text/plain (RFC 2045 §5.2), so `contentType` covers them.
            guard p.contentType.isText else { continue }
            let start = min(p.bodyOffset, bytes.count), end = min(p.bodyOffset + p.bodySize, bytes.count)
            let raw = bytes[start..<end]
            let decoded: [UInt8]
            switch p.contentTransferEncoding?.lowercased() {
            case "base64": decoded = Base64Decoder.decode(raw)
            case "quoted-printable": decoded = QuotedPrintableDecoder.decode(raw)
            default: decoded = Array(raw)
            }
            let charset = p.contentType.parameters.first { $0.name.lowercased() == "charset" }?.value ?? "us-ascii"
            out += MailCharset.decode(decoded, charset: charset) + "\n"
        }
        return out
    }
}
