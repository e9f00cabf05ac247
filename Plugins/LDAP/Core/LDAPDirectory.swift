import Foundation
import PluginAPI

/// The questions the plugin asks the directory, in the terms of the `inetLocalMailRecipient`
/// schema (RFC draft-lachman-laser-ldap-mail-routing; OpenLDAP's misc.schema): users by login,
/// recipients by address (`mail` or `mailLocalAddress`), their `mailRoutingAddress` and
/// `mailHost`, groups and their members, and the white pages. Answers are cached for `cacheTTL`.
/// Every value from outside reaches a filter through `LDAPTemplate`, escaped (RFC 4515).
// @unchecked Sendable: all stored properties are let; the cache locks itself
final class LDAPDirectory: @unchecked Sendable {
    let settings: LDAPSettings
    let pool: LDAPPool
    let cache: TTLCache<[LDAPEntry]>
    let logger: Logger
    /// Groups inside groups are followed this deep; a cycle ends at an address seen before.
    static let maxGroupDepth = 8

    init(settings: LDAPSettings, pool: LDAPPool, logger: Logger) {
        self.settings = settings
        self.pool = pool
        self.cache = TTLCache(ttl: settings.cacheTTL)
        self.logger = logger
    }

    // MARK: Searches

    /// The entries a filter finds under the base DN, as the service account; cached.
    func search(_ filter: String, attributes: [String], sizeLimit: Int = 2) async throws -> [LDAPEntry] {
        let key = "s\u{0}\(filter)\u{0}\(sizeLimit)"
        if let hit = cache.get(key) { return hit }
        let base = settings.baseDN
        let entries = try await pool.withServiceConnection { c in
            try c.search(base: base, subtree: true, filter: filter, attributes: attributes, sizeLimit: sizeLimit)
        }
        cache.put(key, entries)
        return entries
    }

    /// One entry by DN (a group's member), or nil when it does not exist; cached.
    func read(dn: String, attributes: [String]) async throws -> LDAPEntry? {
        let key = "d\u{0}\(dn.lowercased())"
        if let hit = cache.get(key) { return hit.first }
        let entries = try await pool.withServiceConnection { c in
            try c.search(base: dn, subtree: false, filter: "(objectClass=*)", attributes: attributes, sizeLimit: 1)
        }
        cache.put(key, entries)
        return entries.first
    }

    /// The user entry for a login name, or nil when none (or more than one: an ambiguous login
    /// must not pick one of them at random).
    func user(login: String) async throws -> LDAPEntry? {
        if LDAPEscaping.hasControlCharacters(login) { return nil }
        return try await unique(settings.userFilter.expand(name: login), what: "login \(login)")
    }

    /// The entry that takes mail for `address` (a user or a group), or nil.
    func recipient(_ address: String) async throws -> LDAPEntry? {
        if LDAPEscaping.hasControlCharacters(address) { return nil }
        return try await unique(settings.recipientFilter.expand(name: address), what: "recipient \(address)")
    }

    private func unique(_ filter: String, what: String) async throws -> LDAPEntry? {
        let entries = try await search(filter, attributes: settings.entryAttributes)
        if entries.count > 1 {
            logger.warning("more than one directory entry matches; treated as none", metadata: ["what": "\(what)", "filter": "\(filter)"])
            return nil
        }
        return entries.first
    }

    // MARK: What an entry means

    func isGroup(_ entry: LDAPEntry) -> Bool {
        entry.values("objectClass").contains { settings.groupClasses.contains($0.lowercased()) }
    }

    func isSuspended(_ entry: LDAPEntry) -> Bool {
        guard !settings.suspendedAttribute.isEmpty else { return false }
        return entry.values(settings.suspendedAttribute).contains { $0.caseInsensitiveCompare(settings.suspendedValue) == .orderedSame }
    }

    /// The canonical account name: the entry's first `mail`, lower-cased, else what was asked.
    func canonicalName(_ entry: LDAPEntry, fallback: String) -> String {
        (entry.first(settings.mailAttribute) ?? fallback).lowercased()
    }

    /// The entry's `mailHost` when it is another node (not in `local_mail_hosts`).
    func remoteMailHost(_ entry: LDAPEntry) -> String? {
        guard let host = entry.first(settings.mailHostAttribute)?.lowercased(), !host.isEmpty,
              !settings.localMailHosts.contains(host) else { return nil }
        return host
    }

