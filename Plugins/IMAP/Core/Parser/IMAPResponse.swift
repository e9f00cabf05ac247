import PluginAPI
/// A response the server sends (RFC 3501 §7).
public enum IMAPResponse: Sendable, Hashable {
    /// `tag OK/NO/BAD [...] text`, or untagged `* OK/NO/BAD/PREAUTH/BYE [...] text`.
    case status(IMAPStatusResponse)
    /// Untagged data (`* 3 EXISTS`, `* LIST ...`).
    case data(IMAPResponseData)
    /// `+ text`: a continuation request.
    case continuation(String)
    /// `+ base64`: an AUTHENTICATE challenge (`+ ` for an empty one).
    case challenge([UInt8])
}

public enum IMAPStatus: String, Sendable, Hashable {
    case ok = "OK"
    case no = "NO"
    case bad = "BAD"
    /// Untagged greeting only.
    case preauth = "PREAUTH"
    /// Untagged only.
    case bye = "BYE"
}

/// `tag STATUS [code] text` (tag nil: `*`).
public struct IMAPStatusResponse: Sendable, Hashable {
    public var tag: String?
    public var status: IMAPStatus
    public var code: IMAPResponseCode?
    /// Human-readable; CR and LF become spaces on the wire.
    public var text: String

    public init(tag: String?, status: IMAPStatus, code: IMAPResponseCode? = nil, text: String) {
        self.tag = tag
        self.status = status
        self.code = code
        self.text = text
    }

    /// `tag STATUS [code] text`.
    public static func tagged(_ tag: String, _ status: IMAPStatus, _ code: IMAPResponseCode, _ text: String) -> IMAPStatusResponse {
        IMAPStatusResponse(tag: tag, status: status, code: code, text: text)
    }

    /// `tag STATUS text`.
    public static func tagged(_ tag: String, _ status: IMAPStatus, _ text: String) -> IMAPStatusResponse {
        IMAPStatusResponse(tag: tag, status: status, text: text)
    }

    /// `* STATUS [code] text`.
    public static func untagged(_ status: IMAPStatus, _ code: IMAPResponseCode, _ text: String) -> IMAPStatusResponse {
        IMAPStatusResponse(tag: nil, status: status, code: code, text: text)
    }

    /// `* STATUS text`.
    public static func untagged(_ status: IMAPStatus, _ text: String) -> IMAPStatusResponse {
        IMAPStatusResponse(tag: nil, status: status, text: text)
    }
}

/// Response codes (RFC 3501 §7.1, RFC 5530, RFC 4315, RFC 7162, RFC 4978, RFC 6154, RFC 9208, RFC 5465).
public enum IMAPResponseCode: Sendable, Hashable {
    case alert
    case badCharset([String])
    case capability([String])
    case parse
    case permanentFlags([IMAPFlag])
    case readOnly
    case readWrite
    case tryCreate
    case uidNext(UInt32)
    case uidValidity(UInt32)
    case unseen(UInt32)
    /// RFC 4315: `APPENDUID uidvalidity uid-set`.
    case appendUID(uidValidity: UInt32, uids: IMAPSequenceSet)
    /// RFC 4315: `COPYUID uidvalidity source-set destination-set`, pairs in the same order.
    case copyUID(uidValidity: UInt32, source: IMAPSequenceSet, destination: IMAPSequenceSet)
    case uidNotSticky
    /// RFC 7162.
    case highestModSeq(UInt64)
    case noModSeq
    case modified(IMAPSequenceSet)
    /// RFC 7162 §3.2.11: the previous mailbox is closed (untagged OK during SELECT).
    case closed
    // RFC 5530.
    case unavailable
    case authenticationFailed
    case authorizationFailed
    case expired
    case privacyRequired
    case contactAdmin
    case noPerm
    case inUse
    case expungeIssued
    case corruption
    case serverBug
    case clientBug
    case cannot
    case limit
    case overQuota
    case alreadyExists
    case nonExistent
    // RFC 7889 / RFC 4469.
    case tooBig
    // RFC 6154.
    case useAttr
    // RFC 3516.
    case unknownCTE
    // RFC 4978.
    case compressionActive
    // RFC 8457.
    case hasChildren
    // RFC 5550.
    case notSaved
    /// Any other code: its atom and optional text (written as is; keep it to atom characters
    /// and a text without `]`).
    case other(String, String?)
}

