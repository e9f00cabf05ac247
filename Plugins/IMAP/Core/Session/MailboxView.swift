import PluginAPI

/// What one session has told its client about the selected mailbox, and what it knows the store
/// holds now: the message sequence numbers (position in `uids`), the session's \Recent set, and
/// the changes not announced yet.
///
/// Per-message flags are not kept: every change in the store raises the message's MODSEQ above
/// `syncedModseq`, so what changed is what the store lists above it, less what this session told
/// its client itself (`told`). That keeps an idle session's view to a few runs of UIDs instead of
/// a dictionary entry per message (issue 18: 10,000 idle sessions per node).
///
/// The store is the truth; the view lags behind it by design. RFC 3501 §7.4.1 forbids EXPUNGE
/// responses while a FETCH, STORE or SEARCH is answered (sequence numbers would shift under the
/// client), so a message expunged by another session stays numbered here (`vanished`) until an
/// EXPUNGE may be sent. New messages and flag changes are likewise announced at the next point
/// where the session may speak (`takeUpdates`). Pure value type: no I/O, testable on its own.
struct MailboxView: Sendable, Equatable {
    /// A change to announce: the message's flags and MODSEQ as the store last listed them.
    struct Message: Sendable, Equatable {
        var flags: [String]
        var modseq: UInt64
    }

    let uidValidity: UInt32
    /// UIDs in sequence-number order (ascending): `uids[n - 1]` is message n as the client knows it.
    private(set) var uids = UIDList()
    /// Changes this session made and told its client itself (STORE, \Seen by FETCH), by UID, at
    /// the MODSEQ they were told with: not announced again. Forgotten once `syncedModseq` passes.
    private var told: [UInt32: UInt64] = [:]
    /// The session's \Recent messages (RFC 3501 §2.3.2).
    private(set) var recent: Set<UInt32> = []
    private(set) var highestModseq: UInt64
    /// The store's HIGHESTMODSEQ as of the last state read from it whole or since: every change
    /// at or below it is in the view. Unlike `highestModseq`, the session's own changes (told by
    /// `record`) do not raise it, since another session's change may have a lower MODSEQ.
    private(set) var syncedModseq: UInt64
    private(set) var uidNext: UInt32
    /// Keywords seen in the mailbox, in first-seen order (for the FLAGS response).
    private(set) var keywords: [String] = []

    /// Gone from the store, still numbered until an EXPUNGE (or VANISHED) is sent.
    private(set) var vanished: Set<UInt32> = []
    /// Flags or MODSEQ changed since the client last heard of the message.
    private(set) var changed: [UInt32: Message] = [:]
    /// A keyword appeared: FLAGS and PERMANENTFLAGS must be sent again.
    private(set) var keywordsChanged = false
    /// The EXISTS and RECENT counts the client last heard.
    private(set) var announcedExists = 0
    private(set) var announcedRecent = 0

    /// The view right after SELECT, from the store's `selection` (UIDs ascending).
    init(_ selection: MailboxSelection, recent: Set<UInt32>) {
        uidValidity = selection.uidValidity
        uidNext = selection.uidNext
        highestModseq = selection.highestModseq
        syncedModseq = selection.highestModseq
        uids = UIDList(ascending: selection.uids)
        keywords = selection.keywords
        uidNext = max(uidNext, largestUID &+ 1)
        self.recent = recent.filter { uids.contains(uid: $0) }
        // SELECT itself reports these numbers; the session sends them as part of its answer.
        announcedExists = uids.count
        announcedRecent = self.recent.count
    }

    var count: Int { uids.count }
    var largestUID: UInt32 { uids.last ?? 0 }

    /// The sequence number of `uid`, if it is numbered.
    func sequenceNumber(of uid: UInt32) -> UInt32? {
        uids.position(of: uid).map { UInt32($0 + 1) }
    }

    func uid(at sequenceNumber: UInt32) -> UInt32? {
        sequenceNumber >= 1 && Int(sequenceNumber) <= uids.count ? uids[Int(sequenceNumber) - 1] : nil
    }

