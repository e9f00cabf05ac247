import PluginAPI

// The disclaimer filter: registered as the filter `disclaimer`, which an SMTP listener runs by
// naming it in its `filters` list. See README.md in this folder.

/// What `postern_plugin_entry` (Entry/Entry.swift) hands the host: the manifest and how to
/// activate the plugin. Here rather than in the entry so that tests can read it.
package enum DisclaimerRegistration {
    package static let filterName = "disclaimer"

    static let profileSchema = ConfigSchema([
        ConfigField("name", .string, help: "a name for the log; default: profile-N"),
        ConfigField("sender_domains", .array(.string), default: .array([]),
                    help: "envelope sender domains (subdomains included) the profile is for; empty: every sender"),
        ConfigField("directions", .array(.oneOf(FilterDirection.allCases.map(\.rawValue))), default: .array([.string("outbound")]),
                    help: "the listener directions it applies to: inbound, outbound, internal"),
        ConfigField("only_external_recipients", .boolean, default: .boolean(false),
                    help: "only when at least one recipient is outside internal_domains"),
        ConfigField("internal_domains", .array(.string), default: .array([]),
                    help: "the organisation's domains (subdomains included); empty: sender_domains"),
        ConfigField("text", .string, required: true, help: "the disclaimer for text/plain parts"),
        ConfigField("html", .string, help: "the disclaimer for text/html parts, as HTML; default: text, escaped, in a <div><p>"),
        ConfigField("signed", .oneOf(DisclaimerProfile.SignedHandling.allCases.map(\.rawValue)), default: .string("skip"),
                    help: "signed or encrypted messages: skip (untouched) or wrap (a new multipart/mixed around them)"),
    ])

    package static var registration: PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: "filter-disclaimer", version: "1.0.0",
                summary: "appends a disclaimer to messages matching a profile, MIME-correctly (the filter `disclaimer`)",
                kinds: [.filter],
                config: ConfigSchema([
                    ConfigField("profiles", .array(.table(profileSchema)), default: .array([]),
                                help: "[[plugin.filter-disclaimer.profiles]]: the first profile that applies to a message decides"),
                    ConfigField("max_message_size", .size, default: .string("32M"),
                                help: "bigger messages are passed on without a disclaimer"),
                ])),
            activate: { context in try DisclaimerPlugin(context: context) },
            check: { config, _ in _ = try DisclaimerRegistration.profiles(config) })
    }

    /// The profiles of a plugin section (defaults applied: the host does not apply them inside arrays).
    package static func profiles(_ config: ConfigSection) throws -> [DisclaimerProfile] {
        guard case .array(let items)? = config["profiles"] else { return [] }
        return try items.enumerated().map { n, item in
            guard case .table(let table) = item else { throw DisclaimerConfigError.notATable(n + 1) }
            let p = ConfigSection(profileSchema.applyingDefaults(to: table))
            let name = p.string("name") ?? "profile-\(n + 1)"
            let text = p.string("text") ?? ""
            guard !text.trimmingASCIIBlanks.isEmpty else { throw DisclaimerConfigError.emptyText(name) }
            let directions = Set((p.strings("directions") ?? ["outbound"]).compactMap(FilterDirection.init(rawValue:)))
            guard !directions.isEmpty else { throw DisclaimerConfigError.noDirection(name) }
            let senderDomains = p.strings("sender_domains") ?? []
            let internalDomains = p.strings("internal_domains") ?? []
            let external = p.bool("only_external_recipients") ?? false
            if external && senderDomains.isEmpty && internalDomains.isEmpty { throw DisclaimerConfigError.noInternalDomains(name) }
            return DisclaimerProfile(name: name, senderDomains: senderDomains, directions: directions,
                                     onlyExternalRecipients: external, internalDomains: internalDomains, text: text,
                                     html: p.string("html"),
                                     signed: p.string("signed").flatMap(DisclaimerProfile.SignedHandling.init(rawValue:)) ?? .skip)
        }
    }
}

final class DisclaimerPlugin: Plugin {
    let filter: InspectingFilter<DisclaimerInspector>

    init(context: PluginContext) throws {
        let profiles = try DisclaimerRegistration.profiles(context.config)
        if profiles.isEmpty { context.logger.warning("filter-disclaimer: no [[plugin.filter-disclaimer.profiles]]: the filter changes nothing") }
        filter = InspectingFilter(DisclaimerInspector(profiles: profiles, maxBufferedBytes: context.config.size("max_message_size") ?? 32 << 20,
                                                      logger: context.logger))
    }

    var services: [ProvidedService] { [.filter(name: DisclaimerRegistration.filterName, filter)] }
}

enum DisclaimerConfigError: Error, CustomStringConvertible {
    case notATable(Int)
    case emptyText(String)
    case noDirection(String)
    case noInternalDomains(String)

    var description: String {
        switch self {
        case .notATable(let n): return "plugin.filter-disclaimer.profiles: entry \(n) is not a table; write it as [[plugin.filter-disclaimer.profiles]]"
        case .emptyText(let name): return "plugin.filter-disclaimer profile '\(name)': text is empty; give the disclaimer's text"
        case .noDirection(let name): return "plugin.filter-disclaimer profile '\(name)': directions is empty; list inbound, outbound or internal"
        case .noInternalDomains(let name):
            return "plugin.filter-disclaimer profile '\(name)': only_external_recipients needs internal_domains (or sender_domains) to know which recipients are internal"
        }
    }
}
