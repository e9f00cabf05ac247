/// A milter-style filter (ARCHITECTURE.md, "Filters"). The host runs each stage of a message
/// through every filter of the listener's chain concurrently (`FilterChain`) and combines the
/// verdicts: the most severe wins (reject over tempfail over discard over quarantine over
/// continue), ties go to the filter first in the chain. Every filter sees the message as the
/// client sent it; their changes are merged afterwards (`MessageEdits`). A filter overrides only
/// the stages it cares about; the rest continue.
public protocol MailFilter: Sendable {
    /// A new transaction per SMTP connection (stages run in protocol order on it).
    func makeTransaction(_ connection: FilterConnection) -> any FilterTransaction
    /// When the filter's end of message runs: `.content` by default.
    var phase: FilterPhase { get }
}

extension MailFilter {
    public var phase: FilterPhase { .content }
}

/// The two rounds of a chain's end of message. Every stage before it runs on all filters at
/// once; at end of message the `.authentication` filters (SPF, DKIM, DMARC) finish first, and the
/// fields they add (Authentication-Results) reach the `.content` filters through
/// `FilterTransaction.precedingFields`, so that a rule can score `dkim=fail`.
public enum FilterPhase: String, Sendable {
    case authentication
    case content
}

/// Which way mail goes through a listener: a filter may act differently per direction (scan
/// inbound mail for viruses, stamp outbound mail with a disclaimer).
public enum FilterDirection: String, Sendable, CaseIterable, Codable {
    /// From the world to our domains (an MX listener).
    case inbound
    /// From our users to the world (submission).
    case outbound
    /// Between the site's own hosts (an internal relay).
    case `internal`
}

/// What a filter knows about the client connection. Fields that change during a session (TLS,
/// AUTH, the transaction's id) reach the filters through `FilterTransaction.connectionChanged`.
public struct FilterConnection: Sendable, Equatable {
    public var peerAddress: String
    /// The client's port, when it has one (not on a Unix socket).
    public var peerPort: Int?
    public var peerHostname: String?
    public var listener: String
    public var direction: FilterDirection
    /// This server's name, as in its greeting.
    public var localHostname: String
    public var isSecure: Bool
    /// The HELO/EHLO name, once given.
    public var heloName: String?
    /// The authenticated user, when the client used AUTH, and the mechanism.
    public var authenticatedUser: String?
    public var authenticationMechanism: String?
    /// The current transaction's id (the `i` macro of a milter), from MAIL on.
    public var transactionID: String?

    public init(peerAddress: String, peerPort: Int? = nil, peerHostname: String? = nil, listener: String,
                direction: FilterDirection = .inbound, localHostname: String = "localhost", isSecure: Bool,
                authenticatedUser: String? = nil) {
        self.peerAddress = peerAddress
        self.peerPort = peerPort
        self.peerHostname = peerHostname
        self.listener = listener
        self.direction = direction
        self.localHostname = localHostname
        self.isSecure = isSecure
        self.authenticatedUser = authenticatedUser
    }
}

public enum FilterVerdict: Sendable, Equatable {
    /// No objection; later stages still run.
    case `continue`
    /// Accept the message without asking this filter again.
    case accept
    /// Refuse with a permanent reply.
    case reject(MailReply)
    /// Refuse with a temporary reply.
    case tempfail(MailReply)
    /// Accept, then drop silently.
    case discard
    /// Accept into the hold queue for an administrator.
    case quarantine(reason: String)

    /// Higher is more severe; used to combine the verdicts of several filters.
    public var severity: Int {
        switch self {
        case .continue: return 0
        case .accept: return 1
        case .quarantine: return 2
        case .discard: return 3
        case .tempfail: return 4
        case .reject: return 5
        }
    }
}

