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

    /// The same, run on the caller's thread (GRDB's synchronous read), for the short reads of
    /// every IMAP command (a mailbox's row, a few messages, a search): the asynchronous read
    /// hops to a reader's queue and back, two thread switches that cost more than such a read.
    /// WAL readers never wait for writers, so this blocks only for the read itself. Long reads
    /// (integrity checks, listings of every account) keep `reading`.
    func readingInline<T>(_ body: (Database) throws -> T) throws -> T {
        do { return try pool.read(body) } catch let error as DatabaseError where Self.isBusy(error) {
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