    func quotaBytes(_ entry: LDAPEntry) -> Int? {
        guard !settings.quotaAttribute.isEmpty else { return nil }
        return entry.first(settings.quotaAttribute).flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    }

    func userRecord(_ entry: LDAPEntry, login: String) -> UserRecord {
        UserRecord(name: canonicalName(entry, fallback: login), enabled: !isSuspended(entry), mailHost: entry.first(settings.mailHostAttribute))
    }

    /// The mail addresses of a group's members, groups inside it expanded; members without a
    /// mail attribute are left out (and logged), member DNs that do not exist too.
    func members(of group: LDAPEntry) async throws -> [String] {
        var seenDNs = Set<String>()
        var out: [String] = []
        try await collect(group, depth: 0, seenDNs: &seenDNs, into: &out)
        var unique = Set<String>()
        return out.filter { unique.insert($0.lowercased()).inserted }
    }

    private func collect(_ group: LDAPEntry, depth: Int, seenDNs: inout Set<String>, into out: inout [String]) async throws {
        guard depth < Self.maxGroupDepth, seenDNs.insert(group.dn.lowercased()).inserted else { return }
        for attribute in settings.memberAttributes {
            for value in group.values(attribute) {
                // uniqueMember is `DN [# bit string]` (RFC 4517 §3.3.21): drop the optional UID.
                let dn = Self.stripUniqueIdentifier(value)
                guard let member = try await read(dn: dn, attributes: settings.entryAttributes) else {
                    logger.info("group member not in the directory", metadata: ["group": "\(group.dn)", "member": "\(dn)"])
                    continue
                }
                if isGroup(member) {
                    try await collect(member, depth: depth + 1, seenDNs: &seenDNs, into: &out)
                } else if let mail = member.first(settings.routingAttribute) ?? member.first(settings.mailAttribute) {
                    if !isSuspended(member) { out.append(mail.lowercased()) }
                } else {
                    logger.info("group member without a mail address", metadata: ["group": "\(group.dn)", "member": "\(dn)"])
                }
            }
        }
    }

    static func stripUniqueIdentifier(_ value: String) -> String {
        guard value.hasSuffix("'B"), let hash = value.range(of: "#'", options: .backwards) else { return value }
        return String(value[..<hash.lowerBound])
    }

    // MARK: Passwords

    /// Checks a password the way `auth_mode` says. The bind happens on a pooled connection,
    /// which then binds as the service again before its next search.
    func authenticate(login: String, password: String) async throws -> (CredentialAnswer, LDAPEntry?) {
        guard !password.isEmpty, !login.isEmpty else { return (.wrongPassword, nil) }
        switch settings.authMode {
        case .bind:
            let dn = settings.bindDNTemplate!.expand(name: login)
            let ok = try await pool.withUserBind { c in try c.bind(dn: dn, password: password) }
            guard ok else { return (.wrongPassword, nil) }
            // The entry for the canonical name and the suspended flag (read as the service).
            let entry = try await read(dn: dn, attributes: settings.entryAttributes)
            return (verdict(entry, login: login), entry)
        case .searchBind:
            guard let entry = try await user(login: login) else { return (.unknownUser, nil) }
            let dn = entry.dn
            let ok = try await pool.withUserBind { c in try c.bind(dn: dn, password: password) }
            return (ok ? verdict(entry, login: login) : .wrongPassword, entry)
        case .compare:
            guard let entry = try await user(login: login) else { return (.unknownUser, nil) }
            let (dn, attribute) = (entry.dn, settings.passwordAttribute)
            let ok = try await pool.withServiceConnection { c in try c.compare(dn: dn, attribute: attribute, value: password) }
            return (ok ? verdict(entry, login: login) : .wrongPassword, entry)
        case .password:
            guard let entry = try await user(login: login) else { return (.unknownUser, nil) }
            let (dn, attribute) = (entry.dn, settings.passwordAttribute)
            // Read on every login, never cached: a changed password counts at once, and no
            // hash stays in this process's memory longer than the check.
            let stored = try await pool.withServiceConnection { c in
                try c.search(base: dn, subtree: false, filter: "(objectClass=*)", attributes: [attribute], sizeLimit: 1)
            }.first?.values(attribute) ?? []
            if stored.isEmpty {
                logger.warning("no password value readable for the entry (service account rights?)",
                               metadata: ["dn": "\(dn)", "attribute": "\(attribute)"])
            }
            let ok = stored.contains { Self.storedPassword($0, matches: password) }
            return (ok ? verdict(entry, login: login) : .wrongPassword, entry)
        }
    }

