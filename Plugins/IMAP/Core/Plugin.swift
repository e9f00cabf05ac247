import Foundation
import PluginAPI

// IMAP4rev1 (RFC 3501 and extensions) on the store: the session state machine lives in Session/
// (no socket code there), the command parser and response encoder in Parser/, the NIO glue in
// Connection.swift.

/// What `postern_plugin_entry` (Entry/Entry.swift) hands the host: the manifest and how to
/// activate the plugin. Here rather than in the entry so that tests can read it.
package enum IMAPRegistration {
    package static var registration: PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: "imap", version: "1.0.0", summary: "IMAP4rev1 access to the store (RFC 3501, IDLE, CONDSTORE/QRESYNC, ACL, QUOTA)",
                kinds: [.protocolService],
                uses: [.storage, .credentialBackend, .saslMechanism, .changeNotifier],
                roles: ["all-in-one", "store"],
                config: IMAPPluginSettings.schema,
                protocols: ["imap": IMAPListenerOptions.schema]),
            activate: { context in try IMAPPlugin(context: context) })
    }
}

/// `[plugin.imap]`: what every IMAP listener of the worker shares.
struct IMAPPluginSettings {
    static let schema = ConfigSchema([
        ConfigField("hostname", .string, default: .string(""), help: "name given to SASL mechanisms; default: the host name"),
        ConfigField("login_failure_delay", .duration, default: .string("2s"), help: "pause before answering a failed login"),
        ConfigField("max_login_failures_per_ip", .integer(0...1_000_000), default: .integer(10),
                    help: "failed logins from one address within login_failure_window before its logins are refused (0: no limit)"),
        ConfigField("max_login_failures_per_account", .integer(0...1_000_000), default: .integer(20),
                    help: "failed logins against one account (from any address) within login_failure_window before it is locked for the window (0: no limit)"),
        ConfigField("login_failure_window", .duration, default: .string("5m")),
        ConfigField("max_login_failures_per_session", .integer(1...1000), default: .integer(3),
                    help: "failed logins after which the connection is closed"),
        ConfigField("idle_timeout", .duration, default: .string("30m"), help: "autologout after this long without input, once logged in"),
        ConfigField("login_timeout", .duration, default: .string("60s"), help: "... and before login"),
    ])
}

/// A listener's `[listener.options]`.
struct IMAPListenerOptions {
    static let schema = ConfigSchema([
        ConfigField("allow_plaintext_on_loopback", .boolean, default: .boolean(false),
                    help: "LOGIN and plaintext SASL without TLS for clients on 127.0.0.1/::1"),
        ConfigField("max_line_length", .integer(1024...16 * 1024 * 1024), default: .integer(64 * 1024)),
        ConfigField("max_literal_size", .size, default: .string("1M"), help: "literals other than APPEND messages"),
        ConfigField("max_append_size", .size, default: .string("64M"), help: "one APPEND message (advertised as APPENDLIMIT)"),
        ConfigField("max_command_size", .size, default: .string("8M"), help: "one command other than APPEND messages"),
        ConfigField("max_buffered_input", .size, default: .string("1M"),
                    help: "input read ahead while a command runs; beyond it the connection is not read until the session catches up"),
        ConfigField("max_commands_per_second", .integer(0...1_000_000), default: .integer(0), help: "0: no limit; faster clients are slowed"),
        ConfigField("store", .string, default: .string(""), help: "the storage plugin; default: the first loaded"),
        ConfigField("master_users", .array(.string), default: .array([]),
                    help: "accounts that may log in as any user (SASL PLAIN with an authorization identity): an access proxy's credential; only from proxy_networks"),
        ConfigField("proxy_networks", .array(.string), default: .array([.string("127.0.0.1/32"), .string("::1/128")]),
                    help: "access proxies: master logins are taken from these addresses only, and their ID x-originating-ip names the client"),
    ])

    var allowPlaintextOnLoopback: Bool
    var limits: IMAPParserLimits
    var maxBufferedInput: Int
    var maxCommandsPerSecond: Int
    var store: String?
    var masterUsers: Set<String>
    var proxyNetworks: [IPNetwork]

