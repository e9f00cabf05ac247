import Foundation
import PluginAPI

// The milter client: every `[plugin.milter.milters.NAME]` is registered as the filter NAME, which
// an SMTP listener runs by naming it in its `filters` list (in the order it wants the milters'
// changes applied). See README.md in this folder.

/// What `postern_plugin_entry` (Entry/Entry.swift) hands the host: the manifest and how to
/// activate the plugin. Here rather than in the entry so that tests can read it.
package enum MilterRegistration {
    package static var registration: PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: "milter", version: "1.0.0", summary: "Sendmail milter protocol v6 client: external milters as filters",
                kinds: [.filter],
                config: ConfigSchema([
                    ConfigField("milters", .map(.table(ConfigSchema([
                        ConfigField("address", .string, required: true,
                                    help: "inet:HOST:PORT, PORT@HOST, inet6:[ADDR]:PORT, unix:PATH or /PATH"),
                        ConfigField("connect_timeout", .duration, default: .string("5s")),
                        ConfigField("timeout", .duration, default: .string("60s"),
                                    help: "the longest wait for one answer; the milter's PROGRESS restarts it"),
                        ConfigField("default_action", .oneOf(MilterSettings.DefaultAction.allCases.map(\.rawValue)), default: .string("tempfail"),
                                    help: "the verdict when the milter cannot be reached, times out or breaks the protocol: tempfail, accept or reject"),
                    ]))), default: .table([:]), help: "one [plugin.milter.milters.NAME] per milter; NAME is the filter name listeners use"),
                ])),
            activate: { context in try MilterPlugin(context: context) },
            check: { config, _ in
                let section = config.section("milters") ?? ConfigSection()
                for name in section.values.keys.sorted() {
                    let text = section.section(name)?.string("address") ?? ""
                    guard MilterAddress(text) != nil else { throw MilterConfigError.badAddress(name, text) }
                }
            })
    }
}

final class MilterPlugin: Plugin {
    let filters: [MilterFilter]

    init(context: PluginContext) throws {
        let section = context.config.section("milters") ?? ConfigSection()
        filters = try section.values.keys.sorted().map { name in
            let m = section.section(name)!
            guard let address = MilterAddress(m.string("address")!) else { throw MilterConfigError.badAddress(name, m.string("address")!) }
            // Defaults written out here too: the host applies them to the plugin's own keys, not
            // inside the tables of a map.
            let settings = MilterSettings(name: name, address: address, connectTimeout: m.duration("connect_timeout") ?? 5,
                                          timeout: m.duration("timeout") ?? 60,
                                          defaultAction: m.string("default_action").flatMap(MilterSettings.DefaultAction.init(rawValue:)) ?? .tempfail)
            context.logger.info("milter configured", metadata: ["milter": "\(name)", "address": "\(address)"])
            return MilterFilter(settings: settings, group: context.eventLoopGroup, logger: context.logger,
                                failures: context.counter("postern_milter_failures_total", dimensions: [("milter", name)]))
        }
    }

    var services: [ProvidedService] { filters.map { .filter(name: $0.settings.name, $0) } }
}

enum MilterConfigError: Error, CustomStringConvertible {
    case badAddress(String, String)

    var description: String {
        switch self {
        case .badAddress(let name, let text): return "milter '\(name)': address '\(text)' is not inet:HOST:PORT or unix:PATH"
        }
    }
}