    /// A `userPassword` value against a password: `{SCHEME}` values and crypt strings through
    /// PluginAPI's legacy hashes; anything else is cleartext, compared in constant time. A value
    /// in a scheme Postern does not know never matches.
    static func storedPassword(_ value: String, matches password: String) -> Bool {
        if value.hasPrefix("{") || value.hasPrefix("$") {
            guard let hash = try? LegacyPasswordHash(parsing: value) else { return false }
            return hash.verify(password: password)
        }
        guard let hash = try? LegacyPasswordHash(parsing: "{PLAIN}" + value) else { return false }
        return hash.verify(password: password)
    }

    private func verdict(_ entry: LDAPEntry?, login: String) -> CredentialAnswer {
        guard let entry else { return .verified(user: login.lowercased()) }
        let name = canonicalName(entry, fallback: login)
        return isSuspended(entry) ? .suspended(user: name) : .verified(user: name)
    }

    // MARK: Per-user settings

    /// The webmail's defaults for a login: the entry's display name, language and time zone.
    func profile(login: String) async throws -> DirectoryProfile? {
        guard let entry = try await user(login: login) else { return nil }
        func value(_ attribute: String) -> String? {
            guard !attribute.isEmpty, let v = entry.first(attribute)?.trimmingCharacters(in: .whitespaces), !v.isEmpty else { return nil }
            return v
        }
        return DirectoryProfile(displayName: value(settings.displayNameAttribute) ?? value(settings.nameAttribute),
                                language: value(settings.languageAttribute), timeZone: value(settings.timeZoneAttribute))
    }

    // MARK: White pages

    func whitePages(_ query: String, limit: Int) async throws -> [DirectoryEntry] {
        let text = query.trimmingCharacters(in: .whitespaces)
        // Control characters are refused before the directory sees them: escaped they are
        // harmless to the filter, but slapd's string normalisation stops at a NUL, so
        // "alice\0" would find alice.
        guard !text.isEmpty, !LDAPEscaping.hasControlCharacters(text) else { return [] }
        let attributes = [settings.nameAttribute, settings.mailAttribute, settings.phoneAttribute]
        let entries = try await search(settings.searchFilter.expand(name: "", search: text), attributes: attributes,
                                       sizeLimit: min(max(1, limit), settings.searchLimit))
        return entries.compactMap { e in
            guard let mail = e.first(settings.mailAttribute) else { return nil }
            return DirectoryEntry(name: e.first(settings.nameAttribute) ?? mail, address: mail, phone: e.first(settings.phoneAttribute))
        }.sorted { $0.name.lowercased() < $1.name.lowercased() }
    }
}

/// Answers kept for a while: a lookup under load (every RCPT, every login) should not be a round
/// trip each. Bounded: when full, expired entries go, then the whole map (simple, and the
/// directory is the source of truth anyway).
// @unchecked Sendable: entries are only touched under lock
final class TTLCache<Value: Sendable>: @unchecked Sendable {
    let ttl: Double
    let capacity: Int
    private let lock = NIOLock()
    private var entries: [String: (expires: Double, value: Value)] = [:]

    init(ttl: Double, capacity: Int = 10_000) {
        self.ttl = ttl
        self.capacity = capacity
    }

    func get(_ key: String, now: Double = Date().timeIntervalSince1970) -> Value? {
        guard ttl > 0 else { return nil }
        return lock.withLock {
            guard let hit = entries[key] else { return nil }
            if hit.expires <= now { entries[key] = nil; return nil }
            return hit.value
        }
    }

    func put(_ key: String, _ value: Value, now: Double = Date().timeIntervalSince1970) {
        guard ttl > 0 else { return }
        lock.withLock {
            if entries.count >= capacity {
                entries = entries.filter { $0.value.expires > now }
                if entries.count >= capacity { entries.removeAll() }
            }
            entries[key] = (now + ttl, value)
        }
    }

    func removeAll() { lock.withLock { entries.removeAll() } }
}
