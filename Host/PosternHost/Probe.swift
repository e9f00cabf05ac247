import Foundation
import PluginAPI

/// What a probe found: the plugins it loaded and every refusal and config problem.
public struct ProbeReport: Codable, Sendable {
    public struct PluginInfo: Codable, Sendable, Equatable {
        public var name: String
        public var version: String
        public var file: String
        public var kinds: [String]
        public var dependencies: [String]
        public var protocols: [String]
    }

    public struct Issue: Codable, Sendable {
        public var keyPath: [String]
        public var message: String
    }

    public var plugins: [PluginInfo] = []
    public var refusals: [PluginRefusal] = []
    public var issues: [Issue] = []

    public var ok: Bool { refusals.isEmpty && issues.isEmpty }

    /// One line per problem, each with the file, line and key of the configuration that asked
    /// for the plugin or holds the bad setting.
    public func messages(config: HostConfig) -> [String] {
        refusals.map { config.diagnostic(ConfigIssue(keyPath: Self.reference(to: $0.plugin, in: config), message: $0.description)).description }
            + issues.map { config.diagnostic(ConfigIssue(keyPath: $0.keyPath, message: $0.message)).description }
    }

    /// Where a config asks for a plugin: a listener, its section, or `[plugins] load`.
    static func reference(to plugin: String, in config: HostConfig) -> [String] {
        if let l = config.listeners.first(where: { $0.plugin == plugin }) { return ["listener", String(l.index), "protocol"] }
        if config.pluginSections[plugin] != nil { return ["plugin", plugin] }
        return ["plugins", "load"]
    }
}

/// Loads every plugin a configuration needs and checks the plugin-dependent parts of the config.
/// Runs in a throw-away child (`postern probe`) before any serving process maps a plugin, so that
/// a refused or crashing plugin never touches the master or a worker.
public enum Probe {
    public static func run(config: HostConfig) -> (ProbeReport, [LoadedPlugin]) {
        let loader = PluginLoader(configuredPath: config.pluginPath)
        let (loaded, refused) = loader.loadAll(config.requestedPlugins)
        var report = ProbeReport()
        report.refusals = refused
        report.plugins = loaded.map {
            .init(name: $0.manifest.name, version: $0.manifest.version, file: $0.file,
                  kinds: $0.manifest.kinds.map(\.rawValue).sorted(), dependencies: $0.manifest.dependencies,
                  protocols: $0.manifest.protocols.keys.sorted())
        }
        report.issues = validate(config: config, loaded: loaded, refusedNames: Set(refused.map(\.plugin)))
            .map { .init(keyPath: $0.keyPath, message: $0.message) }
        return (report, loaded)
    }

    /// Plugin sections, listener options and roles, against the loaded manifests. Problems caused
    /// by a refused plugin are left to its refusal.
    public static func validate(config: HostConfig, loaded: [LoadedPlugin], refusedNames: Set<String>) -> [ConfigIssue] {
        var issues: [ConfigIssue] = []
        let byName = Dictionary(loaded.map { ($0.manifest.name, $0) }, uniquingKeysWith: { a, _ in a })
        for (name, section) in config.pluginSections.sorted(by: { $0.key < $1.key }) {
            guard let plugin = byName[name] else { continue }
            let schemaIssues = plugin.manifest.config.validate(section, at: ["plugin", name])
            issues += schemaIssues
            // What the schema cannot say, the plugin's own check says (only on a section whose
            // types are right, so the check may rely on them).
            if schemaIssues.isEmpty, let check = plugin.registration.check {
                do {
                    try check(ConfigSection(plugin.manifest.config.applyingDefaults(to: section)), config.dataDirectory)
                } catch {
                    issues.append(ConfigIssue(keyPath: ["plugin", name], message: "\(error)"))
                }
            }
        }
        // Roles mean something: a plugin serves the roles its manifest names, and a listener the
        // roles of its protocol service (which may be narrower). The error points at what brought
        // the plugin in: its listener, its section, or the role line; one error per service.
        var refusedServices = Set<String>()
        for l in config.listeners {
            guard let m = byName[l.plugin]?.manifest, let (service, _) = serviceSchema(m, l.service) else { continue }
            let roles = m.roles(ofProtocol: service)
            guard !roles.isEmpty, !roles.contains(config.role), refusedServices.insert(service).inserted else { continue }
            let serves = roles.sorted().joined(separator: ", ")
            issues.append(ConfigIssue(keyPath: ["listener", String(l.index), "protocol"],
                message: "listener '\(l.name)' (\(service)) does not belong in the role '\(config.role)': \(service) serves \(serves); move it to a config of one of those roles or change role"))
        }
        for plugin in loaded where !plugin.manifest.roles.isEmpty && !plugin.manifest.roles.contains(config.role) {
            let m = plugin.manifest
            let serves = m.roles.sorted().joined(separator: ", ")
            if config.listeners.contains(where: { $0.plugin == m.name }) {
                continue  // refused above, or one of its services serves this role
            } else if config.pluginSections[m.name] != nil {
                issues.append(ConfigIssue(keyPath: ["plugin", m.name],
                    message: "plugin '\(m.name)' does not belong in the role '\(config.role)': it serves \(serves)"))
            } else {
                issues.append(ConfigIssue(keyPath: ["role"],
                    message: "plugin '\(m.name)' (needed by another plugin) does not belong in the role '\(config.role)': it serves \(serves)"))
            }
        }
        for l in config.listeners {
            let at = ["listener", String(l.index)]
            guard let plugin = byName[l.plugin] else {
                if !refusedNames.contains(l.plugin) {
                    issues.append(ConfigIssue(keyPath: at + ["protocol"], message: "no plugin '\(l.plugin)' is loaded"))
                }
                continue
            }
            guard let (_, schema) = serviceSchema(plugin.manifest, l.service) else {
                let offered = plugin.manifest.protocols.keys.sorted()
                issues.append(ConfigIssue(keyPath: at + [l.service == nil ? "protocol" : "service"],
                    message: "plugin '\(l.plugin)' provides the protocol services \(offered), expected \(l.service.map { "'\($0)'" } ?? "one of them to be named 'service'")"))
                continue
            }
            issues += schema.validate(l.options, at: at + ["options"])
        }
        return issues
    }

    /// The protocol service a listener uses: the one named by `service`, else the one named like
    /// the plugin, else the plugin's only one.
    public static func serviceSchema(_ manifest: PluginManifest, _ service: String?) -> (String, ConfigSchema)? {
        if let service { return manifest.protocols[service].map { (service, $0) } }
        if let s = manifest.protocols[manifest.name] { return (manifest.name, s) }
        if manifest.protocols.count == 1 { return manifest.protocols.first.map { ($0.key, $0.value) } }
        return nil
    }
}
