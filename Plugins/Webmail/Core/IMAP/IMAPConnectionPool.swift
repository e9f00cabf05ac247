import Foundation
import PluginAPI

/// Logged-in IMAP connections of this worker, one per browser session, reused from request to
/// request and closed after `idleClose` without use. A session whose connection is not here (a
/// new worker, another node, or one closed for idleness) gets a new one with the password
/// unsealed from the shared session store, so losing this pool never logs anybody out.
final class IMAPConnectionPool: Sendable {
    let endpoint: IMAPEndpoint
    let group: any EventLoopGroup
    let logger: Logger
    let idleClose: Double
    private let entries = NIOLockedValueBox<[String: (access: MailAccess, lastUsed: Double)]>([:])
    /// Logins in flight, so that two requests of one session share one login.
    private let pending = NIOLockedValueBox<[String: Task<MailAccess, any Error>]>([:])
    /// Closes idle connections once a minute even when no request comes to do it.
    private let reaper = NIOLockedValueBox<RepeatedTask?>(nil)

    init(endpoint: IMAPEndpoint, group: any EventLoopGroup, logger: Logger, idleClose: Double = 300,
         reapEvery: TimeAmount = .seconds(60)) {
        self.endpoint = endpoint
        self.group = group
        self.logger = logger
        self.idleClose = idleClose
        let task = group.next().scheduleRepeatedTask(initialDelay: reapEvery, delay: reapEvery) { [weak self] _ in
            self?.closeIdle(now: Date().timeIntervalSince1970)
        }
        reaper.withLockedValue { $0 = task }
    }

    deinit {
        reaper.withLockedValue { $0?.cancel() }
    }

    /// The session's connection, logging in again when there is none or it has dropped.
    func access(sessionID: String, user: String, password: () throws -> String, clientAddress: String) async throws -> MailAccess {
        let now = Date().timeIntervalSince1970
        closeIdle(now: now)
        if let access = entries.withLockedValue({ map -> MailAccess? in
            guard let entry = map[sessionID] else { return nil }
            map[sessionID]!.lastUsed = now
            return entry.access
        }), !(await access.isClosed) {
            return access
        }
        let secret = try password()
        let endpoint = self.endpoint, group = self.group
        let task = pending.withLockedValue { map -> Task<MailAccess, any Error> in
            if let task = map[sessionID] { return task }
            let task = Task {
                try await MailAccess.login(endpoint: endpoint, group: group, user: user, password: secret, clientAddress: clientAddress)
            }
            map[sessionID] = task
            return task
        }
        defer { _ = pending.withLockedValue { $0.removeValue(forKey: sessionID) } }
        let access = try await task.value
        entries.withLockedValue { $0[sessionID] = (access, Date().timeIntervalSince1970) }
        return access
    }

    /// Keeps a connection made by a fresh login (the login page logs in before the session exists).
    func adopt(_ access: MailAccess, sessionID: String) {
        entries.withLockedValue { $0[sessionID] = (access, Date().timeIntervalSince1970) }
    }

    func close(sessionID: String) {
        if let entry = entries.withLockedValue({ $0.removeValue(forKey: sessionID) }) {
            Task { await entry.access.logout() }
        }
    }

    func closeAll() {
        reaper.withLockedValue { $0?.cancel() }
        let all = entries.withLockedValue { map -> [MailAccess] in
            defer { map.removeAll() }
            return map.values.map(\.access)
        }
        for access in all { Task { await access.logout() } }
    }

    private func closeIdle(now: Double) {
        let idle = entries.withLockedValue { map -> [MailAccess] in
            let stale = map.filter { now - $0.value.lastUsed > idleClose }
            for key in stale.keys { map.removeValue(forKey: key) }
            return stale.values.map(\.access)
        }
        for access in idle { Task { await access.logout() } }
    }
}
