import Foundation
import PluginAPI

/// `[plugin.admin]`'s alert settings: the thresholds, who is mailed, how often the node is checked.
struct AlertSettings: Sendable, Equatable {
    static let fields: [ConfigField] = [
        ConfigField("alert_to", .array(.string), default: .array([]),
                    help: "addresses mailed when an alert starts and when it ends; empty: alerts show in the console only"),
        ConfigField("alert_from", .string, default: .string(""), help: "the alerts' sender; default: postmaster@ the host name"),
        ConfigField("alert_interval", .duration, default: .string("1m"), help: "how often the node is checked"),
        ConfigField("alert_window", .duration, default: .string("1h"), help: "the period deferrals and worker restarts are counted over"),
        ConfigField("alert_queue_size", .integer(0...100_000_000), default: .integer(1000),
                    help: "alert when more messages than this wait in the queue (incoming, active, deferred); 0: never"),
        ConfigField("alert_deferred_percent", .integer(0...100), default: .integer(50),
                    help: "alert when more than this share of delivery attempts in the window were deferred; 0: never"),
        ConfigField("alert_min_attempts", .integer(1...1_000_000), default: .integer(20),
                    help: "delivery attempts in the window before the deferred share counts"),
        ConfigField("alert_worker_restarts", .integer(0...100_000), default: .integer(3),
                    help: "alert when workers restarted this many times in the window; 0: never"),
        ConfigField("alert_disk_free_percent", .integer(0...100), default: .integer(10),
                    help: "alert when the data directory's file system has less free space than this; 0: never"),
        ConfigField("event_retention", .duration, default: .string("400d"),
                    help: "the event log's days older than this are deleted (reports reach back at most 400 days)"),
    ]

    var recipients: [String]
    var sender: String
    var interval: Double
    var window: Double
    var queueSize: Int
    var deferredPercent: Int
    var minAttempts: Int
    var workerRestarts: Int
    var diskFreePercent: Int
    /// Seconds the event log keeps.
    var eventRetention: Double

    init(_ config: ConfigSection, hostName: String) {
        recipients = config.strings("alert_to") ?? []
        let from = config.string("alert_from") ?? ""
        sender = from.isEmpty ? "postmaster@" + hostName : from
        interval = max(0.2, config.duration("alert_interval") ?? 60)
        window = max(1, config.duration("alert_window") ?? 3600)
        queueSize = config.int("alert_queue_size") ?? 1000
        deferredPercent = config.int("alert_deferred_percent") ?? 50
        minAttempts = config.int("alert_min_attempts") ?? 20
        workerRestarts = config.int("alert_worker_restarts") ?? 3
        diskFreePercent = config.int("alert_disk_free_percent") ?? 10
        eventRetention = max(86_400, config.duration("event_retention") ?? 400 * 86_400)
    }
}

/// What one check of the node found.
struct NodeObservation: Sendable, Equatable {
    /// Messages waiting for delivery (not held).
    var queued: Int?
    /// Delivery attempts in the window, per recipient.
    var delivered = 0
    var deferred = 0
    var bounced = 0
    /// Worker restarts in the window; nil when the master's status file is missing.
    var workerRestarts: Int?
    /// Free space of the data directory's file system, in percent.
    var diskFreePercent: Double?
    /// False when the master's heartbeat (its status file) is stale.
    var masterRunning: Bool?
}

/// An alert that holds now.
struct Alert: Codable, Sendable, Equatable {
    /// `queue-size`, `deferred-ratio`, `worker-restarts`, `disk-space` or `master-down`.
    var kind: String
    var message: String
    /// Seconds since 1970: when it started.
    var since: Int64
}

/// The thresholds applied to an observation: which alerts hold, with a message that says what is
/// wrong and what to look at. Pure.
enum AlertRules {
    static func evaluate(_ o: NodeObservation, _ s: AlertSettings, node: String) -> [(kind: String, message: String)] {
        var alerts: [(String, String)] = []
        if s.queueSize > 0, let queued = o.queued, queued > s.queueSize {
            alerts.append(("queue-size", "\(node): \(queued) messages wait in the queue (the alert is over \(s.queueSize)); "
                           + "see the console's queue page for their reasons, or postern queue list"))
        }
        let attempts = o.delivered + o.deferred + o.bounced
        if s.deferredPercent > 0, attempts >= s.minAttempts, o.deferred * 100 > s.deferredPercent * attempts {
            alerts.append(("deferred-ratio", "\(node): \(o.deferred) of \(attempts) delivery attempts in the last \(duration(s.window)) were deferred "
                           + "(the alert is over \(s.deferredPercent)%); the reports page lists the deferral reasons"))
        }
        if s.workerRestarts > 0, let restarts = o.workerRestarts, restarts >= s.workerRestarts {
            alerts.append(("worker-restarts", "\(node): workers restarted \(restarts) times in the last \(duration(s.window)) "
                           + "(the alert is at \(s.workerRestarts)); the node's log says why they stopped"))
        }
        if s.diskFreePercent > 0, let free = o.diskFreePercent, free < Double(s.diskFreePercent) {
            alerts.append(("disk-space", "\(node): the data directory's disk has \(String(format: "%.1f", free))% free "
                           + "(the alert is under \(s.diskFreePercent)%); free space before mail is refused"))
        }
        if o.masterRunning == false {
            alerts.append(("master-down", "\(node): the master process's heartbeat is stale: it is not running or hangs; "
                           + "check postern ctl status on the node"))
        }
        return alerts
    }

    static func duration(_ seconds: Double) -> String {
        seconds >= 3600 && seconds.truncatingRemainder(dividingBy: 3600) == 0 ? "\(Int(seconds / 3600)) h"
            : seconds >= 60 && seconds.truncatingRemainder(dividingBy: 60) == 0 ? "\(Int(seconds / 60)) min" : "\(Int(seconds)) s"
    }
}