    /// The messages a set of sequence numbers names, ascending, as (sequence number, UID).
    /// `*` is the last message; numbers above the count are dropped (check `exceeds` first).
    func resolve(sequenceSet set: IMAPSequenceSet) -> [(seq: UInt32, uid: UInt32)] {
        var out: [(seq: UInt32, uid: UInt32)] = []
        for range in set.resolved(largest: UInt32(uids.count)) {
            for seq in range { out.append((seq, uids[Int(seq) - 1])) }
        }
        return out
    }

    /// The numbered messages whose UIDs fall in a UID set, ascending. `*` is the largest UID
    /// numbered here (RFC 3501 §6.4.8: `n:*` includes it even when it is below n).
    func resolve(uidSet set: IMAPSequenceSet) -> [(seq: UInt32, uid: UInt32)] {
        var out: [(seq: UInt32, uid: UInt32)] = []
        for range in set.resolved(largest: largestUID) {
            var i = uids.lowerBound(range.lowerBound)
            while i < uids.count && uids[i] <= range.upperBound {
                out.append((UInt32(i + 1), uids[i]))
                i += 1
            }
        }
        return out
    }

    /// The UIDs of numbered messages among `list`, ascending (for `$` and search results).
    func resolve(uids list: [UInt32]) -> [(seq: UInt32, uid: UInt32)] {
        list.sorted().compactMap { uid in sequenceNumber(of: uid).map { ($0, uid) } }
    }

    /// Contiguous UID ranges covering the given numbered messages (consecutive sequence numbers
    /// give one range, since nothing numbered lies between their UIDs).
    static func uidRanges(_ resolved: [(seq: UInt32, uid: UInt32)]) -> [ClosedRange<UInt32>] {
        var out: [ClosedRange<UInt32>] = []
        var start: (seq: UInt32, uid: UInt32)? = nil
        var last: (seq: UInt32, uid: UInt32)? = nil
        for item in resolved {
            if let l = last, item.seq == l.seq + 1 {
                last = item
                continue
            }
            if let s = start, let l = last { out.append(s.uid...l.uid) }
            start = item
            last = item
        }
        if let s = start, let l = last { out.append(s.uid...l.uid) }
        return out
    }

    func isVanished(_ uid: UInt32) -> Bool { vanished.contains(uid) }

    /// Flags as the client is told them: the stored ones, and \Recent for this session's.
    func flags(_ stored: [String], of uid: UInt32) -> [String] {
        Self.ordered(stored, recent: recent.contains(uid))
    }

    static let systemFlagOrder = ["\\answered", "\\flagged", "\\deleted", "\\seen", "\\draft"]

    /// Flags in the order responses give them: system flags in RFC 3501 order, \Recent, then
    /// keywords as stored (the order means nothing; a fixed one makes answers comparable).
    static func ordered(_ flags: [String], recent: Bool) -> [String] {
        var system = flags.filter { $0.hasPrefix("\\") }
        system.sort { (systemFlagOrder.firstIndex(of: $0.lowercased()) ?? 9) < (systemFlagOrder.firstIndex(of: $1.lowercased()) ?? 9) }
        return system + (recent ? ["\\Recent"] : []) + flags.filter { !$0.hasPrefix("\\") }
    }

    // MARK: - Taking in the store's state

    /// Compares the store's full listing (ascending UIDs) with the view: messages gone become
    /// `vanished`, new ones are numbered at the end, changed flags and MODSEQs are remembered for
    /// announcing. Returns the UIDs numbered just now (the session decides which are \Recent).
    @discardableResult
    mutating func absorb(listing: [StoredMessage], highestModseq: UInt64, uidNext: UInt32) -> [UInt32] {
        var present = Set<UInt32>()
        present.reserveCapacity(listing.count)
        for m in listing { present.insert(m.uid) }
        let added = take(listing, highestModseq: highestModseq, uidNext: uidNext)
        for uid in uids where !present.contains(uid) && !vanished.contains(uid) {
            vanished.insert(uid)
            changed[uid] = nil
        }
        return added
    }

