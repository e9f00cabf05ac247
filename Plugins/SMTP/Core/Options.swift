import PluginAPI

/// What a listener is for. Decides the defaults of `require_auth` and `sender_login_match`.
enum SMTPListenerMode: String, Sendable, CaseIterable {
    /// Port 25: mail from the world for local domains (and relay domains); AUTH optional.
    case mx
    /// Port 587 (RFC 6409): mail from our own users, AUTH required.
    case submission
    /// Port 465 (RFC 8314): submission over implicit TLS.
    case submissions
}

/// What to do with a line ended by LF alone (RFC 5321 §2.3.8 allows only CRLF).
enum BareLineFeedPolicy: String, Sendable {
    /// Refuse the command line, or the message at its end.
    case reject
    /// Take LF as a line end (the message is stored with CRLF).
    case accept
}

/// A listener's `[listener.options]`, validated by the host against `schema`.
struct SMTPOptions: Sendable {
    static let schema = ConfigSchema([
        ConfigField("mode", .oneOf(SMTPListenerMode.allCases.map(\.rawValue)), default: .string("mx"),
                    help: "mx (port 25), submission (587, AUTH required) or submissions (465, implicit TLS)"),
        ConfigField("require_auth", .boolean, help: "default: false for mx, true for submission and submissions"),
        ConfigField("allow_plaintext_auth_on_loopback", .boolean, default: .boolean(false),
                    help: "offer PLAIN/LOGIN without TLS to clients on loopback"),
        ConfigField("max_message_size", .size, default: .string("50M")),
        ConfigField("max_recipients", .integer(1...100_000), default: .integer(1000)),
        ConfigField("max_line_length", .integer(512...65536), default: .integer(2048),
                    help: "longest command line without its CRLF"),
        ConfigField("max_errors", .integer(1...10_000), default: .integer(20),
                    help: "error replies before the session is closed with 421"),
        ConfigField("max_commands", .integer(10...10_000_000), default: .integer(10_000),
                    help: "commands per session before it is closed with 421"),
        ConfigField("bare_lf", .oneOf(["reject", "accept"]), default: .string("reject")),
        ConfigField("mynetworks", .array(.string), default: .array([]),
                    help: "client networks (CIDR) that may relay without AUTH"),
        ConfigField("trust_loopback", .boolean, default: .boolean(false),
                    help: "count 127.0.0.0/8 and ::1 as part of mynetworks"),
        ConfigField("relay_authenticated", .boolean, default: .boolean(true),
                    help: "authenticated clients may relay to any domain"),
        ConfigField("access_tables", .array(.string), default: .array([]),
                    help: "lookup tables consulted as Postfix-style access maps, in order"),
        ConfigField("dnsbl", .array(.string), default: .array([]), help: "DNS block list zones"),
        ConfigField("require_reverse_dns", .boolean, default: .boolean(false)),
        ConfigField("sender_login_match", .boolean,
                    help: "authenticated users may only use their own address as sender; default: true on submission listeners"),
        ConfigField("sender_login_tables", .array(.string), default: .array([]),
                    help: "lookup tables: sender address or @domain -> logins allowed to use it"),
        ConfigField("vrfy", .boolean, default: .boolean(false), help: "answer VRFY from the router instead of 252"),
        ConfigField("unknown_recipient_reject_code", .oneOf(["550", "450"]), default: .string("550"),
                    help: "550 refuses an unknown local recipient; 450 asks the sender to retry (while accounts are being moved), as Postfix's unknown_local_recipient_reject_code"),
        ConfigField("timeout", .duration, default: .string("5m"), help: "idle time before 421 and close"),
        ConfigField("smtputf8", .boolean, default: .boolean(true), help: "offer SMTPUTF8 (RFC 6531)"),
        ConfigField("filters", .array(.string),
                    help: "the filters this listener runs, in order (their changes merge in this order); default: every loaded filter, in load order; [] for none"),
        ConfigField("direction", .oneOf(FilterDirection.allCases.map(\.rawValue)),
                    help: "what filters are told about this listener's mail: inbound, outbound or internal; default: inbound for mx, outbound for submission(s)"),
        ConfigField("filter_timeout", .duration, default: .string("60s"),
                    help: "how long each filter may take per stage (a milter's progress restarts it)"),
        ConfigField("filter_timeout_action", .oneOf(FilterTimeoutAction.allCases.map(\.rawValue)), default: .string("tempfail"),
                    help: "tempfail: a filter out of time refuses temporarily (the default); accept: the session goes on without it"),
    ])

