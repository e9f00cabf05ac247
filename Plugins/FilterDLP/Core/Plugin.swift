import PluginAPI

// The DLP filter: registered as the filter `dlp`, which an SMTP listener runs by naming it in its
// `filters` list. See README.md in this folder.

/// What `postern_plugin_entry` (Entry/Entry.swift) hands the host: the manifest and how to
/// activate the plugin. Here rather than in the entry so that tests can read it.
package enum DLPRegistration {
    package static let filterName = "dlp"
    static let defaultMarkings = ["CONFIDENTIAL", "STRICTLY CONFIDENTIAL", "INTERNAL ONLY"]

    static let policySchema = ConfigSchema([
        ConfigField("name", .string, help: "the policy's name, in replies, hold reasons and X-DLP-Match; default: policy-N"),
        ConfigField("detectors", .array(.string), required: true,
                    help: "built-in detectors (\(BuiltInDetectors.names.joined(separator: ", "))), markings, or the names of dictionaries and patterns"),
        ConfigField("threshold", .integer(1...1_000_000), default: .integer(1), help: "matches of all its detectors together that make the policy act"),
        ConfigField("directions", .array(.oneOf(FilterDirection.allCases.map(\.rawValue))), default: .array([.string("outbound")]),
                    help: "the listener directions it applies to: inbound, outbound, internal"),
        ConfigField("action", .oneOf(DLPPolicy.Action.allCases.map(\.rawValue)), required: true,
                    help: "reject (550 at end of data), quarantine (hold queue) or notify (delivered, and to the notify address)"),
        ConfigField("notify", .string, help: "the compliance address: required by notify; with quarantine, a recipient of the held message"),
        ConfigField("reply", .string, help: "the reject reply's text after 550 5.7.1; default: names the policy and the kinds of data found"),
    ])

    package static var registration: PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: "filter-dlp", version: "1.0.0",
                summary: "data loss prevention: card numbers, IBANs, national IDs, dictionaries, patterns, markings (the filter `dlp`)",
                kinds: [.filter],
                config: ConfigSchema([
                    ConfigField("policies", .array(.table(policySchema)), default: .array([]),
                                help: "[[plugin.filter-dlp.policies]]: every policy for the message's direction is evaluated"),
                    ConfigField("dictionaries", .map(.table(ConfigSchema([
                        ConfigField("words", .array(.string), required: true, help: "words and phrases, whole words, case ignored"),
                    ]))), default: .table([:]), help: "[plugin.filter-dlp.dictionaries.NAME]: a detector NAME"),
                    ConfigField("patterns", .map(.table(ConfigSchema([
                        ConfigField("regex", .string, required: true, help: "an ICU regular expression; every match counts"),
                        ConfigField("case_insensitive", .boolean, default: .boolean(false)),
                    ]))), default: .table([:]), help: "[plugin.filter-dlp.patterns.NAME]: a detector NAME"),
                    ConfigField("markings", .array(.string), default: .array(defaultMarkings.map { .string($0) }),
                                help: "document markings for the detector `markings`: whole words, case kept"),
                    ConfigField("max_message_size", .size, default: .string("32M"),
                                help: "the most of a message that is scanned; the rest of a bigger one is not"),
                ])),
            activate: { context in try DLPPlugin(context: context) },
            check: { config, _ in _ = try DLPRegistration.policies(config) })
    }

    /// The detectors a config defines, by name: the built-ins, `markings`, its dictionaries and patterns.
    package static func detectors(_ config: ConfigSection) throws -> [String: any Detector] {
        var out: [String: any Detector] = [:]
        for d in BuiltInDetectors.all { out[d.name] = d }
        out["markings"] = PhraseDetector(name: "markings", phrases: config.strings("markings") ?? defaultMarkings, caseSensitive: true)
        let dictionaries = config.section("dictionaries") ?? ConfigSection()
        for name in dictionaries.values.keys.sorted() {
            guard out[name] == nil else { throw DLPConfigError.nameTaken(name, "dictionaries") }
            let words = dictionaries.section(name)?.strings("words") ?? []
            guard words.contains(where: { !$0.trimmingBlanks.isEmpty }) else { throw DLPConfigError.emptyDictionary(name) }
            out[name] = PhraseDetector(name: name, phrases: words, caseSensitive: false)
        }
        let patterns = config.section("patterns") ?? ConfigSection()
        for name in patterns.values.keys.sorted() {
            guard out[name] == nil else { throw DLPConfigError.nameTaken(name, "patterns") }
            let p = patterns.section(name) ?? ConfigSection()
            let regex = p.string("regex") ?? ""
            do {
                out[name] = try RegexDetector(name: name, pattern: regex, caseInsensitive: p.bool("case_insensitive") ?? false)
            } catch {
                throw DLPConfigError.badRegex(name, regex)
            }
        }
        return out
    }

    /// The policies of a plugin section (defaults applied: the host does not apply them inside arrays).
    package static func policies(_ config: ConfigSection) throws -> [DLPPolicy] {
        let detectors = try detectors(config)
        guard case .array(let items)? = config["policies"] else { return [] }
        var names: Set<String> = []
        return try items.enumerated().map { n, item in
            guard case .table(let table) = item else { throw DLPConfigError.notATable(n + 1) }
            let p = ConfigSection(policySchema.applyingDefaults(to: table))
            let name = p.string("name") ?? "policy-\(n + 1)"
            guard names.insert(name).inserted else { throw DLPConfigError.duplicatePolicy(name) }
            let wanted = p.strings("detectors") ?? []
            guard !wanted.isEmpty else { throw DLPConfigError.noDetectors(name) }
            let chosen = try wanted.map { d in
                guard let detector = detectors[d] else { throw DLPConfigError.unknownDetector(name, d, detectors.keys.sorted()) }
                return detector
            }
            let directions = Set((p.strings("directions") ?? ["outbound"]).compactMap(FilterDirection.init(rawValue:)))
            guard !directions.isEmpty else { throw DLPConfigError.noDirection(name) }
            guard let action = p.string("action").flatMap(DLPPolicy.Action.init(rawValue:)) else { throw DLPConfigError.noAction(name) }
            let notify = p.string("notify")
            if action == .notify && notify == nil { throw DLPConfigError.notifyWithoutAddress(name) }
            if action == .reject && notify != nil { throw DLPConfigError.notifyOnReject(name) }
            if let notify, !notify.contains("@") { throw DLPConfigError.badAddress(name, notify) }
            return DLPPolicy(name: name, detectors: chosen, threshold: p.int("threshold") ?? 1, directions: directions, action: action,
                             notify: notify, reply: p.string("reply"))
        }
    }
}

