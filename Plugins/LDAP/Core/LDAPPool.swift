import Foundation
import PluginAPI

/// The plugin's connections to its directory servers and the threads that use them.
///
/// libldap's synchronous calls block their thread for up to the operation timeout, so they run on
/// a `NIOThreadPool` of `size` threads owned by the plugin: a hung server stalls at most those
/// threads, never an event loop, and every session waiting on it gets its answer (or a temporary
/// failure) within the timeout. There are never more handles than threads, and a handle is taken
/// out of the idle list while one thread uses it.
///
/// Failover: a new connection tries the servers in configured order, skipping one that failed in
/// the last `retryAfter` seconds unless every server has; an operation that fails because its
/// connection broke is retried once on a fresh connection (which may be to the next server).
// @unchecked Sendable: idle and downUntil are only touched under lock; the rest is let
final class LDAPPool: @unchecked Sendable {
    let servers: [LDAPConnectionSettings]
    /// The DN and password the plugin searches as; empty DN: anonymous.
    let serviceDN: String
    let servicePassword: String
    let retryAfter: Double
    private let threads: NIOThreadPool
    private let lock = NIOLock()
    private var idle: [LDAPConnection] = []
    private var downUntil: [String: Double] = [:]
    private let logger: Logger

    init(servers: [LDAPConnectionSettings], serviceDN: String, servicePassword: String, size: Int,
         retryAfter: Double = 10, logger: Logger) {
        self.servers = servers
        self.serviceDN = serviceDN
        self.servicePassword = servicePassword
        self.retryAfter = retryAfter
        self.logger = logger
        threads = NIOThreadPool(numberOfThreads: max(1, size))
        threads.start()
    }

    func shutdown() {
        lock.withLock {
            for c in idle { c.close() }
            idle.removeAll()
        }
        try? threads.syncShutdownGracefully()
    }

    /// Runs `body` with a connection bound as the service account, on a pool thread.
    func withServiceConnection<T: Sendable>(_ body: @escaping @Sendable (LDAPConnection) throws -> T) async throws -> T {
        try await run { connection in
            if connection.needsServiceBind || connection.boundAs == nil && !self.serviceDN.isEmpty {
                try self.bindService(connection)
            }
            return try body(connection)
        }
    }

    /// Runs `body` with a connection whose identity `body` may change (a user's bind): the
    /// connection binds as the service again before its next service use.
    func withUserBind<T: Sendable>(_ body: @escaping @Sendable (LDAPConnection) throws -> T) async throws -> T {
        try await run { connection in
            connection.needsServiceBind = true
            return try body(connection)
        }
    }

    private func bindService(_ connection: LDAPConnection) throws {
        if serviceDN.isEmpty {
            // Anonymous again: a bind with an empty DN and password (RFC 4513 §5.1.1).
            connection.boundAs = nil
            connection.needsServiceBind = false
            return
        }
        guard try connection.bind(dn: serviceDN, password: servicePassword) else {
            throw LDAPError.configuration("the directory refused bind_dn \(serviceDN) with the configured password")
        }
        connection.needsServiceBind = false
    }

    /// One operation, retried once on a new connection when its connection turns out broken.
    private func run<T: Sendable>(_ body: @escaping @Sendable (LDAPConnection) throws -> T) async throws -> T {
        try await threads.runIfActive {
            var attempt = 0
            while true {
                attempt += 1
                let connection = try self.checkOut()
                do {
                    let value = try body(connection)
                    self.checkIn(connection)
                    return value
                } catch LDAPError.unavailable(let why) {
                    connection.close()
                    self.markDown(connection.settings.uri, why)
                    if attempt >= 2 { throw LDAPError.unavailable(why) }
                } catch {
                    self.checkIn(connection)
                    throw error
                }
            }
        }
    }

    private func checkOut() throws -> LDAPConnection {
        if let c = lock.withLock({ idle.popLast() }) { return c }
        return try connect()
    }

    private func checkIn(_ connection: LDAPConnection) {
        lock.withLock { idle.append(connection) }
    }

    private func markDown(_ uri: String, _ why: String) {
        logger.warning("LDAP server unavailable", metadata: ["server": "\(uri)", "error": "\(why)"])
        let until = Date().timeIntervalSince1970 + retryAfter
        lock.withLock {
            downUntil[uri] = until
            // Connections to that server that sit idle are as dead as the one that failed.
            idle.removeAll { c in
                if c.settings.uri == uri { c.close(); return true }
                return false
            }
        }
    }

    /// A new connection to the first server that answers, in order; servers that failed
    /// recently go last rather than first.
    private func connect() throws -> LDAPConnection {
        let now = Date().timeIntervalSince1970
        let down = lock.withLock { downUntil }
        let ordered = servers.filter { (down[$0.uri] ?? 0) <= now } + servers.filter { (down[$0.uri] ?? 0) > now }
        var errors: [String] = []
        for server in ordered {
            do {
                let c = try LDAPConnection(settings: server)
                lock.withLock { downUntil[server.uri] = nil }
                return c
            } catch LDAPError.unavailable(let why) {
                errors.append(why)
                lock.withLock { downUntil[server.uri] = now + retryAfter }
            }
        }
        throw LDAPError.unavailable(errors.joined(separator: "; "))
    }
}
