import PluginAPI

/// What one rule tests. Exactly one per rule; README.md describes each.
enum RuleCondition: Sendable {
    /// A field by name (`nil`: any field), its value RFC 2047-decoded and unfolded.
    case header(name: String?, Pattern)
    case bodyPhrase(Phrase)
    case bodyRegex(Pattern)
    case clientNetwork([IPNetwork])
    case clientHostname(Pattern)
    case helo(Pattern)
    case sender(Pattern)
    case recipient(Pattern)
    case sizeOver(Int)
    case recipientsOver(Int)
    case unqualifiedSenderDomain
    case missingHeader(String)
    case malformedDate
    case malformedMessageID
    case htmlOnly
    case dnsbl(zone: String)
    case uribl(zone: String)
}

struct Rule: Sendable {
    var name: String
    var score: Double
    var description: String
    var condition: RuleCondition
    var negate: Bool
}

/// A named set of rules with its thresholds, for some recipient domains and directions.
struct RuleSet: Sendable {
    var name: String
    /// Lower-case; empty: every domain.
    var domains: Set<String>
    var directions: Set<FilterDirection>
    var tag: Double?
    var quarantine: Double?
    var reject: Double?
    var subjectPrefix: String?
    var headerMode: HeaderMode
    var rules: [Rule]

    /// The score X-Spam-Status calls `required`: the lowest action the set takes.
    var required: Double { tag ?? quarantine ?? reject ?? 0 }
}