final class DLPPlugin: Plugin {
    let filter: InspectingFilter<DLPInspector>

    init(context: PluginContext) throws {
        let policies = try DLPRegistration.policies(context.config)
        if policies.isEmpty { context.logger.warning("filter-dlp: no [[plugin.filter-dlp.policies]]: the filter passes everything") }
        filter = InspectingFilter(DLPInspector(policies: policies, maxBufferedBytes: context.config.size("max_message_size") ?? 32 << 20,
                                               logger: context.logger))
    }

    var services: [ProvidedService] { [.filter(name: DLPRegistration.filterName, filter)] }
}

enum DLPConfigError: Error, CustomStringConvertible {
    case notATable(Int)
    case nameTaken(String, String)
    case emptyDictionary(String)
    case badRegex(String, String)
    case duplicatePolicy(String)
    case noDetectors(String)
    case unknownDetector(String, String, [String])
    case noDirection(String)
    case noAction(String)
    case notifyWithoutAddress(String)
    case notifyOnReject(String)
    case badAddress(String, String)

    var description: String {
        let prefix = "plugin.filter-dlp"
        switch self {
        case .notATable(let n): return "\(prefix).policies: entry \(n) is not a table; write it as [[plugin.filter-dlp.policies]]"
        case .nameTaken(let name, let table):
            return "\(prefix).\(table).\(name): '\(name)' is already a detector (built-in, markings, or a dictionary); give it another name"
        case .emptyDictionary(let name): return "\(prefix).dictionaries.\(name): words is empty; list the words and phrases to look for"
        case .badRegex(let name, let regex): return "\(prefix).patterns.\(name): '\(regex)' is not a valid regular expression (ICU syntax)"
        case .duplicatePolicy(let name): return "\(prefix).policies: two policies are called '\(name)'; give each its own name"
        case .noDetectors(let name): return "\(prefix) policy '\(name)': detectors is empty; list at least one"
        case .unknownDetector(let name, let d, let known):
            return "\(prefix) policy '\(name)': no detector '\(d)' (known: \(known.joined(separator: ", "))); define it under [plugin.filter-dlp.dictionaries.\(d)] or [plugin.filter-dlp.patterns.\(d)]"
        case .noDirection(let name): return "\(prefix) policy '\(name)': directions is empty; list inbound, outbound or internal"
        case .noAction(let name): return "\(prefix) policy '\(name)': action is missing; reject, quarantine or notify"
        case .notifyWithoutAddress(let name): return "\(prefix) policy '\(name)': action notify needs notify = \"compliance@your.domain\""
        case .notifyOnReject(let name): return "\(prefix) policy '\(name)': a rejected message goes nowhere, so notify has no effect; remove notify or use action notify/quarantine"
        case .badAddress(let name, let a): return "\(prefix) policy '\(name)': notify '\(a)' is not a mail address"
        }
    }
}

extension String {
    var trimmingBlanks: String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
