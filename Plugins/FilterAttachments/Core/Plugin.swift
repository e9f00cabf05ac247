import PluginAPI

// Attachments blocked, removed or quarantined: registered as the filter `attachments`, which an
// SMTP listener runs by naming it in its `filters` list. See README.md in this folder.

/// What `postern_plugin_entry` (Entry/Entry.swift) hands the host: the manifest and how to
/// activate the plugin. Here rather than in the entry so that tests can read it.
package enum FilterAttachmentsRegistration {
    static let actions = AttachmentAction.allCases.map(\.rawValue)

    static let ruleSchema = ConfigSchema([
        ConfigField("name", .string, help: "shown in replies, notices and logs; default rule-N"),
        ConfigField("extensions", .array(.string), help: "final file extensions, without the dot (case ignored)"),
        ConfigField("double_extension", .boolean, default: .boolean(false),
                    help: "extensions match only behind a document-like extension (invoice.pdf.exe)"),
        ConfigField("name_patterns", .array(.string), help: "globs on the file name (*, ?, [...]), case ignored"),
        ConfigField("mime_types", .array(.string), help: "declared types, type/subtype or type/*"),
        ConfigField("magic_mismatch", .boolean, default: .boolean(false),
                    help: "content that is an executable or archive while claiming to be an image, PDF, text, audio or video"),
        ConfigField("zip_member_extensions", .array(.string), help: "final extensions of the members of ZIP attachments"),
        ConfigField("senders", .array(.string), help: "the rule applies only to mail from these envelope senders ..."),
        ConfigField("sender_domains", .array(.string), help: "... or from these domains and their subdomains"),
        ConfigField("recipients", .array(.string), help: "the rule applies only when a recipient is one of these ..."),
        ConfigField("recipient_domains", .array(.string), help: "... or in one of these domains and their subdomains"),
        ConfigField("directions", .array(.oneOf(FilterDirection.allCases.map(\.rawValue))), help: "inbound, outbound, internal"),
        ConfigField("action", .oneOf(actions), default: .string("reject"), help: "reject, remove, quarantine or allow"),
        ConfigField("reason", .string, help: "the reason replies and notices give; default: what matched"),
    ])

    package static var registration: PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: "filter-attachments", version: "1.0.0",
                summary: "attachments blocked, removed or quarantined by name, type, content and archive members",
                kinds: [.filter],
                config: ConfigSchema([
                    ConfigField("rules", .array(.table(ruleSchema)),
                                help: "one [[plugin.filter-attachments.rules]] per rule; a file's first matching rule decides"),
                    ConfigField("default_rules", .boolean,
                                help: "append the built-in rules after yours; default: true without rules, false with them"),
                    ConfigField("unreadable_archive_action", .oneOf(actions), default: .string("quarantine"),
                                help: "for a ZIP that cannot be listed (broken, encrypted, nested too deep or too big)"),
                    ConfigField("max_archive_depth", .integer(1...8), default: .integer(2),
                                help: "levels of ZIP listed: 1 the attachment's members, 2 also the ZIPs inside it"),
                    ConfigField("max_nested_archive_size", .size, default: .string("16M"), help: "the biggest ZIP inside a ZIP that is opened"),
                    ConfigField("max_scan_size", .size, default: .string("64M"),
                                help: "the most of a message inspected; a bigger one is quarantined rather than cleansed"),
                    ConfigField("header", .string, default: .string("X-Postern-Attachments"),
                                help: "field added to a cleansed message per removed file; \"\" for none"),
                    ConfigField("notice", .string, help: "text standing where a file was removed; {file}, {reason}, {rule} are filled in"),
                ])),
            activate: { context in try FilterAttachmentsPlugin(context: context) },
            check: { config, _ in _ = try FilterAttachmentsRegistration.settings(config) })
    }

    /// The settings of `[plugin.filter-attachments]`; errors say which key to fix.
    static func settings(_ config: ConfigSection) throws -> AttachmentSettings {
        var s = AttachmentSettings()
        let tables: [ConfigSection]
        if case .array(let items)? = config.values["rules"] {
            tables = items.compactMap { if case .table(let t) = $0 { return ConfigSection(t) } else { return nil } }
        } else {
            tables = []
        }
        var rules = try tables.enumerated().map { try rule($1, number: $0 + 1) }
        var names: Set<String> = []
        for r in rules where !names.insert(r.name).inserted { throw AttachmentConfigError.duplicateName(r.name) }
        if config.bool("default_rules") ?? rules.isEmpty { rules += AttachmentRule.defaults }
        s.rules = rules
        if let a = config.string("unreadable_archive_action").flatMap(AttachmentAction.init(rawValue:)) { s.unreadableArchiveAction = a }
        if let d = config.int("max_archive_depth") { s.archiveLimits.maxDepth = d }
        if let n = config.size("max_nested_archive_size") { s.archiveLimits.maxNestedBytes = n }
        if let m = config.size("max_scan_size") { s.maxScanSize = m }
        if let h = config.string("header") {
            guard h.isEmpty || h.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != 58 }) else { throw AttachmentConfigError.badHeader(h) }
            s.headerName = h
        }
        if let n = config.string("notice"), !n.isEmpty { s.notice = n }
        return s
    }

    static func rule(_ t: ConfigSection, number: Int) throws -> AttachmentRule {
        let name = t.string("name") ?? "rule-\(number)"
        func list(_ key: String) -> [String] { (t.strings(key) ?? []).map { $0.trimmingBlanks.lowercased() }.filter { !$0.isEmpty } }
        func extensions(_ key: String) -> Set<String> { Set(list(key).map { $0.hasPrefix(".") ? String($0.dropFirst()) : $0 }) }
        var r = AttachmentRule(name: name)
        r.extensions = extensions("extensions")
        r.doubleExtension = t.bool("double_extension") ?? false
        r.namePatterns = list("name_patterns")
        r.mimeTypes = list("mime_types")
        for type in r.mimeTypes {
            let halves = type.split(separator: "/", omittingEmptySubsequences: false)
            guard halves.count == 2, !halves[0].isEmpty, !halves[1].isEmpty, halves[0] != "*" else {
                throw AttachmentConfigError.badMIMEType(name, type)
            }
        }
        r.magicMismatch = t.bool("magic_mismatch") ?? false
        r.zipMemberExtensions = extensions("zip_member_extensions")
        r.scope.senders = Set(list("senders"))
        r.scope.senderDomains = list("sender_domains").map { $0.hasPrefix("@") || $0.hasPrefix(".") ? String($0.dropFirst()) : $0 }
        r.scope.recipients = Set(list("recipients"))
        r.scope.recipientDomains = list("recipient_domains").map { $0.hasPrefix("@") || $0.hasPrefix(".") ? String($0.dropFirst()) : $0 }
        r.scope.directions = Set(list("directions").compactMap(FilterDirection.init(rawValue:)))
        r.action = t.string("action").flatMap(AttachmentAction.init(rawValue:)) ?? .reject
        r.reason = t.string("reason").flatMap { $0.isEmpty ? nil : $0 }
        guard r.hasMatcher else { throw AttachmentConfigError.noMatcher(name) }
        if r.doubleExtension && r.extensions.isEmpty { throw AttachmentConfigError.doubleWithoutExtensions(name) }
        return r
    }
}

