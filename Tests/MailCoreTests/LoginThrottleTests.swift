import PluginAPI
import XCTest

/// The throttle's policy over a process's own table: the address limit, the account lock that
/// holds whatever the address, the window, and what a success clears.
final class LoginThrottleTests: XCTestCase {
    func testAddressLimitWindowAndSuccess() async {
        let throttle = LoginThrottle(failureDelay: 1.5, maxFailures: 3, maxFailuresPerAccount: 0, window: 60)
        for i in 0..<2 {
            let delay = await throttle.failed("192.0.2.1", account: "user\(i)@example.org", now: 1000)
            XCTAssertEqual(delay, 1.5)
        }
        let allowedAfterTwo = await throttle.allows("192.0.2.1", now: 1001)
        XCTAssertTrue(allowedAfterTwo)
        _ = await throttle.failed("192.0.2.1", now: 1002)
        let allowedAfterThree = await throttle.allows("192.0.2.1", now: 1003)
        XCTAssertFalse(allowedAfterThree)
        let otherAddress = await throttle.allows("192.0.2.2", now: 1003)
        XCTAssertTrue(otherAddress)
        // The window passes for the first two: allowed again.
        let later = await throttle.allows("192.0.2.1", now: 1061)
        XCTAssertTrue(later)
        let blocked = await throttle.blocked(now: 1003)
        XCTAssertEqual(blocked, LoginFailureCounts(address: 1, account: 0), "no account limit: none counted")
        await throttle.succeeded("192.0.2.1")
        let cleared = await throttle.allows("192.0.2.1", now: 1004)
        XCTAssertTrue(cleared)
    }

    func testAccountLockFromManyAddresses() async {
        let throttle = LoginThrottle(failureDelay: 0, maxFailures: 100, maxFailuresPerAccount: 3, window: 300)
        for i in 1...3 { _ = await throttle.failed("198.51.100.\(i)", account: "Alice@Example.org", now: 10) }
        // Case does not matter: the address as an account name.
        let locked = await throttle.isLocked(account: "alice@example.org", now: 11)
        XCTAssertTrue(locked)
        let bob = await throttle.isLocked(account: "bob@example.org", now: 11)
        XCTAssertFalse(bob)
        let none = await throttle.isLocked(account: nil, now: 11)
        XCTAssertFalse(none)
        let blocked = await throttle.blocked(now: 11)
        XCTAssertEqual(blocked, LoginFailureCounts(address: 0, account: 1))
        // A success from one of the addresses for another account does not unlock alice.
        await throttle.succeeded("198.51.100.1", account: "bob@example.org")
        let stillLocked = await throttle.isLocked(account: "alice@example.org", now: 12)
        XCTAssertTrue(stillLocked)
        let expired = await throttle.isLocked(account: "alice@example.org", now: 311)
        XCTAssertFalse(expired)
    }

    func testZeroLimitsNeverRefuse() async {
        let throttle = LoginThrottle(failureDelay: 0, maxFailures: 0, maxFailuresPerAccount: 0, window: 300)
        for _ in 0..<50 { _ = await throttle.failed("203.0.113.9", account: "a@example.org", now: 1) }
        let allowed = await throttle.allows("203.0.113.9", now: 2)
        XCTAssertTrue(allowed)
        let locked = await throttle.isLocked(account: "a@example.org", now: 2)
        XCTAssertFalse(locked)
    }

    func testSharedTableIsUsedWhenRegistered() async {
        let table = InProcessLoginFailures()
        let a = LoginThrottle(failureDelay: 0, maxFailures: 2, window: 60, table: { table })
        let b = LoginThrottle(failureDelay: 0, maxFailures: 2, window: 60, table: { table })
        XCTAssertTrue(a.isShared)
        _ = await a.failed("192.0.2.7", now: 5)
        _ = await b.failed("192.0.2.7", now: 6)
        // Two throttles (two protocols) over one table: the limit counts both.
        let allowedByA = await a.allows("192.0.2.7", now: 7)
        XCTAssertFalse(allowedByA)
        let own = LoginThrottle(failureDelay: 0, maxFailures: 2, window: 60)
        XCTAssertFalse(own.isShared)
        let allowedByOwn = await own.allows("192.0.2.7", now: 7)
        XCTAssertTrue(allowedByOwn)
    }
}
