import Foundation
import PluginAPI

/// What the alerts are now and were before, in `DATA/admin/alerts.json`: written by the one
/// process that checks the node, read by every admin listener (and sent to a console in the
/// node's status).
struct AlertState: Codable, Sendable, Equatable {
    struct Past: Codable, Sendable, Equatable {
        var kind: String
        var message: String
        var since: Int64
        var ended: Int64?
    }

    /// The master's restart count at each check in the window, to count restarts over time
    /// across worker restarts.
    struct RestartSample: Codable, Sendable, Equatable {
        var time: Int64
        var count: Int
    }

    var checked: Int64 = 0
    var active: [Alert] = []
    /// Newest first, at most `historyLimit`.
    var history: [Past] = []
    var restartSamples: [RestartSample] = []

    static let historyLimit = 200

    static func path(dataDirectory: String) -> String { dataDirectory + "/admin/alerts.json" }

    static func read(dataDirectory: String) -> AlertState? {
        FileManager.default.contents(atPath: path(dataDirectory: dataDirectory)).flatMap { try? JSONDecoder().decode(AlertState.self, from: $0) }
    }

    /// The state after a check that found `holding`: alerts that start are added (and returned as
    /// `started`), those that no longer hold are moved to the history (`ended`).
    func next(holding: [(kind: String, message: String)], now: Int64) -> (state: AlertState, started: [Alert], ended: [Alert]) {
        var state = self
        state.checked = now
        var started: [Alert] = [], ended: [Alert] = [], active: [Alert] = []
        for (kind, message) in holding {
            if var existing = self.active.first(where: { $0.kind == kind }) {
                existing.message = message
                active.append(existing)
            } else {
                let alert = Alert(kind: kind, message: message, since: now)
                started.append(alert)
                active.append(alert)
                state.history.insert(Past(kind: kind, message: message, since: now, ended: nil), at: 0)
            }
        }
        for alert in self.active where !holding.contains(where: { $0.kind == alert.kind }) {
            ended.append(alert)
            if let i = state.history.firstIndex(where: { $0.kind == alert.kind && $0.since == alert.since && $0.ended == nil }) {
                state.history[i].ended = now
            }
        }
        state.active = active
        if state.history.count > Self.historyLimit { state.history.removeLast(state.history.count - Self.historyLimit) }
        return (state, started, ended)
    }

    /// Records the master's restart count and answers the restarts within `window`. A count
    /// lower than an earlier one means the master itself restarted: its samples start over.
    mutating func restarts(count: Int, now: Int64, window: Double) -> Int {
        if restartSamples.contains(where: { $0.count > count }) { restartSamples = [] }
        restartSamples.removeAll { Double(now - $0.time) > window }
        restartSamples.append(RestartSample(time: now, count: count))
        return count - (restartSamples.first?.count ?? count)
    }
}

/// Checks the node every `alert_interval` (and deletes the event log's days past
/// `event_retention`): the queue, the event log's deferrals, worker restarts,
/// disk space and the master's heartbeat against the thresholds (`AlertRules`); mails `alert_to`
/// when an alert starts and when it ends, through the node's own queue. Every worker runs one,
/// and the one holding `DATA/admin/alerts.lock` checks, so a node mails once.
// @unchecked Sendable: lockFile and task are guarded by `lock`; the rest is let
final class AlertMonitor: @unchecked Sendable {
    let settings: AlertSettings
    let context: PluginContext
    let events: MailEventLog
    let node: String
    private let lock = NIOLock()
    private var lockFile: CInt = -1
    private var task: Task<Void, Never>?

    init(settings: AlertSettings, context: PluginContext, events: MailEventLog, node: String) {
        self.settings = settings
        self.context = context
        self.events = events
        self.node = node
    }

    var dataDirectory: String { context.dataDirectory }

    func start() {
        let interval = settings.interval
        lock.withLock {
            task = Task { [weak self] in
                while !Task.isCancelled {
                    await self?.tick()
                    try? await Task.sleep(nanoseconds: UInt64(interval * 1e9))
                }
            }
        }
    }

    func stop() {
        lock.withLock {
            task?.cancel()
            task = nil
            if lockFile >= 0 {
                close(lockFile)
                lockFile = -1
            }
        }
    }

    /// Whether this process is the node's checker: it holds the lock (kept until it stops).
    private func holdsLock() -> Bool {
        lock.withLock {
            if lockFile >= 0 { return true }
            try? FileManager.default.createDirectory(atPath: dataDirectory + "/admin", withIntermediateDirectories: true)
            let fd = open(dataDirectory + "/admin/alerts.lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
            guard fd >= 0 else { return false }
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
                close(fd)
                return false
            }
            lockFile = fd
            return true
        }
    }

