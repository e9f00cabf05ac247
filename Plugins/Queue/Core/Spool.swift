import Foundation
import PluginAPI

/// A queued message's state, one small JSON file that moves between the queue directories.
struct QueueEntry: Codable, Equatable {
    enum Kind: String, Codable { case normal, bounce, doubleBounce }

    var id: String
    /// The envelope as received (recipients before alias expansion).
    var envelope: Envelope
    var kind: Kind
    var size: Int
    /// Seconds since 1970.
    var arrival: Int64
    var attempts: Int
    var nextAttempt: Int64
    /// Whether the delay warning went out (once per message).
    var warned: Bool
    /// Recipients after alias expansion, each with its own state.
    var recipients: [QueueRecipient]
    /// Why it went to the hold queue on arrival (a filter's quarantine); cleared on release.
    var holdReason: String? = nil

    var pending: [QueueRecipient] { recipients.filter { $0.state == .pending } }
}

struct QueueRecipient: Codable, Equatable {
    enum State: String, Codable { case pending, delivered, failed }

    /// The final address this recipient is delivered to.
    var address: String
    /// The envelope recipient it came from (an alias expands one into several).
    var original: String
    var notify: [String]
    var orcpt: String?
    var state: State
    var lastReply: MailReply?
    /// The transport that decided it (`local`, `smtp`, ...), for the DSN's wording.
    var transport: String?
    /// Whether its final state was reported (DSN sent, or none wanted): reported once.
    var reported: Bool?

    /// RFC 3461 §4.1: without NOTIFY, failures and delays are reported; NEVER reports nothing.
    func wants(_ event: String) -> Bool {
        if notify.isEmpty { return event == "FAILURE" || event == "DELAY" }
        return notify.contains(event)
    }
}

/// The queue on disk (`DATA/spool/queue`):
///
///     data/ID        the message (RFC 5322 bytes), written once, fsynced; also the entry's lock
///     incoming/ID    entries not yet tried
///     active/ID      entries being delivered (their data file is flock'ed by the delivering process)
///     deferred/ID    entries waiting for their next attempt
///     hold/ID        entries an administrator (or a filter) put aside
///     tmp/           entries being written
///
/// An entry is rewritten by writing a new file in `tmp/`, fsyncing it and renaming it into its
/// queue directory, whose entry is then fsynced: a crash leaves the old state or the new one.
/// Processes (worker generations, `postern queue`) coordinate through `flock` on the data file:
/// whoever holds it owns the entry; an `active/` entry whose data file nobody holds was left by a
/// process that died, and is taken over.
struct Spool {
    static let queues = ["incoming", "active", "deferred", "hold"]
    let root: String

    var dataDirectory: String { root + "/data" }
    func dataPath(_ id: String) -> String { "\(root)/data/\(id)" }
    func entryPath(_ id: String, in queue: String) -> String { "\(root)/\(queue)/\(id)" }

    init(root: String) throws {
        self.root = root
        do {
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
        } catch {
            throw QueueError.refused("cannot create the queue directory \(root): \(error)")
        }
        for dir in [root + "/data", root + "/tmp"] + Self.queues.map({ root + "/" + $0 }) {
            if mkdir(dir, 0o750) != 0 && errno != EEXIST { throw QueueError.io("mkdir \(dir)", errno) }
        }
    }

    /// A queue id: the arrival time in base 36 (so ids sort by age) and 40 random bits.
    static func newID() -> String {
        let time = String(UInt64(Date().timeIntervalSince1970 * 1000), radix: 36, uppercase: true)
        let random = String(UInt64.random(in: 0..<(1 << 40)), radix: 36, uppercase: true)
        return time + String(repeating: "0", count: max(0, 8 - random.count)) + random
    }

    /// Writes `entry` into `queue`, durably, and removes it from `from` (when given and different).
    func write(_ entry: QueueEntry, to queue: String, from old: String? = nil) throws {
        let data = try JSONEncoder().encode(entry)
        let tmp = "\(root)/tmp/\(entry.id).\(UInt32.random(in: 0...UInt32.max))"
        try Self.writeDurably(Array(data), to: tmp)
        guard rename(tmp, entryPath(entry.id, in: queue)) == 0 else {
            let err = errno
            unlink(tmp)
            throw QueueError.io("rename into \(queue)", err)
        }
        try Self.syncDirectory(root + "/" + queue)
        if let old, old != queue {
            unlink(entryPath(entry.id, in: old))
            try Self.syncDirectory(root + "/" + old)
        }
    }

