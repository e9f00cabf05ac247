import Foundation

// The host side of the filter chain (ARCHITECTURE.md, "Filters"): every stage goes to every filter
// of the chain at once, each under its own deadline, and the verdicts are combined. A filter that
// does not answer in time costs that one deadline: it is then out of the session, and the stage
// gets the configured timeout action (tempfail unless the site says accept), from then on without
// asking it again. Nothing here waits for a filter that has run out of time, so a hung filter can
// never hold a session.

/// The stages of a session, for logs and metrics.
public enum FilterStage: String, Sendable, CaseIterable {
    case connect, helo, mail, rcpt, headers, body, endOfMessage = "eom", abort, close
    /// A stage run through the stage-less `run(_:)`, kept for callers written before stages had names.
    case unnamed
}

/// What a stage gets from a filter that ran out of time (or is out of the session since).
public enum FilterTimeoutAction: String, Sendable, CaseIterable {
    /// A temporary refusal: nothing passes unfiltered (the default).
    case tempfail
    /// Go on without that filter for the rest of the session.
    case accept
}

/// How long each filter may take per stage, and what a timeout means. Per listener.
public struct FilterPolicy: Sendable, Equatable {
    public var timeout: Double
    public var timeoutAction: FilterTimeoutAction

    public init(timeout: Double = 60, timeoutAction: FilterTimeoutAction = .tempfail) {
        self.timeout = timeout
        self.timeoutAction = timeoutAction
    }
}

/// The deadline of one filter's current stage. A filter that is busy but alive (a milter's
/// PROGRESS) calls `FilterStageClock.current?.progress()` to start its time again.
public final class FilterStageClock: Sendable {
    @TaskLocal public static var current: FilterStageClock?
    private let timeout: Double
    private let deadline: NIOLockedValueBox<Double>

    init(timeout: Double) {
        self.timeout = timeout
        deadline = NIOLockedValueBox(Self.now() + timeout)
    }

    /// The filter is still working: the full timeout starts again.
    public func progress() {
        deadline.withLockedValue { $0 = Self.now() + timeout }
    }

    var remaining: Double { deadline.withLockedValue { $0 } - Self.now() }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}

/// The filters of one listener, in order. Built by the host over every registered filter; a
/// protocol service narrows it to the listener's list (`selecting`) and sets its policy.
public struct FilterChain: Sendable {
    public let filters: [(name: String, filter: any MailFilter)]
    public var policy: FilterPolicy

    public init(filters: [(name: String, filter: any MailFilter)], policy: FilterPolicy = FilterPolicy()) {
        self.filters = filters
        self.policy = policy
    }

    /// The chain of the filters named, in that order. A name no plugin registered throws: a
    /// listener configured to scan must not quietly stop scanning.
    public func selecting(_ names: [String]) throws -> FilterChain {
        let chosen = try names.map { name in
            guard let f = filters.first(where: { $0.name == name }) else { throw FilterChainError.unknownFilter(name) }
            return f
        }
        return FilterChain(filters: chosen, policy: policy)
    }

    /// The transactions of one connection, one per filter.
    public func begin(_ connection: FilterConnection, logger: Logger = Logger(label: "postern.filters")) -> FilterChainTransaction {
        FilterChainTransaction(transactions: filters.map { ($0.name, $0.filter.makeTransaction(connection)) },
                               authenticationFilters: Set(filters.filter { $0.filter.phase == .authentication }.map(\.name)),
                               policy: policy, logger: logger)
    }

    /// The combined verdict: the most severe, the earliest filter on ties.
    public static func combine(_ verdicts: [FilterVerdict]) -> FilterVerdict {
        var worst = FilterVerdict.continue
        for v in verdicts where v.severity > worst.severity { worst = v }
        return worst
    }
}

public enum FilterChainError: Error, CustomStringConvertible, Equatable {
    case unknownFilter(String)

    public var description: String {
        switch self {
        case .unknownFilter(let name): return "no filter named '\(name)' is loaded"
        }
    }
}

/// One connection's run through the chain.
// @unchecked Sendable: accepted and timedOut are only read and written under `lock`; the rest is let
public final class FilterChainTransaction: @unchecked Sendable {
    private let transactions: [(name: String, transaction: any FilterTransaction)]
    /// The filters whose end of message runs first (`FilterPhase.authentication`).
    private let authenticationFilters: Set<String>
    private let policy: FilterPolicy
    private let logger: Logger
    /// Filters that answered `.accept` are not asked again for this message.
    private var accepted: Set<String> = []
    /// Filters that ran out of time: out of this session.
    private var timedOut: Set<String> = []
    /// The filter behind the most severe refusal, quarantine or discard of this message so far.
    private var decider: (name: String, severity: Int)?
    private let lock = NIOLock()

    init(transactions: [(name: String, transaction: any FilterTransaction)], authenticationFilters: Set<String> = [],
         policy: FilterPolicy, logger: Logger) {
        self.transactions = transactions
        self.authenticationFilters = authenticationFilters
        self.policy = policy
        self.logger = logger
    }

