import Foundation
import PluginAPI
import PluginPostgres

/// A connection from the pool within a deadline. postgres-nio's pool waits for a connection as
/// long as it takes, retrying the server meanwhile; a store whose database is down must answer
/// a temporary failure instead (4xx, `[UNAVAILABLE]`) rather than hang its caller. Once a
/// connection is in hand, the work runs to its end: only the wait is bounded.
extension PostgresClient {
    private enum Outcome<T: Sendable>: Sendable {
        case done(T)
        case late
        case started
    }

    func withConnection<T: Sendable>(within seconds: Double, server: String,
                                     _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let started = NIOLockedValueBox(false)
        return try await withThrowingTaskGroup(of: Outcome<T>.self) { group in
            group.addTask {
                .done(try await self.withConnection { connection in
                    started.withLockedValue { $0 = true }
                    return try await body(connection)
                })
            }
            group.addTask {
                try await Task.sleep(nanoseconds: UInt64(seconds * 1_000_000_000))
                return started.withLockedValue { $0 } ? .started : .late
            }
            while let outcome = try await group.next() {
                switch outcome {
                case .done(let value):
                    group.cancelAll()
                    return value
                case .late:
                    // Cancels the pending lease.
                    group.cancelAll()
                    throw StorageError.temporary("PostgreSQL at \(server) gave no connection within \(seconds) s")
                case .started:
                    continue
                }
            }
            throw StorageError.temporary("PostgreSQL at \(server): no answer")
        }
    }
}

/// The schema brought up to date once per process, before the first statement; a failed try
/// (the database down at start) is tried again by the next statement.
final class SchemaGate: Sendable {
    private let running = NIOLockedValueBox<Task<Void, Error>?>(nil)
    private let work: @Sendable () async throws -> Void

    init(_ work: @escaping @Sendable () async throws -> Void) { self.work = work }

    func ready() async throws {
        let task = running.withLockedValue { current -> Task<Void, Error> in
            if let current { return current }
            let new = Task { try await work() }
            current = new
            return new
        }
        do {
            try await task.value
        } catch {
            running.withLockedValue { if $0 == task { $0 = nil } }
            throw error
        }
    }
}
