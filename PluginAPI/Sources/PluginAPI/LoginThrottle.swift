import Foundation

/// Where failed logins are counted. The throttle asks it, so that where it lives decides who shares
/// the counts: `InProcessLoginFailures` is one worker's memory; the store plugin registers a table
/// in the data directory (`.loginFailures`) that every worker of the node, and every protocol,
/// reads and writes, so an attacker spread over workers and protocols meets one count.
public protocol LoginFailureTable: Sendable {
    /// Counts one failed login from `address`, naming `account` when the client named one.
    func record(address: String, account: String?, at time: Double) async
    /// Failures since `since`: from `address`, and against `account` from any address.
    func counts(address: String, account: String?, since: Double) async -> LoginFailureCounts
    /// Forgets the failures of `address`, and those against `account`, after a successful login.
    func clear(address: String, account: String?) async
    /// How many addresses and accounts have at least `addressLimit` / `accountLimit` failures
    /// since `since` (a limit of 0 counts nothing): the blocked gauges of `/metrics`.
    func blocked(addressLimit: Int, accountLimit: Int, since: Double) async -> LoginFailureCounts
}

public struct LoginFailureCounts: Sendable, Equatable {
    public var address: Int
    public var account: Int
    public init(address: Int, account: Int) {
        self.address = address
        self.account = account
    }
}

/// Slows down password guessing, for every protocol that logs users in (IMAP, POP3, SMTP AUTH,
/// webmail): each failed login waits `failureDelay` before its reply; a client address with
/// `maxFailures` failures within `window` seconds is refused outright until the window passes; an
/// account with `maxFailuresPerAccount` failures (from any addresses) within the window cannot log
/// in, even with the right password, until the window passes. While an account is locked every
/// attempt gets the answer of a wrong password, so the lock tells a guesser nothing.
///
/// The counts live in a `LoginFailureTable`: the shared one a storage plugin registers when there
/// is one (`HostServices.loginFailures`), else this process's own.
public final class LoginThrottle: Sendable {
    public let failureDelay: Double
    public let maxFailures: Int
    public let maxFailuresPerAccount: Int
    public let window: Double
    private let shared: @Sendable () -> (any LoginFailureTable)?
    private let local = InProcessLoginFailures()
    /// Addresses refused and accounts locked right now, set after each failure.
    private let gauges: (addresses: Gauge, accounts: Gauge)?

    /// `table` is asked at each use (services register after the plugin that builds the throttle
    /// may have activated); nil means this process's table. A limit of 0 means no limit.
    public init(failureDelay: Double = 2, maxFailures: Int = 10, maxFailuresPerAccount: Int = 0, window: Double = 300,
                table: @escaping @Sendable () -> (any LoginFailureTable)? = { nil },
                gauges: (addresses: Gauge, accounts: Gauge)? = nil) {
        self.failureDelay = failureDelay
        self.maxFailures = maxFailures
        self.maxFailuresPerAccount = maxFailuresPerAccount
        self.window = window
        self.shared = table
        self.gauges = gauges
    }

    /// A protocol plugin's throttle: over the table registered in the plugin's services (the
    /// store's, shared by the node) when there is one, with the gauges
    /// `postern_login_blocked_addresses` and `postern_login_locked_accounts` on `/metrics`.
    public convenience init(context: PluginContext, failureDelay: Double, maxFailures: Int, maxFailuresPerAccount: Int,
                            window: Double) {
        let services = context.services
        self.init(failureDelay: failureDelay, maxFailures: maxFailures, maxFailuresPerAccount: maxFailuresPerAccount,
                  window: window, table: { [weak services] in services?.loginFailures },
                  gauges: (context.gauge("postern_login_blocked_addresses"), context.gauge("postern_login_locked_accounts")))
    }

    private var table: any LoginFailureTable { shared() ?? local }

    /// Whether the table in use is shared beyond this process.
    public var isShared: Bool { shared() != nil }

