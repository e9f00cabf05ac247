import PluginAPI
/// One command with its tag, as the parser delivers it.
public struct IMAPTaggedCommand: Sendable, Hashable {
    public var tag: String
    public var command: IMAPCommand

    public init(tag: String, command: IMAPCommand) {
        self.tag = tag
        self.command = command
    }
}

/// Every command the parser knows (RFC 3501 and the extensions listed in
/// Plugins/IMAP/README.md). Mailbox names are decoded: modified UTF-7 (or UTF-8 under
/// UTF8=ACCEPT) to `String`, and any spelling of INBOX to "INBOX".
public enum IMAPCommand: Sendable, Hashable {
    // Any state.
    case capability
    case noop
    case logout
    /// RFC 2971: the client's fields, nil for `ID NIL`.
    case id([IMAPIDField]?)

    // Not authenticated.
    case startTLS
    /// The mechanism upper-cased; the SASL-IR initial response (RFC 4959) decoded from base64,
    /// `[]` for `=`, nil when none was sent.
    case authenticate(mechanism: String, initialResponse: [UInt8]?)
    case login(user: String, password: String)

    // Authenticated.
    /// Capability names upper-cased.
    case enable([String])
    case select(String, IMAPSelectParameters)
    case examine(String, IMAPSelectParameters)
    case create(String)
    case delete(String)
    case rename(from: String, to: String)
    case subscribe(String)
    case unsubscribe(String)
    case list(IMAPListCommand)
    case lsub(reference: String, pattern: String)
    case namespace
    case status(String, [IMAPStatusAttribute])
    case append(IMAPAppendCommand)
    /// RFC 2177; the session sends `+ idling`, then lets the parser wait for DONE.
    case idle
    /// RFC 9208: the quota root as written.
    case getQuota(root: String)
    case getQuotaRoot(String)
    case setQuota(root: String, limits: [IMAPQuotaLimit])
    /// RFC 4314.
    case setACL(mailbox: String, identifier: String, rights: IMAPRightsModification)
    case deleteACL(mailbox: String, identifier: String)
    case getACL(String)
    case listRights(mailbox: String, identifier: String)
    case myRights(String)
    /// RFC 4978: the mechanism upper-cased (only DEFLATE is defined).
    case compress(mechanism: String)

    // Selected.
    case check
    case close
    /// RFC 3691.
    case unselect
    case expunge
    /// RFC 4315 UIDPLUS.
    case uidExpunge(IMAPSequenceSet)
    case search(IMAPSearchCommand)
    case sort(IMAPSortCommand)
    case fetch(IMAPFetchCommand)
    case store(IMAPStoreCommand)
    case copy(IMAPSequenceSet, mailbox: String, byUID: Bool)
    /// RFC 6851.
    case move(IMAPSequenceSet, mailbox: String, byUID: Bool)

    /// The command's name as a client writes it (`UID FETCH`), for logs and replies.
    public var name: String {
        switch self {
        case .capability: return "CAPABILITY"
        case .noop: return "NOOP"
        case .logout: return "LOGOUT"
        case .id: return "ID"
        case .startTLS: return "STARTTLS"
        case .authenticate: return "AUTHENTICATE"
        case .login: return "LOGIN"
        case .enable: return "ENABLE"
        case .select: return "SELECT"
        case .examine: return "EXAMINE"
        case .create: return "CREATE"
        case .delete: return "DELETE"
        case .rename: return "RENAME"
        case .subscribe: return "SUBSCRIBE"
        case .unsubscribe: return "UNSUBSCRIBE"
        case .list: return "LIST"
        case .lsub: return "LSUB"
        case .namespace: return "NAMESPACE"
        case .status: return "STATUS"
        case .append: return "APPEND"
        case .idle: return "IDLE"
        case .getQuota: return "GETQUOTA"
        case .getQuotaRoot: return "GETQUOTAROOT"
        case .setQuota: return "SETQUOTA"
        case .setACL: return "SETACL"
        case .deleteACL: return "DELETEACL"
        case .getACL: return "GETACL"
        case .listRights: return "LISTRIGHTS"
        case .myRights: return "MYRIGHTS"
        case .compress: return "COMPRESS"
        case .check: return "CHECK"
        case .close: return "CLOSE"
        case .unselect: return "UNSELECT"
        case .expunge: return "EXPUNGE"
        case .uidExpunge: return "UID EXPUNGE"
        case .search(let s): return s.byUID ? "UID SEARCH" : "SEARCH"
        case .sort(let s): return s.search.byUID ? "UID SORT" : "SORT"
        case .fetch(let f): return f.byUID ? "UID FETCH" : "FETCH"
        case .store(let s): return s.byUID ? "UID STORE" : "STORE"
        case .copy(_, _, let uid): return uid ? "UID COPY" : "COPY"
        case .move(_, _, let uid): return uid ? "UID MOVE" : "MOVE"
        }
    }

