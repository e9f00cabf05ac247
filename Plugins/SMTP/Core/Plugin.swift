import Foundation
import PluginAPI

// SMTP (RFC 5321): the MTA's inbound side. The protocol service `smtp` serves MX (port 25),
// submission (587, RFC 6409) and implicit-TLS submission (465, RFC 8314) by listener options.
// Accepted messages go to the queue plugin (`services.queue`); recipients are classified by its
// router (`services.router`). The protocol service `lmtp` (RFC 2033) is the same state machine in
// LMTP mode, delivering into the store (`services.store`). See README.md in this folder.

/// What `postern_plugin_entry` (Entry/Entry.swift) hands the host: the manifest and how to
/// activate the plugin. Here rather than in the entry so that tests can read it.
package enum SMTPRegistration {
    package static var registration: PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: "smtp", version: "1.0.0",
                summary: "SMTP server: MX, submission and submissions (RFC 5321, 6409, 8314); LMTP delivery into the store (RFC 2033)",
                kinds: [.protocolService],
                uses: [.queue, .router, .credentialBackend, .saslMechanism, .lookupTable, .dnsResolver, .filter, .storage],
                roles: ["all-in-one", "gateway", "relay", "store"],
                config: ConfigSchema([
                    ConfigField("hostname", .string, default: .string(""),
                                help: "name in the greeting, EHLO reply and Received: fields; default: the host name"),
                    ConfigField("lmtp_hostname", .string, default: .string(""),
                                help: "name in the LMTP greeting and LHLO reply; default: the host name"),
                    ConfigField("login_failure_delay", .duration, default: .string("2s"), help: "wait before answering a failed AUTH"),
                    ConfigField("max_login_failures", .integer(0...100_000), default: .integer(10),
                                help: "failed logins from one address within login_failure_window before its AUTH is refused (0: no limit)"),
                    ConfigField("max_login_failures_per_account", .integer(0...100_000), default: .integer(20),
                                help: "failed logins against one account within login_failure_window before it is locked for the window (0: no limit)"),
                    ConfigField("login_failure_window", .duration, default: .string("5m")),
                ]),
                protocols: ["smtp": SMTPOptions.schema, "lmtp": LMTPOptions.schema],
                // SMTP belongs to the MTA roles, LMTP to the mailbox roles (as the lmtp plugin did).
                protocolRoles: ["smtp": ["all-in-one", "gateway", "relay"], "lmtp": ["all-in-one", "store"]]),
            activate: { context in try SMTPPlugin(context: context) })
    }
}

// @unchecked Sendable: all stored properties are let; warned is a NIOLockedValueBox
final class SMTPPlugin: Plugin, ProtocolService, @unchecked Sendable {
    let hostname: String
    let lmtpHostname: String
    let spool: String
    let lmtpSpool: String
    let metrics: SMTPMetrics
    let throttle: LoginThrottle
    /// What the smtp listeners received, quarantined and refused, for the admin API's reports.
    let events: MailEventLog
    private let warned = NIOLockedValueBox<Set<String>>([])

    init(context: PluginContext) throws {
        let configured = context.config.string("hostname")!
        hostname = configured.isEmpty ? ProcessInfo.processInfo.hostName : configured
        let lmtpConfigured = context.config.string("lmtp_hostname")!
        lmtpHostname = lmtpConfigured.isEmpty ? ProcessInfo.processInfo.hostName : lmtpConfigured
        spool = context.dataDirectory + "/spool/smtp"
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        lmtpSpool = context.dataDirectory + "/spool/lmtp"
        try FileManager.default.createDirectory(atPath: lmtpSpool, withIntermediateDirectories: true)
        Self.removeAbandonedSpoolFiles(spool, context.logger)
        metrics = SMTPMetrics(counter: { label, dimensions in context.counter(label, dimensions: dimensions) })
        events = MailEventLog(dataDirectory: context.dataDirectory)
        let c = context.config
        throttle = LoginThrottle(context: context, failureDelay: c.duration("login_failure_delay")!, maxFailures: c.int("max_login_failures")!,
                                 maxFailuresPerAccount: c.int("max_login_failures_per_account")!,
                                 window: c.duration("login_failure_window")!)
    }

    /// One service object, two protocols: `startSession` reads which from the listener.
    var services: [ProvidedService] { [.protocolService(name: "smtp", self), .protocolService(name: "lmtp", self)] }

