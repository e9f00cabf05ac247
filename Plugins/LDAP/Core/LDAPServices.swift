import Foundation
import PluginAPI

// The services the ldap plugin registers, each a thin layer over LDAPDirectory: a credential
// backend, two lookup tables for the queue's router (aliases and groups; per-user transports for
// mailHost) and the white-pages search. A directory that cannot answer makes each of them fail
// temporarily (`.unavailable`, or a thrown error the router turns into 451 / a deferral).

/// Creates the store account of a directory user the first time it logs in or gets mail, so its
/// mailboxes exist (PluginAPI `ExternalAccountStore`), and keeps its enabled flag and quota in
/// step with the directory. The store is looked up per call (ARCHITECTURE.md, "Fail closed").
struct LDAPProvisioner: Sendable {
    /// Nil where no store is wanted (tests of the directory alone).
    let services: HostServices?
    let enabled: Bool
    let logger: Logger
    /// Names already provisioned by this process with these attributes: skips the store round
    /// trip on every login and RCPT.
    let done: TTLCache<Bool>

    func provision(_ name: String, enabled active: Bool, quotaBytes: Int?) async throws {
        guard enabled, let services, let accounts = services.accounts as? any ExternalAccountStore else { return }
        let key = "\(name)\u{0}\(active)\u{0}\(quotaBytes.map(String.init) ?? "-")"
        if done.get(key) != nil { return }
        guard let domain = name.split(separator: "@").last.map(String.init),
              try await services.accounts?.domains().contains(domain) == true else { return }
        if try await accounts.provisionExternalAccount(name, source: "ldap", enabled: active, quotaBytes: quotaBytes) {
            logger.debug("store account provisioned", metadata: ["account": "\(name)"])
        }
        done.put(key, true)
    }
}

struct LDAPCredentialBackend: CredentialBackend {
    let directory: LDAPDirectory
    let provisioner: LDAPProvisioner

    func verifyPassword(user: String, password: String) async throws -> CredentialAnswer {
        do {
            let (answer, entry) = try await directory.authenticate(login: user, password: password)
            if case .verified(let name) = answer, let entry, directory.remoteMailHost(entry) == nil {
                try await provisioner.provision(name, enabled: true, quotaBytes: directory.quotaBytes(entry))
            }
            return answer
        } catch let error as LDAPError {
            directory.logger.warning("password check failed: directory unavailable", metadata: ["user": "\(user)", "error": "\(error)"])
            return .unavailable(reason: "directory unavailable")
        }
    }

    /// Passwords stay in the directory: no SCRAM keys are handed out, so the SCRAM mechanisms
    /// move on to the next backend.
    func storedSecret(user: String, scheme: String) async throws -> CredentialAnswer {
        .unknownUser
    }

    func lookupUser(_ user: String) async throws -> UserRecord? {
        guard let entry = try await directory.user(login: user), !directory.isGroup(entry) else { return nil }
        return directory.userRecord(entry, login: user)
    }
}

/// The alias table (the queue's `alias_tables`): what the directory says an address expands to.
///
/// - a group: its members' addresses (groups inside it expanded);
/// - a user with `mailRoutingAddress`: that address;
/// - a suspended user: no targets (the router's "disabled", 550 5.2.1);
/// - a user on another `mailHost`: the user's own address, a final destination the transport table routes;
/// - a user of this node: nil for its primary address (the store's account, provisioned here, takes
///   it: forwarding and vacation apply), the primary address for its other addresses;
/// - nothing found: nil, so the router goes on to the store and its catch-alls.
struct LDAPAliasTable: LookupTable {
    let directory: LDAPDirectory
    let provisioner: LDAPProvisioner

    func lookup(_ key: String) async throws -> [String]? {
        guard key.contains("@"), !key.hasPrefix("@") else { return nil }
        guard let entry = try await directory.recipient(key) else { return nil }
        if directory.isGroup(entry) { return try await directory.members(of: entry) }
        if directory.isSuspended(entry) { return [] }
        let primary = directory.canonicalName(entry, fallback: key)
        if let routed = entry.first(directory.settings.routingAttribute), !routed.isEmpty { return [routed.lowercased()] }
        if directory.remoteMailHost(entry) != nil { return [primary] }
        try await provisioner.provision(primary, enabled: true, quotaBytes: directory.quotaBytes(entry))
        return primary == key.lowercased() ? nil : [primary]
    }
}

/// The transport table (the queue's `transport_tables`): for a user whose `mailHost` is another
/// node, `mail_host_transport` with `%h` replaced, e.g. `smtp:[mail2.example.org]`.
struct LDAPTransportTable: LookupTable {
    let directory: LDAPDirectory

    func lookup(_ key: String) async throws -> [String]? {
        guard key.contains("@"), !key.hasPrefix("@"), let entry = try await directory.recipient(key),
              !directory.isGroup(entry), let host = directory.remoteMailHost(entry) else { return nil }
        // The host goes inside brackets or after a colon: anything that could break the
        // `transport:[host]:port` syntax makes the entry unusable rather than rewritten.
        guard host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" }) else {
            throw LDAPError.configuration("mailHost \"\(host)\" of \(entry.dn) is not a host name")
        }
        return [directory.settings.mailHostTransport.replacingOccurrences(of: "%h", with: host)]
    }
}

/// The access proxy's route table (`route_tables`): a user's `mailHost` as written (a back end's
/// name, or `host:port`), whichever node it names; nil for groups and users without one.
struct LDAPMailHostTable: LookupTable {
    let directory: LDAPDirectory

    func lookup(_ key: String) async throws -> [String]? {
        guard key.contains("@"), !key.hasPrefix("@"), let entry = try await directory.recipient(key),
              !directory.isGroup(entry), let host = entry.first(directory.settings.mailHostAttribute)?.trimmingCharacters(in: .whitespaces),
              !host.isEmpty else { return nil }
        return [host]
    }
}

struct LDAPWhitePages: DirectorySearch {
    let directory: LDAPDirectory

    func search(_ query: String, limit: Int) async throws -> [DirectoryEntry] {
        try await directory.whitePages(query, limit: limit)
    }

    func profile(of user: String) async throws -> DirectoryProfile? {
        try await directory.profile(login: user)
    }
}
