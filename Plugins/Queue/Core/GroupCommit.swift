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
// @unchecked Sendable: `pending`, `stopped` and the batch state are only touched under `condition`.
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

    private let condition = NSCondition()
    private var pending: [Request] = []
    private var started = false
    /// The group being synced: paths, the next one to take, how many are still being synced.
    private var batch: [String] = []
    private var batchErrors: [String: Int32] = [:]
    private var nextInBatch = 0
    private var unfinished = 0
    private let width: Int
    /// Test builds only: a file whose presence kills the process between a group's fsyncs and
    /// its release (the 250s), once (the file is removed first).
    private let faultFile: String?
    /// How many groups and messages went through, for the log and the tests.
    private(set) var groups = 0

    init(width: Int = 16, faultFile: String? = nil) {
        self.width = max(1, width)
        self.faultFile = faultFile
    }

    /// Returns once every file and directory is on disk (fsynced), or throws the first fsync
    /// failure among them (the caller refuses the message: nothing was acknowledged).
    func commit(files: [String], directories: [String]) async throws {
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, Error>) in
            condition.lock()
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
            condition.broadcast()
            condition.unlock()
        }
    }

    private func runCommitter() {
        while true {
            condition.lock()
            while pending.isEmpty { condition.wait() }
            let group = pending
            pending = []
            // Each path once: sessions of one group share the queue's directories.
            var seen = Set<String>()
            batch = (group.flatMap(\.files) + group.flatMap(\.directories)).filter { seen.insert($0).inserted }
            batchErrors = [:]
            nextInBatch = 0
            unfinished = batch.count
            condition.broadcast()
            condition.unlock()

            syncBatch()
            condition.lock()
            while unfinished > 0 { condition.wait() }
            let errors = batchErrors
            batch = []
            groups += 1
            condition.unlock()

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
            condition.lock()
            while nextInBatch >= batch.count { condition.wait() }
            condition.unlock()
            syncBatch()
        }
    }

    /// Takes paths of the current batch until none is left; the committer and every syncer
    /// thread run this at once.
    private func syncBatch() {
        while true {
            condition.lock()
            guard nextInBatch < batch.count else {
                condition.unlock()
                return
            }
            let path = batch[nextInBatch]
            nextInBatch += 1
            condition.unlock()

            let code = Self.sync(path)
            condition.lock()
            if code != 0 { batchErrors[path] = code }
            unfinished -= 1
            if unfinished == 0 { condition.broadcast() }
            condition.unlock()
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
