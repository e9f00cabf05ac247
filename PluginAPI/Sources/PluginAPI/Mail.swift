/// The SMTP envelope of a message: who sent it and to whom, with the ESMTP parameters that must
/// travel with it (RFC 3461 DSN, RFC 6152 8BITMIME, RFC 6531 SMTPUTF8).
public struct Envelope: Sendable, Equatable, Codable {
    /// The reverse path without angle brackets; empty for the null sender (bounces).
    public var sender: String
    public var recipients: [EnvelopeRecipient]
    /// `BODY=7BIT|8BITMIME|BINARYMIME`.
    public var body: String?
    public var smtpUTF8: Bool
    /// `RET=FULL|HDRS` and `ENVID=` of RFC 3461.
    public var dsnReturn: String?
    public var envelopeID: String?

    /// The mailbox local delivery files the message into (a filter's `fileInto`, e.g. `Junk` for
    /// mail that failed DMARC under p=quarantine); INBOX when nil, or when an account has no
    /// mailbox of that name. Remote delivery ignores it.
    public var folder: String?

    public init(sender: String, recipients: [EnvelopeRecipient], body: String? = nil, smtpUTF8: Bool = false,
                dsnReturn: String? = nil, envelopeID: String? = nil, folder: String? = nil) {
        self.sender = sender
        self.recipients = recipients
        self.body = body
        self.smtpUTF8 = smtpUTF8
        self.dsnReturn = dsnReturn
        self.envelopeID = envelopeID
        self.folder = folder
    }
}

public struct EnvelopeRecipient: Sendable, Equatable, Codable {
    public var address: String
    /// `NOTIFY=` values of RFC 3461 (`SUCCESS`, `FAILURE`, `DELAY`, `NEVER`).
    public var notify: [String]
    /// `ORCPT=` of RFC 3461.
    public var originalRecipient: String?

    public init(address: String, notify: [String] = [], originalRecipient: String? = nil) {
        self.address = address
        self.notify = notify
        self.originalRecipient = originalRecipient
    }
}

/// An SMTP-style reply: a basic code, an RFC 3463 enhanced status code and text.
public struct MailReply: Sendable, Equatable, Codable, CustomStringConvertible {
    public var code: Int
    public var enhanced: String?
    public var text: String

    public init(_ code: Int, _ enhanced: String? = nil, _ text: String) {
        self.code = code
        self.enhanced = enhanced
        self.text = text
    }

    public var isPermanent: Bool { code >= 500 }
    public var isTemporary: Bool { (400..<500).contains(code) }
    public var description: String { "\(code) \(enhanced.map { "\($0) " } ?? "")\(text)" }
}

/// A message on disk with its envelope: what the queue hands a transport.
public struct QueuedMessage: Sendable {
    /// The queue id (also the spool file's name).
    public var id: String
    public var envelope: Envelope
    /// The path of the message file (RFC 5322 text, CRLF line ends), fsynced.
    public var path: String
    public var size: Int
    /// The recipients this attempt must deliver to (a subset of the envelope after earlier tries).
    public var pending: [EnvelopeRecipient]
    public var attempts: Int
    /// Where the transport should send it (`host`, `[host]:port`, a socket path for LMTP), when
    /// routing chose one (a relay host, a transport map); nil: the transport decides (MX look-up
    /// of the recipients' domain).
    public var nextHop: String?

    public init(id: String, envelope: Envelope, path: String, size: Int, pending: [EnvelopeRecipient], attempts: Int, nextHop: String? = nil) {
        self.nextHop = nextHop
        self.id = id
        self.envelope = envelope
        self.path = path
        self.size = size
        self.pending = pending
        self.attempts = attempts
    }
}

/// The result of one recipient's delivery attempt.
public struct RecipientOutcome: Sendable, Equatable {
    public enum Status: String, Sendable, Equatable { case delivered, deferred, failed }
    public var recipient: String
    public var status: Status
    /// The reply that decided it (the remote server's, or a local one).
    public var reply: MailReply

    public init(recipient: String, status: Status, reply: MailReply) {
        self.recipient = recipient
        self.status = status
        self.reply = reply
    }
}

/// The queue: accepts a message for later delivery. `enqueue` returns only after the message file
/// and its directory entry are fsynced, so a `250` sent after it never loses mail.
public protocol MailQueue: Sendable {
    /// Takes ownership of the message at `path` (moved into the spool) and returns its queue id.
    func enqueue(envelope: Envelope, messagePath path: String) async throws -> String
    /// As `enqueue(envelope:messagePath:)`, but straight into the hold queue when `holdReason` is
    /// given (a filter's quarantine verdict): kept durably, never delivered until released.
    func enqueue(envelope: Envelope, messagePath path: String, holdReason: String?) async throws -> String

