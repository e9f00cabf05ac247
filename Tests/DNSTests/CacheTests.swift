import PosternTestSupport
import PluginAPI
import XCTest
@testable import PosternDNSCore

/// The cache with a clock driven by hand: TTLs, the size bound, and one lookup in flight per
/// question however many ask.
final class CacheTests: XCTestCase {
    final class ManualClock: @unchecked Sendable {
        private let time = NIOLockedValueBox(Duration.seconds(1000))
        func now() -> Duration { time.withLockedValue { $0 } }
        func advance(_ seconds: Double) { time.withLockedValue { $0 += .milliseconds(Int(seconds * 1000)) } }
    }

    /// Counts the lookups the cache makes.
    final class Resolutions: @unchecked Sendable {
        private let count = NIOLockedValueBox(0)
        var value: Int { count.withLockedValue { $0 } }
        func resolve(_ result: DNSLookupResult, ttl: UInt32?) -> @Sendable () async throws -> (DNSLookupResult, ttl: UInt32?) {
            { self.count.withLockedValue { $0 += 1 }; return (result, ttl) }
        }
    }

    let a1 = DNSLookupResult.records([DNSResourceRecord(name: dnsName("h.test"), type: .a, ttl: 5, data: .a([192, 0, 2, 1]))])
    let a2 = DNSLookupResult.records([DNSResourceRecord(name: dnsName("h.test"), type: .a, ttl: 5, data: .a([192, 0, 2, 2]))])

    private func key(_ text: String, _ type: DNSRecordType = .a) -> DNSCacheKey { DNSCacheKey(name: dnsName(text), type: type) }

    func testEntriesLiveForTheirTTL() async throws {
        let clock = ManualClock()
        let cache = DNSCache(capacity: 10, now: { clock.now() })
        let lookups = Resolutions()
        var (result, source) = try await cache.value(for: key("h.test"), resolve: lookups.resolve(a1, ttl: 5))
        XCTAssertEqual(result, a1)
        XCTAssertEqual(source, .network)
        clock.advance(4.9)
        (result, source) = try await cache.value(for: key("H.Test"), resolve: lookups.resolve(a2, ttl: 5))
        XCTAssertEqual(result, a1, "live entry, found without case")
        XCTAssertEqual(source, .cache)
        clock.advance(0.2)
        (result, source) = try await cache.value(for: key("h.test"), resolve: lookups.resolve(a2, ttl: 5))
        XCTAssertEqual(result, a2, "expired after 5 s")
        XCTAssertEqual(source, .network)
        XCTAssertEqual(lookups.value, 2)
        // Another type is another entry.
        (_, source) = try await cache.value(for: key("h.test", .aaaa), resolve: lookups.resolve(.noData, ttl: 60))
        XCTAssertEqual(source, .network)
    }

    func testNegativeAnswersAreCachedOnlyWithATTL() async throws {
        let clock = ManualClock()
        let cache = DNSCache(capacity: 10, now: { clock.now() })
        let lookups = Resolutions()
        for _ in 0..<3 { _ = try await cache.value(for: key("gone.test"), resolve: lookups.resolve(.nameError, ttl: 60)) }
        XCTAssertEqual(lookups.value, 1)
        for _ in 0..<3 { _ = try await cache.value(for: key("nosoa.test"), resolve: lookups.resolve(.nameError, ttl: nil)) }
        XCTAssertEqual(lookups.value, 4, "without an SOA a negative answer is asked again each time")
        for _ in 0..<3 { _ = try await cache.value(for: key("zero.test"), resolve: lookups.resolve(a1, ttl: 0)) }
        XCTAssertEqual(lookups.value, 7, "TTL 0 is not cached")
    }

    func testLongTTLsAreCapped() async throws {
        let clock = ManualClock()
        let cache = DNSCache(capacity: 10, now: { clock.now() })
        let lookups = Resolutions()
        _ = try await cache.value(for: key("h.test"), resolve: lookups.resolve(a1, ttl: .max))
        clock.advance(Double(DNSCache.maxTTL) - 1)
        _ = try await cache.value(for: key("h.test"), resolve: lookups.resolve(a1, ttl: .max))
        XCTAssertEqual(lookups.value, 1)
        clock.advance(2)
        _ = try await cache.value(for: key("h.test"), resolve: lookups.resolve(a1, ttl: .max))
        XCTAssertEqual(lookups.value, 2)
    }

