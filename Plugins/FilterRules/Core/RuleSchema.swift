import PluginAPI

/// The keys of a rule set and of a rule: one schema for the sets written inline in
/// `[plugin.filter-rules]` (checked by the host with the rest of the config) and for those of a
/// `rules_file` (checked here, with the same messages). README.md documents each key.
enum RuleSchema {
    /// The keys that each name one condition; a rule has exactly one of them (`pattern` goes with `header`).
    static let conditionKeys = ["header", "body", "body_regex", "client_network", "client_hostname", "helo", "sender",
                                "recipient", "size_over", "recipients_over", "unqualified_sender_domain", "missing_header",
                                "malformed_date", "malformed_message_id", "html_only", "dnsbl", "uribl"]

    static let rule = ConfigSchema([
        ConfigField("name", .string, required: true, help: "shown in X-Spam-Status tests=; unique within its set"),
        ConfigField("score", .float, required: true, help: "added to the message's score when the rule hits (may be negative)"),
        ConfigField("description", .string, help: "what the rule catches, for people and the log"),
        ConfigField("negate", .boolean, help: "the rule hits when its condition does not hold"),
        ConfigField("header", .string, help: "a header field name (\"*\" for any field), with pattern: a regex on its decoded value"),
        ConfigField("pattern", .string, help: "the regex for header"),
        ConfigField("body", .string, help: "a phrase searched case-insensitively in the decoded text parts"),
        ConfigField("body_regex", .string, help: "a regex searched in the decoded text parts"),
        ConfigField("client_network", .array(.string), help: "CIDR networks; hits when the client is in one"),
        ConfigField("client_hostname", .string, help: "a regex on the client's verified hostname (empty when it has none)"),
        ConfigField("helo", .string, help: "a regex on the HELO/EHLO name"),
        ConfigField("sender", .string, help: "a regex on the envelope sender"),
        ConfigField("recipient", .string, help: "a regex on the envelope recipients (hits when one matches)"),
        ConfigField("size_over", .size, help: "hits when the message is bigger than this"),
        ConfigField("recipients_over", .integer(0...1_000_000), help: "hits when the message has more recipients than this"),
        ConfigField("unqualified_sender_domain", .boolean, help: "true: hits when a client outside trusted_networks gives a sender domain without a dot"),
        ConfigField("missing_header", .string, help: "hits when the message has no field of this name"),
        ConfigField("malformed_date", .boolean, help: "true: hits when Date is not an RFC 5322 date or appears twice"),
        ConfigField("malformed_message_id", .boolean, help: "true: hits when Message-ID is not <left@right> or appears twice"),
        ConfigField("html_only", .boolean, help: "true: hits when the message has HTML text and no plain text"),
        ConfigField("dnsbl", .string, help: "a DNS block list zone; hits when the client's address is listed"),
        ConfigField("uribl", .string, help: "a URI block list zone; hits when a host of a link in the text is listed"),
    ])

    static let set = ConfigSchema([
        ConfigField("name", .string, required: true, help: "the set's name, in the log and the quarantine reason"),
        ConfigField("domains", .array(.string), default: .array([]),
                    help: "recipient domains the set judges mail for; empty: every domain"),
        ConfigField("directions", .array(.oneOf(FilterDirection.allCases.map(\.rawValue))), default: .array([.string("inbound")]),
                    help: "the listener directions the set applies to"),
        ConfigField("tag", .float, help: "from this score: X-Spam-Status Yes and subject_prefix"),
        ConfigField("quarantine", .float, help: "from this score: the message goes to the hold queue"),
        ConfigField("reject", .float, help: "from this score: 550 5.7.1 at end of data"),
        ConfigField("subject_prefix", .string, help: "put before the Subject of tagged mail, e.g. \"[SPAM] \""),
        ConfigField("add_headers", .oneOf(HeaderMode.allCases.map(\.rawValue)), default: .string(HeaderMode.always.rawValue),
                    help: "always: X-Spam-Score/X-Spam-Status on every message judged; tagged: only from the tag score"),
        ConfigField("default_rules", .boolean, default: .boolean(false),
                    help: "true: the shipped default rules first (default-rules.toml); a rule of the same name here replaces one of them"),
        ConfigField("rules", .array(.table(rule)), default: .array([]), help: "[[...rules]]: the set's rules"),
    ])

    /// A rules file: `[[sets]]` tables, as inline.
    static let file = ConfigSchema([
        ConfigField("sets", .array(.table(set)), default: .array([]), help: "[[sets]]: the rule sets"),
    ])
}

/// When a set writes X-Spam-Score and X-Spam-Status.
enum HeaderMode: String, CaseIterable, Sendable {
    case always
    case tagged
}
