import Foundation
import PluginAPI

// The verifier's cache of fetched key records: a message with several signatures of one domain,
// and the next messages from it, ask DNS once.

/// Keys (and permanent failures to find them) by `selector._domainkey.domain`, at most `capacity`
/// entries, each for at most `maxAge` seconds; the least recently used goes first. Temporary DNS
/// failures are never stored.
package final class DKIMKeyCache<Value: Sendable>: Sendable {
    private struct Entry {
        var value: Value
        var stored: Date
        var lastUse: UInt64
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var clock: UInt64 = 0
    }

    package let capacity: Int
    package let maxAge: TimeInterval
    private let state = NIOLockedValueBox(State())

    package init(capacity: Int = 256, maxAge: TimeInterval = 3600) {
        self.capacity = max(1, capacity)
        self.maxAge = maxAge
    }

    package var count: Int { state.withLockedValue { $0.entries.count } }

    package func value(for name: String, now: Date) -> Value? {
        state.withLockedValue { state in
            guard var entry = state.entries[name] else { return nil }
            // A clock set back counts as fresh; one moved on past maxAge drops the entry.
            guard now.timeIntervalSince(entry.stored) <= maxAge else {
                state.entries[name] = nil
                return nil
            }
            state.clock += 1
            entry.lastUse = state.clock
            state.entries[name] = entry
            return entry.value
        }
    }

    package func store(_ value: Value, for name: String, now: Date) {
        state.withLockedValue { state in
            state.clock += 1
            if state.entries[name] == nil, state.entries.count >= capacity,
               let oldest = state.entries.min(by: { $0.value.lastUse < $1.value.lastUse })?.key {
                state.entries[oldest] = nil
            }
            state.entries[name] = Entry(value: value, stored: now, lastUse: state.clock)
        }
    }
}