final class FilterAttachmentsPlugin: Plugin {
    let filter: InspectingFilter<AttachmentInspector>

    init(context: PluginContext) throws {
        let settings = try FilterAttachmentsRegistration.settings(context.config)
        var counters: [AttachmentAction: Counter] = [:]
        for action in AttachmentAction.allCases where action != .allow {
            counters[action] = context.counter("postern_attachments_actions_total", dimensions: [("action", action.rawValue)])
        }
        let byAction = counters
        context.logger.info("attachment rules", metadata: ["rules": "\(settings.rules.map(\.name).joined(separator: ", "))"])
        filter = InspectingFilter(AttachmentInspector(settings: settings, logger: context.logger, counter: { byAction[$0]?.increment() }))
    }

    var services: [ProvidedService] { [.filter(name: "attachments", filter)] }
}

enum AttachmentConfigError: Error, CustomStringConvertible {
    case noMatcher(String)
    case doubleWithoutExtensions(String)
    case badMIMEType(String, String)
    case duplicateName(String)
    case badHeader(String)

    var description: String {
        switch self {
        case .noMatcher(let rule):
            return "filter-attachments rule '\(rule)': give at least one of extensions, name_patterns, mime_types, magic_mismatch = true or zip_member_extensions"
        case .doubleWithoutExtensions(let rule):
            return "filter-attachments rule '\(rule)': double_extension = true needs the extensions it applies to"
        case .badMIMEType(let rule, let type):
            return "filter-attachments rule '\(rule)': mime_types entry '\(type)' is not type/subtype or type/*"
        case .duplicateName(let rule):
            return "filter-attachments: two rules are named '\(rule)'; give each its own name"
        case .badHeader(let name):
            return "filter-attachments: header '\(name)' is not a header field name (printable ASCII, no colon or space)"
        }
    }
}
