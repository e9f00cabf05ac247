/// The UIDs a session numbers, ascending, kept as runs of consecutive UIDs.
///
/// Why runs: every idle session holds one of these for its selected mailbox, and mailboxes are
/// mostly long stretches of consecutive UIDs (delivery appends, expunges come in clusters). A
/// 10,000-message mailbox is a handful of runs (tens of bytes) instead of 40 KB of `UInt32`s per
/// session, which is what lets one node hold 10,000 idle sessions in a few hundred MB.
/// Position lookups binary-search the runs' starting positions.
struct UIDList: Sendable, Equatable, RandomAccessCollection {
    private struct Run: Sendable, Equatable {
        var first: UInt32
        var count: UInt32
        var last: UInt32 { first &+ (count - 1) }
    }

    private var runs: [Run] = []
    /// `starts[i]` is the position of `runs[i].first` in the list.
    private var starts: [UInt32] = []
    private(set) var count: Int = 0

    init() {}

    /// From UIDs in ascending order.
    init<S: Sequence>(ascending uids: S) where S.Element == UInt32 {
        for uid in uids { append(uid) }
    }

    var startIndex: Int { 0 }
    var endIndex: Int { count }
    var last: UInt32? { runs.last.map(\.last) }

    subscript(position: Int) -> UInt32 {
        precondition(position >= 0 && position < count, "UIDList position out of range")
        let r = run(containingPosition: position)
        return runs[r].first &+ UInt32(position - Int(starts[r]))
    }

    /// Adds a UID above every one in the list.
    mutating func append(_ uid: UInt32) {
        if let tail = runs.last {
            precondition(uid > tail.last, "UIDList.append needs ascending UIDs")
            if uid == tail.last &+ 1 {
                runs[runs.count - 1].count += 1
                count += 1
                return
            }
        }
        runs.append(Run(first: uid, count: 1))
        starts.append(UInt32(count))
        count += 1
    }

    /// The position of `uid`, if it is in the list.
    func position(of uid: UInt32) -> Int? {
        guard let r = run(containingUID: uid) else { return nil }
        return Int(starts[r]) + Int(uid - runs[r].first)
    }

    /// The position of the first UID not below `uid` (`count` when every UID is below it).
    func lowerBound(_ uid: UInt32) -> Int {
        // The first run whose last UID is not below `uid`.
        var low = 0, high = runs.count
        while low < high {
            let mid = (low + high) / 2
            if runs[mid].last < uid { low = mid + 1 } else { high = mid }
        }
        guard low < runs.count else { return count }
        return Int(starts[low]) + (uid > runs[low].first ? Int(uid - runs[low].first) : 0)
    }

    func contains(uid: UInt32) -> Bool { run(containingUID: uid) != nil }

    /// Removes the UID at `position`, splitting its run when it was inside one.
    mutating func remove(at position: Int) {
        precondition(position >= 0 && position < count, "UIDList position out of range")
        let r = run(containingPosition: position)
        let offset = UInt32(position - Int(starts[r]))
        let run = runs[r]
        if run.count == 1 {
            runs.remove(at: r)
            starts.remove(at: r)
        } else if offset == 0 {
            runs[r].first += 1
            // The next UID takes the removed one's position.
            runs[r].count -= 1
        } else if offset == run.count - 1 {
            runs[r].count -= 1
        } else {
            runs[r].count = offset
            runs.insert(Run(first: run.first + offset + 1, count: run.count - offset - 1), at: r + 1)
            starts.insert(starts[r] + offset + 1, at: r + 1)
        }
        // Every run after the removed UID starts one position earlier (from `r`: a removed run
        // of one left its successor there).
        var i = r
        while i < starts.count {
            if starts[i] > UInt32(position) { starts[i] -= 1 }
            i += 1
        }
        count -= 1
    }

    private func run(containingPosition position: Int) -> Int {
        // The last run starting at or before `position`.
        var low = 0, high = starts.count
        while low < high {
            let mid = (low + high) / 2
            if Int(starts[mid]) <= position { low = mid + 1 } else { high = mid }
        }
        return low - 1
    }

    private func run(containingUID uid: UInt32) -> Int? {
        var low = 0, high = runs.count
        while low < high {
            let mid = (low + high) / 2
            if runs[mid].last < uid { low = mid + 1 } else { high = mid }
        }
        return low < runs.count && runs[low].first <= uid ? low : nil
    }
}