    func tick() async {
        guard holdsLock() else { return }
        let now = Int64(Date().timeIntervalSince1970)
        // The node's one checker also keeps the event log to its retention.
        let removed = events.removeDays(before: now - Int64(settings.eventRetention))
        if !removed.isEmpty { context.logger.info("event log days removed", metadata: ["files": "\(removed.joined(separator: " "))"]) }
        var state = AlertState.read(dataDirectory: dataDirectory) ?? AlertState()
        let observation = await observe(now: now, state: &state)
        let (next, started, ended) = state.next(holding: AlertRules.evaluate(observation, settings, node: node), now: now)
        do {
            try Self.write(next, dataDirectory: dataDirectory)
        } catch {
            context.logger.error("admin alerts cannot be written", metadata: ["error": "\(error)"])
        }
        for alert in started {
            context.logger.warning("alert", metadata: ["kind": "\(alert.kind)", "message": "\(alert.message)"])
            await mail(subject: "[Postern alert] \(alert.message.prefix(120))", body: alert.message, started: true, since: alert.since)
        }
        for alert in ended {
            context.logger.notice("alert ended", metadata: ["kind": "\(alert.kind)"])
            await mail(subject: "[Postern alert ended] \(alert.kind) on \(node)", body: "This no longer holds:\n\n\(alert.message)",
                       started: false, since: alert.since)
        }
    }

    func observe(now: Int64, state: inout AlertState) async -> NodeObservation {
        var o = NodeObservation()
        if let queue = context.services.queue, let list = try? await queue.list() {
            o.queued = list.filter { $0.queue != "hold" }.count
        }
        for event in events.events(from: now - Int64(settings.window), to: now + 1) {
            switch event.kind {
            case .delivered: o.delivered += 1
            case .deferred: o.deferred += 1
            case .bounced: o.bounced += 1
            default: break
            }
        }
        if let master = MasterStatusFile.read(dataDirectory: dataDirectory) {
            o.masterRunning = master.running
            if case .object(let fields) = master.value, case .object(let status)? = fields["status"],
               case .number(let count)? = status["workerRestarts"] {
                o.workerRestarts = state.restarts(count: Int(count), now: now, window: settings.window)
            }
        }
        var fs = statvfs()
        if statvfs(dataDirectory, &fs) == 0, fs.f_blocks > 0 {
            o.diskFreePercent = Double(fs.f_bavail) * 100 / Double(fs.f_blocks)
        }
        return o
    }

    static func write(_ state: AlertState, dataDirectory: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let path = AlertState.path(dataDirectory: dataDirectory)
        try encoder.encode(state).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// One mail to `alert_to` through the node's queue; nothing to do without recipients.
    private func mail(subject: String, body: String, started: Bool, since: Int64) async {
        guard !settings.recipients.isEmpty else { return }
        guard let queue = context.services.queue else {
            context.logger.error("alerts cannot be mailed: this node has no queue plugin", metadata: ["subject": "\(subject)"])
            return
        }
        let now = Int64(Date().timeIntervalSince1970)
        let host = ProcessInfo.processInfo.hostName
        let text = """
            From: Postern alerts <\(settings.sender)>\r
            To: \(settings.recipients.joined(separator: ", "))\r
            Subject: \(EncodedWords.encode(subject))\r
            Date: \(MailDate(secondsSince1970: now).rfc5322)\r
            Message-ID: <alert-\(now)-\(UInt32.random(in: 0...UInt32.max))@\(host)>\r
            Auto-Submitted: auto-generated\r
            MIME-Version: 1.0\r
            Content-Type: text/plain; charset=utf-8\r
            Content-Transfer-Encoding: 8bit\r
            \r
            \(body.replacingOccurrences(of: "\n", with: "\r\n"))\r
            \r
            Node: \(node)\r
            \(started ? "Since" : "Started"): \(MailDate(secondsSince1970: since).rfc5322)\r
            The administration console's status page lists the alerts that hold now.\r

            """
        let path = dataDirectory + "/admin/alert-\(UInt32.random(in: 0...UInt32.max)).eml"
        do {
            guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) else {
                throw NodeSettingsError("cannot write \(path)")
            }
            let envelope = Envelope(sender: settings.sender, recipients: settings.recipients.map { EnvelopeRecipient(address: $0) })
            _ = try await queue.enqueue(envelope: envelope, messagePath: path)
        } catch {
            unlink(path)
            context.logger.error("alert mail cannot be queued", metadata: ["error": "\(error)"])
        }
    }
}