/// A config mistake, saying where and what to change.
struct RuleConfigError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Rule sets from config tables (already checked against `RuleSchema`, so types are right; what
/// is checked here is what a schema cannot say: one condition per rule, regexes, networks).
enum RuleSetBuilder {
    /// `where_` names the origin for messages: `[plugin.filter-rules] sets` or `rules file PATH`.
    /// `defaults` are the rules a set with `default_rules = true` starts from.
    static func sets(_ values: [ConfigValue], origin: String, defaults: [Rule]) throws -> [RuleSet] {
        try values.enumerated().map { index, value in
            guard case .table(let table) = value else { throw RuleConfigError("\(origin): sets.\(index) is not a table") }
            return try set(ConfigSection(table), origin: "\(origin): sets.\(index)", defaults: defaults)
        }
    }

    static func set(_ t: ConfigSection, origin: String, defaults: [Rule]) throws -> RuleSet {
        let name = t.string("name") ?? ""
        let origin = "\(origin) (set '\(name)')"
        guard !name.isEmpty else { throw RuleConfigError("\(origin): name must not be empty") }
        var own: [Rule] = []
        if case .array(let items)? = t["rules"] {
            for (i, item) in items.enumerated() {
                guard case .table(let r) = item else { throw RuleConfigError("\(origin): rules.\(i) is not a table") }
                let rule = try self.rule(ConfigSection(r), origin: "\(origin): rules.\(i)")
                if own.contains(where: { $0.name == rule.name }) {
                    throw RuleConfigError("\(origin): rules.\(i): rule name '\(rule.name)' is used twice in this set; rename one")
                }
                own.append(rule)
            }
        }
        // The set's own rule of a default rule's name replaces it (to change its score or turn it off).
        var rules = t.bool("default_rules") == true ? defaults : []
        for rule in own {
            if let i = rules.firstIndex(where: { $0.name == rule.name }) { rules[i] = rule } else { rules.append(rule) }
        }
        let directions = (t.strings("directions") ?? ["inbound"]).compactMap(FilterDirection.init(rawValue:))
        guard !directions.isEmpty else { throw RuleConfigError("\(origin): directions is empty; name inbound, outbound or internal") }
        let set = RuleSet(name: name, domains: Set((t.strings("domains") ?? []).map { $0.lowercased() }), directions: Set(directions),
                          tag: t.double("tag"), quarantine: t.double("quarantine"), reject: t.double("reject"),
                          subjectPrefix: t.string("subject_prefix"),
                          headerMode: t.string("add_headers").flatMap(HeaderMode.init(rawValue:)) ?? .always, rules: rules)
        guard set.tag != nil || set.quarantine != nil || set.reject != nil else {
            throw RuleConfigError("\(origin): give at least one of tag, quarantine and reject (scores from which the set acts)")
        }
        if let tag = set.tag, let q = set.quarantine, q < tag { throw RuleConfigError("\(origin): quarantine (\(q)) is below tag (\(tag))") }
        if let q = set.quarantine ?? set.tag, let r = set.reject, r < q { throw RuleConfigError("\(origin): reject (\(r)) is below quarantine/tag (\(q))") }
        return set
    }

    static func rule(_ r: ConfigSection, origin: String) throws -> Rule {
        let name = r.string("name") ?? ""
        let origin = "\(origin) (rule '\(name)')"
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." }) else {
            throw RuleConfigError("\(origin): name must be letters, digits, '_', '-' or '.' (it goes into X-Spam-Status)")
        }
        let given = RuleSchema.conditionKeys.filter { r[$0] != nil }
        guard given.count == 1, let key = given.first else {
            throw RuleConfigError("\(origin): give exactly one condition (one of \(RuleSchema.conditionKeys.joined(separator: ", "))); found \(given.isEmpty ? "none" : given.joined(separator: ", "))")
        }
        if r["pattern"] != nil && key != "header" { throw RuleConfigError("\(origin): pattern goes with header only") }
        func pattern(_ text: String, _ what: String) throws -> Pattern {
            do { return try Pattern(text) } catch {
                throw RuleConfigError("\(origin): \(what) '\(text)' is not a valid regular expression (ICU syntax)")
            }
        }
        func flag() throws {
            guard r.bool(key) == true else { throw RuleConfigError("\(origin): \(key) takes true (use negate to invert a rule)") }
        }
        func zone() throws -> String {
            let zone = r.string(key)!.trimmingDots
            guard zone.contains("."), !zone.contains(" ") else { throw RuleConfigError("\(origin): \(key) '\(zone)' is not a DNS zone") }
            return zone.lowercased()
        }
        let condition: RuleCondition
        switch key {
        case "header":
            guard let p = r.string("pattern") else { throw RuleConfigError("\(origin): header needs a pattern") }
            let field = r.string("header")!
            guard !field.isEmpty else { throw RuleConfigError("\(origin): header must name a field, or \"*\" for any") }
            condition = .header(name: field == "*" ? nil : field, try pattern(p, "pattern"))
        case "body":
            let phrase = r.string("body")!
            guard !phrase.isEmpty else { throw RuleConfigError("\(origin): body phrase must not be empty") }
            condition = .bodyPhrase(Phrase(phrase))
        case "body_regex": condition = .bodyRegex(try pattern(r.string(key)!, key))
        case "client_network":
            let texts = r.strings(key)!
            guard !texts.isEmpty else { throw RuleConfigError("\(origin): client_network lists no network") }
            condition = .clientNetwork(try texts.map { text in
                guard let n = IPNetwork(text) else { throw RuleConfigError("\(origin): client_network '\(text)' is not an address or CIDR network") }
                return n
            })
        case "client_hostname": condition = .clientHostname(try pattern(r.string(key)!, key))
        case "helo": condition = .helo(try pattern(r.string(key)!, key))
        case "sender": condition = .sender(try pattern(r.string(key)!, key))
        case "recipient": condition = .recipient(try pattern(r.string(key)!, key))
        case "size_over": condition = .sizeOver(r.size(key)!)
        case "recipients_over": condition = .recipientsOver(r.int(key)!)
        case "unqualified_sender_domain": try flag(); condition = .unqualifiedSenderDomain
        case "missing_header":
            let field = r.string(key)!
            guard !field.isEmpty, !field.contains(":"), !field.contains(" ") else { throw RuleConfigError("\(origin): missing_header '\(field)' is not a field name") }
            condition = .missingHeader(field)
        case "malformed_date": try flag(); condition = .malformedDate
        case "malformed_message_id": try flag(); condition = .malformedMessageID
        case "html_only": try flag(); condition = .htmlOnly
        case "dnsbl": condition = .dnsbl(zone: try zone())
        case "uribl": condition = .uribl(zone: try zone())
        default: throw RuleConfigError("\(origin): unknown condition \(key)")
        }
        return Rule(name: name, score: r.double("score") ?? 0, description: r.string("description") ?? "",
                    condition: condition, negate: r.bool("negate") ?? false)
    }
}

extension String {
    /// Without leading and trailing dots (`zen.example.` is `zen.example`).
    var trimmingDots: String {
        var s = Substring(self)
        while s.hasPrefix(".") { s = s.dropFirst() }
        while s.hasSuffix(".") { s = s.dropLast() }
        return String(s)
    }
}