    /// Takes in only what changed since `syncedModseq` (new messages and new flags, ascending
    /// UIDs) and the store's message count. Returns nil, having changed nothing, when the count
    /// says messages the view still numbers were expunged: only a full listing tells which.
    /// Otherwise returns the UIDs numbered just now, as `absorb(listing:)` does.
    mutating func absorb(changes: [StoredMessage], messageCount: Int, highestModseq: UInt64, uidNext: UInt32) -> [UInt32]? {
        let arriving = changes.filter { $0.uid > largestUID }.count
        guard messageCount == uids.count - vanished.count + arriving else { return nil }
        return take(changes, highestModseq: highestModseq, uidNext: uidNext)
    }

    /// New flags and MODSEQs of known messages (remembered for announcing), and new messages
    /// numbered at the end; then the store's HIGHESTMODSEQ and UIDNEXT as of that read. A known
    /// message changed when its MODSEQ is above `syncedModseq` and is not what this session told
    /// itself. A UID below the largest numbered one that the view never had was expunged before
    /// this session saw it (UIDs only grow), so it is ignored.
    private mutating func take(_ listing: [StoredMessage], highestModseq: UInt64, uidNext: UInt32) -> [UInt32] {
        var added: [UInt32] = []
        let largest = largestUID
        for m in listing {
            if m.uid > largestUID {
                uids.append(m.uid)
                noteKeywords(m.flags)
                added.append(m.uid)
            } else if m.uid <= largest, m.modseq > syncedModseq, told[m.uid] != m.modseq,
                      !vanished.contains(m.uid), uids.contains(uid: m.uid) {
                changed[m.uid] = Message(flags: m.flags, modseq: m.modseq)
                noteKeywords(m.flags)
            }
        }
        syncedModseq = max(syncedModseq, highestModseq)
        self.highestModseq = max(self.highestModseq, highestModseq)
        self.uidNext = max(self.uidNext, uidNext, largestUID &+ 1)
        told = told.filter { $0.value > syncedModseq }
        return added
    }

    /// Records what this session itself changed (STORE, \Seen by FETCH) and is telling the client
    /// in the same response, so it is not announced again.
    mutating func record(uid: UInt32, flags: [String], modseq: UInt64) {
        guard uids.contains(uid: uid), !vanished.contains(uid) else { return }
        if modseq > syncedModseq { told[uid] = modseq }
        changed[uid] = nil
        noteKeywords(flags)
        highestModseq = max(highestModseq, modseq)
    }

    mutating func markRecent(_ list: [UInt32]) {
        for uid in list where uids.contains(uid: uid) { recent.insert(uid) }
    }

    /// Messages this session expunged itself (EXPUNGE, MOVE): they go at once, with the
    /// responses the caller sends now. Returns the sequence numbers to announce, in sending order
    /// (each EXPUNGE renumbers the rest, so a later one counts after the earlier removals).
    mutating func remove(expunged list: [UInt32]) -> [UInt32] {
        var numbers: [UInt32] = []
        for uid in list.sorted() {
            guard let seq = sequenceNumber(of: uid) else { continue }
            uids.remove(at: Int(seq) - 1)
            told[uid] = nil
            recent.remove(uid)
            vanished.remove(uid)
            changed[uid] = nil
            numbers.append(seq)
        }
        announcedExists -= numbers.count
        announcedRecent = min(announcedRecent, recent.count)
        return numbers
    }

    // MARK: - Announcing

    /// How the client gets told.
    struct Announcing: Sendable {
        /// EXPUNGE (or VANISHED) may be sent now (not during FETCH, STORE, SEARCH).
        var expungesAllowed: Bool
        /// CONDSTORE is on: flag FETCHes carry MODSEQ.
        var condStore: Bool
        /// QRESYNC is on: VANISHED instead of EXPUNGE, and flag FETCHes carry UID.
        var qresync: Bool
        /// PERMANENTFLAGS to repeat when a new keyword appears.
        var permanentFlags: [IMAPFlag]
    }

