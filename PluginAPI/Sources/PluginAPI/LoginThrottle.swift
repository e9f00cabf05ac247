import Foundation

/// Slows down password guessing, for every protocol that logs users in (IMAP, POP3, SMTP AUTH):
/// each failed login waits `failureDelay` before its reply, and a client address with
/// `maxFailures` failures within `window` seconds is refused outright until the window passes.
/// One table per process (a worker); an attacker spread over worker processes meets each table.
// @unchecked Sendable: failures is only read and written under `lock`; failureDelay, maxFailures and window are let
public final class LoginThrottle: @unchecked Sendable {
    public let failureDelay: Double
    public let maxFailures: Int
    public let window: Double
    private let lock = NSLock()
    private var failures: [String: [Double]] = [:]

    public init(failureDelay: Double = 2, maxFailures: Int = 10, window: Double = 300) {
        self.failureDelay = failureDelay
        self.maxFailures = maxFailures
        self.window = window
    }

    /// Whether `address` may try to log in now.
    public func allows(_ address: String, now: Double = Date().timeIntervalSince1970) -> Bool {
        lock.withLock {
            let recent = (failures[address] ?? []).filter { now - $0 < window }
            failures[address] = recent.isEmpty ? nil : recent
            return recent.count < maxFailures
        }
    }

    /// Records a failure; returns how long to wait before replying.
    public func failed(_ address: String, now: Double = Date().timeIntervalSince1970) -> Double {
        lock.withLock {
            var recent = (failures[address] ?? []).filter { now - $0 < window }
            recent.append(now)
            failures[address] = recent
            // Bounded memory under a spray of addresses: forget the oldest when too many.
            if failures.count > 100_000, let oldest = failures.min(by: { ($0.value.last ?? 0) < ($1.value.last ?? 0) })?.key {
                failures[oldest] = nil
            }
        }
        return failureDelay
    }

    /// A success clears the address's record.
    public func succeeded(_ address: String) {
        lock.withLock { failures[address] = nil }
    }
}
