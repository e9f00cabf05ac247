/// The "white pages": people found by name, address or phone number, for the webmail's address
/// book and recipient suggestions. Provided by directory plugins (`ldap`); the webmail asks every
/// registered one (`HostServices.directorySearches`).
public protocol DirectorySearch: Sendable {
    /// Entries whose name, address or phone contains `query` (the provider decides how it
    /// matches), at most `limit`, sorted by name. An empty query finds nothing. Throws when the
    /// directory cannot answer now.
    func search(_ query: String, limit: Int) async throws -> [DirectoryEntry]

    /// What the directory keeps about one user that a client may use as its defaults (the
    /// webmail's display name, language and time zone), or nil when the user is not in it.
    func profile(of user: String) async throws -> DirectoryProfile?
}

extension DirectorySearch {
    /// A directory without per-user settings.
    public func profile(of user: String) async throws -> DirectoryProfile? { nil }
}

/// Per-user settings from a directory (LDAP attributes such as `displayName` and
/// `preferredLanguage`). Every field is optional: a directory says what it knows.
public struct DirectoryProfile: Sendable, Equatable, Codable {
    public var displayName: String?
    /// A language tag as the directory holds it (RFC 2798's `preferredLanguage`: "de", "fr-CA").
    public var language: String?
    /// An IANA time zone name ("Europe/Berlin").
    public var timeZone: String?

    public init(displayName: String? = nil, language: String? = nil, timeZone: String? = nil) {
        self.displayName = displayName
        self.language = language
        self.timeZone = timeZone
    }
}

/// One person (or list) in the white pages.
public struct DirectoryEntry: Sendable, Equatable, Codable {
    public var name: String
    public var address: String
    public var phone: String?

    public init(name: String, address: String, phone: String? = nil) {
        self.name = name
        self.address = address
        self.phone = phone
    }
}

/// Accounts whose password another credential backend checks (a directory): the store keeps their
/// mailboxes, quota and enabled flag, but answers `.unknownUser` to password questions about them,
/// so the directory's answer (or its being down: a temporary failure) is the one that counts.
/// Implemented by account stores that support it (`store-sqlite`); reached with
/// `services.accounts as? ExternalAccountStore`.
public protocol ExternalAccountStore: Sendable {
    /// Creates the account (with its special-use mailboxes and no usable password) when it does
    /// not exist, marks it as belonging to `source`, and sets its enabled flag and byte quota
    /// (nil: no limit). An account that exists and is not external is left alone (returns false).
    /// The domain must be one of the store's.
    @discardableResult
    func provisionExternalAccount(_ name: String, source: String, enabled: Bool, quotaBytes: Int?) async throws -> Bool
}