    /// The verdict standing in for filters that timed out.
    private var timeoutVerdict: FilterVerdict {
        switch policy.timeoutAction {
        case .tempfail: return .tempfail(MailReply(451, "4.7.1", "content filter not available, try again later"))
        case .accept: return .continue
        }
    }

    private var active: [(name: String, transaction: any FilterTransaction)] {
        lock.withLock { transactions.filter { !accepted.contains($0.name) && !timedOut.contains($0.name) } }
    }

    /// Whether a filter timed out earlier in this session (its stand-in verdict still counts).
    private var anyTimedOut: Bool { lock.withLock { !timedOut.isEmpty } }

    /// The name of the filter whose verdict refused, quarantined or discarded the message (the
    /// most severe since MAIL, the earliest in the chain on ties), once: reading it clears it.
    /// For reports that count what each filter stopped (the event log's `filter`).
    public func takeDecidingFilter() -> String? {
        lock.withLock {
            defer { decider = nil }
            return decider?.name
        }
    }

    /// Tells every filter what the session learnt (TLS, AUTH, HELO, a transaction id).
    public func connectionChanged(_ connection: FilterConnection) {
        for t in active { t.transaction.connectionChanged(connection) }
    }

    /// Runs one stage on every active filter concurrently and combines the verdicts.
    public func run(_ stage: FilterStage, _ call: @escaping @Sendable (any FilterTransaction) async -> FilterVerdict) async -> FilterVerdict {
        let results = await everyFilter(stage) { t in (await call(t), [FilterModification]()) }
        return FilterChain.combine(results.map(\.verdict))
    }

    /// The stage-less form of `run(_:_:)`; logs and metrics say `unnamed`.
    public func run(_ call: @escaping @Sendable (any FilterTransaction) async -> FilterVerdict) async -> FilterVerdict {
        await run(.unnamed, call)
    }

