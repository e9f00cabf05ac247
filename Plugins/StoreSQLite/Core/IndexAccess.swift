import Foundation
import GRDB
import PluginAPI

// Every read and write of the index goes through here, so that an index still locked by another
// process after `busy_timeout` is a temporary failure (StorageError.temporary: 451 at RCPT, a
// deferral in the queue, NO [UNAVAILABLE] in IMAP) and never a permanent one or a crash.
extension SQLiteStore {
    func reading<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do { return try await pool.read(body) } catch let error as DatabaseError where Self.isBusy(error) {
            throw StorageError.temporary("the index is busy (\(error.resultCode)): another process holds it past busy_timeout")
        }
    }

    /// The same, run on the caller's thread, for the short reads of every IMAP command (a
    /// mailbox's row, a few messages, a search): the asynchronous read hops to a reader's queue
    /// and back, two thread switches that cost more than such a read. WAL readers never wait for
    /// writers, so this blocks only for the read itself. Long reads (integrity checks, listings
    /// of every account) keep `reading`. The connections are `InlineReaders`, never the pool's.
    func readingInline<T>(_ body: (Database) throws -> T) throws -> T {
        do { return try inlineReaders.read(body) } catch let error as DatabaseError where Self.isBusy(error) {
            throw StorageError.temporary("the index is busy (\(error.resultCode)): another process holds it past busy_timeout")
        }
    }

    func writing<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do { return try await pool.write(body) } catch let error as DatabaseError where Self.isBusy(error) {
            throw StorageError.temporary("the index is busy (\(error.resultCode)): another process holds it past busy_timeout")
        }
    }

    static func isBusy(_ error: DatabaseError) -> Bool {
        error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED
    }
}

/// Read-only connections to the index for `readingInline`, apart from the pool's readers. A
/// synchronous read that waited for one of the pool's readers could deadlock: asynchronous reads
/// give theirs back only once their task resumes on a cooperative thread, and those threads would
/// be the ones waiting. Here nobody waits: a read takes an idle connection or opens one, and
/// every holder is running, so concurrency is bounded by the threads that read.
// @unchecked Sendable: `idle` is under `lock`; a connection is used by one thread at a time
final class InlineReaders: @unchecked Sendable {
    private let path: String
    private let configuration: Configuration
    private let lock = NSLock()
    private var idle: [DatabaseQueue] = []
    /// Idle connections kept; more are closed after use.
    static let kept = 8

    init(path: String, busyTimeout: Double) {
        self.path = path
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(busyTimeout)
        self.configuration = configuration
    }

    func read<T>(_ body: (Database) throws -> T) throws -> T {
        let connection = try lock.withLock({ idle.popLast() }) ?? DatabaseQueue(path: path, configuration: configuration)
        defer { lock.withLock { if idle.count < Self.kept { idle.append(connection) } } }
        return try connection.read(body)
    }
}
