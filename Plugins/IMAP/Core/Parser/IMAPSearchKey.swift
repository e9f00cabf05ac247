import PluginAPI
/// A SEARCH criterion (RFC 3501 §6.4.4, RFC 7162 MODSEQ) as a tree. Strings stay bytes: their
/// charset is the command's CHARSET (US-ASCII or UTF-8 when none is given), which the session
/// decodes. A parenthesised list, and the keys of the command itself, are an implicit AND: a
/// list of one key is that key, a longer one is `.and`. The parser bounds the tree's depth
/// (`IMAPParserLimits.maxNestingDepth`), so walking it recursively is safe.
public indirect enum IMAPSearchKey: Sendable, Hashable {
    case all
    case answered
    case bcc([UInt8])
    case before(IMAPDate)
    case body([UInt8])
    case cc([UInt8])
    case deleted
    case draft
    case flagged
    case from([UInt8])
    /// `HEADER field-name string`: the field name as written; an empty string matches any
    /// message that has the field.
    case header(String, [UInt8])
    case keyword(IMAPFlag)
    case larger(UInt64)
    case new
    case not(IMAPSearchKey)
    case old
    case on(IMAPDate)
    case or(IMAPSearchKey, IMAPSearchKey)
    case recent
    case seen
    case sentBefore(IMAPDate)
    case sentOn(IMAPDate)
    case sentSince(IMAPDate)
    case since(IMAPDate)
    case smaller(UInt64)
    case subject([UInt8])
    case text([UInt8])
    case to([UInt8])
    case uid(IMAPSequenceSet)
    case unanswered
    case undeleted
    case undraft
    case unflagged
    case unkeyword(IMAPFlag)
    case unseen
    /// Message sequence numbers.
    case sequenceSet(IMAPSequenceSet)
    /// Every key holds (a parenthesised list, or several keys in a row).
    case and([IMAPSearchKey])
    /// RFC 7162: MODSEQ at least `value`, optionally for one flag's metadata entry.
    case modSeq(IMAPModSeqEntry?, UInt64)
}

/// The optional `entry-name entry-type-req` of a MODSEQ search key (RFC 7162 §3.1.5).
public struct IMAPModSeqEntry: Sendable, Hashable {
    public enum EntryType: String, Sendable, Hashable {
        case priv, shared, all
    }
    /// `/flags/\Seen`, as written inside the quotes.
    public var name: String
    public var type: EntryType

    public init(name: String, type: EntryType) {
        self.name = name
        self.type = type
    }

    /// The flag the entry names (`/flags/\Seen` is `\Seen`).
    public var flag: IMAPFlag? {
        name.lowercased().hasPrefix("/flags/") ? IMAPFlag(String(name.dropFirst(7))) : nil
    }
}

/// `RETURN (...)` options of an extended SEARCH (RFC 4731 ESEARCH, RFC 5182 SAVE).
public enum IMAPSearchReturnOption: String, Sendable, Hashable {
    case min = "MIN"
    case max = "MAX"
    case all = "ALL"
    case count = "COUNT"
    case save = "SAVE"
}

/// `SEARCH` / `UID SEARCH`.
public struct IMAPSearchCommand: Sendable, Hashable {
    /// Nil for a plain SEARCH (answer with `* SEARCH`); a list for `SEARCH RETURN (...)`
    /// (answer with `* ESEARCH`). `RETURN ()` is taken as `RETURN (ALL)` (RFC 4731 §3.1).
    public var returnOptions: [IMAPSearchReturnOption]?
    /// `CHARSET x` as written (upper-cased), nil when absent.
    public var charset: String?
    public var key: IMAPSearchKey
    public var byUID: Bool

    public init(returnOptions: [IMAPSearchReturnOption]? = nil, charset: String? = nil, key: IMAPSearchKey, byUID: Bool = false) {
        self.returnOptions = returnOptions
        self.charset = charset
        self.key = key
        self.byUID = byUID
    }
}

/// A SORT criterion (RFC 5256 §3): a key, possibly reversed.
public struct IMAPSortCriterion: Sendable, Hashable {
    public enum Key: String, Sendable, CaseIterable {
        case arrival = "ARRIVAL", cc = "CC", date = "DATE", from = "FROM", size = "SIZE", subject = "SUBJECT", to = "TO"
    }
    public var key: Key
    public var reverse: Bool

    public init(_ key: Key, reverse: Bool = false) {
        self.key = key
        self.reverse = reverse
    }
}

/// `SORT (criteria) charset search-keys` (RFC 5256): a SEARCH whose answer is ordered.
public struct IMAPSortCommand: Sendable, Hashable {
    public var criteria: [IMAPSortCriterion]
    /// The search part; its `charset` is SORT's mandatory charset.
    public var search: IMAPSearchCommand

    public init(criteria: [IMAPSortCriterion], search: IMAPSearchCommand) {
        self.criteria = criteria
        self.search = search
    }
}
