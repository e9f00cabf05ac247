import Foundation
import PluginAPI
import PluginPostgres

/// A configuration or connection problem, said in words an administrator acts on.
struct PostgresStoreError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The scale-out store: accounts, mailboxes, messages and their single-instance contents in one
/// PostgreSQL database. Every store node (and every worker process of each) opens its own pool
/// of connections to it; PostgreSQL's row locks order the writers, so nodes share nothing else.
/// A mailbox's row is locked (`FOR UPDATE`) by every write that allocates UIDs or MODSEQs in it,
/// which keeps UIDs strictly ascending across nodes.
// @unchecked Sendable: all stored properties are let; PostgresClient and ChangeListener synchronise their own state
final class PostgresStore: StorageBackend, AccountStore, CredentialBackend, @unchecked Sendable {
    struct Settings {
        var host: String
        var port: Int
        var socket: String
        var user: String
        var password: String?
        var database: String
        var tls: String
        var verifyCertificate: Bool
        var caFile: String
        var connections: Int
        var connectTimeout: Double
        var recipientDelimiter: String
        var quotaExceededIsPermanent: Bool
        var passwordIterations: Int
    }

    let settings: Settings
    let client: PostgresClient
    let logger: Logger
    /// The pool's run loop: it must run for the client to hand out connections.
    private let running: Task<Void, Never>
    /// The schema made or brought up to date, once per process, before the first statement.
    private let schema: SchemaGate
    /// How long a statement waits for a connection (`connect_timeout`), and what the errors name.
    let leaseTimeout: Double
    let server: String
    /// LISTEN on one dedicated connection, started by the first subscription (Notify.swift).
    let listener: ChangeListener

    init(settings: Settings, eventLoopGroup: any EventLoopGroup, logger: Logger) throws {
        self.settings = settings
        self.logger = logger
        let tls = try Self.tlsConfiguration(settings)
        var configuration = settings.socket.isEmpty
            ? PostgresClient.Configuration(host: settings.host, port: settings.port, username: settings.user,
                                           password: settings.password, database: settings.database,
                                           tls: tls.map { settings.tls == "require" ? .require($0) : .prefer($0) } ?? .disable)
            : PostgresClient.Configuration(unixSocketPath: settings.socket, username: settings.user,
                                           password: settings.password, database: settings.database)
        configuration.options.maximumConnections = settings.connections
        configuration.options.connectTimeout = .milliseconds(Int64(settings.connectTimeout * 1000))
        let client = PostgresClient(configuration: configuration, eventLoopGroup: eventLoopGroup, backgroundLogger: logger)
        self.client = client
        running = Task { await client.run() }
        let server = settings.socket.isEmpty ? "\(settings.host):\(settings.port)" : settings.socket
        let leaseTimeout = settings.connectTimeout
        self.server = server
        self.leaseTimeout = leaseTimeout
        schema = SchemaGate { try await Schema.migrate(client, logger: logger, within: leaseTimeout, server: server) }

        // The listening connection lives outside the pool (a pooled one goes back after each use).
        var single = settings.socket.isEmpty
            ? PostgresConnection.Configuration(host: settings.host, port: settings.port, username: settings.user,
                                               password: settings.password, database: settings.database,
                                               tls: try tls.map { t in
                                                   let context = try NIOSSLContext(configuration: t)
                                                   return settings.tls == "require" ? .require(context) : .prefer(context)
                                               } ?? .disable)
            : PostgresConnection.Configuration(unixSocketPath: settings.socket, username: settings.user,
                                               password: settings.password, database: settings.database)
        single.options.connectTimeout = .milliseconds(Int64(settings.connectTimeout * 1000))
        listener = ChangeListener(configuration: single, eventLoopGroup: eventLoopGroup, logger: logger)
    }