/// Untagged data (RFC 3501 §7.2 to §7.4 and the extensions).
public enum IMAPResponseData: Sendable, Hashable {
    case capability([String])
    /// RFC 5161.
    case enabled([String])
    case flags([IMAPFlag])
    case list(IMAPListResponse)
    case lsub(IMAPListResponse)
    case status(mailbox: String, [IMAPStatusValue])
    /// `* SEARCH n n n` with RFC 7162's `(MODSEQ n)` when given.
    case search([UInt32], modSeq: UInt64?)
    /// `* SORT n...` (RFC 5256): the numbers in the order asked.
    case sort([UInt32])
    /// RFC 4731.
    case esearch(IMAPESearchResponse)
    case exists(UInt32)
    case recent(UInt32)
    case expunge(UInt32)
    case fetch(UInt32, [IMAPFetchResponseItem])
    /// RFC 2342; nil for NIL.
    case namespace(personal: [IMAPNamespaceDescription]?, otherUsers: [IMAPNamespaceDescription]?, shared: [IMAPNamespaceDescription]?)
    /// RFC 9208.
    case quota(root: String, [IMAPQuotaResource])
    case quotaRoot(mailbox: String, roots: [String])
    /// RFC 4314.
    case acl(mailbox: String, [IMAPACLEntry])
    case listRights(mailbox: String, identifier: String, required: String, optional: [String])
    case myRights(mailbox: String, rights: String)
    /// RFC 2971; nil for NIL.
    case id([IMAPIDField]?)
    /// RFC 7162 `* VANISHED [(EARLIER)] uids`.
    case vanished(earlier: Bool, IMAPSequenceSet)
}

/// `* LIST (attributes) "delimiter" name [extended items]`.
public struct IMAPListResponse: Sendable, Hashable {
    /// Name attributes as written (`\HasNoChildren`, `\Sent`).
    public var attributes: [String]
    /// The hierarchy delimiter; nil for NIL (a flat namespace).
    public var delimiter: Character?
    /// The name, decoded; the encoder writes modified UTF-7 (or UTF-8 under UTF8=ACCEPT).
    public var name: String
    /// RFC 5258 `("CHILDINFO" ("SUBSCRIBED"))`.
    public var childInfo: [String]?
    /// RFC 5465 `("OLDNAME" ("name"))`.
    public var oldName: String?

    public init(attributes: [String], delimiter: Character?, name: String, childInfo: [String]? = nil, oldName: String? = nil) {
        self.attributes = attributes
        self.delimiter = delimiter
        self.name = name
        self.childInfo = childInfo
        self.oldName = oldName
    }
}

public struct IMAPStatusValue: Sendable, Hashable {
    public var attribute: IMAPStatusAttribute
    public var value: UInt64
    public init(_ attribute: IMAPStatusAttribute, _ value: UInt64) {
        self.attribute = attribute
        self.value = value
    }
}

/// RFC 4731 `* ESEARCH (TAG "t") [UID] MIN n MAX n ALL set COUNT n` (+ RFC 7162 MODSEQ).
public struct IMAPESearchResponse: Sendable, Hashable {
    public var tag: String?
    public var byUID: Bool
    public var min: UInt32?
    public var max: UInt32?
    public var all: IMAPSequenceSet?
    public var count: UInt32?
    public var modSeq: UInt64?

    public init(tag: String?, byUID: Bool, min: UInt32? = nil, max: UInt32? = nil, all: IMAPSequenceSet? = nil, count: UInt32? = nil, modSeq: UInt64? = nil) {
        self.tag = tag
        self.byUID = byUID
        self.min = min
        self.max = max
        self.all = all
        self.count = count
        self.modSeq = modSeq
    }
}

/// One namespace: prefix and delimiter (nil for NIL).
public struct IMAPNamespaceDescription: Sendable, Hashable {
    public var prefix: String
    public var delimiter: Character?
    public init(prefix: String, delimiter: Character?) {
        self.prefix = prefix
        self.delimiter = delimiter
    }
}

/// RFC 9208 `STORAGE 10 512`: usage and limit of one resource.
public struct IMAPQuotaResource: Sendable, Hashable {
    public var name: String
    public var usage: UInt64
    public var limit: UInt64
    public init(_ name: String, usage: UInt64, limit: UInt64) {
        self.name = name
        self.usage = usage
        self.limit = limit
    }
}

public struct IMAPACLEntry: Sendable, Hashable {
    public var identifier: String
    public var rights: String
    public init(_ identifier: String, _ rights: String) {
        self.identifier = identifier
        self.rights = rights
    }
}

/// One item of a FETCH response, written in the order given.
public enum IMAPFetchResponseItem: Sendable, Hashable {
    case uid(UInt32)
    case flags([IMAPFlag])
    case internalDate(IMAPDateTime)
    case rfc822Size(UInt64)
    /// Already in IMAP syntax, e.g. `MessageEnvelope.imapString`.
    case envelope(raw: [UInt8])
    /// `BODY (...)`: already in IMAP syntax (`imapBody`).
    case bodyStructureBasic(raw: [UInt8])
    /// `BODYSTRUCTURE (...)`: already in IMAP syntax (`imapBodyStructure`).
    case bodyStructure(raw: [UInt8])
    case modSeq(UInt64)
    /// Contents are always sent as literals; nil is NIL.
    case rfc822([UInt8]?)
    case rfc822Header([UInt8]?)
    case rfc822Text([UInt8]?)
    /// `BODY[section]<origin> {n}`: `origin` only for a partial fetch.
    case body(IMAPBodySection, origin: UInt32?, [UInt8]?)
    /// RFC 3516 `BINARY[part]<origin>`: a literal8 (`~{n}`) when the contents hold NUL.
    case binary(part: [UInt32], origin: UInt32?, [UInt8]?)
    case binarySize(part: [UInt32], UInt64)
}