    // Queue control (`postern queue ...`): the whole queue, whether or not the server runs.
    func list() async throws -> [QueueSummary]
    /// One message: its summary and its bytes.
    func show(id: String) async throws -> (QueueSummary, [UInt8])?
    /// Moves messages to the hold queue (no delivery attempts) or back.
    func hold(ids: [String]) async throws -> Int
    func release(ids: [String]) async throws -> Int
    /// Deletes messages without a bounce.
    func delete(ids: [String]) async throws -> Int
    /// Makes deferred messages due now (all when `ids` is empty).
    func flush(ids: [String]) async throws -> Int
    /// Routes messages again from scratch (after an alias or transport change) and makes them due.
    func requeue(ids: [String]) async throws -> Int
}

/// A queued message as `postern queue list` shows it.
public struct QueueSummary: Sendable, Equatable, Codable {
    public var id: String
    /// `incoming`, `active`, `deferred` or `hold`.
    public var queue: String
    public var sender: String
    public var size: Int
    /// Seconds since 1970.
    public var arrival: Int64
    public var attempts: Int
    /// Seconds since 1970; nil when not scheduled (hold, or in delivery).
    public var nextAttempt: Int64?
    /// Recipients still to deliver, each with the last reply that deferred it.
    public var pending: [PendingRecipient]
    /// Why the message was put on hold when it arrived (a filter's quarantine), if it was.
    public var holdReason: String?

    public struct PendingRecipient: Sendable, Equatable, Codable {
        public var address: String
        public var lastReply: String?
        public init(address: String, lastReply: String?) {
            self.address = address
            self.lastReply = lastReply
        }
    }

    public init(id: String, queue: String, sender: String, size: Int, arrival: Int64, attempts: Int, nextAttempt: Int64?,
                pending: [PendingRecipient], holdReason: String? = nil) {
        self.holdReason = holdReason
        self.id = id
        self.queue = queue
        self.sender = sender
        self.size = size
        self.arrival = arrival
        self.attempts = attempts
        self.nextAttempt = nextAttempt
        self.pending = pending
    }
}

extension MailQueue {
    /// For queues without their own: enqueued, then held. A manager may pick the message up in
    /// between, so a real queue implements this itself.
    public func enqueue(envelope: Envelope, messagePath path: String, holdReason: String?) async throws -> String {
        let id = try await enqueue(envelope: envelope, messagePath: path)
        if holdReason != nil { _ = try await hold(ids: [id]) }
        return id
    }
}

/// Delivers a queued message: SMTP to the MX, LMTP, the local store, a pipe, discard.
public protocol Transport: Sendable {
    /// Attempts delivery to `message.pending`; one outcome per pending recipient.
    func deliver(_ message: QueuedMessage) async -> [RecipientOutcome]
}

/// A lookup table (Postfix-style): aliases, virtual domains, access tables, routing maps.
/// Keys are matched as given; tables that fold case say so in their own documentation.
public protocol LookupTable: Sendable {
    /// The values for `key`, or nil when there is no entry.
    func lookup(_ key: String) async throws -> [String]?
}

/// Every lookup table loaded in this worker, by the name its plugin registered.
public struct Directory: Sendable {
    public let tables: [(name: String, table: any LookupTable)]

    public init(tables: [(name: String, table: any LookupTable)]) {
        self.tables = tables
    }

    public func table(named name: String) -> (any LookupTable)? {
        tables.first { $0.name == name }?.table
    }

    /// Looks `key` up in the named tables in order; the first hit wins.
    public func lookup(_ key: String, in names: [String]) async throws -> [String]? {
        for name in names {
            if let table = table(named: name), let values = try await table.lookup(key) { return values }
        }
        return nil
    }
}