    /// The command's row in `IMAPCommandTable`.
    public var row: IMAPCommandTable.Row {
        guard let row = IMAPCommandTable.rows[name] else { preconditionFailure("IMAPCommandTable has no row for \(name)") }
        return row
    }

    /// The connection state the command needs (RFC 3501 §3, §6).
    public var requiredState: IMAPCommandState { row.state }
}

/// Every command in one place: the state it needs and whether untagged EXPUNGE responses may go
/// with its answer. The session reads these instead of switching over commands itself.
public enum IMAPCommandTable {
    public struct Row: Sendable, Hashable {
        /// RFC 3501 §3 and §6: where the command may be given.
        public var state: IMAPCommandState
        /// RFC 3501 §7.4.1: no EXPUNGE while answering FETCH, STORE or SEARCH, whose answers
        /// use message numbers; the UID forms do not, and may carry them.
        public var expungeResponses: Bool

        init(_ state: IMAPCommandState, expungeResponses: Bool = true) {
            self.state = state
            self.expungeResponses = expungeResponses
        }
    }

    public static let rows: [String: Row] = [
        // Any state.
        "CAPABILITY": Row(.any), "NOOP": Row(.any), "LOGOUT": Row(.any), "ID": Row(.any),
        // Not authenticated.
        "STARTTLS": Row(.notAuthenticated), "AUTHENTICATE": Row(.notAuthenticated), "LOGIN": Row(.notAuthenticated),
        // Authenticated (or selected).
        "ENABLE": Row(.authenticated), "SELECT": Row(.authenticated), "EXAMINE": Row(.authenticated),
        "CREATE": Row(.authenticated), "DELETE": Row(.authenticated), "RENAME": Row(.authenticated),
        "SUBSCRIBE": Row(.authenticated), "UNSUBSCRIBE": Row(.authenticated), "LIST": Row(.authenticated),
        "LSUB": Row(.authenticated), "NAMESPACE": Row(.authenticated), "STATUS": Row(.authenticated),
        "APPEND": Row(.authenticated), "IDLE": Row(.authenticated), "GETQUOTA": Row(.authenticated),
        "GETQUOTAROOT": Row(.authenticated), "SETQUOTA": Row(.authenticated), "SETACL": Row(.authenticated),
        "DELETEACL": Row(.authenticated), "GETACL": Row(.authenticated), "LISTRIGHTS": Row(.authenticated),
        "MYRIGHTS": Row(.authenticated), "COMPRESS": Row(.authenticated),
        // Selected.
        "CHECK": Row(.selected), "CLOSE": Row(.selected), "UNSELECT": Row(.selected), "EXPUNGE": Row(.selected),
        "UID EXPUNGE": Row(.selected),
        "SEARCH": Row(.selected, expungeResponses: false), "UID SEARCH": Row(.selected),
        "SORT": Row(.selected, expungeResponses: false), "UID SORT": Row(.selected),
        "FETCH": Row(.selected, expungeResponses: false), "UID FETCH": Row(.selected),
        "STORE": Row(.selected, expungeResponses: false), "UID STORE": Row(.selected),
        "COPY": Row(.selected), "UID COPY": Row(.selected), "MOVE": Row(.selected), "UID MOVE": Row(.selected),
    ]
}

