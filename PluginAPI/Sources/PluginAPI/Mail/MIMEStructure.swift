// The values MIMEStructureParser produces: limits, problems, parts and the message.

/// Limits of the MIME structure parser. Its buffer is bounded by the header limits plus
/// `maxDelimiterLineLength`, whatever the message size; what it records grows with the number
/// of parts and header fields, bounded by `maxParts` and the header limits.
public struct MIMEParserLimits: Sendable, Equatable {
    /// Deepest nesting of multiparts and message/rfc822 parts; deeper containers are kept as
    /// leaves (their bodies not parsed) and reported.
    public var maxDepth: Int
    /// Most parts recorded; further parts are skipped (their bytes still counted in their
    /// parent) and `MIMEProblem.tooManyParts` is reported once.
    public var maxParts: Int
    /// Limits for every header block.
    public var header: MailHeaderLimits
    /// The longest line still examined as a possible boundary delimiter (RFC 2046 boundaries
    /// are at most 70 characters; transport padding may follow).
    public var maxDelimiterLineLength: Int

    /// Limits with the defaults of received mail.
    public init(maxDepth: Int = 100, maxParts: Int = 10_000, header: MailHeaderLimits = MailHeaderLimits(),
                maxDelimiterLineLength: Int = 1_024) {
        self.maxDepth = max(1, maxDepth)
        self.maxParts = max(1, maxParts)
        self.header = header
        self.maxDelimiterLineLength = max(80, maxDelimiterLineLength)
    }
}

/// Something wrong in a message's MIME structure. None stops the parse.
public enum MIMEProblem: Sendable, Equatable {
    /// A multipart without a `boundary` parameter: kept as a leaf.
    case missingBoundary(part: Int)
    /// A multipart that ended (end of input, or an enclosing boundary) without `--boundary--`.
    case missingCloseDelimiter(part: Int)
    /// A container deeper than `maxDepth`: kept as a leaf.
    case tooDeep(part: Int)
    /// More than `maxParts` parts: the rest were skipped.
    case tooManyParts
    /// A header block went over a limit.
    case headerLimit(part: Int, MailHeaderLimitError)
    /// A header line that is not a field.
    case malformedHeaderLine(part: Int, offset: Int)
    /// A message/rfc822 part with a base64 or quoted-printable encoding: kept as a leaf.
    case encodedMessage(part: Int)
}

/// One part of a message, as the structure parser records it: headers, MIME fields, and where
/// its body lies (offsets are from the start of the message; bodies are not kept).
public struct MIMEPart: Sendable, Equatable {
    /// Depth-first number of the part: 0 is the message itself.
    public var index: Int
    /// Nesting depth: 0 for the message, +1 per multipart or message/rfc822 level.
    public var depth: Int
    /// Offset of the first header byte.
    public var headerOffset: Int
    /// Size of the header block, with the empty line that ends it.
    public var headerSize: Int
    /// Offset of the first body byte.
    public var bodyOffset: Int
    /// Body size in bytes as stored. In a multipart, the line end before the next delimiter
    /// belongs to the delimiter, not to the body (RFC 2046 §5.1.1).
    public var bodySize: Int
    /// Body size with every bare LF counted as CRLF: the size IMAP reports (as Dovecot does).
    public var bodyVirtualSize: Int
    /// Number of LFs in the body: the line count IMAP reports for text and message parts.
    public var bodyLines: Int
    /// The header fields, in order.
    public var fields: [MailHeaderField]
    /// The Content-Type field parsed, or nil when absent or unparsable.
    public var explicitContentType: MIMEContentType?
    /// The effective content type: the explicit one, else text/plain (message/rfc822 inside
    /// multipart/digest).
    public var contentType: MIMEContentType
    /// Content-ID, unfolded, as written.
    public var contentID: [UInt8]?
    /// Content-Description, unfolded, as written (encoded words kept).
    public var contentDescription: [UInt8]?
    /// The Content-Transfer-Encoding token as written, or nil (absent or not a token).
    public var contentTransferEncoding: String?
    /// Content-Disposition parsed.
    public var contentDisposition: MIMEContentDisposition?
    /// Content-Language tags, or nil when absent.
    public var contentLanguage: [String]?
    /// Content-Location, unfolded, as written.
    public var contentLocation: [UInt8]?
    /// Content-MD5, unfolded, as written.
    public var contentMD5: [UInt8]?
    /// The parts of a multipart; for a parsed message/rfc822, its one enclosed message.
    public var children: [MIMEPart]
    /// Whether the part was parsed as a multipart (it had a boundary and depth allowed it).
    public var isMultipart: Bool
    /// Whether the part was parsed as message/rfc822 (its child is the enclosed message).
    public var isMessage: Bool
    /// For a multipart: offset and size of the preamble (before the first delimiter).
    public var preamble: (offset: Int, size: Int)? {
        get { preambleRange.map { (offset: $0.lowerBound, size: $0.count) } }
        set { preambleRange = newValue.map { $0.offset..<($0.offset + $0.size) } }
    }
    /// For a multipart: offset and size of the epilogue (after the close delimiter), or nil
    /// when there was no close delimiter.
    public var epilogue: (offset: Int, size: Int)? {
        get { epilogueRange.map { (offset: $0.lowerBound, size: $0.count) } }
        set { epilogueRange = newValue.map { $0.offset..<($0.offset + $0.size) } }
    }
    var preambleRange: Range<Int>?
    var epilogueRange: Range<Int>?

