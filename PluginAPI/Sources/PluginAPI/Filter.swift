/// A milter-style filter (ARCHITECTURE.md, "Queue and routing"). The host runs each stage of a message
/// through every filter concurrently and combines the verdicts: the most severe wins (reject over
/// tempfail over discard over quarantine over continue), ties go to the filter registered first.
/// A filter overrides only the stages it cares about; the rest continue.
public protocol MailFilter: Sendable {
    /// A new transaction per SMTP connection (stages run in protocol order on it).
    func makeTransaction(_ connection: FilterConnection) -> any FilterTransaction
}

/// What a filter knows about the client connection.
public struct FilterConnection: Sendable, Equatable {
    public var peerAddress: String
    public var peerHostname: String?
    public var listener: String
    public var isSecure: Bool
    /// The authenticated user, when the client used AUTH.
    public var authenticatedUser: String?

    public init(peerAddress: String, peerHostname: String? = nil, listener: String, isSecure: Bool,
                authenticatedUser: String? = nil) {
        self.peerAddress = peerAddress
        self.peerHostname = peerHostname
        self.listener = listener
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

/// A change a filter asks for at end of message.
public enum FilterModification: Sendable, Equatable {
    case addHeader(name: String, value: String)
    /// Change the `index`-th (1-based) header called `name`; a nil value deletes it.
    case changeHeader(name: String, index: Int, value: String?)
    case addRecipient(String)
    case removeRecipient(String)
    /// Replace the body (everything after the header block).
    case replaceBody([UInt8])
}

/// One SMTP connection's worth of filter calls. Every stage has a default that continues.
public protocol FilterTransaction: AnyObject, Sendable {
    func connect() async -> FilterVerdict
    func helo(_ name: String) async -> FilterVerdict
    func mailFrom(_ sender: String, parameters: [String: String]) async -> FilterVerdict
    func rcptTo(_ recipient: String, parameters: [String: String]) async -> FilterVerdict
    /// All header fields, unfolded, in order.
    func headers(_ fields: [(name: String, value: String)]) async -> FilterVerdict
    /// A chunk of the body as received (CRLF line ends); called zero or more times.
    func body(_ chunk: [UInt8]) async -> FilterVerdict
    /// The message is complete: the final verdict and the changes to make.
    func endOfMessage() async -> (FilterVerdict, [FilterModification])
    /// The transaction was aborted (RSET, or the client went away): forget per-message state.
    func abort() async
}

extension FilterTransaction {
    public func connect() async -> FilterVerdict { .continue }
    public func helo(_ name: String) async -> FilterVerdict { .continue }
    public func mailFrom(_ sender: String, parameters: [String: String]) async -> FilterVerdict { .continue }
    public func rcptTo(_ recipient: String, parameters: [String: String]) async -> FilterVerdict { .continue }
    public func headers(_ fields: [(name: String, value: String)]) async -> FilterVerdict { .continue }
    public func body(_ chunk: [UInt8]) async -> FilterVerdict { .continue }
    public func endOfMessage() async -> (FilterVerdict, [FilterModification]) { (.continue, []) }
    public func abort() async {}
}

/// Every filter loaded in this worker, run together. Provided by the host.
public struct FilterChain: Sendable {
    public let filters: [(name: String, filter: any MailFilter)]

    public init(filters: [(name: String, filter: any MailFilter)]) {
        self.filters = filters
    }

    /// The transactions of one connection, one per filter.
    public func begin(_ connection: FilterConnection) -> FilterChainTransaction {
        FilterChainTransaction(transactions: filters.map { ($0.name, $0.filter.makeTransaction(connection)) })
    }

    /// The combined verdict: the most severe, the earliest filter on ties.
    public static func combine(_ verdicts: [FilterVerdict]) -> FilterVerdict {
        var worst = FilterVerdict.continue
        for v in verdicts where v.severity > worst.severity { worst = v }
        return worst
    }
}

/// One connection's run through every filter.
// @unchecked Sendable: accepted is only read and written under `lock`; transactions is a let array of Sendable transactions
public final class FilterChainTransaction: @unchecked Sendable {
    private let transactions: [(name: String, transaction: any FilterTransaction)]
    /// Filters that answered `.accept` are not asked again for this message.
    private var accepted: Set<String> = []
    private let lock = NIOLock()

    init(transactions: [(name: String, transaction: any FilterTransaction)]) {
        self.transactions = transactions
    }

    private var active: [(name: String, transaction: any FilterTransaction)] {
        lock.withLock { transactions.filter { !accepted.contains($0.name) } }
    }

    /// Runs one stage on every active filter concurrently and combines the verdicts.
    public func run(_ stage: @escaping @Sendable (any FilterTransaction) async -> FilterVerdict) async -> FilterVerdict {
        let current = active
        let verdicts = await withTaskGroup(of: (Int, FilterVerdict).self) { group in
            for (i, t) in current.enumerated() {
                group.addTask { (i, await stage(t.transaction)) }
            }
            var out = [FilterVerdict](repeating: .continue, count: current.count)
            for await (i, v) in group { out[i] = v }
            return out
        }
        lock.withLock {
            for (i, v) in verdicts.enumerated() where v == .accept { accepted.insert(current[i].name) }
        }
        return FilterChain.combine(verdicts)
    }

    /// End of message: the combined verdict and every filter's modifications in filter order.
    public func endOfMessage() async -> (FilterVerdict, [FilterModification]) {
        let current = active
        let results = await withTaskGroup(of: (Int, FilterVerdict, [FilterModification]).self) { group in
            for (i, t) in current.enumerated() {
                group.addTask {
                    let (v, m) = await t.transaction.endOfMessage()
                    return (i, v, m)
                }
            }
            var out = [(FilterVerdict, [FilterModification])](repeating: (.continue, []), count: current.count)
            for await (i, v, m) in group { out[i] = (v, m) }
            return out
        }
        lock.withLock { accepted = [] }
        return (FilterChain.combine(results.map(\.0)), results.flatMap(\.1))
    }

    /// The message was abandoned: every filter forgets it.
    public func abort() async {
        lock.withLock { accepted = [] }
        for t in transactions { await t.transaction.abort() }
    }
}
