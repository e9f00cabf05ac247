import Foundation
import PluginAPI
import PluginHTTP

// The administration API and console: an HTTP listener (protocol `admin`) whose JSON API
// (Resources/openapi.json) manages domains, accounts, aliases, quotas, mailboxes and rights in
// the store and the mail queue, for site administrators, delegated domain administrators (who see
// their domains and nothing else) and end users (their own settings). The console is a page of
// the same listener that calls the same API.

/// What `postern_plugin_entry` (Entry/Entry.swift) hands the host. Here so tests can read it.
package enum AdminRegistration {
    package static var registration: PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: "admin", version: "1.0.0",
                summary: "Administration API and console: domains, accounts, rights, queue, audit log; delegated domain administrators",
                kinds: [.protocolService],
                uses: [.accounts, .storage, .queue, .credentialBackend, .loginFailures],
                // Every node that keeps accounts or a queue can serve its own part of the API.
                roles: ["all-in-one", "admin", "gateway", "relay", "store"],
                config: ConfigSchema([
                    ConfigField("login_failure_delay", .duration, default: .string("2s"), help: "wait before answering a failed login"),
                    ConfigField("max_login_failures", .integer(1...100_000), default: .integer(10),
                                help: "failures from one address within login_failure_window before it is refused"),
                    ConfigField("max_login_failures_per_account", .integer(0...100_000), default: .integer(10),
                                help: "failures against one account (from anywhere) before it is locked for the window; 0: no limit"),
                    ConfigField("login_failure_window", .duration, default: .string("5m")),
                ] + NodeSettings.fields + AlertSettings.fields),
                protocols: ["admin": AdminOptions.schema]),
            activate: { context in try AdminPlugin(context: context) },
            // The node list is checked with the config (postern check-config), its files at start.
            check: { config, dataDirectory in _ = try NodeSettings(config, dataDirectory: dataDirectory) })
    }
}

/// An admin listener's `[listener.options]`.
struct AdminOptions: Sendable {
    static let schema = ConfigSchema([
        ConfigField("database", .string, default: .string(""),
                    help: "sessions, API tokens, delegated domains and the audit log; default: DATA/admin/admin.sqlite"),
        ConfigField("idle_timeout", .duration, default: .string("30m"), help: "a console session unused this long is logged out"),
        ConfigField("absolute_timeout", .duration, default: .string("12h"), help: "every console session ends this long after login"),
        ConfigField("requests_per_second", .integer(1...1_000_000), default: .integer(50),
                    help: "API requests one client address may make per second, on average"),
        ConfigField("request_burst", .integer(1...1_000_000), default: .integer(200),
                    help: "requests one client address may make at once before requests_per_second applies"),
        ConfigField("max_upload_size", .size, default: .string("20M"), help: "the largest request body (a bulk import file)"),
        ConfigField("secure_cookies", .boolean, default: .boolean(true),
                    help: "mark cookies Secure (browsers accept them on https and on http://localhost)"),
        ConfigField("allow_plaintext_on_loopback", .boolean, default: .boolean(true),
                    help: "serve the API over plain HTTP to 127.0.0.1/::1 (never to anyone else: off loopback the listener needs TLS)"),
        ConfigField("node_api", .boolean, default: .boolean(false),
                    help: "this listener is the node API a console calls: TLS with client_certificates = \"required\" from the site's CA; it answers console certificates only, for the administrator the console names"),
    ])

    var database: String
    var idleTimeout: Double
    var absoluteTimeout: Double
    var requestsPerSecond: Int
    var requestBurst: Int
    var maxUploadSize: Int
    var secureCookies: Bool
    var allowPlaintextOnLoopback: Bool
    var nodeAPI: Bool

    init(_ section: ConfigSection, dataDirectory: String) {
        let database = section.string("database")!
        self.database = database.isEmpty ? dataDirectory + "/admin/admin.sqlite" : database
        idleTimeout = section.duration("idle_timeout")!
        absoluteTimeout = section.duration("absolute_timeout")!
        requestsPerSecond = section.int("requests_per_second")!
        requestBurst = section.int("request_burst")!
        maxUploadSize = section.size("max_upload_size")!
        secureCookies = section.bool("secure_cookies")!
        allowPlaintextOnLoopback = section.bool("allow_plaintext_on_loopback")!
        nodeAPI = section.bool("node_api")!
    }
}

// @unchecked Sendable: every stored property is a let; the map of apps is guarded by `lock`
final class AdminPlugin: Plugin, ProtocolService, @unchecked Sendable {
    let context: PluginContext
    let throttle: LoginThrottle
    let logins: Counter
    let failedLogins: Counter
    /// The node's event log, which the reports read.
    let events: MailEventLog
    /// The other nodes this console shows (`[[plugin.admin.node]]`), and their heartbeat.
    let nodes: NodeMonitor
    /// This node's checks against the alert thresholds, and the alert mail.
    let alerts: AlertMonitor
    private let lock = NIOLock()
    /// One app per listener (its options: database, limits), built on first use.
    private var apps: [String: HostedHTTP<RouterResponder<AdminRequestContext>>] = [:]

    init(context: PluginContext) throws {
        self.context = context
        throttle = LoginThrottle(context: context, failureDelay: context.config.duration("login_failure_delay")!,
                                 maxFailures: context.config.int("max_login_failures")!,
                                 maxFailuresPerAccount: context.config.int("max_login_failures_per_account")!,
                                 window: context.config.duration("login_failure_window")!)
        logins = context.counter("postern_admin_logins_total", dimensions: [("result", "ok")])
        failedLogins = context.counter("postern_admin_logins_total", dimensions: [("result", "failed")])
        events = MailEventLog(dataDirectory: context.dataDirectory)
        let nodeSettings = try NodeSettings(context.config, dataDirectory: context.dataDirectory)
        nodes = try NodeMonitor(settings: nodeSettings, group: context.eventLoopGroup, logger: context.logger)
        alerts = AlertMonitor(settings: AlertSettings(context.config, hostName: ProcessInfo.processInfo.hostName), context: context,
                              events: events, node: nodeSettings.localName)
    }

    func start() throws {
        nodes.start()
        alerts.start()
    }

    func shutdown() {
        nodes.stop()
        alerts.stop()
    }

    var services: [ProvidedService] { [.protocolService(name: "admin", self)] }

    func startSession(on channel: any Channel, session: Session) -> EventLoopFuture<Void> {
        do {
            let app = try lock.withLock { () throws -> HostedHTTP<RouterResponder<AdminRequestContext>> in
                if let app = apps[session.listener.name] { return app }
                let options = AdminOptions(session.listener.options, dataDirectory: context.dataDirectory)
                let api = try AdminAPI(plugin: self, options: options, listener: session.listener)
                let app = HostedHTTP(responder: api.router().buildResponder(), defaultHeaders: AdminAPI.securityHeaders)
                apps[session.listener.name] = app
                return app
            }
            return app.startSession(on: channel, session: session)
        } catch {
            session.logger.error("admin cannot start", metadata: ["error": "\(error)"])
            return channel.eventLoop.makeFailedFuture(error)
        }
    }
}
