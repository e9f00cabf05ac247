import Foundation
import PluginAPI

/// The queue: `enqueue` (the SMTP session's 250 waits for it), the queue manager that delivers
/// (in serving processes), and queue control for `postern queue`.
// @unchecked Sendable: every var (running, stopped, wakeUp, inFlight, destinations, ...) is only touched under `lock`; rest let
final class QueueService: MailQueue, @unchecked Sendable {
    struct Settings {
        var hostname: String
        var minBackoff: Double
        var maxBackoff: Double
        var lifetime: Double
        /// 0: no delay warnings.
        var delayWarning: Double
        var scanInterval: Double
        var concurrency: Int
        var destinationConcurrency: Int
        /// Per transport ("destination class"): deliveries at once.
        var transportConcurrency: [String: Int]
        var bounceSizeLimit: Int
        var doubleBounceRecipient: String
        var maxHops: Int
    }

    let spool: Spool
    let settings: Settings
    let router: Router
    let senderRewriter: SenderRewriter
    let services: HostServices
    let logger: Logger
    // The manager's state (QueueManager.swift), under `lock`.
    let lock = NSLock()
    var running = false
    var stopped = false
    var wakeUp: CheckedContinuation<Void, Never>?
    /// A wake-up that came while the manager was busy: it goes round again before sleeping, so an
    /// entry handed over meanwhile never waits for the next `scan_interval`.
    var wakePending = false
    /// The last scan left due entries behind because `concurrency` attempts were running: the end
    /// of an attempt wakes the manager.
    var leftBehind = false
    /// An attempt ended while entries were left behind: scan again without waiting for the timer.
    var rescanWanted = false
    var inFlight = Set<String>()
    /// Entries this process just enqueued, with their locks: started without a directory scan.
    var handedOff: [(entry: QueueEntry, held: EntryLock)] = []
    /// Whether a timer will wake the manager for its next scan.
    var timerArmed = false
    /// The group commit of new entries and their messages (the 250 waits for it).
    let commits: GroupCommit
    private var destinations: [String: Int] = [:]
    private var transportsBusy: [String: Int] = [:]
    let delivered: Counter, deferred: Counter, bounced: Counter
    /// Each recipient's delivery, deferral and bounce, for the admin API's reports.
    let events: MailEventLog