    /// The enclosed message of a message/rfc822 part.
    public var enclosedMessage: MIMEPart? { isMessage ? children.first : nil }

    /// The first field called `name` (ASCII case ignored).
    public func field(_ name: String) -> MailHeaderField? { fields.first { $0.hasName(name) } }

    /// The IMAP ENVELOPE of this part's header (meaningful for a message or enclosed message).
    public var envelope: MessageEnvelope { MessageEnvelope(fields: fields) }

    /// Every part of the tree in depth-first order, this one first.
    public var allParts: [MIMEPart] { [self] + children.flatMap(\.allParts) }
}

/// The result of a structure parse.
public struct MIMEMessage: Sendable, Equatable {
    /// The message (part 0) with its tree of parts.
    public var root: MIMEPart
    /// The problems met, in order.
    public var problems: [MIMEProblem]
    /// Total size in bytes.
    public var size: Int
    /// Number of parts recorded.
    public var partCount: Int

    /// Parses a whole message held in memory.
    public init<Bytes: Collection>(parsing bytes: Bytes, limits: MIMEParserLimits = MIMEParserLimits()) where Bytes.Element == UInt8 {
        var p = MIMEStructureParser(limits: limits)
        p.feed(bytes)
        self = p.finish()
    }

    init(root: MIMEPart, problems: [MIMEProblem], size: Int, partCount: Int) {
        self.root = root
        self.problems = problems
        self.size = size
        self.partCount = partCount
    }
}

extension MIMEPart {
    /// Field-by-field equality (the tuple-typed accessors keep the synthesised one away).
    public static func == (a: MIMEPart, b: MIMEPart) -> Bool {
        a.index == b.index && a.depth == b.depth && a.headerOffset == b.headerOffset && a.headerSize == b.headerSize
            && a.bodyOffset == b.bodyOffset && a.bodySize == b.bodySize && a.bodyVirtualSize == b.bodyVirtualSize
            && a.bodyLines == b.bodyLines && a.fields == b.fields && a.explicitContentType == b.explicitContentType
            && a.contentType == b.contentType && a.contentID == b.contentID && a.contentDescription == b.contentDescription
            && a.contentTransferEncoding == b.contentTransferEncoding && a.contentDisposition == b.contentDisposition
            && a.contentLanguage == b.contentLanguage && a.contentLocation == b.contentLocation && a.contentMD5 == b.contentMD5
            && a.children == b.children && a.isMultipart == b.isMultipart && a.isMessage == b.isMessage
            && a.preambleRange == b.preambleRange && a.epilogueRange == b.epilogueRange
    }
}
