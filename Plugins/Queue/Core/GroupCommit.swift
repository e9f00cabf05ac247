import Foundation

/// Group commit of the queue's new files: every session hands in the files of its message and
/// waits; one committer thread takes everything handed in while the previous group was on its
/// way to the disk, fsyncs that group's files (and each of its directories once) on several
/// threads at once, and then releases the whole group, whose sessions send their 250s together.
///
/// Why threads of its own: an fsync blocks its thread for the disk's flush. On Swift's
/// cooperative pool (one thread per core) two fsyncs would stall every session of the process;
/// here the file system sees many fsyncs at once and folds them into one journal commit (ext4
/// here: 2,000 fsyncs/s from one thread, 9,000/s from 16), and a directory shared by the group
/// (`data/`, `incoming/`) is synced once for all of it.
// @unchecked Sendable: `pending`, `committerIdle`, `started` and the batch state are only touched
// under `lock`; the semaphores are thread-safe.
final class GroupCommit: @unchecked Sendable {
    struct Failure: Error, CustomStringConvertible {
        let path: String
        let code: Int32
        var description: String { "fsync \(path): \(String(cString: strerror(code)))" }
    }

    private struct Request {
        let files: [String]
        let directories: [String]
        let done: CheckedContinuation<Void, Error>
    }

    private let lock = NSLock()
    private var pending: [Request] = []
    private var started = false
    private var committerIdle = false
    /// The group being synced: paths, the next one to take, how many are still being synced.
    private var batch: [String] = []
    private var batchErrors: [String: Int32] = [:]
    private var nextInBatch = 0
    private var unfinished = 0
    /// Wakes the committer when a request comes while it waits (one signal per wait).
    private let requests = DispatchSemaphore(value: 0)
    /// Wakes one syncer per path of a batch beyond the committer's own: a group of four paths
    /// wakes three threads, not all of them.
    private let work = DispatchSemaphore(value: 0)
    /// Signalled once per batch, by whoever syncs its last path.
    private let batchDone = DispatchSemaphore(value: 0)
    private let width: Int
    /// Test builds only: a file whose presence kills the process between a group's fsyncs and
    /// its release (the 250s), once (the file is removed first).
    private let faultFile: String?

    init(width: Int = 16, faultFile: String? = nil) {
        self.width = max(1, width)
        self.faultFile = faultFile
    }

    /// Returns once every file and directory is on disk (fsynced), or throws the first fsync
    /// failure among them (the caller refuses the message: nothing was acknowledged).
    func commit(files: [String], directories: [String]) async throws {
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, Error>) in
            lock.lock()
            if !started {
                started = true
                let committer = Thread { [self] in runCommitter() }
                committer.name = "queue-commit"
                committer.start()
                for i in 1..<width {
                    let syncer = Thread { [self] in runSyncer() }
                    syncer.name = "queue-fsync-\(i)"
                    syncer.start()
                }
            }
            pending.append(Request(files: files, directories: directories, done: done))
            let wake = committerIdle
            committerIdle = false
            lock.unlock()
            if wake { requests.signal() }
        }
    }

    private func runCommitter() {
        while true {
            lock.lock()
            while pending.isEmpty {
                committerIdle = true
                lock.unlock()
                requests.wait()
                lock.lock()
            }
            let group = pending
            pending = []
            // Each path once: sessions of one group share the queue's directories.
            var seen = Set<String>()
            batch = (group.flatMap(\.files) + group.flatMap(\.directories)).filter { seen.insert($0).inserted }
            batchErrors = [:]
            nextInBatch = 0
            unfinished = batch.count
            let helpers = min(batch.count, width) - 1
            lock.unlock()

            for _ in 0..<max(0, helpers) { work.signal() }
            syncBatch()
            batchDone.wait()
            lock.lock()
            let errors = batchErrors
            batch = []
            lock.unlock()

            #if DEBUG
            if let faultFile, unlink(faultFile) == 0 { kill(getpid(), SIGKILL) }
            #endif
            for request in group {
                if let failed = (request.files + request.directories).first(where: { errors[$0] != nil }) {
                    request.done.resume(throwing: Failure(path: failed, code: errors[failed]!))
                } else {
                    request.done.resume()
                }
            }
        }
    }

    private func runSyncer() {
        while true {
            work.wait()
            syncBatch()
        }
    }

    /// Takes paths of the current batch until none is left; the committer and the syncers it
    /// woke run this at once. Whoever syncs the batch's last path signals `batchDone`.
    private func syncBatch() {
        while true {
            lock.lock()
            guard nextInBatch < batch.count else {
                lock.unlock()
                return
            }
            let path = batch[nextInBatch]
            nextInBatch += 1
            lock.unlock()

            let code = Self.sync(path)
            lock.lock()
            if code != 0 { batchErrors[path] = code }
            unfinished -= 1
            let last = unfinished == 0
            lock.unlock()
            if last { batchDone.signal() }
        }
    }

    /// 0, or the errno of the open or fsync that failed.
    static func sync(_ path: String) -> Int32 {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return errno }
        defer { close(fd) }
        return fsync(fd) == 0 ? 0 : errno
    }
}