    /// Spool files of sessions that died with their worker (SIGKILL, a crash) are never handed to
    /// the queue. Workers of every generation share the directory, so only files untouched for a
    /// day go: a live session writes its file at least every `timeout`.
    static func removeAbandonedSpoolFiles(_ directory: String, _ logger: Logger) {
        let cutoff = Date().addingTimeInterval(-86_400)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            let path = directory + "/" + name
            guard let modified = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date,
                  modified < cutoff else { continue }
            if unlink(path) == 0 { logger.info("removed abandoned spool file", metadata: ["file": "\(path)"]) }
        }
    }

    /// Logs `message` once per worker and listener (services are complete only once every plugin
    /// has activated, so this is checked at the first session rather than at activation).
    private func warnOnce(_ key: String, _ logger: Logger, _ message: Logger.Message) {
        let first = warned.withLockedValue { $0.insert(key).inserted }
        if first { logger.warning(message) }
    }

    func startSession(on channel: any Channel, session: Session) -> EventLoopFuture<Void> {
        if session.listener.protocolName == "lmtp" { return startLMTPSession(on: channel, session: session) }
        // The channel is not active yet: the refusal is written when it is.
        func refuse(_ text: String) -> EventLoopFuture<Void> {
            let reply = MailReply(421, "4.3.0", "\(hostname) \(text)")
            return channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(SMTPRefusalHandler(reply: reply))
            }
        }
        let options: SMTPOptions
        do {
            options = try SMTPOptions(session.listener.options)
        } catch {
            session.logger.error("bad listener options: \(error)")
            return refuse("service not configured")
        }
        let services = session.services
        guard let queue = services.queue, let router = services.router else {
            session.logger.error("no queue plugin loaded (services.queue / services.router): SMTP cannot accept mail")
            return refuse("no mail queue configured")
        }
        if services.dns == nil && (!options.dnsbl.isEmpty || options.requireReverseDNS) {
            warnOnce("dns:\(session.listener.name)", session.logger,
                     "no DNS resolver plugin loaded: dnsbl and require_reverse_dns are skipped on this listener")
        }
        if options.mode == .submissions && session.listener.tls != .implicit {
            warnOnce("tls:\(session.listener.name)", session.logger, "mode = \"submissions\" expects tls = \"implicit\" on this listener")
        }
        // The listener's filters, in its order; a filter it names that is not loaded refuses the
        // session rather than letting mail through unscanned.
        var filters = services.filters
        do {
            if let names = options.filters { filters = try filters.selecting(names) }
        } catch {
            session.logger.error("listener filters: \(error)")
            return refuse("content filter not available, try again later")
        }
        filters.policy = options.filterPolicy
        var environment = SMTPEnvironment(
            hostname: hostname, listenerName: session.listener.name, sessionID: session.id, options: options,
            router: router, queue: queue, auth: services.auth, directory: services.directory, dns: services.dns,
            filters: filters, spoolDirectory: spool, logger: session.logger, metrics: metrics)
        environment.throttle = throttle
        environment.events = events
        let client = SMTPClient(
            address: channel.remoteAddress?.ipAddress.flatMap { IPAddress($0) },
            localAddress: channel.localAddress?.ipAddress.flatMap { IPAddress($0) },
            isSecure: session.isSecure, canStartTLS: session.canStartTLS, isLoopback: session.isLoopback,
            peerDescription: channel.remoteAddress.map { "\($0)" } ?? "unknown",
            clientCertificate: { try? await channel.verifiedClientCertificate().get() },
            tlsChannelBindings: services.tls.channelBindings(listener: session.listener.name))
        let state = SMTPServerState(environment: environment, client: client)
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(SMTPSessionHandler(session: session, state: state, timeout: options.timeout))
        }
    }

    /// An lmtp listener's session: the same state machine in LMTP mode, on the store. No DNS,
    /// access tables, filters or SASL: the client is the site's own MTA.
    func startLMTPSession(on channel: any Channel, session: Session) -> EventLoopFuture<Void> {
        let options = LMTPOptions(session.listener.options)
        guard let store = session.services.store(named: options.store) else {
            session.logger.error("no storage plugin loaded: LMTP cannot deliver")
            // Written once the channel is active: a write before that never reaches the client.
            return channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(SMTPRefusalHandler(reply: MailReply(421, "4.3.0", "no message store configured")))
            }
        }
        let environment = SMTPEnvironment(
            hostname: lmtpHostname, listenerName: session.listener.name, sessionID: session.id, options: options.smtpOptions,
            dialect: .lmtp(store: store), auth: AuthService(mechanisms: [], backends: []), directory: Directory(tables: []), dns: nil,
            filters: FilterChain(filters: []), spoolDirectory: lmtpSpool, logger: session.logger, metrics: metrics)
        let client = SMTPClient(
            address: channel.remoteAddress?.ipAddress.flatMap { IPAddress($0) },
            localAddress: channel.localAddress?.ipAddress.flatMap { IPAddress($0) },
            isSecure: session.isSecure, canStartTLS: false, isLoopback: session.isLoopback,
            peerDescription: channel.remoteAddress.map { "\($0)" } ?? "unknown")
        let state = SMTPServerState(environment: environment, client: client)
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(SMTPSessionHandler(session: session, state: state, timeout: nil))
        }
    }
}
