import Foundation
import PluginAPI

/// The plugins of one process, brought up in two phases (ARCHITECTURE.md, "Start and stop order"):
///
/// 1. **activate** every plugin in dependency order, each registering its services, then mark the
///    services complete;
/// 2. **start** each one (its background work: queue manager, timers) in the start order, where a
///    plugin comes after the plugins it depends on and the plugins providing what it `uses`.
///
/// `shutdown` goes in the reverse of the start order. A worker does all three; a tool process
/// (`postern admin`, `postern queue`) activates and shuts down, and never starts anything.
// @unchecked Sendable: all stored properties are let (members, startOrder, ignoredCycles), written once in init, then read only
public final class PluginLifecycle: @unchecked Sendable {
    struct Member {
        let manifest: PluginManifest
        let instance: any Plugin
        let services: [ProvidedService]
    }

    /// Activation order.
    let members: [Member]
    /// Indices into `members`.
    let startOrder: [Int]
    /// Uses that point back along a cycle and were left out of the order (logged, not fatal:
    /// every service exists by then, so a cycle only leaves those two plugins' order open).
    let ignoredCycles: [String]

    /// Activates `loaded` (already in dependency order) against `services`, checking that each
    /// plugin registers only the kinds its manifest declares. Throws the first refusal, after
    /// shutting down what it had activated.
    public convenience init(activating loaded: [LoadedPlugin], config: HostConfig, group: any EventLoopGroup,
                            services: HostServices, logger: Logger? = nil) throws {
        try self.init(activating: loaded, role: config.role, dataDirectory: config.dataDirectory,
                      sections: config.pluginSections, group: group, services: services, logger: logger)
    }

    /// The same with the config's parts given one by one (test fixtures build them by hand).
    /// Each section is validated against the plugin's schema, and its defaults applied.
    public init(activating loaded: [LoadedPlugin], role: String, dataDirectory: String, sections: [String: [String: ConfigValue]],
                group: any EventLoopGroup, services: HostServices, logger: Logger? = nil) throws {
        var members: [Member] = []
        for plugin in loaded {
            let m = plugin.manifest
            var pluginLogger = Logger(label: "plugin.\(m.name)")
            pluginLogger[metadataKey: "plugin"] = "\(m.name)"
            let table = sections[m.name] ?? [:]
            let issues = m.config.validate(table)
            if !issues.isEmpty {
                members.reversed().forEach { $0.instance.shutdown() }
                throw SystemError.message("refused plugin '\(m.name)' (\(plugin.file)): [plugin.\(m.name)] \(issues.map { "\($0)" }.joined(separator: "; "))")
            }
            let context = PluginContext(pluginName: m.name, role: role, logger: pluginLogger,
                                        config: ConfigSection(m.config.applyingDefaults(to: table)),
                                        dataDirectory: dataDirectory, eventLoopGroup: group, services: services)
            let instance: any Plugin
            do {
                instance = try plugin.registration.activate(context)
            } catch {
                members.reversed().forEach { $0.instance.shutdown() }
                throw SystemError.message("refused plugin '\(m.name)' (\(plugin.file)): activation failed: \(error)")
            }
            let provided = instance.services
            for service in provided where !m.kinds.contains(service.kind) {
                members.reversed().forEach { $0.instance.shutdown() }
                throw SystemError.message("refused plugin '\(m.name)' (\(plugin.file)): registers a \(service.kind.rawValue) service '\(service.name)' but its manifest does not declare that kind")
            }
            if let clash = Self.mechanismClash(provided, plugin: m.name, members: members) {
                instance.shutdown()
                members.reversed().forEach { $0.instance.shutdown() }
                throw SystemError.message("refused plugin '\(m.name)' (\(plugin.file)): \(clash)")
            }
            services.register(provided)
            members.append(Member(manifest: m, instance: instance, services: provided))
            logger?.info("plugin activated", metadata: ["plugin": "\(m.name)", "version": "\(m.version)", "file": "\(plugin.file)"])
        }
        services.markComplete()
        self.members = members
        let (order, cycles) = Self.startOrder(members.map {
            StartNode(name: $0.manifest.name, dependencies: $0.manifest.dependencies, uses: $0.manifest.uses,
                      provides: Set($0.services.map(\.type)))
        })
        startOrder = order
        ignoredCycles = cycles
    }

