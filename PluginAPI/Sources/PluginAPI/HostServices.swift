/// The services of one worker process, as plugins see them: what the host itself provides (TLS,
/// the auth service over the loaded SASL mechanisms and credential backends, the filter chain over
/// the loaded filters, the directory over the loaded lookup tables) and what plugins registered
/// (storage, transports, the queue, DNS, change notifications).
///
/// Plugins are activated in dependency order; a plugin sees the services of every plugin activated
/// before it, so a plugin that needs a store lists the store plugin in `dependencies`.
// @unchecked Sendable: registered and complete are only read and written under `lock`; tls is let
public final class HostServices: @unchecked Sendable {
    private let lock = NIOLock()
    private var registered: [ProvidedService] = []
    private var complete = false
    private var control: (any HostControl)?
    /// TLS material of this worker's listeners, and a client context for outbound connections.
    public let tls: any TLSProvider

    public init(tls: any TLSProvider) {
        self.tls = tls
    }

    /// What this process may ask of the master (a worker's; nil in tools and tests).
    public var hostControl: (any HostControl)? {
        get { lock.withLock { control } }
        set { lock.withLock { control = newValue } }
    }

    /// Called by the host with each activated plugin's services.
    public func register(_ services: [ProvidedService]) {
        lock.withLock { registered += services }
    }

    /// Called by the host once every plugin of the process is active: from then on, a service
    /// that is not registered is not configured, rather than not active yet.
    public func markComplete() {
        lock.withLock { complete = true }
    }

    /// Whether every plugin of the process has registered its services. Before that, "no store"
    /// or "no transport" means "not yet", and a decision taken on it must be a temporary one
    /// (ARCHITECTURE.md, "Fail closed").
    public var isComplete: Bool { lock.withLock { complete } }

    /// Every registered service, in registration order.
    public var all: [ProvidedService] { lock.withLock { registered } }

    public func protocolService(named name: String) -> (any ProtocolService)? {
        for case .protocolService(let n, let s) in all where n == name { return s }
        return nil
    }

    public var saslMechanisms: [any SASLMechanism] {
        all.compactMap { if case .saslMechanism(let m) = $0 { return m } else { return nil } }
    }

    public var credentialBackends: [(name: String, backend: any CredentialBackend)] {
        all.compactMap { if case .credentialBackend(let n, let b) = $0 { return (n, b) } else { return nil } }
    }

    /// The storage backend registered as `name`, or the first one when `name` is nil.
    public func store(named name: String? = nil) -> (any StorageBackend)? {
        for case .storage(let n, let s) in all where name == nil || n == name { return s }
        return nil
    }

    /// The account store (domains, users, secrets, quotas), when a storage plugin provides one.
    public var accounts: (any AccountStore)? {
        for case .accounts(let a) in all { return a }
        return nil
    }

    public func transport(named name: String) -> (any Transport)? {
        for case .transport(let n, let t) in all where n == name { return t }
        return nil
    }

    public var queue: (any MailQueue)? {
        for case .queue(let q) in all { return q }
        return nil
    }

    /// The signer of outgoing mail (DKIM, ARC), when a plugin provides one.
    public var outgoingSigner: (any OutgoingMessageSigner)? {
        for case .outgoingSigner(let s) in all { return s }
        return nil
    }

    public var dns: (any DNSResolver)? {
        for case .dnsResolver(let r) in all { return r }
        return nil
    }

    public var router: (any MailRouter)? {
        for case .router(let r) in all { return r }
        return nil
    }

    public var notifications: (any ChangeNotifier)? {
        for case .changeNotifier(let n) in all { return n }
        return nil
    }

    /// The failed-login table shared by the node's workers, when a plugin registers one.
    public var loginFailures: (any LoginFailureTable)? {
        for case .loginFailures(let t) in all { return t }
        return nil
    }

    /// Every registered white-pages search, in registration order.
    public var directorySearches: [(name: String, search: any DirectorySearch)] {
        all.compactMap { if case .directorySearch(let n, let s) = $0 { return (n, s) } else { return nil } }
    }

    /// The directory: every lookup table by name.
    public var directory: Directory {
        Directory(tables: all.compactMap { if case .lookupTable(let n, let t) = $0 { return (n, t) } else { return nil } })
    }

    /// The filter chain over every registered filter, in registration order.
    public var filters: FilterChain {
        FilterChain(filters: all.compactMap { if case .filter(let n, let f) = $0 { return (n, f) } else { return nil } })
    }

    /// The auth service over every registered mechanism and credential backend.
    public var auth: AuthService {
        AuthService(mechanisms: saslMechanisms, backends: credentialBackends.map(\.backend))
    }
}

/// What a worker's plugins may ask of the master: the admin console's reload button.
public protocol HostControl: Sendable {
    /// Asks the master to reload the config, exactly as `postern ctl reload` does, and answers
    /// with its reply (a reload that is refused changes nothing).
    func requestReload() async -> HostControlReply
}

public struct HostControlReply: Sendable, Codable, Equatable {
    public var ok: Bool
    public var message: String
    public var errors: [String]

    public init(ok: Bool, message: String, errors: [String] = []) {
        self.ok = ok
        self.message = message
        self.errors = errors
    }
}
