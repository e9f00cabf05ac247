/// The kinds of plugin (ARCHITECTURE.md, "Kinds and host services"). A plugin declares the kinds it provides in
/// its manifest; the host checks that what the plugin registers matches what it declared.
public enum PluginKind: String, Sendable, CaseIterable, Codable {
    /// Owns the sessions of a listener: smtp, lmtp, imap, pop3, proxies, http services.
    case protocolService = "protocol"
    /// One server SASL mechanism.
    case saslMechanism = "sasl"
    /// Verifies secrets and looks up users.
    case credentialBackend = "credentials"
    /// A lookup table: aliases, virtual domains, routing, access tables.
    case lookupTable = "lookup"
    /// A milter-style message filter.
    case filter
    /// Mailboxes, messages, flags, quotas, ACLs.
    case storage
    /// Delivers a queued message somewhere.
    case transport
    /// Host-level services a plugin may provide for the others: the queue, DNS, change notifications.
    case hostService = "service"
}

/// Who a plugin is and what it needs: returned by `postern_plugin_entry`, shown by `postern ctl status`.
public struct PluginManifest: Sendable, Equatable {
    /// The name used in configuration (`[plugin.NAME]`, `protocol = "NAME"`); lower case, digits and `-`.
    public var name: String
    public var version: String
    public var summary: String
    public var kinds: Set<PluginKind>
    /// Names of plugins that must be loaded (and are activated) before this one.
    public var dependencies: [String]
    /// Roles the plugin may run in (`gateway`, `store`, ...); empty means any role.
    public var roles: Set<String>
    /// Roles of a protocol service narrower than the plugin's: a listener on that service is checked
    /// against these (the smtp plugin serves `lmtp` in store roles and `smtp` in gateway roles).
    public var protocolRoles: [String: Set<String>]
    /// The keys of `[plugin.NAME]`, with defaults.
    public var config: ConfigSchema
    /// The protocol services this plugin provides, by name, each with the schema of the
    /// `[listener.options]` a listener using it may set. Known before activation, so that
    /// `check-config` can validate listeners without starting anything.
    public var protocols: [String: ConfigSchema]
    /// The services this plugin calls at run time without requiring a particular plugin (a queue
    /// uses whichever store and transports the config loads). Not a dependency: nothing is refused
    /// when no plugin provides them. The host starts this plugin after every other plugin that
    /// provides one of them, and stops it before them (ARCHITECTURE.md, "Start and stop order").
    public var uses: Set<ServiceType>

    public init(name: String, version: String, summary: String = "", kinds: Set<PluginKind>,
                dependencies: [String] = [], uses: Set<ServiceType> = [], roles: Set<String> = [],
                config: ConfigSchema = ConfigSchema(), protocols: [String: ConfigSchema] = [:],
                protocolRoles: [String: Set<String>] = [:]) {
        self.name = name
        self.version = version
        self.summary = summary
        self.kinds = kinds
        self.dependencies = dependencies
        self.uses = uses
        self.roles = roles
        self.config = config
        self.protocols = protocols
        self.protocolRoles = protocolRoles
    }

    /// The roles a listener on the protocol service `service` may run in; empty means any role.
    public func roles(ofProtocol service: String) -> Set<String> {
        protocolRoles[service] ?? roles
    }

    /// Whether `name` is a valid plugin name: it maps to a file `libPostern<Name>.so`.
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }
            && name.first!.isLetter
    }
}

/// What a plugin's entry point returns: its manifest, and how to activate it in a worker.
///
/// `activate` runs once per worker process, after every dependency has been activated, and is the
/// place to open files, connect to servers and build services. Throwing refuses the plugin with the
/// error's description. It must not start background work (timers, queue runs, watchers): other
/// plugins of the generation may not be active yet. That belongs in `Plugin.start()`.
public struct PluginRegistration: Sendable {
    public var manifest: PluginManifest
    public var activate: @Sendable (PluginContext) throws -> any Plugin
    /// What `postern check-config` (and the probe before every start and reload) runs on the
    /// plugin's section, defaults applied, after its schema passed: the checks the schema cannot
    /// express (a rule with no condition, a bad regex, an unreadable rules file). Throwing reports
    /// the error's description against `[plugin.NAME]`. It must not open connections or start
    /// anything; the data directory is given for relative paths.
    public var check: (@Sendable (_ config: ConfigSection, _ dataDirectory: String) throws -> Void)?

    public init(manifest: PluginManifest, activate: @escaping @Sendable (PluginContext) throws -> any Plugin,
                check: (@Sendable (_ config: ConfigSection, _ dataDirectory: String) throws -> Void)? = nil) {
        self.manifest = manifest
        self.activate = activate
        self.check = check
    }
}

/// An activated plugin: the services it offers, and its background work.
///
/// A process brings its plugins up in two phases (ARCHITECTURE.md, "Start and stop order"): every
/// plugin is activated and its services registered, then `start()` is called on each, in an order
/// where a plugin starts after the plugins it depends on or uses. Listeners accept only after
/// every `start()` returned. Short-lived tool processes (`postern admin`, `postern queue`)
/// activate plugins and never start them.
public protocol Plugin: AnyObject, Sendable {
    /// The services this plugin registers with the host. Read once, right after activation.
    var services: [ProvidedService] { get }
    /// Starts background work (a queue manager, timers, watchers). Every plugin of the process is
    /// active and registered when this is called. Throwing stops the worker, as a refused
    /// activation does.
    func start() throws
    /// Stops background work and releases resources: when the worker shuts down, after its
    /// sessions have drained, in the reverse of the start order (so a plugin stops before the
    /// plugins it uses). Also called, without a `start()` before it, when a tool process ends.
    func shutdown()
}