/// Resolves the records mail routing needs. Answers honour the records' TTLs.
///
/// A name that does not exist (NXDOMAIN) and a name without records of the type asked (NODATA)
/// both give `[]`, so a caller can apply RFC 5321's implicit MX; anything that may go away when
/// asked again (SERVFAIL, REFUSED, timeouts, unreachable servers, malformed answers) throws
/// `DNSError.temporary`. Names are given and returned without the trailing dot.
public protocol DNSResolver: Sendable {
    /// The MX records of `domain`, lowest preference first; equal preferences in random order
    /// (RFC 5321 §5.1). A null MX (RFC 7505) comes back as host `"."`.
    func mx(_ domain: String) async throws -> [MXRecord]
    /// The IPv4 addresses (A) of `host`, then its IPv6 addresses (AAAA), CNAMEs followed.
    func addresses(_ host: String) async throws -> [String]
    /// The TXT records of `name`, each one's character-strings joined (RFC 7208 §3.3).
    func txt(_ name: String) async throws -> [String]
    /// The PTR names of an IPv4 or IPv6 address (the `in-addr.arpa`/`ip6.arpa` name is built here).
    func ptr(_ address: String) async throws -> [String]
    /// `mx`, except that a domain that does not exist (NXDOMAIN) throws `DNSError.notFound`
    /// instead of giving `[]`: an SMTP client can then fail at once rather than try the implicit
    /// MX. `[]` means the domain exists and has no MX records.
    func mxOrNotFound(_ domain: String) async throws -> [MXRecord]
    /// One question, telling a name that does not exist from one without records of the type:
    /// SPF counts both as void lookups and DKIM, DMARC and SPF give different results for them
    /// than for a failure (which throws `DNSError`). A and AAAA answers are addresses as text, MX
    /// answers exchange names lowest preference first, TXT answers each record's strings joined,
    /// PTR answers names (for PTR, `name` is an IPv4 or IPv6 address, as for `ptr`); CNAMEs are
    /// followed.
    func records(_ name: String, _ type: DNSQuestionType) async throws -> DNSRecords
}

extension DNSResolver {
    /// For resolvers that cannot tell NXDOMAIN from NODATA: the plain `mx` answer.
    public func mxOrNotFound(_ domain: String) async throws -> [MXRecord] { try await mx(domain) }

    /// For resolvers that cannot tell NXDOMAIN from NODATA: answers from the other methods, an
    /// empty one as NODATA.
    public func records(_ name: String, _ type: DNSQuestionType) async throws -> DNSRecords {
        let values: [String]
        switch type {
        case .a: values = try await addresses(name).filter { !$0.contains(":") }
        case .aaaa: values = try await addresses(name).filter { $0.contains(":") }
        case .mx: values = try await mx(name).map(\.host)
        case .txt: values = try await txt(name)
        case .ptr: values = try await ptr(name)
        }
        return values.isEmpty ? .noData : .found(values)
    }
}

/// The record types `DNSResolver.records` asks for.
public enum DNSQuestionType: String, Sendable, CaseIterable {
    case a = "A", aaaa = "AAAA", mx = "MX", txt = "TXT", ptr = "PTR"
}

/// The answer to one question of `DNSResolver.records`.
public enum DNSRecords: Sendable, Equatable {
    /// The records (at least one), as text.
    case found([String])
    /// The name exists but has no record of the type asked (NODATA).
    case noData
    /// The name does not exist (NXDOMAIN).
    case nameError

    /// The records, none for NODATA and NXDOMAIN.
    public var values: [String] {
        if case .found(let values) = self { return values }
        return []
    }
}

/// Why a DNS lookup gave no answer, so a caller can tell "no such domain" from "try later".
public enum DNSError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The name does not exist (NXDOMAIN): a permanent answer.
    case notFound
    /// No usable answer this time (SERVFAIL, REFUSED, timeout, malformed reply, ...): try later.
    case temporary(String)
    /// The name cannot be asked at all (a label over 63 octets, an empty label, bad IDNA): permanent.
    case invalidName(String)

    public var description: String {
        switch self {
        case .notFound: return "no such domain (NXDOMAIN)"
        case .invalidName(let why): return "invalid DNS name: \(why)"
        case .temporary(let why): return "temporary DNS failure: \(why)"
        }
    }
}

public struct MXRecord: Sendable, Equatable {
    public var preference: Int
    public var host: String

    public init(preference: Int, host: String) {
        self.preference = preference
        self.host = host
    }
}

/// A change to a mailbox, announced to every process that has it open (IMAP IDLE in another worker).
public struct MailboxChange: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable { case messagesAdded, flagsChanged, messagesExpunged, mailboxRenamed, mailboxDeleted }
    public var user: String
    public var mailbox: String
    public var kind: Kind
    public var uids: [UInt32]
    public var modseq: UInt64

    public init(user: String, mailbox: String, kind: Kind, uids: [UInt32] = [], modseq: UInt64 = 0) {
        self.user = user
        self.mailbox = mailbox
        self.kind = kind
        self.uids = uids
        self.modseq = modseq
    }
}

/// Carries `MailboxChange`s between processes.
public protocol ChangeNotifier: Sendable {
    func post(_ change: MailboxChange)
    /// Calls `handler` for every change of `user`'s `mailbox` until the subscription is cancelled.
    func subscribe(user: String, mailbox: String,
                   _ handler: @escaping @Sendable (MailboxChange) -> Void) -> any ChangeSubscription
}

public protocol ChangeSubscription: Sendable {
    func cancel()
}