    func testErrorsAreNotCached() async throws {
        let clock = ManualClock()
        let cache = DNSCache(capacity: 10, now: { clock.now() })
        let lookups = Resolutions()
        do {
            _ = try await cache.value(for: key("h.test")) { throw DNSError.temporary("SERVFAIL") }
            XCTFail("the error must come through")
        } catch {
            XCTAssertEqual(error as? DNSError, .temporary("SERVFAIL"))
        }
        let (result, source) = try await cache.value(for: key("h.test"), resolve: lookups.resolve(a1, ttl: 5))
        XCTAssertEqual(result, a1)
        XCTAssertEqual(source, .network)
    }

    func testSizeIsBoundedOldestOut() async throws {
        let clock = ManualClock()
        let cache = DNSCache(capacity: 3, now: { clock.now() })
        let lookups = Resolutions()
        for host in ["a", "b", "c", "d"] { _ = try await cache.value(for: key("\(host).test"), resolve: lookups.resolve(a1, ttl: 300)) }
        let count = await cache.count
        XCTAssertEqual(count, 3)
        for host in ["b", "c", "d"] {
            let (_, source) = try await cache.value(for: key("\(host).test"), resolve: lookups.resolve(a1, ttl: 300))
            XCTAssertEqual(source, .cache, host)
        }
        let (_, source) = try await cache.value(for: key("a.test"), resolve: lookups.resolve(a1, ttl: 300))
        XCTAssertEqual(source, .network, "the oldest entry went first")
        // Storing the same keys again and again keeps the bookkeeping bounded and the entries right.
        for round in 0..<2000 {
            clock.advance(400)
            _ = try await cache.value(for: key("k\(round % 2).test"), resolve: lookups.resolve(a1, ttl: 300))
        }
        let after = await cache.count
        XCTAssertLessThanOrEqual(after, 3)
    }

    func testZeroCapacityCachesNothing() async throws {
        let clock = ManualClock()
        let cache = DNSCache(capacity: 0, now: { clock.now() })
        let lookups = Resolutions()
        for _ in 0..<3 { _ = try await cache.value(for: key("h.test"), resolve: lookups.resolve(a1, ttl: 300)) }
        XCTAssertEqual(lookups.value, 3)
    }

    func testConcurrentIdenticalQuestionsShareOneLookup() async throws {
        let clock = ManualClock()
        let cache = DNSCache(capacity: 0, now: { clock.now() })
        let started = NIOLockedValueBox(0)
        let gate = AsyncGate()
        let results = try await withThrowingTaskGroup(of: (DNSLookupResult, DNSCacheSource).self) { group in
            for _ in 0..<20 {
                group.addTask {
                    try await cache.value(for: DNSCacheKey(name: dnsName("h.test"), type: .a)) {
                        started.withLockedValue { $0 += 1 }
                        await gate.wait()
                        return (self.a1, 300)
                    }
                }
            }
            // Let every caller reach the cache before the one lookup answers (with capacity 0 a
            // latecomer would start a second lookup, and the count below would say so).
            while started.withLockedValue({ $0 }) == 0 { try await Task.sleep(nanoseconds: 1_000_000) }
            try await Task.sleep(nanoseconds: 300_000_000)
            await gate.open()
            return try await group.reduce(into: []) { $0.append($1) }
        }
        XCTAssertEqual(started.withLockedValue { $0 }, 1, "one lookup for twenty callers")
        XCTAssertEqual(results.count, 20)
        XCTAssertTrue(results.allSatisfy { $0.0 == a1 })
        XCTAssertEqual(results.filter { $0.1 == .network }.count, 1)
        XCTAssertEqual(results.filter { $0.1 == .shared }.count, 19)
    }
}

/// Suspends callers until opened.
actor AsyncGate {
    private var isOpen = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func wait() async {
        if isOpen { return }
        await withCheckedContinuation { waiters.append($0) }
    }

    func open() {
        isOpen = true
        for waiter in waiters { waiter.resume() }
        waiters = []
    }
}
