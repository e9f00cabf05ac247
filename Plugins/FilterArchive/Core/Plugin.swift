import PluginAPI

// The message copier: every `[plugin.filter-archive.rules.NAME]` says which messages to copy
// (direction, sender or recipient domains, a list of addresses, a header) and where (an address,
// as the message itself or as an envelope journal, or a directory of .eml files). The plugin
// registers one filter, `archive`, which a listener runs by naming it in its `filters` list.
// See README.md in this folder.

package enum ArchiveRegistration {
    package static var registration: PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: "filter-archive", version: "1.0.0", summary: "archive and journal copies of messages, queued with them",
                kinds: [.filter],
                config: ConfigSchema([
                    ConfigField("rules", .map(.table(ConfigSchema([
                        ConfigField("directions", .array(.oneOf(FilterDirection.allCases.map(\.rawValue))), default: .array([]),
                                    help: "the directions the rule applies to; empty: all"),
                        ConfigField("sender_domains", .array(.string), default: .array([])),
                        ConfigField("recipient_domains", .array(.string), default: .array([])),
                        ConfigField("addresses", .array(.string), default: .array([]),
                                    help: "copy mail from or to any of these addresses (a department)"),
                        ConfigField("header", .string, help: "only messages with this header field ..."),
                        ConfigField("header_contains", .string, help: "... whose value contains this text (case ignored)"),
                        ConfigField("copy_to", .string, help: "queue the message as received to this address"),
                        ConfigField("journal_to", .string, help: "queue an envelope journal (report + original attached) to this address"),
                        ConfigField("directory", .string, help: "write each message as an .eml file under this directory"),
                    ]))), default: .table([:]), help: "one [plugin.filter-archive.rules.NAME] per rule"),
                    ConfigField("copy_sender", .string, default: .string(""),
                                help: "envelope sender of queued copies; empty: the null sender (no bounces)"),
                    ConfigField("journal_from", .string, default: .string("Postern journal <postmaster@localhost>")),
                    ConfigField("max_message_size", .size, default: .string("100M"),
                                help: "the largest message copied; a bigger one that a rule matches is refused (552)"),
                ])),
            activate: { context in try ArchivePlugin(context: context) },
            check: { config, _ in _ = try ArchiveConfig.rules(config.section("rules") ?? ConfigSection()) })
    }
}

final class ArchivePlugin: Plugin {
    let filter: InspectingFilter<ArchiveInspector>

    init(context: PluginContext) throws {
        let rules = try ArchiveConfig.rules(context.config.section("rules") ?? ConfigSection())
        for rule in rules { context.logger.info("archive rule", metadata: ["rule": "\(rule.name)", "destination": "\(rule.destination)"]) }
        filter = InspectingFilter(ArchiveInspector(
            rules: rules, copySender: context.config.string("copy_sender") ?? "",
            journalFrom: context.config.string("journal_from") ?? "Postern journal <postmaster@localhost>",
            maxBufferedBytes: context.config.size("max_message_size") ?? 100 << 20, logger: context.logger,
            copies: context.counter("postern_archive_copies_total"), failures: context.counter("postern_archive_failures_total")))
    }

    var services: [ProvidedService] { [.filter(name: "archive", filter)] }
}

enum ArchiveConfig {
    /// The rules of the config, by name; each must name exactly one destination.
    static func rules(_ section: ConfigSection) throws -> [ArchiveRule] {
        try section.values.keys.sorted().map { name in
            let r = section.section(name)!
            let destinations = [r.string("copy_to").map(ArchiveDestination.copy(to:)),
                                r.string("journal_to").map(ArchiveDestination.journal(to:)),
                                r.string("directory").map(ArchiveDestination.directory)].compactMap { $0 }
            guard destinations.count == 1 else { throw ArchiveConfigError.destination(name, destinations.count) }
            if case .directory(let path) = destinations[0], !path.hasPrefix("/") { throw ArchiveConfigError.relativeDirectory(name, path) }
            var rule = ArchiveRule(name: name, destination: destinations[0])
            rule.directions = Set((r.strings("directions") ?? []).compactMap(FilterDirection.init(rawValue:)))
            rule.senderDomains = (r.strings("sender_domains") ?? []).map { $0.lowercased() }
            rule.recipientDomains = (r.strings("recipient_domains") ?? []).map { $0.lowercased() }
            rule.addresses = (r.strings("addresses") ?? []).map { $0.lowercased() }
            switch (r.string("header"), r.string("header_contains")) {
            case (let h?, let c?): rule.header = (h, c)
            case (nil, nil): break
            default: throw ArchiveConfigError.header(name)
            }
            return rule
        }
    }
}

enum ArchiveConfigError: Error, CustomStringConvertible {
    case destination(String, Int)
    case relativeDirectory(String, String)
    case header(String)

    var description: String {
        switch self {
        case .destination(let name, let n):
            return "archive rule '\(name)': give exactly one of copy_to, journal_to or directory (found \(n))"
        case .relativeDirectory(let name, let path):
            return "archive rule '\(name)': directory '\(path)' must be an absolute path"
        case .header(let name):
            return "archive rule '\(name)': header and header_contains go together"
        }
    }
}