    /// Writes a new entry straight into `queue` (no temporary file: there is no older state to
    /// keep) without syncing it: `enqueue` syncs it with the message in the group commit, before
    /// the 250. A crash before then leaves an entry that may be torn, for a message that was never
    /// acknowledged; the manager sets such entries aside (`setAside`).
    func create(_ entry: QueueEntry, in queue: String) throws -> String {
        let path = entryPath(entry.id, in: queue)
        try Self.write(Array(try JSONEncoder().encode(entry)), to: path, flags: O_EXCL)
        return path
    }

    /// Moves an entry unchanged from one queue directory to another: one rename, not synced. A
    /// crash leaves it in one of the two, and both are scanned; nothing but the place changes.
    func move(_ id: String, from old: String, to queue: String) throws {
        guard rename(entryPath(id, in: old), entryPath(id, in: queue)) == 0 else { throw QueueError.io("move \(id) from \(old) to \(queue)", errno) }
    }

    /// An entry nobody can read, with its message, goes to `corrupt/` for a person to look at.
    /// Entries are synced before the 250, so an unreadable one comes from a crash before that (a
    /// message never acknowledged) or from damage; either way it is kept, never delivered.
    func setAside(_ id: String, in queue: String) {
        let dir = root + "/corrupt"
        if mkdir(dir, 0o750) != 0 && errno != EEXIST { return }
        rename(entryPath(id, in: queue), "\(dir)/\(id).entry")
        rename(dataPath(id), "\(dir)/\(id)")
    }

    func read(_ id: String, in queue: String) -> QueueEntry? {
        guard let data = FileManager.default.contents(atPath: entryPath(id, in: queue)) else { return nil }
        return try? JSONDecoder().decode(QueueEntry.self, from: data)
    }

    /// Every entry id per queue directory.
    func ids(in queue: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root + "/" + queue)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    }

    /// Where `id`'s entry is now (the newest copy when a crash left two).
    func locate(_ id: String) -> (queue: String, entry: QueueEntry)? {
        var best: (String, QueueEntry, Double)?
        for queue in Self.queues {
            var st = stat()
            guard stat(entryPath(id, in: queue), &st) == 0, let entry = read(id, in: queue) else { continue }
            let mtime = Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
            if best == nil || mtime > best!.2 { best = (queue, entry, mtime) }
        }
        guard let best else { return nil }
        // Copies elsewhere are older states of a move a crash interrupted.
        for queue in Self.queues where queue != best.0 { unlink(entryPath(id, in: queue)) }
        return (best.0, best.1)
    }

    /// Removes the entry everywhere and its message.
    func remove(_ id: String) {
        for queue in Self.queues { unlink(entryPath(id, in: queue)) }
        unlink(dataPath(id))
    }

    /// Takes the lock that says "this process owns the entry", without waiting. Nil when another
    /// process holds it (or the message is gone).
    func lock(_ id: String) -> EntryLock? {
        let fd = open(dataPath(id), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            return nil
        }
        return EntryLock(fd: fd)
    }

    static func writeDurably(_ bytes: [UInt8], to path: String) throws {
        try write(bytes, to: path, sync: true)
    }

    /// Writes a whole file; `flags` adds to create-and-truncate (O_EXCL: never over another).
    static func write(_ bytes: [UInt8], to path: String, flags: Int32 = 0, sync: Bool = false) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | flags, 0o640)
        guard fd >= 0 else { throw QueueError.io("create \(path)", errno) }
        defer { close(fd) }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw QueueError.io("write \(path)", errno) }
            offset += n
        }
        if sync { guard fsync(fd) == 0 else { throw QueueError.io("fsync \(path)", errno) } }
    }

    static func syncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw QueueError.io("open \(path)", errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw QueueError.io("fsync \(path)", errno) }
    }
}

/// An flock held on an entry's data file; released when closed (or when the process dies).
// @unchecked Sendable: one owner at a time: scan(), modify() or requeue() holds it, or hands it to one attempt task to release
final class EntryLock: @unchecked Sendable {
    private var fd: Int32
    init(fd: Int32) { self.fd = fd }
    func release() {
        if fd >= 0 { close(fd) }
        fd = -1
    }
    deinit { release() }
}

enum QueueError: Error, CustomStringConvertible {
    case io(String, Int32)
    case refused(String)
    /// Not known yet (a service not active, a store not answering): callers defer, never bounce.
    case temporary(String)

    var description: String {
        switch self {
        case .io(let what, let err): return "\(what): \(String(cString: strerror(err)))"
        case .refused(let why): return why
        case .temporary(let why): return why
        }
    }
}