/// A change a filter asks for at end of message. Positions and indices refer to the message as
/// the client sent it (what the filter saw), never to another filter's rewrite: `MessageEdits`
/// merges the changes of a chain in a defined order.
public enum FilterModification: Sendable, Equatable {
    /// Append a field after the last one.
    case addHeader(name: String, value: String)
    /// Insert a field before the `index`-th field of the received header block (0: first).
    case insertHeader(index: Int, name: String, value: String)
    /// Change the `index`-th (1-based) header called `name`; a nil value deletes it.
    case changeHeader(name: String, index: Int, value: String?)
    case addRecipient(String)
    case removeRecipient(String)
    /// Replace the envelope sender (milter CHGFROM).
    case changeSender(String)
    /// Replace the body (everything after the header block).
    case replaceBody([UInt8])
    /// Replace the bytes `range` of the body as received (offsets from the body's first byte; an
    /// empty range inserts) by `bytes`: a change to one MIME part (`MIMERewrite`), which merges
    /// with other filters' changes elsewhere in the body.
    case editBody(range: Range<Int>, bytes: [UInt8])
    /// Queue a further message with this one (an archive or journal copy): written to the queue
    /// before the message itself, and only when the message is accepted (queued or quarantined,
    /// not refused or discarded), so that no message is accepted without it.
    case addMessage(sender: String, recipients: [String], content: [UInt8])
    /// File the message into this mailbox of each local recipient instead of INBOX (`Junk`);
    /// the first filter in chain order that asks wins.
    case fileInto(folder: String)
}

/// One SMTP connection's worth of filter calls. Every stage has a default that continues.
public protocol FilterTransaction: AnyObject, Sendable {
    func connect() async -> FilterVerdict
    func helo(_ name: String) async -> FilterVerdict
    func mailFrom(_ sender: String, parameters: [String: String]) async -> FilterVerdict
    func rcptTo(_ recipient: String, parameters: [String: String]) async -> FilterVerdict
    /// All header fields, unfolded, in order.
    func headers(_ fields: [(name: String, value: String)]) async -> FilterVerdict
    /// The same stage with each field also as received: `raw` is everything after the colon, its
    /// leading space and its folds kept (line breaks as LF, as Sendmail gives milters), without the
    /// final line end. What the host calls; the default passes `fields` to `headers(_:)`. A filter
    /// whose result depends on the exact bytes (a DKIM signer) implements this one.
    func headers(_ fields: [(name: String, value: String)], raw: [String]) async -> FilterVerdict
    /// A chunk of the body as received (CRLF line ends); called zero or more times.
    func body(_ chunk: [UInt8]) async -> FilterVerdict
    /// The message is complete: the final verdict and the changes to make.
    func endOfMessage() async -> (FilterVerdict, [FilterModification])
    /// The transaction was aborted (RSET, or the client went away): forget per-message state.
    func abort() async
    /// The session learnt something (TLS, AUTH, HELO, a new transaction id). Called before the
    /// stage that follows; must not block.
    func connectionChanged(_ connection: FilterConnection)
    /// The fields the chain's authentication filters add above this message (Authentication-
    /// Results, Received-SPF), given to content filters just before their end of message.
    func precedingFields(_ fields: [(name: String, value: String)])
    /// The SMTP connection is over: release what the transaction holds (a milter connection).
    func close() async
}

extension FilterTransaction {
    public func connect() async -> FilterVerdict { .continue }
    public func helo(_ name: String) async -> FilterVerdict { .continue }
    public func mailFrom(_ sender: String, parameters: [String: String]) async -> FilterVerdict { .continue }
    public func rcptTo(_ recipient: String, parameters: [String: String]) async -> FilterVerdict { .continue }
    public func headers(_ fields: [(name: String, value: String)]) async -> FilterVerdict { .continue }
    public func headers(_ fields: [(name: String, value: String)], raw: [String]) async -> FilterVerdict { await headers(fields) }
    public func body(_ chunk: [UInt8]) async -> FilterVerdict { .continue }
    public func endOfMessage() async -> (FilterVerdict, [FilterModification]) { (.continue, []) }
    public func abort() async {}
    public func connectionChanged(_ connection: FilterConnection) {}
    public func precedingFields(_ fields: [(name: String, value: String)]) {}
    public func close() async {}
}