    private static func key(_ account: String?) -> String? {
        account.map { $0.lowercased() }.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Whether `address` may try to log in now.
    public func allows(_ address: String, now: Double = Date().timeIntervalSince1970) async -> Bool {
        guard maxFailures > 0 else { return true }
        return await table.counts(address: address, account: nil, since: now - window).address < maxFailures
    }

    /// Whether `account` is locked by failures against it (from any address).
    public func isLocked(account: String?, now: Double = Date().timeIntervalSince1970) async -> Bool {
        guard maxFailuresPerAccount > 0, let account = Self.key(account) else { return false }
        return await table.counts(address: "", account: account, since: now - window).account >= maxFailuresPerAccount
    }

    /// Records a failure; returns how long to wait before replying.
    public func failed(_ address: String, account: String? = nil, now: Double = Date().timeIntervalSince1970) async -> Double {
        await table.record(address: address, account: Self.key(account), at: now)
        if let gauges {
            let blocked = await blocked(now: now)
            gauges.addresses.record(blocked.address)
            gauges.accounts.record(blocked.account)
        }
        return failureDelay
    }

    /// A success clears the address's record and the account's.
    public func succeeded(_ address: String, account: String? = nil) async {
        await table.clear(address: address, account: Self.key(account))
    }

    /// Addresses and accounts blocked now, for gauges.
    public func blocked(now: Double = Date().timeIntervalSince1970) async -> LoginFailureCounts {
        await table.blocked(addressLimit: maxFailures, accountLimit: maxFailuresPerAccount, since: now - window)
    }
}

/// One process's failure counts, in memory: the table when no storage plugin shares one.
// @unchecked Sendable: the dictionaries are only read and written under `lock`
public final class InProcessLoginFailures: LoginFailureTable, @unchecked Sendable {
    private let lock = NSLock()
    private var byAddress: [String: [Double]] = [:]
    private var byAccount: [String: [Double]] = [:]
    /// Keys kept at most per dictionary; under a spray of addresses the oldest are forgotten.
    private let capacity: Int

    public init(capacity: Int = 100_000) {
        self.capacity = capacity
    }

    public func record(address: String, account: String?, at time: Double) async {
        lock.withLock {
            Self.append(time, to: address, in: &byAddress, capacity: capacity)
            if let account { Self.append(time, to: account, in: &byAccount, capacity: capacity) }
        }
    }

    public func counts(address: String, account: String?, since: Double) async -> LoginFailureCounts {
        lock.withLock {
            LoginFailureCounts(address: (byAddress[address] ?? []).filter { $0 >= since }.count,
                               account: account.map { (byAccount[$0] ?? []).filter { $0 >= since }.count } ?? 0)
        }
    }

    public func clear(address: String, account: String?) async {
        lock.withLock {
            byAddress[address] = nil
            if let account { byAccount[account] = nil }
        }
    }

    public func blocked(addressLimit: Int, accountLimit: Int, since: Double) async -> LoginFailureCounts {
        lock.withLock {
            func count(_ table: [String: [Double]], _ limit: Int) -> Int {
                limit <= 0 ? 0 : table.values.filter { $0.filter { $0 >= since }.count >= limit }.count
            }
            return LoginFailureCounts(address: count(byAddress, addressLimit), account: count(byAccount, accountLimit))
        }
    }

    private static func append(_ time: Double, to key: String, in table: inout [String: [Double]], capacity: Int) {
        if table[key] == nil, table.count >= capacity,
           let oldest = table.min(by: { ($0.value.last ?? 0) < ($1.value.last ?? 0) })?.key {
            table[oldest] = nil
        }
        // Only the recent past matters; a list never grows past what a window can hold in a burst.
        var list = table[key] ?? []
        if list.count >= 10_000 { list.removeFirst(list.count - 9_999) }
        list.append(time)
        table[key] = list
    }
}