/// Where a command may be given.
public enum IMAPCommandState: Sendable, Hashable {
    case any
    case notAuthenticated
    /// Authenticated or selected.
    case authenticated
    case selected
}

/// One `"name" "value"` pair of ID (RFC 2971); a NIL value is nil.
public struct IMAPIDField: Sendable, Hashable {
    public var key: String
    public var value: String?
    public init(_ key: String, _ value: String?) {
        self.key = key
        self.value = value
    }
}

/// SELECT/EXAMINE parameters (RFC 7162).
public struct IMAPSelectParameters: Sendable, Hashable {
    /// `(CONDSTORE)`.
    public var condStore: Bool
    /// `(QRESYNC (...))`.
    public var qresync: IMAPQResyncParameters?

    public init(condStore: Bool = false, qresync: IMAPQResyncParameters? = nil) {
        self.condStore = condStore
        self.qresync = qresync
    }
}

/// `QRESYNC (uidvalidity modseq [known-uids] [(known-sequence-set known-uid-set)])`.
public struct IMAPQResyncParameters: Sendable, Hashable {
    public var uidValidity: UInt32
    public var modSeq: UInt64
    /// UIDs the client knows (no `*`).
    public var knownUIDs: IMAPSequenceSet?
    /// The sequence-match data: message numbers and the UIDs the client has for them.
    public var knownSequenceSet: IMAPSequenceSet?
    public var knownUIDSet: IMAPSequenceSet?

    public init(uidValidity: UInt32, modSeq: UInt64, knownUIDs: IMAPSequenceSet? = nil,
                knownSequenceSet: IMAPSequenceSet? = nil, knownUIDSet: IMAPSequenceSet? = nil) {
        self.uidValidity = uidValidity
        self.modSeq = modSeq
        self.knownUIDs = knownUIDs
        self.knownSequenceSet = knownSequenceSet
        self.knownUIDSet = knownUIDSet
    }
}

/// STATUS items (RFC 3501, RFC 7162 HIGHESTMODSEQ, RFC 8438 SIZE, RFC 9208 DELETED and
/// DELETED-STORAGE, RFC 7889 APPENDLIMIT).
public enum IMAPStatusAttribute: String, Sendable, Hashable, CaseIterable {
    case messages = "MESSAGES"
    case recent = "RECENT"
    case uidNext = "UIDNEXT"
    case uidValidity = "UIDVALIDITY"
    case unseen = "UNSEEN"
    case highestModSeq = "HIGHESTMODSEQ"
    case size = "SIZE"
    case deleted = "DELETED"
    case deletedStorage = "DELETED-STORAGE"
    case appendLimit = "APPENDLIMIT"
}

/// LIST, basic or extended (RFC 3501 §6.3.8, RFC 5258, RFC 6154, RFC 5819).
public struct IMAPListCommand: Sendable, Hashable {
    /// LIST-EXTENDED selection options, in the order written.
    public var selectionOptions: [IMAPListSelectionOption]
    /// The reference name, decoded.
    public var reference: String
    /// The patterns, decoded; wildcards `*` and `%` kept. Several only in the
    /// `(pattern pattern)` form of RFC 5258.
    public var patterns: [String]
    public var returnOptions: [IMAPListReturnOption]
    /// Whether the client used any RFC 5258 syntax (selection options, a parenthesised pattern
    /// list, RETURN), which makes the response extended (e.g. CHILDINFO, \NonExistent).
    public var isExtended: Bool

    public init(selectionOptions: [IMAPListSelectionOption] = [], reference: String, patterns: [String],
                returnOptions: [IMAPListReturnOption] = [], isExtended: Bool = false) {
        self.selectionOptions = selectionOptions
        self.reference = reference
        self.patterns = patterns
        self.returnOptions = returnOptions
        self.isExtended = isExtended
    }
}

public enum IMAPListSelectionOption: String, Sendable, Hashable {
    case subscribed = "SUBSCRIBED"
    case remote = "REMOTE"
    case recursiveMatch = "RECURSIVEMATCH"
    /// RFC 6154.
    case specialUse = "SPECIAL-USE"
}