    init(spool: Spool, settings: Settings, router: Router, senderRewriter: SenderRewriter, services: HostServices, logger: Logger, context: PluginContext) {
        self.senderRewriter = senderRewriter
        self.spool = spool
        self.settings = settings
        self.router = router
        self.services = services
        self.logger = logger
        commits = GroupCommit(faultFile: spool.root + "/fault-after-group-commit")
        delivered = context.counter("postern_queue_recipients_total", dimensions: [("result", "delivered")])
        deferred = context.counter("postern_queue_recipients_total", dimensions: [("result", "deferred")])
        bounced = context.counter("postern_queue_recipients_total", dimensions: [("result", "failed")])
        events = MailEventLog(dataDirectory: context.dataDirectory)
    }

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970) }

    // MARK: enqueue

    func enqueue(envelope: Envelope, messagePath path: String) async throws -> String {
        try await enqueue(envelope: envelope, messagePath: path, kind: .normal)
    }

    func enqueue(envelope: Envelope, messagePath path: String, holdReason: String?) async throws -> String {
        try await enqueue(envelope: envelope, messagePath: path, kind: .normal, holdReason: holdReason)
    }

    /// Moves the message into `data/`, expands the recipients, writes the entry into `incoming/`
    /// and syncs both files and both directories in the group commit: after this returns a crash
    /// loses nothing. One write of the message (the session's spool file becomes the data file)
    /// and, at concurrency, one journal commit shared by every message of the group.
    func enqueue(envelope original: Envelope, messagePath path: String, kind: QueueEntry.Kind, holdReason: String? = nil) async throws -> String {
        var envelope = original
        if kind == .normal && !senderRewriter.isEmpty {
            envelope.sender = try await senderRewriter.rewrite(envelope.sender)
            _ = try await senderRewriter.rewriteHeader(file: path)
        }
        let id = Spool.newID()
        let data = spool.dataPath(id)
        if rename(path, data) != 0 {
            // Another file system: copy.
            guard errno == EXDEV, let bytes = FileManager.default.contents(atPath: path) else { throw QueueError.io("move \(path) into the queue", errno) }
            try Spool.write(Array(bytes), to: data)
            unlink(path)
        }
        // Held until the manager's attempt ends: no scan (of this process or another) takes the
        // entry before it is on disk.
        guard let held = spool.lock(id) else {
            unlink(data)
            throw QueueError.io("lock \(data)", errno)
        }
        let queue = holdReason == nil ? "incoming" : "hold"
        var entryFile: String?
        let entry: QueueEntry
        do {
            var st = stat()
            stat(data, &st)
            let recipients = try await expand(envelope.recipients)
            let now = Self.now()
            entry = QueueEntry(id: id, envelope: envelope, kind: kind, size: Int(st.st_size), arrival: now, attempts: 0,
                               nextAttempt: now, warned: false, recipients: recipients, holdReason: holdReason)
            // A quarantined message is kept as durably as any other, where no manager takes it.
            entryFile = try spool.create(entry, in: queue)
            try await commits.commit(files: [data, entryFile!], directories: [spool.dataDirectory, spool.root + "/" + queue])
        } catch {
            if let entryFile { unlink(entryFile) }
            unlink(data)
            held.release()
            throw error
        }
        if let holdReason {
            held.release()
            logger.notice("queued on hold", metadata: ["id": "\(id)", "from": "<\(envelope.sender)>", "reason": "\(holdReason)"])
            return id
        }
        logger.info("queued", metadata: ["id": "\(id)", "from": "<\(envelope.sender)>", "recipients": "\(envelope.recipients.count)"])
        handOff(entry, held)
        return id
    }

    /// Alias expansion (Postfix's cleanup step): each envelope recipient becomes its final
    /// addresses, remembering where they came from.
    func expand(_ recipients: [EnvelopeRecipient]) async throws -> [QueueRecipient] {
        var out: [QueueRecipient] = []
        var seen = Set<String>()
        for r in recipients {
            var targets = [r.address]
            if case .local(let expanded) = try await router.classify(r.address), !expanded.isEmpty { targets = expanded }
            for t in targets where seen.insert(t.lowercased()).inserted {
                out.append(QueueRecipient(address: t, original: r.address, notify: r.notify, orcpt: r.originalRecipient, state: .pending))
            }
        }
        return out
    }

    /// One delivery attempt of every pending recipient, grouped by transport and next hop.
    func attempt(_ start: QueueEntry, _ held: EntryLock) async {
        defer { held.release() }
        var entry = start
        entry.attempts += 1
        let path = spool.dataPath(entry.id)

        // A message that went round too often is refused, not delivered again (RFC 5321 §6.3).
        if Self.receivedCount(path) > settings.maxHops {
            for i in entry.recipients.indices where entry.recipients[i].state == .pending {
                entry.recipients[i].state = .failed
                entry.recipients[i].lastReply = MailReply(554, "5.4.6", "too many hops (\(settings.maxHops)): mail loop")
            }
            return await finish(entry)
        }

        var groups: [String: (transport: String, nextHop: String?, indices: [Int])] = [:]
        for (i, r) in entry.recipients.enumerated() where r.state == .pending {
            do {
                let (transport, nextHop) = try await router.route(r.address)
                // Remote mail to one domain goes together (one connection, several RCPTs).
                let domain = Router.split(r.address)?.domain ?? ""
                let key = "\(transport)|\(nextHop ?? domain)"
                groups[key, default: (transport, nextHop, [])].indices.append(i)
            } catch {
                entry.recipients[i].lastReply = MailReply(451, "4.3.0", "routing failed: \(error)")
            }
        }
        await withTaskGroup(of: [(Int, RecipientOutcome, String)].self) { group in
            for (key, g) in groups {
                let recipients = g.indices.map { entry.recipients[$0] }
                let message = QueuedMessage(id: entry.id, envelope: entry.envelope, path: path, size: entry.size,
                                            pending: recipients.map { EnvelopeRecipient(address: $0.address, notify: $0.notify, originalRecipient: $0.orcpt) },
                                            attempts: entry.attempts, nextHop: g.nextHop)
                group.addTask { [self] in
                    await self.waitForDestination(key)
                    defer { self.releaseDestination(key) }
                    let outcomes: [RecipientOutcome]
                    if let transport = services.transport(named: g.transport) {
                        outcomes = await transport.deliver(message)
                    } else {
                        outcomes = recipients.map { RecipientOutcome(recipient: $0.address, status: .deferred,
                                                                      reply: MailReply(451, "4.3.5", "transport '\(g.transport)' is not loaded")) }
                    }
                    return zip(g.indices, recipients).map { i, r in
                        (i, outcomes.first { $0.recipient.caseInsensitiveCompare(r.address) == .orderedSame }
                            ?? RecipientOutcome(recipient: r.address, status: .deferred, reply: MailReply(451, "4.3.0", "the transport gave no answer")),
                         g.transport)
                    }
                }
            }
            for await results in group {
                for (i, outcome, transport) in results {
                    entry.recipients[i].lastReply = outcome.reply
                    entry.recipients[i].transport = transport
                    switch outcome.status {
                    case .delivered: entry.recipients[i].state = .delivered; delivered.increment()
                    case .failed: entry.recipients[i].state = .failed; bounced.increment()
                    case .deferred: deferred.increment()
                    }
                    logger.info("delivery", metadata: ["id": "\(entry.id)", "to": "\(outcome.recipient)", "status": "\(outcome.status.rawValue)",
                                                       "reply": "\(outcome.reply)", "transport": "\(transport)"])
                    // Delivery reports the queue writes (null sender) count too, as in Postfix's logs.
                    let kind: MailEvent.Kind = outcome.status == .delivered ? .delivered : outcome.status == .failed ? .bounced : .deferred
                    events.record(MailEvent(kind: kind, queueID: entry.id, sender: entry.envelope.sender, recipient: entry.recipients[i].address,
                                            size: entry.size, reason: "\(outcome.reply)"))
                }
            }
        }
        await finish(entry)
    }

    /// After an attempt: notifications, then the entry leaves the queue or waits in `deferred`.
    private func finish(_ start: QueueEntry) async {
        var entry = start
        let now = Self.now()
        let age = Double(now - entry.arrival)
        if !entry.pending.isEmpty && age >= settings.lifetime {
            for i in entry.recipients.indices where entry.recipients[i].state == .pending {
                let last = entry.recipients[i].lastReply.map { ": last reply \($0)" } ?? ""
                entry.recipients[i].state = .failed
                entry.recipients[i].lastReply = MailReply(550, "5.4.7", "delivery time expired\(last)")
                events.record(MailEvent(kind: .bounced, queueID: entry.id, sender: entry.envelope.sender, recipient: entry.recipients[i].address,
                                        size: entry.size, reason: "\(entry.recipients[i].lastReply!)"))
            }
        }
        await notify(&entry, now: now)
        if entry.pending.isEmpty {
            spool.remove(entry.id)
            logger.info("removed", metadata: ["id": "\(entry.id)"])
            return
        }
        // Exponential backoff between min and max: 1, 2, 4, ... times the minimum.
        let backoff = min(settings.maxBackoff, settings.minBackoff * pow(2, Double(max(0, entry.attempts - 1))))
        entry.nextAttempt = now + Int64(max(1, backoff.rounded()))
        do {
            try spool.write(entry, to: "deferred", from: "active")
        } catch {
            // The active copy stays; it is taken over at the next scan once this lock is gone.
            logger.error("cannot defer queue entry: \(error)", metadata: ["id": "\(entry.id)"])
        }
    }

    /// Sends the DSNs this attempt calls for: failures (once per recipient, since a failed
    /// recipient is not tried again), one delay warning per message, and success reports asked
    /// for with NOTIFY=SUCCESS. Never to the null sender: a failed bounce goes to the
    /// postmaster, a failed double bounce nowhere (RFC 5321 §6.1).
    private func notify(_ entry: inout QueueEntry, now: Int64) async {
        var failed: [DeliveryReport.Recipient] = [], succeeded: [DeliveryReport.Recipient] = [], delayed: [DeliveryReport.Recipient] = []
        for (i, r) in entry.recipients.enumerated() {
            if r.reported == true { continue }
            if r.state == .failed && r.lastReply != nil && r.wants("FAILURE") {
                failed.append(DeliveryReport.Recipient(address: r.address, originalRecipient: r.orcpt ?? (r.original != r.address ? r.original : nil),
                                                       action: .failed, reply: r.lastReply, remoteMTA: nil))
            }
            if r.state == .delivered && r.wants("SUCCESS") {
                succeeded.append(DeliveryReport.Recipient(address: r.address, originalRecipient: r.orcpt, action: r.transport == "local" ? .delivered : .relayed,
                                                          reply: r.lastReply, remoteMTA: nil))
            }
            if r.state == .pending && r.wants("DELAY") { delayed.append(DeliveryReport.Recipient(address: r.address, originalRecipient: r.orcpt, action: .delayed, reply: r.lastReply)) }
        }
        // Reported recipients are marked so the next attempt does not report them again.
        for i in entry.recipients.indices where entry.recipients[i].state != .pending { entry.recipients[i].reported = true }
        if !failed.isEmpty { await send(report: failed, for: entry, now: now) }
        if !succeeded.isEmpty { await send(report: succeeded, for: entry, now: now) }
        if settings.delayWarning > 0, !entry.warned, !delayed.isEmpty, Double(now - entry.arrival) >= settings.delayWarning {
            entry.warned = true
            await send(report: delayed, for: entry, now: now)
        }
    }

    private func send(report recipients: [DeliveryReport.Recipient], for entry: QueueEntry, now: Int64) async {
        let to: String, kind: QueueEntry.Kind
        switch (entry.kind, entry.envelope.sender.isEmpty) {
        case (.normal, false): (to, kind) = (entry.envelope.sender, .bounce)
        case (.doubleBounce, _):
            logger.warning("double bounce undeliverable, dropped", metadata: ["id": "\(entry.id)"])
            return
        default:
            // A bounce (or any null-sender message) that fails: only a failure goes to the postmaster.
            guard recipients.first?.action == .failed else { return }
            (to, kind) = (settings.doubleBounceRecipient, .doubleBounce)
        }
        guard let original = FileManager.default.contents(atPath: spool.dataPath(entry.id)) else { return }
        let report = DeliveryReport(hostname: settings.hostname, queueID: entry.id, envelopeID: entry.envelope.envelopeID, arrival: entry.arrival,
                                    recipients: recipients,
                                    returnFull: entry.envelope.dsnReturn?.uppercased() != "HDRS" && original.count <= settings.bounceSizeLimit,
                                    now: now, retryUntil: entry.arrival + Int64(settings.lifetime))
        let bytes = report.compose(to: to, original: Array(original))
        let tmp = "\(spool.root)/tmp/report-\(entry.id)-\(UInt32.random(in: 0...UInt32.max))"
        do {
            try Spool.write(bytes, to: tmp)
            // Enqueued like any message (the report's own failure is then handled by its kind).
            let id = try await enqueue(envelope: Envelope(sender: "", recipients: [EnvelopeRecipient(address: to)]), messagePath: tmp, kind: kind)
            logger.info("delivery report queued", metadata: ["id": "\(entry.id)", "report": "\(id)", "action": "\(recipients[0].action.rawValue)"])
        } catch {
            logger.error("cannot queue delivery report: \(error)", metadata: ["id": "\(entry.id)"])
            unlink(tmp)
        }
    }

    /// Waits for a delivery slot: one of the destination's (`transport|nexthop-or-domain`) and
    /// one of its transport's, the "destination class" (e.g. at most 20 SMTP deliveries and 10
    /// local ones at once, whatever the destinations).
    private func waitForDestination(_ key: String) async {
        let transport = String(key.prefix { $0 != "|" })
        let classLimit = settings.transportConcurrency[transport] ?? Int.max
        while true {
            let ok = lock.withLock {
                if destinations[key, default: 0] < settings.destinationConcurrency,
                   transportsBusy[transport, default: 0] < classLimit {
                    destinations[key, default: 0] += 1
                    transportsBusy[transport, default: 0] += 1
                    return true
                }
                return false
            }
            if ok { return }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
    }

    private func releaseDestination(_ key: String) {
        let transport = String(key.prefix { $0 != "|" })
        lock.withLock {
            destinations[key, default: 1] -= 1
            transportsBusy[transport, default: 1] -= 1
        }
    }

    /// How many Received: fields the message's header has.
    static func receivedCount(_ path: String) -> Int {
        guard let handle = FileHandle(forReadingAtPath: path) else { return 0 }
        defer { try? handle.close() }
        let head = handle.readData(ofLength: 256 * 1024)
        return MailHeaderBlock(parsing: Array(head)).fields.filter { $0.hasName("Received") }.count
    }

    // MARK: queue control

    func list() async throws -> [QueueSummary] {
        // An entry the manager moves while the directories are read can be seen in two of them
        // (in the order of `Spool.queues`, the later is the newer): listed once, in the later.
        var latest: [String: QueueSummary] = [:]
        for queue in Spool.queues {
            for id in spool.ids(in: queue) {
                if let entry = spool.read(id, in: queue) { latest[id] = summary(entry, queue) }
            }
        }
        return latest.values.sorted { ($0.arrival, $0.id) < ($1.arrival, $1.id) }
    }

    func summary(_ e: QueueEntry, _ queue: String) -> QueueSummary {
        QueueSummary(id: e.id, queue: queue, sender: e.envelope.sender, size: e.size, arrival: e.arrival, attempts: e.attempts,
                     nextAttempt: queue == "deferred" || queue == "incoming" ? e.nextAttempt : nil,
                     pending: e.pending.map { QueueSummary.PendingRecipient(address: $0.address, lastReply: $0.lastReply?.description) },
                     holdReason: e.holdReason)
    }

    func show(id: String) async throws -> (QueueSummary, [UInt8])? {
        guard let (queue, entry) = spool.locate(id), let bytes = FileManager.default.contents(atPath: spool.dataPath(id)) else { return nil }
        return (summary(entry, queue), Array(bytes))
    }

    /// Applies `change` to each entry not being delivered right now; returns how many changed.
    private func modify(_ ids: [String], all: Bool = false, _ change: (inout QueueEntry, String) -> String?) throws -> Int {
        let targets = ids.isEmpty && all ? Spool.queues.flatMap { spool.ids(in: $0) } : ids
        var n = 0
        for id in Set(targets) {
            guard let held = spool.lock(id) else { continue }
            defer { held.release() }
            guard let (queue, found) = spool.locate(id) else { continue }
            var entry = found
            if let target = change(&entry, queue) {
                if target == "-" {
                    spool.remove(id)
                } else {
                    try spool.write(entry, to: target, from: queue)
                }
                n += 1
            }
        }
        if n > 0 { wakeToScan() }
        return n
    }

    func hold(ids: [String]) async throws -> Int {
        try modify(ids) { _, queue in queue == "hold" ? nil : "hold" }
    }

    func release(ids: [String]) async throws -> Int {
        try modify(ids, all: true) { entry, queue in
            guard queue == "hold" else { return nil }
            entry.nextAttempt = Self.now()
            entry.holdReason = nil
            return "deferred"
        }
    }

    func delete(ids: [String]) async throws -> Int {
        try modify(ids) { _, _ in "-" }
    }

    func flush(ids: [String]) async throws -> Int {
        try modify(ids, all: true) { entry, queue in
            guard queue == "deferred" || queue == "active" || queue == "incoming" else { return nil }
            entry.nextAttempt = Self.now()
            return "deferred"
        }
    }

    func requeue(ids: [String]) async throws -> Int {
        // Expansion is asynchronous; the entries are re-read under their locks afterwards.
        let targets = ids.isEmpty ? Spool.queues.filter { $0 != "hold" }.flatMap { spool.ids(in: $0) } : ids
        var n = 0
        for id in Set(targets) {
            guard let held = spool.lock(id) else { continue }
            defer { held.release() }
            guard let (queue, start) = spool.locate(id) else { continue }
            var entry = start
            // Pending recipients are expanded again from the envelope recipient they came from;
            // delivered and failed ones are kept as they are.
            let originals = Set(entry.pending.map { $0.original.lowercased() })
            let again = try await expand(entry.envelope.recipients.filter { originals.contains($0.address.lowercased()) })
            let done = entry.recipients.filter { $0.state != .pending }
            let doneAddresses = Set(done.map { $0.address.lowercased() })
            entry.recipients = done + again.filter { !doneAddresses.contains($0.address.lowercased()) }
            entry.nextAttempt = Self.now()
            try spool.write(entry, to: queue == "hold" ? "hold" : "deferred", from: queue)
            n += 1
        }
        if n > 0 { wakeToScan() }
        return n
    }
}
