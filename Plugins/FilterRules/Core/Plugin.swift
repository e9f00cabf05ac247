import Foundation
import PluginAPI

// The rules filter: scores each message with the rule set for its recipients' domain and the
// listener's direction, and tags, quarantines or rejects it from the set's thresholds. Registered
// as the filter `rules`, which an SMTP listener runs by naming it in its `filters` list. See
// README.md in this folder.

/// What `postern_plugin_entry` (Entry/Entry.swift) hands the host: the manifest and how to
/// activate the plugin. Here rather than in the entry so that tests can read it.
package enum FilterRulesRegistration {
    /// The name listeners put in `filters`.
    package static let filterName = "rules"

    package static var schema: ConfigSchema {
        ConfigSchema([
            ConfigField("sets", .array(.table(RuleSchema.set)), default: .array([]),
                        help: "[[plugin.filter-rules.sets]]: rule sets; with none here or in rules_file, the shipped default set"),
            ConfigField("rules_file", .string,
                        help: "a TOML file of more [[sets]] (after the inline ones); relative paths are under data_dir"),
            ConfigField("trusted_networks", .array(.string), default: .array([.string("127.0.0.0/8"), .string("::1/128")]),
                        help: "clients inside the network (with authenticated ones): unqualified_sender_domain never hits them"),
            ConfigField("max_message_bytes", .size, default: .string("10M"),
                        help: "the most of a message read; a bigger one is judged on its head (size_over sees its real size)"),
            ConfigField("max_scan_bytes", .size, default: .string("1M"), help: "the most decoded text body rules search"),
            ConfigField("max_uri_hosts", .integer(0...1000), default: .integer(20), help: "link hosts per message asked of uribl zones"),
            ConfigField("dns_concurrency", .integer(1...256), default: .integer(8), help: "block list lookups in flight at once per message"),
        ])
    }

    package static var registration: PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: "filter-rules", version: "1.0.0", summary: "anti-spam rule sets: scores, tags, quarantines or rejects",
                kinds: [.filter], config: schema),
            activate: { context in try FilterRulesPlugin(context: context) },
            check: { config, dataDirectory in _ = try FilterRulesPlugin.settings(config, dataDirectory: dataDirectory) })
    }
}

final class FilterRulesPlugin: Plugin {
    let filter: InspectingFilter<RulesInspector>

    init(context: PluginContext) throws {
        let settings = try Self.settings(context.config, dataDirectory: context.dataDirectory)
        for set in settings.sets {
            context.logger.info("rule set loaded", metadata: ["set": "\(set.name)", "rules": "\(set.rules.count)",
                                                              "domains": "\(set.domains.sorted())", "directions": "\(set.directions.map(\.rawValue).sorted())"])
        }
        let services = context.services
        filter = InspectingFilter(RulesInspector(settings: settings, resolver: { services.dns }, logger: context.logger))
    }

    var services: [ProvidedService] { [.filter(name: FilterRulesRegistration.filterName, filter)] }

    /// The settings of a validated `[plugin.filter-rules]` section. Defaults are written out here
    /// too: the host applies them to the plugin's own keys, not inside the tables of an array.
    static func settings(_ config: ConfigSection, dataDirectory: String) throws -> RulesSettings {
        let defaults = RuleFile.defaultSet()
        var sets: [RuleSet] = []
        if case .array(let items)? = config["sets"] {
            sets += try RuleSetBuilder.sets(items, origin: "[plugin.filter-rules]", defaults: defaults.rules)
        }
        if let file = config.string("rules_file") {
            let path = file.hasPrefix("/") ? file : dataDirectory + "/" + file
            sets += try RuleFile.sets(path: path, defaults: defaults.rules)
        }
        if sets.isEmpty { sets = [defaults] }
        var names = Set<String>()
        for set in sets where !names.insert(set.name).inserted {
            throw RuleConfigError("filter-rules: rule set name '\(set.name)' is used twice; rename one")
        }
        let trusted = try (config.strings("trusted_networks") ?? ["127.0.0.0/8", "::1/128"]).map { text in
            guard let network = IPNetwork(text) else {
                throw RuleConfigError("[plugin.filter-rules] trusted_networks: '\(text)' is not an address or CIDR network")
            }
            return network
        }
        return RulesSettings(sets: sets, trustedNetworks: trusted, maxMessageBytes: config.size("max_message_bytes") ?? 10 << 20,
                             maxScanBytes: config.size("max_scan_bytes") ?? 1 << 20, maxURIHosts: config.int("max_uri_hosts") ?? 20,
                             dnsConcurrency: config.int("dns_concurrency") ?? 8)
    }
}