    /// TLS to the server, or nil for none (`tls = "disable"`).
    static func tlsConfiguration(_ settings: Settings) throws -> TLSConfiguration? {
        guard settings.tls != "disable" else { return nil }
        var tls = TLSConfiguration.makeClientConfiguration()
        if !settings.verifyCertificate { tls.certificateVerification = .none }
        if !settings.caFile.isEmpty {
            do {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(settings.caFile))
            } catch {
                throw PostgresStoreError("plugin.store-postgres.ca_file: cannot read certificates from \(settings.caFile): \(error)")
            }
        }
        return tls
    }

    func close() {
        listener.stop()
        running.cancel()
    }

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970) }

    // MARK: statements

    /// Runs `body` in one transaction, committed when it returns. A deadlock or serialisation
    /// failure (two nodes writing the same rows in opposite orders) is retried a few times: the
    /// transaction was rolled back whole, so running it again is safe. The announcements `body`
    /// queued go out with the commit (NOTIFY is transactional).
    func writing<T: Sendable>(_ body: @escaping @Sendable (SQL) async throws -> T) async throws -> T {
        try await schema.ready()
        var attempt = 0
        while true {
            do {
                return try await client.withConnection(within: leaseTimeout, server: server) { connection in
                    let sql = SQL(connection: connection, logger: self.logger)
                    try await sql.run("BEGIN")
                    do {
                        let value = try await body(sql)
                        try await sql.run("COMMIT")
                        return value
                    } catch {
                        _ = try? await sql.run("ROLLBACK")
                        throw error
                    }
                }
            } catch let error as PSQLError where Self.isRetryable(error) && attempt < 5 {
                attempt += 1
                try await Task.sleep(nanoseconds: UInt64.random(in: 1_000_000...20_000_000) * UInt64(attempt))
            } catch let error as PSQLError {
                throw Self.translate(error)
            }
        }
    }

    /// Runs `body` on one connection outside an explicit transaction (each statement its own).
    func reading<T: Sendable>(_ body: @escaping @Sendable (SQL) async throws -> T) async throws -> T {
        try await schema.ready()
        do {
            return try await client.withConnection(within: leaseTimeout, server: server) { connection in
                try await body(SQL(connection: connection, logger: self.logger))
            }
        } catch let error as PSQLError {
            throw Self.translate(error)
        }
    }

    static func isRetryable(_ error: PSQLError) -> Bool {
        guard let state = error.serverInfo?[.sqlState] else { return false }
        return state == "40001" || state == "40P01"
    }

    /// A server that cannot be reached, or refuses, is a temporary failure for the caller (a
    /// 4xx to SMTP, `NO [UNAVAILABLE]` to IMAP): mail waits, nothing is lost.
    static func translate(_ error: PSQLError) -> Error {
        let message = error.serverInfo?[.message] ?? "\(error.code)\(error.underlying.map { ": \($0)" } ?? "")"
        return StorageError.temporary("PostgreSQL: \(message)")
    }

}

/// One connection's statements, with the few shapes of answer the store needs.
struct SQL: Sendable {
    let connection: PostgresConnection
    let logger: Logger

    func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
        var out: [PostgresRow] = []
        for try await row in try await connection.query(query, logger: logger) { out.append(row) }
        return out
    }

    func row(_ query: PostgresQuery) async throws -> PostgresRow? { try await rows(query).first }

    /// The first column of the first row; nil when there is no row or it is NULL.
    func value<T: PostgresDecodable>(_ query: PostgresQuery, as type: T.Type = T.self) async throws -> T? where T._DecodableType == T {
        guard let row = try await row(query) else { return nil }
        return try row.decode(Optional<T>.self)
    }

    /// The first column of every row.
    func values<T: PostgresDecodable>(_ query: PostgresQuery, as type: T.Type = T.self) async throws -> [T] {
        try await rows(query).map { try $0.decode(T.self) }
    }

    func exists(_ query: PostgresQuery) async throws -> Bool { try await row(query) != nil }

    /// Runs a statement; returns how many rows it returned (a `RETURNING` counts changed rows).
    @discardableResult
    func run(_ query: PostgresQuery) async throws -> Int { try await rows(query).count }

    /// Queues a change announcement, sent by PostgreSQL when this transaction commits.
    func announce(_ change: MailboxChange) async throws {
        try await run("SELECT pg_notify(\(ChangeListener.channel), \(ChangeListener.payload(change)))")
    }
}