    var mode: SMTPListenerMode = .mx
    var requireAuth = false
    var allowPlaintextAuthOnLoopback = false
    var maxMessageSize = 50 << 20
    var maxRecipients = 1000
    var maxLineLength = 2048
    var maxErrors = 20
    var maxCommands = 10_000
    var bareLineFeed: BareLineFeedPolicy = .reject
    var mynetworks: [IPNetwork] = []
    var relayAuthenticated = true
    var accessTables: [String] = []
    var dnsbl: [String] = []
    var requireReverseDNS = false
    var senderLoginMatch = false
    var senderLoginTables: [String] = []
    var vrfy = false
    var unknownRecipientCode = 550
    var timeout: Double = 300
    var smtpUTF8 = true
    /// Nil: every loaded filter.
    var filters: [String]?
    var direction: FilterDirection = .inbound
    var filterPolicy = FilterPolicy()

    /// Defaults for `mode`, as a listener without options gets them.
    init(mode: SMTPListenerMode = .mx) {
        self.mode = mode
        requireAuth = mode != .mx
        senderLoginMatch = mode != .mx
        direction = mode == .mx ? .inbound : .outbound
    }

    /// Reads a validated section; a `mynetworks` entry that is not a network is an error.
    init(_ section: ConfigSection) throws {
        let mode = SMTPListenerMode(rawValue: section.string("mode")!) ?? .mx
        self.init(mode: mode)
        requireAuth = section.bool("require_auth") ?? requireAuth
        allowPlaintextAuthOnLoopback = section.bool("allow_plaintext_auth_on_loopback")!
        maxMessageSize = section.size("max_message_size") ?? maxMessageSize
        maxRecipients = section.int("max_recipients") ?? maxRecipients
        maxLineLength = section.int("max_line_length") ?? maxLineLength
        maxErrors = section.int("max_errors") ?? maxErrors
        maxCommands = section.int("max_commands") ?? maxCommands
        bareLineFeed = BareLineFeedPolicy(rawValue: section.string("bare_lf")!) ?? .reject
        mynetworks = try (section.strings("mynetworks")!).map { text in
            guard let network = IPNetwork(text) else { throw SMTPConfigError.badNetwork(text) }
            return network
        }
        if section.bool("trust_loopback")! {
            mynetworks += [IPNetwork("127.0.0.0/8")!, IPNetwork("::1/128")!]
        }
        relayAuthenticated = section.bool("relay_authenticated")!
        accessTables = section.strings("access_tables")!
        dnsbl = section.strings("dnsbl")!
        requireReverseDNS = section.bool("require_reverse_dns")!
        senderLoginMatch = section.bool("sender_login_match") ?? senderLoginMatch
        senderLoginTables = section.strings("sender_login_tables")!
        vrfy = section.bool("vrfy")!
        unknownRecipientCode = Int(section.string("unknown_recipient_reject_code")!) ?? 550
        timeout = section.duration("timeout") ?? timeout
        smtpUTF8 = section.bool("smtputf8") ?? true
        filters = section.strings("filters")
        direction = section.string("direction").flatMap(FilterDirection.init(rawValue:)) ?? direction
        filterPolicy = FilterPolicy(timeout: section.duration("filter_timeout") ?? 60,
                                    timeoutAction: section.string("filter_timeout_action").flatMap(FilterTimeoutAction.init(rawValue:)) ?? .tempfail)
    }
}

enum SMTPConfigError: Error, CustomStringConvertible {
    case badNetwork(String)

    var description: String {
        switch self {
        case .badNetwork(let text): return "mynetworks: '\(text)' is not an address or CIDR network"
        }
    }
}

/// An lmtp listener's `[listener.options]` (the schema LMTP listeners have always had). The session
/// runs on `SMTPOptions` made from them: what LMTP has no key for is fixed (`smtpOptions`).
struct LMTPOptions: Sendable {
    static let schema = ConfigSchema([
        ConfigField("max_message_size", .size, default: .string("50M")),
        ConfigField("max_recipients", .integer(1...100_000), default: .integer(1000)),
        ConfigField("max_line_length", .integer(512...65536), default: .integer(2048)),
        ConfigField("store", .string, default: .string(""), help: "the storage plugin to deliver to; default: the first loaded"),
    ])

    var maxMessageSize: Int
    var maxRecipients: Int
    var maxLineLength: Int
    /// The storage plugin to deliver to; nil: the first loaded.
    var store: String?

    init(_ section: ConfigSection) {
        maxMessageSize = section.size("max_message_size")!
        maxRecipients = section.int("max_recipients")!
        maxLineLength = section.int("max_line_length")!
        store = section.string("store").flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The state machine's options for an LMTP session: the client is the site's own MTA, so lines
    /// ending in a bare LF are taken, and no error or command count ends the session.
    var smtpOptions: SMTPOptions {
        var options = SMTPOptions(mode: .mx)
        options.maxMessageSize = maxMessageSize
        options.maxRecipients = maxRecipients
        options.maxLineLength = maxLineLength
        options.bareLineFeed = .accept
        options.maxErrors = .max
        options.maxCommands = .max
        return options
    }
}