public enum IMAPListReturnOption: Sendable, Hashable {
    case subscribed
    case children
    /// RFC 6154.
    case specialUse
    /// RFC 5819: a STATUS response for each listed mailbox.
    case status([IMAPStatusAttribute])
}

/// APPEND (RFC 3501 §6.3.11; several messages with MULTIAPPEND, RFC 3502).
public struct IMAPAppendCommand: Sendable, Hashable {
    public var mailbox: String
    /// One or more messages, in order.
    public var messages: [IMAPAppendMessage]

    public init(mailbox: String, messages: [IMAPAppendMessage]) {
        self.mailbox = mailbox
        self.messages = messages
    }
}

public struct IMAPAppendMessage: Sendable, Hashable {
    public var flags: [IMAPFlag]
    public var internalDate: IMAPDateTime?
    public var data: [UInt8]
    /// Sent as literal8 (`~{n}`: RFC 3516 BINARY, or RFC 6855 `UTF8 (~{n})`).
    public var isBinary: Bool
    /// Sent in RFC 6855's `UTF8 (...)` form.
    public var isUTF8: Bool

    public init(flags: [IMAPFlag] = [], internalDate: IMAPDateTime? = nil, data: [UInt8], isBinary: Bool = false, isUTF8: Bool = false) {
        self.flags = flags
        self.internalDate = internalDate
        self.data = data
        self.isBinary = isBinary
        self.isUTF8 = isUTF8
    }
}

/// FETCH / UID FETCH.
public struct IMAPFetchCommand: Sendable, Hashable {
    public var set: IMAPSequenceSet
    /// In the order written, macros expanded. UID FETCH does not add `.uid` here: the
    /// response must carry UID anyway (RFC 3501 §6.4.8), which is the session's job.
    public var attributes: [IMAPFetchAttribute]
    /// RFC 7162 `(CHANGEDSINCE n)`.
    public var changedSince: UInt64?
    /// RFC 7162 `VANISHED` (UID FETCH with CHANGEDSINCE only).
    public var vanished: Bool
    public var byUID: Bool

    public init(set: IMAPSequenceSet, attributes: [IMAPFetchAttribute], changedSince: UInt64? = nil, vanished: Bool = false, byUID: Bool = false) {
        self.set = set
        self.attributes = attributes
        self.changedSince = changedSince
        self.vanished = vanished
        self.byUID = byUID
    }
}

/// STORE / UID STORE.
public struct IMAPStoreCommand: Sendable, Hashable {
    public enum Operation: Sendable, Hashable {
        /// `FLAGS`
        case replace
        /// `+FLAGS`
        case add
        /// `-FLAGS`
        case remove
    }
    public var set: IMAPSequenceSet
    /// RFC 7162 `(UNCHANGEDSINCE n)`.
    public var unchangedSince: UInt64?
    public var operation: Operation
    /// `.SILENT`: no untagged FETCH for the changes.
    public var silent: Bool
    public var flags: [IMAPFlag]
    public var byUID: Bool

    public init(set: IMAPSequenceSet, unchangedSince: UInt64? = nil, operation: Operation, silent: Bool = false, flags: [IMAPFlag], byUID: Bool = false) {
        self.set = set
        self.unchangedSince = unchangedSince
        self.operation = operation
        self.silent = silent
        self.flags = flags
        self.byUID = byUID
    }
}

/// A resource limit of SETQUOTA (RFC 9208): resource name upper-cased, limit.
public struct IMAPQuotaLimit: Sendable, Hashable {
    public var resource: String
    public var limit: UInt64
    public init(_ resource: String, _ limit: UInt64) {
        self.resource = resource
        self.limit = limit
    }
}

/// SETACL's rights (RFC 4314 §3.1): replace, add (`+`) or remove (`-`).
public struct IMAPRightsModification: Sendable, Hashable {
    public enum Mode: Sendable, Hashable { case replace, add, remove }
    public var mode: Mode
    public var rights: String
    public init(_ mode: Mode, _ rights: String) {
        self.mode = mode
        self.rights = rights
    }
}
