/// The kinds of plugin (ARCHITECTURE.md, "Plugin kinds"). A plugin declares the kinds it provides in
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
    /// The keys of `[plugin.NAME]`, with defaults.
    public var config: ConfigSchema
    /// The protocol services this plugin provides, by name, each with the schema of the
    /// `[listener.options]` a listener using it may set. Known before activation, so that
    /// `check-config` can validate listeners without starting anything.
    public var protocols: [String: ConfigSchema]

    public init(name: String, version: String, summary: String = "", kinds: Set<PluginKind>,
                dependencies: [String] = [], roles: Set<String> = [], config: ConfigSchema = ConfigSchema(),
                protocols: [String: ConfigSchema] = [:]) {
        self.name = name
        self.version = version
        self.summary = summary
        self.kinds = kinds
        self.dependencies = dependencies
        self.roles = roles
        self.config = config
        self.protocols = protocols
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
/// error's description.
public struct PluginRegistration: Sendable {
    public var manifest: PluginManifest
    public var activate: @Sendable (PluginContext) throws -> any Plugin

    public init(manifest: PluginManifest, activate: @escaping @Sendable (PluginContext) throws -> any Plugin) {
        self.manifest = manifest
        self.activate = activate
    }
}

/// An activated plugin: the services it offers and how it stops.
public protocol Plugin: AnyObject, Sendable {
    /// The services this plugin registers with the host. Read once, right after activation.
    var services: [ProvidedService] { get }
    /// Called when the worker shuts down, after its sessions have drained.
    func shutdown()
}

extension Plugin {
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

    public var kind: PluginKind {
        switch self {
        case .protocolService: return .protocolService
        case .saslMechanism: return .saslMechanism
        case .credentialBackend: return .credentialBackend
        case .lookupTable: return .lookupTable
        case .filter: return .filter
        case .storage, .accounts: return .storage
        case .transport: return .transport
        case .queue, .dnsResolver, .changeNotifier, .router: return .hostService
        }
    }

    /// The name the service is registered under.
    public var name: String {
        switch self {
        case .protocolService(let name, _), .credentialBackend(let name, _), .lookupTable(let name, _),
             .filter(let name, _), .storage(let name, _), .transport(let name, _):
            return name
        case .saslMechanism(let mechanism): return mechanism.name
        case .accounts: return "accounts"
        case .queue: return "queue"
        case .dnsResolver: return "dns"
        case .changeNotifier: return "notifications"
        case .router: return "router"
        }
    }
}

/// What the host gives a plugin when it activates it.
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
    /// Services registered by the host and by plugins activated before this one.
    public let services: HostServices
    /// True in a serving worker; false in a short-lived tool process (`postern admin`,
    /// `postern queue`) that only wants the plugin's data: background work (a queue manager,
    /// timers) starts only when serving.
    public let isServing: Bool

    public init(pluginName: String, role: String, logger: Logger, config: ConfigSection, dataDirectory: String,
                eventLoopGroup: any EventLoopGroup, services: HostServices, isServing: Bool = true) {
        self.isServing = isServing
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
