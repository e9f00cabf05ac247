import Foundation
import PluginAPI

// The embedded default store: SQLite index and content-addressed blob files under the data
// directory. Provides the storage backend, the account store and the internal credential backend.

package enum StoreSQLitePlugin {
    static let schema = ConfigSchema([
        ConfigField("directory", .string, default: .string(""), help: "index and default blobs; default DATA_DIR/store"),
        ConfigField("partitions", .array(.string), default: .array([]), help: "blob roots; new accounts go to the least used; default DIRECTORY/blobs"),
        ConfigField("recipient_delimiter", .string, default: .string("+"), help: "user+tag@domain is delivered to user@domain"),
        ConfigField("quota_exceeded", .oneOf(["temporary", "permanent"]), default: .string("temporary"),
                    help: "temporary: 452 4.2.2, the sender retries; permanent: 552 5.2.2"),
        ConfigField("password_iterations", .integer(4096...1_000_000), default: .integer(4096), help: "PBKDF2 rounds for new secrets"),
        ConfigField("busy_timeout", .duration, default: .string("10s")),
        ConfigField("legacy_schemes_until", .map(.string), default: .table([:]),
                    help: "per domain, a date YYYY-MM-DD from which imported legacy password hashes no longer verify"),
    ])

    /// What `postern_plugin_entry` (Entry/Entry.swift) hands the host.
    package static let registration = PluginRegistration(
        manifest: PluginManifest(name: "store-sqlite", version: "1.0.0",
                                 summary: "embedded store: SQLite index, single-instance blob files, accounts",
                                 kinds: [.storage, .credentialBackend, .hostService],
                                 // The store; the accounts a relay authenticates and an admin console manages.
                                 roles: ["all-in-one", "store", "relay", "admin"], config: schema),
        activate: { context in
            let settings = try settings(context)
            return try StoreSQLiteInstance(store: SQLiteStore(settings: settings, services: context.services),
                                           loginFailures: SQLiteLoginFailures(path: settings.directory + "/login-failures.sqlite",
                                                                              busyTimeout: settings.busyTimeout))
        })

    static func settings(_ context: PluginContext) throws -> SQLiteStore.Settings {
        let c = context.config
        let directory = (c.string("directory").flatMap { $0.isEmpty ? nil : $0 } ?? context.dataDirectory + "/store")
        let absolute: (String) -> String = { $0.hasPrefix("/") ? $0 : FileManager.default.currentDirectoryPath + "/" + $0 }
        let partitions = (c.strings("partitions")!).map(absolute)
        var legacyDates: [String: String] = [:]
        for (domain, value) in context.config.section("legacy_schemes_until")?.values ?? [:] {
            if case .string(let text) = value { legacyDates[domain] = text }
        }
        return SQLiteStore.Settings(directory: absolute(directory),
                                    partitions: partitions.isEmpty ? [absolute(directory) + "/blobs"] : partitions,
                                    recipientDelimiter: c.string("recipient_delimiter")!,
                                    quotaExceededIsPermanent: c.string("quota_exceeded") == "permanent",
                                    passwordIterations: c.int("password_iterations")!,
                                    busyTimeout: c.duration("busy_timeout")!,
                                    legacySchemesUntil: try LegacyPasswords.parseDates(legacyDates))
    }
}

// @unchecked Sendable: its stored properties are lets (the store, the failed-login table)
final class StoreSQLiteInstance: Plugin, @unchecked Sendable {
    let store: SQLiteStore
    let loginFailures: SQLiteLoginFailures

    init(store: SQLiteStore, loginFailures: SQLiteLoginFailures) {
        self.store = store
        self.loginFailures = loginFailures
    }

    var services: [ProvidedService] {
        [.storage(name: "store-sqlite", store), .accounts(store), .credentialBackend(name: "store-sqlite", store), .changeNotifier(store),
         .loginFailures(loginFailures)]
    }
}
