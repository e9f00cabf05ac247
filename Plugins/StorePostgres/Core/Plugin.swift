import Foundation
import PluginAPI
import PluginPostgres

// The scale-out store: the index and the message contents in PostgreSQL, so that several store
// nodes serve the same accounts from one database, with change notifications between them
// through LISTEN/NOTIFY. Provides what store-sqlite provides: the storage backend, the account
// store, the internal credential backend and change notifications.

package enum StorePostgresPlugin {
    static let schema = ConfigSchema([
        ConfigField("host", .string, default: .string("127.0.0.1"), help: "PostgreSQL server (name or address)"),
        ConfigField("port", .integer(1...65535), default: .integer(5432)),
        ConfigField("socket", .string, default: .string(""), help: "a Unix socket path instead of host and port"),
        ConfigField("user", .string, default: .string("postern")),
        ConfigField("password", .string, default: .string("")),
        ConfigField("password_file", .string, default: .string(""), help: "the password from a file (first line); relative paths are under data_dir"),
        ConfigField("database", .string, default: .string("postern")),
        ConfigField("tls", .oneOf(["disable", "prefer", "require"]), default: .string("prefer"),
                    help: "prefer: TLS when the server offers it; require: refuse a server without it"),
        ConfigField("verify_certificate", .boolean, default: .boolean(true), help: "check the server's certificate against the system's or ca_file's CAs"),
        ConfigField("ca_file", .string, default: .string(""), help: "PEM file of the CAs that sign the server's certificate"),
        ConfigField("connections", .integer(1...1000), default: .integer(10), help: "pool size per worker process"),
        ConfigField("connect_timeout", .duration, default: .string("10s")),
        ConfigField("recipient_delimiter", .string, default: .string("+"), help: "user+tag@domain is delivered to user@domain"),
        ConfigField("quota_exceeded", .oneOf(["temporary", "permanent"]), default: .string("temporary"),
                    help: "temporary: 452 4.2.2, the sender retries; permanent: 552 5.2.2"),
        ConfigField("password_iterations", .integer(4096...1_000_000), default: .integer(4096), help: "PBKDF2 rounds for new secrets"),
    ])

    /// What `postern_plugin_entry` (Entry/Entry.swift) hands the host.
    package static let registration = PluginRegistration(
        manifest: PluginManifest(name: "store-postgres", version: "1.0.0",
                                 summary: "scale-out store: index and single-instance contents in PostgreSQL, accounts, LISTEN/NOTIFY",
                                 kinds: [.storage, .credentialBackend, .hostService],
                                 roles: ["all-in-one", "store", "relay", "admin"], config: schema),
        activate: { context in
            StorePostgresInstance(store: try PostgresStore(settings: try settings(context), eventLoopGroup: context.eventLoopGroup,
                                                           logger: context.logger))
        })

    static func settings(_ context: PluginContext) throws -> PostgresStore.Settings {
        let c = context.config
        var password = c.string("password") ?? ""
        if let file = c.string("password_file"), !file.isEmpty {
            let path = file.hasPrefix("/") ? file : context.dataDirectory + "/" + file
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw PostgresStoreError("plugin.store-postgres.password_file: cannot read \(path)")
            }
            password = String(text.split(whereSeparator: \.isNewline).first ?? "")
        }
        return PostgresStore.Settings(host: c.string("host")!, port: c.int("port")!, socket: c.string("socket")!,
                                      user: c.string("user")!, password: password.isEmpty ? nil : password,
                                      database: c.string("database")!, tls: c.string("tls")!,
                                      verifyCertificate: c.bool("verify_certificate")!, caFile: c.string("ca_file")!,
                                      connections: c.int("connections")!, connectTimeout: c.duration("connect_timeout")!,
                                      recipientDelimiter: c.string("recipient_delimiter")!,
                                      quotaExceededIsPermanent: c.string("quota_exceeded") == "permanent",
                                      passwordIterations: c.int("password_iterations")!)
    }
}

// @unchecked Sendable: its one stored property is a let
final class StorePostgresInstance: Plugin, @unchecked Sendable {
    let store: PostgresStore

    init(store: PostgresStore) { self.store = store }

    var services: [ProvidedService] {
        [.storage(name: "store-postgres", store), .accounts(store), .credentialBackend(name: "store-postgres", store), .changeNotifier(store)]
    }

    func shutdown() { store.close() }
}
