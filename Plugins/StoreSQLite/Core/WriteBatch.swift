import Foundation
import GRDB
import PluginAPI

/// Group commit of the index's delivery writes.
///
/// Why: with `synchronous = FULL` every SQLite commit is an fsync of the WAL, and SQLite takes
/// commits one at a time, so concurrent deliveries (LMTP sessions, the queue's local transport)
/// used to wait for each other's fsync in turn. Here deliveries that arrive while a commit is on
/// its way collect, and the next transaction applies all of them, each in a savepoint of its
/// own (one delivery's failure rolls back only its own changes), then commits once: one fsync
/// for the group. Nobody is answered before that commit returned, so a delivered recipient is
/// still on disk before its 250.
///
/// The transactions run on a thread of this batcher's own (blocking in SQLite's lock and the
/// fsync there, never on an event loop or the cooperative pool).
// @unchecked Sendable: `pending` and `running` are only touched under `lock`.
final class WriteBatch: @unchecked Sendable {
    /// One delivery's work: applied inside its savepoint, it returns how to answer its caller
    /// once the transaction committed; `fail` answers it when the commit itself failed.
    private struct Item {
        let apply: (Database) -> () -> Void
        let fail: (Error) -> Void
    }

    private let pool: DatabasePool
    private let lock = NSLock()
    private var pending: [Item] = []
    private var running = false
    private let queue = DispatchQueue(label: "store-sqlite.deliveries")
    /// The most deliveries one transaction applies (a bound on how long the write lock is held).
    static let limit = 64
    /// Test builds only: a file whose presence kills the process between a group's commit and
    /// its answers (the 250s), once (the file is removed first).
    private let faultFile: String?

    init(pool: DatabasePool, faultFile: String? = nil) {
        self.pool = pool
        self.faultFile = faultFile
    }

    /// Runs `body` in the next group transaction; returns its value once that transaction has
    /// committed (fsynced), or throws its error (nothing of it was written) or the commit's.
    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (answer: CheckedContinuation<T, Error>) in
            let item = Item(apply: { db in
                do {
                    var value: T?
                    try db.inSavepoint {
                        value = try body(db)
                        return .commit
                    }
                    let done = value!
                    return { answer.resume(returning: done) }
                } catch {
                    return { answer.resume(throwing: error) }
                }
            }, fail: { answer.resume(throwing: $0) })
            lock.lock()
            pending.append(item)
            let start = !running
            running = true
            lock.unlock()
            if start { queue.async { [self] in drain() } }
        }
    }

    /// Commits groups until nobody is waiting.
    private func drain() {
        while true {
            lock.lock()
            let batch = Array(pending.prefix(Self.limit))
            pending.removeFirst(batch.count)
            if batch.isEmpty {
                running = false
                lock.unlock()
                return
            }
            lock.unlock()
            var answers: [() -> Void] = []
            answers.reserveCapacity(batch.count)
            do {
                try pool.writeWithoutTransaction { db in
                    try db.inTransaction(.immediate) {
                        answers = batch.map { $0.apply(db) }
                        return .commit
                    }
                }
                #if DEBUG
                if let faultFile, unlink(faultFile) == 0 { kill(getpid(), SIGKILL) }
                #endif
                answers.forEach { $0() }
            } catch let error as DatabaseError where SQLiteStore.isBusy(error) {
                let busy = StorageError.temporary("the index is busy (\(error.resultCode)): another process holds it past busy_timeout")
                batch.forEach { $0.fail(busy) }
            } catch {
                batch.forEach { $0.fail(error) }
            }
        }
    }
}
