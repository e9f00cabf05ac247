// The resolver's cache: answers kept for their TTL (negative ones per RFC 2308), at most
// `capacity` of them, and one lookup in flight per question however many callers ask at once.

/// A finished lookup as callers and the cache see it.
enum DNSLookupResult: Equatable, Sendable {
    /// The records of the type asked (after CNAMEs), never empty.
    case records([DNSResourceRecord])
    /// The name exists without records of that type.
    case noData
    /// The name does not exist.
    case nameError
}

struct DNSCacheKey: Hashable, Sendable, CustomStringConvertible {
    /// Hashing and equality of `DNSName` ignore case, so `Example.ORG` and `example.org` share an entry.
    var name: DNSName
    var type: DNSRecordType

    var description: String { "\(name) \(type)" }
}

/// Where an answer came from, for metrics and tests.
enum DNSCacheSource: Equatable, Sendable {
    /// A live cache entry; no query was sent.
    case cache
    /// Another caller's lookup of the same question, already in flight.
    case shared
    /// A lookup this call started.
    case network
}

actor DNSCache {
    /// Entries above a day are kept a day: a mistaken long TTL should not pin a route for weeks.
    static let maxTTL: UInt32 = 86_400

    private struct Entry {
        var result: DNSLookupResult
        var expires: Duration
        var generation: UInt64
    }

    let capacity: Int
    /// Monotonic time since an arbitrary origin; tests drive it by hand.
    private let now: @Sendable () -> Duration
    private var entries: [DNSCacheKey: Entry] = [:]
    /// Keys in insertion order, with the generation they were inserted at; an item whose
    /// generation no longer matches its entry is stale and skipped. Eviction pops the front.
    private var order: [(key: DNSCacheKey, generation: UInt64)] = []
    private var orderHead = 0
    private var generation: UInt64 = 0
    private var inFlight: [DNSCacheKey: Task<(DNSLookupResult, ttl: UInt32?), Error>] = [:]

    init(capacity: Int, now: @escaping @Sendable () -> Duration = DNSCache.monotonicNow) {
        self.capacity = max(0, capacity)
        self.now = now
    }

    /// Time on the process's continuous clock, measured from the first call.
    static let monotonicNow: @Sendable () -> Duration = {
        let origin = ContinuousClock.now
        return { origin.duration(to: .now) }
    }()

    var count: Int { entries.count }

    /// The cached answer for `key` if it is still live; otherwise the answer of the lookup in
    /// flight for it, or of a new one made with `resolve`, which returns the answer and how many
    /// seconds it may be kept (nil or 0: not at all). Errors are not cached.
    func value(for key: DNSCacheKey,
               resolve: @escaping @Sendable () async throws -> (DNSLookupResult, ttl: UInt32?)) async throws -> (DNSLookupResult, DNSCacheSource) {
        if let entry = entries[key] {
            if entry.expires > now() { return (entry.result, .cache) }
            entries[key] = nil
        }
        if let running = inFlight[key] {
            return (try await running.value.0, .shared)
        }
        let task = Task { try await resolve() }
        inFlight[key] = task
        do {
            let (result, ttl) = try await task.value
            inFlight[key] = nil
            store(result, for: key, ttl: ttl)
            return (result, .network)
        } catch {
            inFlight[key] = nil
            throw error
        }
    }

    private func store(_ result: DNSLookupResult, for key: DNSCacheKey, ttl: UInt32?) {
        guard capacity > 0, let ttl, ttl > 0 else { return }
        generation += 1
        entries[key] = Entry(result: result, expires: now() + .seconds(Int(min(ttl, Self.maxTTL))), generation: generation)
        order.append((key, generation))
        while entries.count > capacity, orderHead < order.count {
            let oldest = order[orderHead]
            orderHead += 1
            if entries[oldest.key]?.generation == oldest.generation { entries[oldest.key] = nil }
        }
        // Keys stored again leave stale items behind; drop them once they outnumber the live ones,
        // so the order list stays within a small multiple of the capacity.
        if order.count - orderHead > 2 * capacity + 16 {
            order = order[orderHead...].filter { entries[$0.key]?.generation == $0.generation }
            orderHead = 0
        } else if orderHead > 1024 && orderHead * 2 > order.count {
            order.removeFirst(orderHead)
            orderHead = 0
        }
    }
}