    /// The untagged responses that bring the client up to date, removing from the view what they
    /// announce: EXPUNGE/VANISHED, FLAGS when keywords appeared, EXISTS, RECENT, flag FETCHes.
    mutating func takeUpdates(_ how: Announcing) -> [IMAPResponse] {
        var out: [IMAPResponse] = []
        if how.expungesAllowed && !vanished.isEmpty {
            let gone = vanished.sorted()
            if how.qresync {
                _ = remove(expunged: gone)
                if let set = IMAPSequenceSet(sorting: gone) { out.append(.data(.vanished(earlier: false, set))) }
            } else {
                for seq in remove(expunged: gone) { out.append(.data(.expunge(seq))) }
            }
        }
        if keywordsChanged {
            keywordsChanged = false
            out.append(.data(.flags(mailboxFlags)))
            out.append(.status(.untagged(.ok, .permanentFlags(how.permanentFlags), "Flags permitted.")))
        }
        if uids.count != announcedExists {
            announcedExists = uids.count
            out.append(.data(.exists(UInt32(uids.count))))
            // RECENT goes with EXISTS (the count of recent messages only changes with arrivals).
            announcedRecent = recent.count
            out.append(.data(.recent(UInt32(recent.count))))
        } else if recent.count != announcedRecent {
            announcedRecent = recent.count
            out.append(.data(.recent(UInt32(recent.count))))
        }
        for (uid, m) in changed.sorted(by: { $0.key < $1.key }) {
            guard let seq = sequenceNumber(of: uid) else { continue }
            var items: [IMAPFetchResponseItem] = []
            if how.qresync { items.append(.uid(uid)) }
            items.append(.flags(flags(m.flags, of: uid).map(IMAPFlag.init)))
            if how.condStore { items.append(.modSeq(m.modseq)) }
            out.append(.data(.fetch(seq, items)))
        }
        changed.removeAll()
        return out
    }

    /// Whether anything waits to be announced (given whether expunges may be sent).
    func hasPendingUpdates(expungesAllowed: Bool) -> Bool {
        (expungesAllowed && !vanished.isEmpty) || keywordsChanged || uids.count != announcedExists
            || recent.count != announcedRecent || !changed.isEmpty
    }

    /// The FLAGS response's list: the system flags and every keyword in use.
    var mailboxFlags: [IMAPFlag] {
        [.answered, .flagged, .deleted, .seen, .draft] + keywords.map(IMAPFlag.init)
    }

    private mutating func noteKeywords(_ flags: [String]) {
        for f in flags where !f.hasPrefix("\\") && !keywords.contains(f) {
            keywords.append(f)
            keywordsChanged = true
        }
    }

    /// Flags compared as sets: system flags without case, keywords as written.
    static func sameFlags(_ a: [String], _ b: [String]) -> Bool {
        func key(_ f: String) -> String { f.hasPrefix("\\") ? f.lowercased() : f }
        return Set(a.map(key)) == Set(b.map(key))
    }

    /// The numbers of `ranges` (ascending, disjoint) that are not in `present` (ascending), as
    /// ascending ranges: what VANISHED (EARLIER) reports without listing a huge range number by number.
    static func missing(_ ranges: [ClosedRange<UInt32>], present: [UInt32]) -> [ClosedRange<UInt32>] {
        var out: [ClosedRange<UInt32>] = []
        var i = 0
        for range in ranges {
            var next = range.lowerBound
            var exhausted = false
            while i < present.count && present[i] < range.lowerBound { i += 1 }
            while i < present.count && present[i] <= range.upperBound {
                let uid = present[i]
                if uid > next { out.append(next...(uid - 1)) }
                if uid == UInt32.max { exhausted = true; break }
                next = uid + 1
                i += 1
            }
            if !exhausted && next <= range.upperBound { out.append(next...range.upperBound) }
        }
        return out
    }
}
