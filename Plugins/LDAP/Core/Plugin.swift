import Foundation
import PluginAPI

// The ldap plugin: users, recipients, groups and white pages from an LDAP directory through
// OpenLDAP's libldap (the CLDAP system library in this folder). See README.md.

/// What `postern_plugin_entry` (Entry/Entry.swift) hands the host: the manifest and how to
/// activate the plugin. Here rather than in the entry so that tests can read it.
package enum LDAPRegistration {
    package static var registration: PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: "ldap", version: "1.0.0",
                summary: "LDAP directory: credential backend, routing tables (aliases, groups, mailHost), white pages",
                kinds: [.credentialBackend, .lookupTable, .hostService],
                // Provisions store accounts for directory users: started after the store.
                uses: [.accounts],
                config: LDAPSettings.schema),
            activate: { context in try LDAPPlugin(context: context) })
    }
}

// @unchecked Sendable: all stored properties are let; the pool and directory lock their own state
final class LDAPPlugin: Plugin, @unchecked Sendable {
    let settings: LDAPSettings
    let pool: LDAPPool
    let directory: LDAPDirectory
    let provisioner: LDAPProvisioner

    init(context: PluginContext) throws {
        settings = try LDAPSettings(context.config, dataDirectory: context.dataDirectory)
        pool = LDAPPool(servers: settings.servers, serviceDN: settings.bindDN, servicePassword: settings.bindPassword,
                        size: settings.poolSize, logger: context.logger)
        directory = LDAPDirectory(settings: settings, pool: pool, logger: context.logger)
        provisioner = LDAPProvisioner(services: context.services, enabled: settings.provisionAccounts, logger: context.logger,
                                      done: TTLCache(ttl: max(settings.cacheTTL, 1)))
        context.logger.info("ldap directory configured", metadata: [
            "servers": "\(settings.servers.map(\.uri).joined(separator: ", "))", "base": "\(settings.baseDN)",
            "auth_mode": "\(settings.authMode.rawValue)", "start_tls": "\(settings.servers.first?.startTLS ?? false)"])
    }

    var services: [ProvidedService] {
        [.credentialBackend(name: "ldap", LDAPCredentialBackend(directory: directory, provisioner: provisioner)),
         .lookupTable(name: settings.aliasTable, LDAPAliasTable(directory: directory, provisioner: provisioner)),
         .lookupTable(name: settings.transportTable, LDAPTransportTable(directory: directory)),
         .lookupTable(name: settings.mailHostTable, LDAPMailHostTable(directory: directory)),
         .directorySearch(name: "ldap", LDAPWhitePages(directory: directory))]
    }

    func shutdown() { pool.shutdown() }
}
