/// Sizes the parser refuses to go beyond. Every limit is per connection and checked before the
/// bytes are kept, so a client cannot make the parser hold more than these allow.
public struct IMAPParserLimits: Sendable, Hashable {
    /// The longest command line, terminator and literal contents excluded. A command with
    /// literals is several lines; each is held to this.
    public var maxLineLength: Int
    /// The largest literal other than an APPEND message (names, passwords, search strings).
    public var maxLiteralSize: Int
    /// The largest APPEND message (each one of a MULTIAPPEND). Over it: `NO [TOOBIG]`, as
    /// RFC 7889 (APPENDLIMIT) says; advertise the same number as APPENDLIMIT.
    public var maxAppendMessageSize: Int
    /// All messages of one APPEND together (MULTIAPPEND).
    public var maxAppendTotalSize: Int
    /// All bytes of one command (lines and literals) other than APPEND messages.
    public var maxCommandSize: Int
    /// How deep parenthesised lists and SEARCH's NOT/OR may nest. The parser recurses once per
    /// level, so this also bounds its stack.
    public var maxNestingDepth: Int

    public init(maxLineLength: Int = 64 * 1024, maxLiteralSize: Int = 1024 * 1024,
                maxAppendMessageSize: Int = 64 * 1024 * 1024, maxAppendTotalSize: Int = 256 * 1024 * 1024,
                maxCommandSize: Int = 8 * 1024 * 1024, maxNestingDepth: Int = 32) {
        precondition(maxLineLength >= 64 && maxNestingDepth >= 1, "limits too small to parse any command")
        self.maxLineLength = maxLineLength
        self.maxLiteralSize = maxLiteralSize
        self.maxAppendMessageSize = maxAppendMessageSize
        self.maxAppendTotalSize = maxAppendTotalSize
        self.maxCommandSize = maxCommandSize
        self.maxNestingDepth = maxNestingDepth
    }
}

/// Which non-synchronizing literals (`{n+}`, RFC 7888) the server advertised.
public enum IMAPNonSyncLiterals: Sendable, Hashable {
    /// LITERAL+: any size (within the limits).
    case literalPlus
    /// LITERAL-: only up to 4096 bytes; a larger one is refused with `BAD [TOOBIG]` (RFC 7888 §5)
    /// and its bytes are read and dropped.
    case literalMinus
    /// Neither advertised: every `{n+}` is refused with BAD and its bytes are dropped (the client
    /// sends them whatever we answer).
    case refused
}

/// How the parser reads commands. Mutable between feeds: the session turns `utf8Accept` on
/// after `ENABLE UTF8=ACCEPT`.
public struct IMAPParserOptions: Sendable, Hashable {
    public var limits: IMAPParserLimits
    public var nonSyncLiterals: IMAPNonSyncLiterals
    /// RFC 6855 UTF8=ACCEPT: quoted strings may carry UTF-8, and mailbox names are UTF-8 rather
    /// than modified UTF-7.
    public var utf8Accept: Bool

    public init(limits: IMAPParserLimits = IMAPParserLimits(), nonSyncLiterals: IMAPNonSyncLiterals = .literalPlus, utf8Accept: Bool = false) {
        self.limits = limits
        self.nonSyncLiterals = nonSyncLiterals
        self.utf8Accept = utf8Accept
    }
}

/// A command the parser refused, with the reply it needs.
public struct IMAPCommandError: Error, Sendable, Hashable {
    /// The command's tag when it could be read; the reply is untagged (`* BAD`) otherwise.
    public var tag: String?
    /// BAD for syntax and limits; NO for an APPEND message over the size limit.
    public var status: IMAPStatus
    public var code: IMAPResponseCode?
    public var text: String

    public init(tag: String?, status: IMAPStatus = .bad, code: IMAPResponseCode? = nil, text: String) {
        self.tag = tag
        self.status = status
        self.code = code
        self.text = text
    }

    /// The reply as a status response.
    public var response: IMAPStatusResponse {
        IMAPStatusResponse(tag: tag, status: status, code: code, text: text)
    }

    /// The reply's bytes (`a1 BAD ...\r\n` or `* BAD ...\r\n`).
    public var responseBytes: [UInt8] { IMAPResponseEncoder().encode(.status(response)) }
}
