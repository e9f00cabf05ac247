/// What `BODY[...]` names (RFC 3501 `section`): a part path (`1.2.3`, empty for the whole
/// message) and what of that part.
public struct IMAPBodySection: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        /// The whole part (`BODY[]`, `BODY[1.2]`).
        case complete
        case header
        /// `HEADER.FIELDS (names)`; names as the client wrote them (the response echoes them;
        /// compare without case).
        case headerFields([String])
        case headerFieldsNot([String])
        case text
        /// The MIME header of a part; only with a part path.
        case mime
    }

    /// Part numbers, each at least 1; empty for the message itself.
    public var part: [UInt32]
    public var kind: Kind

    public init(part: [UInt32] = [], _ kind: Kind = .complete) {
        self.part = part
        self.kind = kind
    }
}

/// `<origin.count>`: the bytes from `origin`, at most `count` of them.
public struct IMAPPartialRange: Sendable, Hashable {
    public var origin: UInt32
    public var count: UInt32
    public init(origin: UInt32, count: UInt32) {
        self.origin = origin
        self.count = count
    }
}

/// One FETCH data item the client asked for. The macros ALL, FAST and FULL are expanded by the
/// parser into the items they stand for (RFC 3501 §6.4.5), in that order.
public enum IMAPFetchAttribute: Sendable, Hashable {
    case envelope
    case flags
    case internalDate
    /// `RFC822`: the message, like `BODY[]` but setting \Seen.
    case rfc822
    case rfc822Header
    case rfc822Size
    case rfc822Text
    /// `BODY` without a section: the non-extensible body structure.
    case bodyStructureBasic
    case bodyStructure
    case uid
    /// RFC 7162.
    case modSeq
    /// `BODY[section]<partial>`; `peek` for `BODY.PEEK` (does not set \Seen).
    case body(IMAPBodySection, partial: IMAPPartialRange?, peek: Bool)
    /// RFC 3516 `BINARY[part]<partial>` / `BINARY.PEEK`.
    case binary(part: [UInt32], partial: IMAPPartialRange?, peek: Bool)
    /// RFC 3516 `BINARY.SIZE[part]`.
    case binarySize(part: [UInt32])

    /// ALL: FLAGS INTERNALDATE RFC822.SIZE ENVELOPE.
    public static let allMacro: [IMAPFetchAttribute] = [.flags, .internalDate, .rfc822Size, .envelope]
    /// FAST: FLAGS INTERNALDATE RFC822.SIZE.
    public static let fastMacro: [IMAPFetchAttribute] = [.flags, .internalDate, .rfc822Size]
    /// FULL: FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY.
    public static let fullMacro: [IMAPFetchAttribute] = [.flags, .internalDate, .rfc822Size, .envelope, .bodyStructureBasic]

    /// Whether answering it needs the message's bytes, not only the index.
    public var needsContent: Bool {
        switch self {
        case .uid, .flags, .internalDate, .modSeq: return false
        default: return true
        }
    }

    /// Whether fetching it sets \Seen (RFC 3501 §6.4.5: BODY[...] and RFC822, RFC822.TEXT;
    /// RFC 3516: BINARY[...]).
    public var setsSeen: Bool {
        switch self {
        case .rfc822, .rfc822Text: return true
        case .body(_, _, let peek), .binary(_, _, let peek): return !peek
        default: return false
        }
    }
}
