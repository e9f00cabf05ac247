import Foundation
import PluginAPI

// POP3 (RFC 1939) with CAPA (RFC 2449), STLS (RFC 2595) and AUTH (RFC 5034) on the store's INBOX.

/// What `postern_plugin_entry` (Entry/Entry.swift) hands the host: the manifest and how to
/// activate the plugin. Here rather than in the entry so that tests can read it.
package enum POP3Registration {
    package static var registration: PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: "pop3", version: "1.0.0", summary: "POP3 access to the store's INBOX (RFC 1939, 2449, 2595, 5034)",
                kinds: [.protocolService],
                uses: [.storage, .credentialBackend, .saslMechanism],
                roles: ["all-in-one", "store"],
                config: ConfigSchema([
                    ConfigField("hostname", .string, default: .string(""), help: "name in the greeting; default: the host name"),
                    ConfigField("login_failure_delay", .duration, default: .string("2s"), help: "wait before answering a failed login"),
                    ConfigField("max_login_failures", .integer(1...100_000), default: .integer(10),
                                help: "failures from one address within login_failure_window before it is refused"),
                    ConfigField("max_login_failures_per_account", .integer(0...100_000), default: .integer(20),
                                help: "failures against one account (from any address) within login_failure_window before it is locked for the window (0: no limit)"),
                    ConfigField("login_failure_window", .duration, default: .string("5m")),
                ]),
                protocols: ["pop3": POP3Options.schema]),
            activate: { context in try POP3Plugin(context: context) })
    }
}

/// A listener's `[listener.options]`.
struct POP3Options {
    static let schema = ConfigSchema([
        ConfigField("max_line_length", .integer(255...65536), default: .integer(1024), help: "RFC 2449 asks for at least 255"),
        ConfigField("max_errors", .integer(1...1000), default: .integer(20), help: "bad commands before the connection is closed"),
        ConfigField("allow_plaintext_on_loopback", .boolean, default: .boolean(false),
                    help: "USER/PASS and PLAIN/LOGIN without TLS from 127.0.0.1/::1"),
        ConfigField("store", .string, default: .string(""), help: "the storage plugin; default: the first loaded"),
        ConfigField("master_users", .array(.string), default: .array([]),
                    help: "accounts that may log in as any user (SASL PLAIN with an authorization identity): an access proxy's credential; only from proxy_networks"),
        ConfigField("proxy_networks", .array(.string), default: .array([.string("127.0.0.1/32"), .string("::1/128")]),
                    help: "access proxies: master logins are taken from these addresses only, and their XCLIENT ADDR names the client"),
    ])

    var maxLineLength: Int
    var maxErrors: Int
    var allowPlaintextOnLoopback: Bool
    var store: String?
    var masterUsers: Set<String> = []
    var proxyNetworks: [IPNetwork] = []

    init(maxLineLength: Int = 1024, maxErrors: Int = 20, allowPlaintextOnLoopback: Bool = false, store: String? = nil) {
        self.maxLineLength = maxLineLength
        self.maxErrors = maxErrors
        self.allowPlaintextOnLoopback = allowPlaintextOnLoopback
        self.store = store
    }

    init(_ section: ConfigSection) {
        maxLineLength = section.int("max_line_length")!
        maxErrors = section.int("max_errors")!
        allowPlaintextOnLoopback = section.bool("allow_plaintext_on_loopback")!
        store = section.string("store").flatMap { $0.isEmpty ? nil : $0 }
        masterUsers = Set((section.strings("master_users") ?? []).map { $0.lowercased() })
        proxyNetworks = (section.strings("proxy_networks") ?? []).compactMap(IPNetwork.init)
    }
}

// @unchecked Sendable: all stored properties are let; throttle and locks do their own locking
final class POP3Plugin: Plugin, ProtocolService, @unchecked Sendable {
    let hostname: String
    let throttle: LoginThrottle
    let locks: MaildropLocks
    let failedLogins: Counter

    init(context: PluginContext) throws {
        let configured = context.config.string("hostname")!
        hostname = configured.isEmpty ? ProcessInfo.processInfo.hostName : configured
        throttle = LoginThrottle(context: context, failureDelay: context.config.duration("login_failure_delay")!,
                                 maxFailures: context.config.int("max_login_failures")!,
                                 maxFailuresPerAccount: context.config.int("max_login_failures_per_account")!,
                                 window: context.config.duration("login_failure_window")!)
        locks = try MaildropLocks(directory: context.dataDirectory + "/pop3/locks")
        failedLogins = context.counter("postern_pop3_login_failures_total")
    }

    var services: [ProvidedService] { [.protocolService(name: "pop3", self)] }

    func startSession(on channel: any Channel, session: Session) -> EventLoopFuture<Void> {
        let options = POP3Options(session.listener.options)
        var env = POP3Environment(hostname: hostname, options: options, auth: session.services.auth,
                                  store: session.services.store(named: options.store), throttle: throttle, locks: locks,
                                  peerAddress: session.peer?.ipAddress ?? "unknown", isLoopback: session.isLoopback,
                                  offersTLS: session.canStartTLS, logger: session.logger, failedLogins: failedLogins)
        env.clientCertificate = { try? await channel.verifiedClientCertificate().get() }
        env.tlsChannelBindings = session.services.tls.channelBindings(listener: session.listener.name)
        let state = POP3ServerState(env: env, isSecure: session.isSecure)
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(POP3Connection(session: session, state: state, maxLineLength: options.maxLineLength))
        }
    }
}
