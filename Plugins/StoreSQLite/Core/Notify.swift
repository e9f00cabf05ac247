import Foundation
import GRDB
import PluginAPI

/// Mailbox change notifications between processes (an IMAP IDLE in one worker sees a delivery
/// made by the LMTP worker of another generation, or by `postern admin import`).
///
/// Every committed change rewrites a small file `notify/KEY` in place (the last change, as JSON;
/// KEY is a hash of the owner and the mailbox's own name, so neither posting nor subscribing
/// needs the index: a subscription never blocks on the database); each process that has
/// subscribers watches the store's `notify` directory with inotify (the close of a written file)
/// and hands each event to the subscribers of that mailbox. The kernel wakes the watcher within
/// milliseconds and nothing polls. Changes that follow each other quickly may coalesce into one
/// event: subscribers treat an event as "look again" (IMAP reads the mailbox state anew), so a
/// lost intermediate change loses nothing. For the same reason a file read while it is being
/// rewritten (the JSON does not parse) is still an event.
///
/// In place, not a new file renamed over the old one: that created and deleted an inode per
/// change, which ext4 makes expensive at delivery rates (its search past recently deleted
/// inodes was a large share of a delivery's CPU).
// @unchecked Sendable: handlers and watching are only read and written under `lock`; directory is let
final class ChangeChannel: @unchecked Sendable {
    let directory: String
    private let lock = NSLock()
    private var handlers: [String: [UUID: @Sendable (MailboxChange) -> Void]] = [:]
    private var watching = false

    init(directory: String) throws {
        self.directory = directory
        try BlobStore.makeDirectory(directory)
    }

    /// Announces a committed change of mailbox `id`. Best effort: a failure to write the file
    /// (disk full) loses the wake-up, never data; IMAP clients see the change at their next command.
    /// The file name for a mailbox: its owner (without case) and own name (INBOX without case).
    static func key(owner: String, mailbox: String) -> String {
        let name = mailbox.uppercased() == "INBOX" ? "INBOX" : mailbox
        return SHA256.hash(data: Array("\(owner.lowercased())\u{0}\(name)".utf8)).prefix(16).map { String(format: "%02x", $0) }.joined()
    }

    func post(key id: String, _ change: MailboxChange) {
        guard let data = try? JSONEncoder().encode(change) else { return }
        // Written without fsync: a wake-up is not data, and a crash that loses it loses nothing;
        // every committed change would pay that fsync.
        let fd = open("\(directory)/\(id)", O_WRONLY | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { return }
        let bytes = [UInt8](data)
        _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        _ = ftruncate(fd, off_t(bytes.count))
        // The close is the event (IN_CLOSE_WRITE).
        close(fd)
    }

    // @unchecked Sendable: its only stored property is a let closure, which takes ChangeChannel's `lock`
    final class Subscription: ChangeSubscription, @unchecked Sendable {
        let cancelAction: () -> Void
        init(_ cancel: @escaping () -> Void) { cancelAction = cancel }
        func cancel() { cancelAction() }
    }

    func subscribe(key id: String, _ handler: @escaping @Sendable (MailboxChange) -> Void) throws -> any ChangeSubscription {
        let token = UUID()
        try lock.withLock {
            if !watching { try startWatching() }
            handlers[id, default: [:]][token] = handler
        }
        return Subscription { [weak self] in
            guard let self else { return }
            self.lock.withLock {
                self.handlers[id]?[token] = nil
                if self.handlers[id]?.isEmpty == true { self.handlers[id] = nil }
            }
        }
    }

    /// One watcher thread per process, started by the first subscription, living as long as the
    /// process (the plugin is never unloaded).
    private func startWatching() throws {
        let fd = inotify_init1(Int32(IN_CLOEXEC))
        guard fd >= 0 else { throw StorageError.permissionDenied("inotify_init1: \(String(cString: strerror(errno)))") }
        guard inotify_add_watch(fd, directory, UInt32(IN_MOVED_TO) | UInt32(IN_CLOSE_WRITE)) >= 0 else {
            close(fd)
            throw StorageError.permissionDenied("inotify_add_watch \(directory): \(String(cString: strerror(errno)))")
        }
        watching = true
        let thread = Thread { [weak self] in self?.watch(fd) }
        thread.name = "store-notify"
        thread.start()
    }

    private func watch(_ fd: Int32) {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        let headerSize = MemoryLayout<inotify_event>.size
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return
            }
            var offset = 0
            var changed = Set<String>()
            while offset + headerSize <= n {
                let length = buffer.withUnsafeBytes { Int($0.load(fromByteOffset: offset + 12, as: UInt32.self)) }
                let nameBytes = buffer[(offset + headerSize)..<min(offset + headerSize + length, n)].prefix { $0 != 0 }
                let name = String(decoding: nameBytes, as: UTF8.self)
                if name.count == 32, !name.hasPrefix(".") { changed.insert(name) }
                offset += headerSize + length
            }
            for id in changed { deliver(id) }
        }
    }

    private func deliver(_ id: String) {
        let targets = lock.withLock { handlers[id].map { Array($0.values) } ?? [] }
        guard !targets.isEmpty else { return }
        // Caught mid-rewrite, the file says nothing parseable: still "look again" (the
        // subscription puts the mailbox's name in).
        let change = FileManager.default.contents(atPath: "\(directory)/\(id)").flatMap { try? JSONDecoder().decode(MailboxChange.self, from: $0) }
            ?? MailboxChange(user: "", mailbox: "", kind: .flagsChanged)
        for handler in targets { handler(change) }
    }
}

extension SQLiteStore: ChangeNotifier {
    /// The owner and own name of a mailbox name as `user` sees it.
    static func owned(_ user: String, _ mailbox: String) -> (owner: String, mailbox: String) {
        MailboxNamespace.splitShared(mailbox) ?? (user, mailbox)
    }

    /// For other plugins announcing a change they made through this store's API (the store
    /// already announces its own).
    func post(_ change: MailboxChange) {
        let (owner, name) = Self.owned(change.user, change.mailbox)
        changes.post(key: ChangeChannel.key(owner: owner, mailbox: name), change)
    }

    /// Subscribers get the change under the name they subscribed with. The caller has checked
    /// that `user` may see the mailbox (SELECT did); a name that does not exist never fires.
    func subscribe(user: String, mailbox: String, _ handler: @escaping @Sendable (MailboxChange) -> Void) -> any ChangeSubscription {
        let (owner, name) = Self.owned(user, mailbox)
        guard let subscription = try? changes.subscribe(key: ChangeChannel.key(owner: owner, mailbox: name), { change in
            var seen = change
            seen.user = user
            seen.mailbox = mailbox
            handler(seen)
        }) else {
            return ChangeChannel.Subscription {}
        }
        return subscription
    }

    /// Announces a committed change (call after the write transaction returned).
    func announce(_ box: ResolvedMailbox, _ kind: MailboxChange.Kind, uids: [UInt32] = [], modseq: Int64 = 0) {
        changes.post(key: ChangeChannel.key(owner: box.owner, mailbox: box.name),
                     MailboxChange(user: box.owner, mailbox: box.name, kind: kind, uids: uids, modseq: UInt64(max(0, modseq))))
    }
}