    /// End of message: the combined verdict and every filter's modifications, per filter in chain
    /// order (merge them with `MessageEdits`).
    public func endOfMessageByFilter() async -> (FilterVerdict, [(filter: String, modifications: [FilterModification])]) {
        var results: [(name: String, verdict: FilterVerdict, modifications: [FilterModification])]
        if authenticationFilters.isEmpty {
            results = await everyFilter(.endOfMessage) { await $0.endOfMessage() }
        } else {
            let authentication = authenticationFilters
            results = await everyFilter(.endOfMessage, where: { authentication.contains($0) }) { await $0.endOfMessage() }
            var added: [(name: String, value: String)] = []
            for result in results {
                for case .insertHeader(_, let name, let value) in result.modifications { added.append((name, value)) }
                for case .addHeader(let name, let value) in result.modifications { added.append((name, value)) }
            }
            let fields = added
            results += await everyFilter(.endOfMessage, where: { !authentication.contains($0) }) { transaction in
                if !fields.isEmpty { transaction.precedingFields(fields) }
                return await transaction.endOfMessage()
            }
            // Back in chain order: ties in the verdict and the merge of changes go by it.
            let order = Dictionary(transactions.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
            results.sort { (order[$0.name] ?? Int.max) < (order[$1.name] ?? Int.max) }
        }
        lock.withLock { accepted = [] }
        return (FilterChain.combine(results.map(\.verdict)), results.map { ($0.name, $0.modifications) })
    }

    /// End of message with the modifications of every filter concatenated in chain order.
    public func endOfMessage() async -> (FilterVerdict, [FilterModification]) {
        let (verdict, byFilter) = await endOfMessageByFilter()
        return (verdict, byFilter.flatMap(\.modifications))
    }

    /// The message was abandoned: every filter forgets it.
    public func abort() async {
        _ = await everyFilter(.abort, includeAccepted: true) { await $0.abort(); return (.continue, []) }
        lock.withLock { accepted = [] }
    }

    /// The connection is over: every filter releases it (filters that timed out are not waited for).
    public func close() async {
        _ = await everyFilter(.close, includeAccepted: true) { await $0.close(); return (.continue, []) }
    }

    /// Runs `call` on every filter at once, each under its deadline. Filters that timed out (now or
    /// earlier in the session) give the timeout action's verdict.
    private func everyFilter(_ stage: FilterStage, includeAccepted: Bool = false, where selected: (String) -> Bool = { _ in true },
                             _ call: @escaping @Sendable (any FilterTransaction) async -> (FilterVerdict, [FilterModification]))
        async -> [(name: String, verdict: FilterVerdict, modifications: [FilterModification])] {
        // A new MAIL is a new message: a filter that accepted the last one is asked again, even
        // when that message ended without its end-of-message stage (refused, or RSET).
        if stage == .mail {
            lock.withLock {
                accepted = []
                decider = nil
            }
        }
        let current = (includeAccepted ? lock.withLock { transactions.filter { !timedOut.contains($0.name) } } : active)
            .filter { selected($0.name) }
        let earlier = anyTimedOut && stage != .abort && stage != .close
        let timeout = policy.timeout
        let results = await withTaskGroup(of: (Int, (FilterVerdict, [FilterModification])?).self) { group in
            for (i, t) in current.enumerated() {
                group.addTask { (i, await withFilterDeadline(timeout) { await call(t.transaction) }) }
            }
            var out = [(FilterVerdict, [FilterModification])?](repeating: nil, count: current.count)
            for await (i, r) in group { out[i] = r }
            return out
        }
        var combined: [(name: String, verdict: FilterVerdict, modifications: [FilterModification])] = []
        for (i, r) in results.enumerated() {
            let name = current[i].name
            if let (verdict, modifications) = r {
                if verdict == .accept { lock.withLock { _ = accepted.insert(name) } }
                combined.append((name, verdict, modifications))
                continue
            }
            lock.withLock { _ = timedOut.insert(name) }
            Counter(label: "postern_filter_timeouts_total", dimensions: [("filter", name), ("stage", stage.rawValue)]).increment()
            logger.warning("filter timed out", metadata: ["filter": "\(name)", "stage": "\(stage.rawValue)",
                                                          "timeout": "\(timeout)", "action": "\(policy.timeoutAction.rawValue)"])
            if stage != .abort && stage != .close { combined.append((name, timeoutVerdict, [])) }
        }
        // A filter out of the session still stands for its timeout action at every later stage.
        if earlier && !combined.contains(where: { $0.verdict == timeoutVerdict }) && policy.timeoutAction == .tempfail {
            combined.append(("(timed out)", timeoutVerdict, []))
        }
        if let worst = combined.max(by: { $0.verdict.severity < $1.verdict.severity }), worst.verdict.severity >= FilterVerdict.quarantine(reason: "").severity {
            // max(by:) keeps the last of equals: the earliest in the chain is wanted.
            let first = combined.first { $0.verdict.severity == worst.verdict.severity }!
            lock.withLock {
                if decider == nil || decider!.severity < first.verdict.severity { decider = (first.name, first.verdict.severity) }
            }
        }
        return combined
    }
}

/// `operation`'s result, or nil when it has not finished by the deadline (which the operation
/// may push back through `FilterStageClock.current`). The operation runs in a task of its own,
/// cancelled at the deadline but never waited for: a filter that ignores cancellation leaks
/// its task, not the session.
public func withFilterDeadline<T: Sendable>(_ timeout: Double, _ operation: @escaping @Sendable () async -> T) async -> T? {
    let clock = FilterStageClock(timeout: timeout)
    let outcome = DeadlineOutcome<T>()
    // Cancelling the caller ends the wait at once and cancels the operation, so deadlines nested in
    // a filter (a milter's own timeout) end with the chain's.
    return await withTaskCancellationHandler {
      await withCheckedContinuation { (continuation: CheckedContinuation<T?, Never>) in
        outcome.install(continuation)
        let work = FilterStageClock.$current.withValue(clock) {
            Task { outcome.finish(await operation()) }
        }
        outcome.onCancel { work.cancel() }
        let timer = Task {
            while !Task.isCancelled {
                let remaining = clock.remaining
                if remaining <= 0 { break }
                try? await Task.sleep(nanoseconds: UInt64(remaining * 1e9) + 1)
            }
            if outcome.finish(nil) { work.cancel() }
        }
        outcome.onFinish { timer.cancel() }
      }
    } onCancel: {
        outcome.cancel()
    }
}

/// The one answer of `withFilterDeadline`: the operation's or the timer's, whichever comes first.
// @unchecked Sendable: every field is read and written under `lock`
private final class DeadlineOutcome<T: Sendable>: @unchecked Sendable {
    private let lock = NIOLock()
    private var continuation: CheckedContinuation<T?, Never>?
    private var done = false
    private var finished: (@Sendable () -> Void)?

    private var cancelled = false
    private var cancelWork: (@Sendable () -> Void)?

    func install(_ c: CheckedContinuation<T?, Never>) { lock.withLock { continuation = c } }

    /// How to cancel the operation; run at once if the caller was cancelled before it was known.
    func onCancel(_ action: @escaping @Sendable () -> Void) {
        let now = lock.withLock { () -> Bool in
            if cancelled { return true }
            cancelWork = action
            return false
        }
        if now { action() }
    }

    /// The caller was cancelled: answer nil (unless answered) and cancel the operation.
    func cancel() {
        let action = lock.withLock { () -> (@Sendable () -> Void)? in
            cancelled = true
            return cancelWork
        }
        finish(nil)
        action?()
    }

    /// Runs `action` once the outcome is known (at once when it already is).
    func onFinish(_ action: @escaping @Sendable () -> Void) {
        let now = lock.withLock { () -> Bool in
            if done { return true }
            finished = action
            return false
        }
        if now { action() }
    }

    /// Resumes the waiter with `value` unless someone did first; true when this call did.
    @discardableResult
    func finish(_ value: T?) -> Bool {
        let (c, action) = lock.withLock { () -> (CheckedContinuation<T?, Never>?, (@Sendable () -> Void)?) in
            guard !done else { return (nil, nil) }
            done = true
            defer { continuation = nil; finished = nil }
            return (continuation, finished)
        }
        guard let c else { return false }
        c.resume(returning: value)
        action?()
        return true
    }
}