extension Plugin {
    public func start() throws {}
    public func shutdown() {}
}

/// One service a plugin registers. Each belongs to one `PluginKind`.
public enum ProvidedService: Sendable {
    /// A protocol service that listeners name with `protocol = "NAME"`.
    case protocolService(name: String, any ProtocolService)
    case saslMechanism(any SASLMechanism)
    case credentialBackend(name: String, any CredentialBackend)
    case lookupTable(name: String, any LookupTable)
    case filter(name: String, any MailFilter)
    case storage(name: String, any StorageBackend)
    case accounts(any AccountStore)
    case transport(name: String, any Transport)
    case queue(any MailQueue)
    case dnsResolver(any DNSResolver)
    case changeNotifier(any ChangeNotifier)
    /// Recipient classification and rewriting (the queue plugin).
    case router(any MailRouter)
    /// Failed logins counted for every worker and protocol of the node (the store plugin).
    case loginFailures(any LoginFailureTable)
    /// A white-pages search (DirectorySearch.swift).
    case directorySearch(name: String, any DirectorySearch)
    /// Signs mail on its way out (OutgoingSigner.swift): DKIM, ARC.
    case outgoingSigner(any OutgoingMessageSigner)

    /// What kind of service this is, for `PluginManifest.uses`.
    public var type: ServiceType {
        switch self {
        case .protocolService: return .protocolService
        case .saslMechanism: return .saslMechanism
        case .credentialBackend: return .credentialBackend
        case .lookupTable: return .lookupTable
        case .filter: return .filter
        case .storage: return .storage
        case .accounts: return .accounts
        case .transport: return .transport
        case .queue: return .queue
        case .dnsResolver: return .dnsResolver
        case .changeNotifier: return .changeNotifier
        case .router: return .router
        case .loginFailures: return .loginFailures
        case .directorySearch: return .directorySearch
        case .outgoingSigner: return .outgoingSigner
        }
    }

    public var kind: PluginKind {
        switch self {
        case .protocolService: return .protocolService
        case .saslMechanism: return .saslMechanism
        case .credentialBackend: return .credentialBackend
        case .lookupTable: return .lookupTable
        case .filter: return .filter
        case .storage, .accounts: return .storage
        case .transport: return .transport
        case .queue, .dnsResolver, .changeNotifier, .router, .loginFailures, .directorySearch, .outgoingSigner: return .hostService
        }
    }

    /// The name the service is registered under.
    public var name: String {
        switch self {
        case .protocolService(let name, _), .credentialBackend(let name, _), .lookupTable(let name, _),
             .filter(let name, _), .storage(let name, _), .transport(let name, _), .directorySearch(let name, _):
            return name
        case .saslMechanism(let mechanism): return mechanism.name
        case .accounts: return "accounts"
        case .queue: return "queue"
        case .dnsResolver: return "dns"
        case .changeNotifier: return "notifications"
        case .router: return "router"
        case .loginFailures: return "login-failures"
        case .outgoingSigner: return "outgoing-signer"
        }
    }
}

/// The kinds of service a plugin can register, finer than `PluginKind` (whose `hostService` covers
/// the queue, the router, DNS and notifications): what `PluginManifest.uses` names.
public enum ServiceType: String, Sendable, CaseIterable, Codable {
    case protocolService = "protocol"
    case saslMechanism = "sasl"
    case credentialBackend = "credentials"
    case lookupTable = "lookup"
    case filter
    case storage
    case accounts
    case transport
    case queue
    case dnsResolver = "dns"
    case changeNotifier = "notifications"
    case router
    case loginFailures = "login-failures"
    case directorySearch = "directory-search"
    case outgoingSigner = "outgoing-signer"
}

/// What the host gives a plugin when it activates it.
// @unchecked Sendable: all stored properties are let (names, Logger, ConfigSection, event loop group, HostServices)
public final class PluginContext: @unchecked Sendable {
    /// The plugin's name from its manifest.
    public let pluginName: String
    /// The role this process runs (`all-in-one`, `gateway`, ...).
    public let role: String
    /// A logger labelled with the plugin's name; the host's log handler and level apply.
    public let logger: Logger
    /// `[plugin.NAME]`, validated against the manifest's schema, with defaults applied.
    public let config: ConfigSection
    /// The data directory (`data_dir`), absolute.
    public let dataDirectory: String
    /// The worker's event loops: run I/O here rather than creating threads.
    public let eventLoopGroup: any EventLoopGroup
    /// Services registered by the host and by plugins activated before this one; complete
    /// (`services.isComplete`) once every plugin of the process is active.
    public let services: HostServices

    public init(pluginName: String, role: String, logger: Logger, config: ConfigSection, dataDirectory: String,
                eventLoopGroup: any EventLoopGroup, services: HostServices) {
        self.pluginName = pluginName
        self.role = role
        self.logger = logger
        self.config = config
        self.dataDirectory = dataDirectory
        self.eventLoopGroup = eventLoopGroup
        self.services = services
    }

    /// A counter carrying this plugin's name as the `plugin` dimension (exported on `/metrics`).
    public func counter(_ label: String, dimensions: [(String, String)] = []) -> Counter {
        Counter(label: label, dimensions: [("plugin", pluginName)] + dimensions)
    }

    /// A gauge carrying this plugin's name as the `plugin` dimension.
    public func gauge(_ label: String, dimensions: [(String, String)] = []) -> Gauge {
        Gauge(label: label, dimensions: [("plugin", pluginName)] + dimensions)
    }
}