    /// Two plugins offering the same SASL mechanism name (a native CRAM-MD5 and the libsasl2
    /// bridge's, say) would leave it to load order which one a client gets: the config must load
    /// one or the other. Names compare without case; nil when there is no clash.
    static func mechanismClash(_ provided: [ProvidedService], plugin: String, members: [Member]) -> String? {
        func names(_ services: [ProvidedService]) -> [String] {
            services.compactMap { if case .saslMechanism(let m) = $0 { return m.name.uppercased() } else { return nil } }
        }
        var seen = Set<String>()
        for name in names(provided) {
            if !seen.insert(name).inserted { return "registers the SASL mechanism \(name) twice" }
            if let owner = members.first(where: { names($0.services).contains(name) }) {
                return "SASL mechanism \(name) is already provided by plugin '\(owner.manifest.name)': load one or the other "
                    + "(remove the mechanism from one plugin's config, or one of the two plugins)"
            }
        }
        return nil
    }

    /// The services `name` registered, or nil when no such plugin is active.
    public func services(of name: String) -> [ProvidedService]? {
        members.first { $0.manifest.name == name }?.services
    }

    /// Names in start order.
    public var startNames: [String] { startOrder.map { members[$0].manifest.name } }

    /// Phase 2: starts every plugin in start order. A plugin that throws stops the process's
    /// start-up: the caller shuts everything down and exits as for a refused activation.
    public func start(logger: Logger) throws {
        for cycle in ignoredCycles { logger.warning("plugin start order: ignored a cycle of uses: \(cycle)") }
        for i in startOrder {
            let m = members[i].manifest
            do {
                try members[i].instance.start()
            } catch {
                throw SystemError.message("plugin '\(m.name)' could not start: \(error)")
            }
        }
        logger.info("plugins started", metadata: ["order": "\(startNames.joined(separator: ", "))"])
    }

    /// Reverse start order: a plugin stops before the plugins it uses.
    public func shutdown() {
        for i in startOrder.reversed() { members[i].instance.shutdown() }
    }

    public struct StartNode: Sendable {
        public var name: String
        public var dependencies: [String]
        public var uses: Set<ServiceType>
        public var provides: Set<ServiceType>

        public init(name: String, dependencies: [String] = [], uses: Set<ServiceType> = [], provides: Set<ServiceType> = []) {
            self.name = name
            self.dependencies = dependencies
            self.uses = uses
            self.provides = provides
        }
    }

    /// A topological order of `nodes` over "depends on" and "uses a service type another plugin
    /// provides" (a plugin's own services do not count), ties kept in activation order. An edge
    /// that closes a cycle is left out and described in the second result.
    public static func startOrder(_ nodes: [StartNode]) -> (order: [Int], ignoredCycles: [String]) {
        let index = Dictionary(nodes.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { first, _ in first })
        func edges(_ i: Int) -> [Int] {
            let byDependency = nodes[i].dependencies.compactMap { index[$0] }
            let byUse = nodes.indices.filter { j in j != i && !nodes[j].provides.isDisjoint(with: nodes[i].uses) }
            var seen = Set<Int>()
            return (byDependency + byUse).filter { seen.insert($0).inserted }
        }
        var state = [Int](repeating: 0, count: nodes.count)  // 0 new, 1 visiting, 2 done
        var order: [Int] = []
        var cycles: [String] = []
        func visit(_ i: Int, _ path: [Int]) {
            state[i] = 1
            for j in edges(i) {
                switch state[j] {
                case 0: visit(j, path + [i])
                case 1:
                    let loop = Array((path + [i]).drop { $0 != j }) + [j]
                    cycles.append(loop.map { nodes[$0].name }.joined(separator: " -> "))
                default: break
                }
            }
            state[i] = 2
            order.append(i)
        }
        for i in nodes.indices where state[i] == 0 { visit(i, []) }
        return (order, cycles)
    }
}