    init(_ section: ConfigSection) {
        allowPlaintextOnLoopback = section.bool("allow_plaintext_on_loopback")!
        let append = section.size("max_append_size")!
        limits = IMAPParserLimits(maxLineLength: section.int("max_line_length")!, maxLiteralSize: section.size("max_literal_size")!,
                                  maxAppendMessageSize: append, maxAppendTotalSize: max(append, 4 * append),
                                  maxCommandSize: section.size("max_command_size")!)
        maxBufferedInput = max(64 * 1024, section.size("max_buffered_input")!)
        maxCommandsPerSecond = section.int("max_commands_per_second")!
        store = section.string("store").flatMap { $0.isEmpty ? nil : $0 }
        masterUsers = Set((section.strings("master_users") ?? []).map { $0.lowercased() })
        proxyNetworks = (section.strings("proxy_networks") ?? []).compactMap(IPNetwork.init)
    }
}

// @unchecked Sendable: all stored properties are let; throttle and recent do their own locking
final class IMAPPlugin: Plugin, ProtocolService, @unchecked Sendable {
    let hostname: String
    let loginFailureDelay: Double
    let idleTimeout: Double
    let loginTimeout: Double
    let maxLoginFailuresPerSession: Int
    let throttle: LoginThrottle
    let recent: RecentTracker
    let metrics: IMAPMetrics

    init(context: PluginContext) throws {
        let c = context.config
        let configured = c.string("hostname")!
        hostname = configured.isEmpty ? ProcessInfo.processInfo.hostName : configured
        loginFailureDelay = c.duration("login_failure_delay")!
        idleTimeout = c.duration("idle_timeout")!
        loginTimeout = c.duration("login_timeout")!
        maxLoginFailuresPerSession = c.int("max_login_failures_per_session")!
        // Counted in the store's shared table when the store plugin is loaded (every worker, every protocol).
        throttle = LoginThrottle(context: context, failureDelay: loginFailureDelay, maxFailures: c.int("max_login_failures_per_ip")!,
                                 maxFailuresPerAccount: c.int("max_login_failures_per_account")!,
                                 window: c.duration("login_failure_window")!)
        recent = RecentTracker(directory: context.dataDirectory + "/imap/recent")
        metrics = IMAPMetrics.counting(context)
    }

    var services: [ProvidedService] { [.protocolService(name: "imap", self)] }

    func startSession(on channel: any Channel, session: Session) -> EventLoopFuture<Void> {
        let options = IMAPListenerOptions(session.listener.options)
        guard let store = session.services.store(named: options.store) else {
            session.logger.error("no storage plugin loaded: IMAP cannot serve mailboxes")
            return channel.writeAndFlush(ByteBuffer(string: "* BYE No message store configured.\r\n")).flatMap { channel.close() }
        }
        var settings = IMAPSessionSettings()
        settings.hostname = hostname
        settings.loginFailureDelay = loginFailureDelay
        settings.idleTimeout = idleTimeout
        settings.loginTimeout = loginTimeout
        settings.allowPlaintextOnLoopback = options.allowPlaintextOnLoopback
        settings.parserLimits = options.limits
        settings.maxCommandsPerSecond = options.maxCommandsPerSecond
        settings.maxLoginFailuresPerSession = maxLoginFailuresPerSession
        settings.masterUsers = options.masterUsers
        settings.proxyNetworks = options.proxyNetworks
        let services = IMAPSessionServices(store: store, auth: session.services.auth, notifier: session.services.notifications,
                                           throttle: throttle, recent: recent, metrics: metrics)
        return channel.eventLoop.makeCompletedFuture {
            let connection = IMAPConnection(channel: channel, session: session, settings: settings, services: services,
                                            maxBufferedInput: options.maxBufferedInput)
            try channel.pipeline.syncOperations.addHandler(connection.handler)
        }
    }
}

extension IMAPMetrics {
    /// Counters on the host's `/metrics`: commands by name, logins by result.
    static func counting(_ context: PluginContext) -> IMAPMetrics {
        let commands = CounterFamily { name in context.counter("postern_imap_commands_total", dimensions: [("command", name)]) }
        let logins = CounterFamily { result in context.counter("postern_imap_logins_total", dimensions: [("result", result)]) }
        return IMAPMetrics(command: { commands[$0].increment() }, login: { logins[$0].increment() })
    }
}

/// Counters of one label, one per dimension value, made on first use.
// @unchecked Sendable: counters is only read and written under `lock`; make is a let @Sendable closure
final class CounterFamily: @unchecked Sendable {
    private let lock = NSLock()
    private var counters: [String: Counter] = [:]
    private let make: @Sendable (String) -> Counter

    init(_ make: @escaping @Sendable (String) -> Counter) { self.make = make }

    subscript(_ value: String) -> Counter {
        lock.withLock {
            if let c = counters[value] { return c }
            let c = make(value)
            counters[value] = c
            return c
        }
    }
}
