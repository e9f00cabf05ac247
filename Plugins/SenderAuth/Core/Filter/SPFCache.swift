import Foundation
import PluginAPI

/// The SPF results of the last minute, by client address, envelope sender and HELO name: the
/// check runs once per transaction although RCPT (for a `reject` policy) and end of message both
/// want it, and concurrent asks for one key share one evaluation.
package final class SPFCache: Sendable {
    private struct Entry {
        var made: Double
        var task: Task<SPFOutcome, Never>
    }

    private let entries = NIOLockedValueBox<[String: Entry]>([:])
    private let capacity: Int
    private let lifetime: Double

    package init(capacity: Int = 4096, lifetime: Double = 60) {
        self.capacity = capacity
        self.lifetime = lifetime
    }

    /// The outcome for the key, evaluating it with `evaluate` when it is not known (or too old).
    package func outcome(ip: String, sender: String, helo: String,
                         evaluate: @escaping @Sendable () async -> SPFOutcome) async -> SPFOutcome {
        let key = ip + "\u{0}" + sender.lowercased() + "\u{0}" + helo.lowercased()
        let now = ProcessInfo.processInfo.systemUptime
        let task = entries.withLockedValue { entries -> Task<SPFOutcome, Never> in
            if let entry = entries[key], now - entry.made < lifetime { return entry.task }
            if entries.count >= capacity {
                // Forget the expired ones first; when all are fresh, the whole table (a burst of
                // distinct clients has no reuse to lose).
                entries = entries.filter { now - $0.value.made < lifetime }
                if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            }
            let task = Task { await evaluate() }
            entries[key] = Entry(made: now, task: task)
            return task
        }
        return await task.value
    }
}
