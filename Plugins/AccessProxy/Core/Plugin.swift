import Foundation
import PluginAPI

// The IMAP access proxy (the brief's multiplexing proxy): clients see one name; the proxy logs
// them in itself (any SASL mechanism the host offers, LOGIN), finds the store that holds the
// user's mail (Routing/), logs in there with the proxy's master credential (Backend/), and then
// passes bytes both ways untouched. It keeps no state: any number of proxies may serve the same
// stores.

/// What `postern_plugin_entry` (Entry/Entry.swift) hands the host.
package enum AccessProxyRegistration {
    static let backendSchema = ConfigSchema([
        ConfigField("name", .string, required: true, help: "the back end's name in routes"),
        ConfigField("host", .string, required: true),
        ConfigField("port", .integer(1...65535), default: .integer(143), help: "its IMAP port"),
        ConfigField("pop3_port", .integer(1...65535), default: .integer(110), help: "its POP3 port"),
        ConfigField("tls", .oneOf(["none", "implicit", "starttls"]), default: .string("none"), help: "TLS to the back end"),
        ConfigField("verify_certificate", .boolean, default: .boolean(true)),
        ConfigField("hashed", .boolean, default: .boolean(true),
                    help: "false: only users routed to it by name (entries, tables) go there; a new store joins without taking anyone"),
        ConfigField("group", .string, default: .string(""),
                    help: "back ends of one group share a database: any serves the group's accounts, one down sends logins to another"),
    ])

    static let listenerSchema = ConfigSchema([
        ConfigField("allow_plaintext_on_loopback", .boolean, default: .boolean(false),
                    help: "LOGIN, USER/PASS and plaintext SASL without TLS for clients on 127.0.0.1/::1"),
    ])

    package static var registration: PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: "access-proxy", version: "1.0.0",
                summary: "IMAP and POP3 access proxy: logs clients in, routes each user to their store, logs in there as them and passes bytes through",
                kinds: [.protocolService],
                uses: [.credentialBackend, .lookupTable, .loginFailures],
                roles: ["proxy", "all-in-one"],
                config: ConfigSchema([
                    ConfigField("backend", .array(.table(backendSchema)), default: .array([]),
                                help: "[[plugin.access-proxy.backend]]: the stores, each with name, host, port, tls"),
                    ConfigField("users", .map(.string), default: .table([:]),
                                help: "user@domain or @domain = back end's name: fixed routes, read first"),
                    ConfigField("route_tables", .array(.string), default: .array([]),
                                help: "lookup tables asked next (a table-file, the ldap plugin's mailHost table): user or @domain to a back end's name or host:port"),
                    ConfigField("hash_unlisted", .boolean, default: .boolean(true),
                                help: "users no route names go to a back end chosen by hashing their name; false: they are refused"),
                    ConfigField("master_user", .string, required: true, help: "the account the proxy logs in to the back ends as (their master_users)"),
                    ConfigField("master_password", .string, default: .string("")),
                    ConfigField("master_password_file", .string, default: .string(""), help: "the master password from a file (first line); relative paths are under data_dir"),
                    ConfigField("connect_timeout", .duration, default: .string("5s")),
                    ConfigField("login_timeout", .duration, default: .string("15s"), help: "for the back end's login, after connecting"),
                    ConfigField("client_login_timeout", .duration, default: .string("60s"), help: "a client that has not logged in by then is disconnected"),
                    ConfigField("health_interval", .duration, default: .string("10s"),
                                help: "how often each back end's IMAP port is probed (0: only logins tell)"),
                    ConfigField("login_failure_delay", .duration, default: .string("2s")),
                    ConfigField("max_login_failures", .integer(1...1_000_000), default: .integer(10)),
                    ConfigField("max_login_failures_per_account", .integer(0...1_000_000), default: .integer(20)),
                    ConfigField("login_failure_window", .duration, default: .string("5m")),
                ]),
                protocols: ["imap-proxy": listenerSchema, "pop3-proxy": listenerSchema]),
            activate: { context in try AccessProxyPlugin(context: context) },
            check: { config, dataDirectory in _ = try ProxySettings(config, dataDirectory: dataDirectory) })
    }
}

struct ProxySettings: Sendable {
    var router: BackendRouter
    var master: BackendLogin.Credential
    var connectTimeout: Double
    var loginTimeout: Double
    var clientLoginTimeout: Double
    var healthInterval: Double
    var hostname: String

    init(_ config: ConfigSection, dataDirectory: String) throws {
        var backends: [Backend] = []
        if case .array(let items)? = config["backend"] {
            for (n, item) in items.enumerated() {
                guard case .table(let raw) = item else { throw ProxyConfigError("plugin.access-proxy.backend #\(n + 1) is not a table") }
                let t = ConfigSection(AccessProxyRegistration.backendSchema.applyingDefaults(to: raw))
                guard let name = t.string("name"), let host = t.string("host"), !name.isEmpty, !host.isEmpty else {
                    throw ProxyConfigError("plugin.access-proxy.backend #\(n + 1) needs name and host")
                }
                guard !backends.contains(where: { $0.name == name }) else { throw ProxyConfigError("two back ends named '\(name)'") }
                backends.append(Backend(name: name, host: host, port: t.int("port") ?? 143, pop3Port: t.int("pop3_port") ?? 110,
                                        tls: Backend.TLS(rawValue: t.string("tls") ?? "none") ?? .none,
                                        verifyCertificate: t.bool("verify_certificate") ?? true, hashed: t.bool("hashed") ?? true,
                                        group: t.string("group").flatMap { $0.isEmpty ? nil : $0 }))
            }
        }
        guard !backends.isEmpty else { throw ProxyConfigError("plugin.access-proxy needs at least one [[plugin.access-proxy.backend]]") }
        var entries: [String: String] = [:]
        if case .table(let users)? = config["users"] {
            for (key, value) in users {
                guard case .string(let target) = value else { continue }
                guard backends.contains(where: { $0.name == target || $0.group == target }) else {
                    throw ProxyConfigError("plugin.access-proxy.users.\(key): no back end or group named '\(target)'")
                }
                entries[key.lowercased()] = target
            }
        }
        router = BackendRouter(backends: backends, entries: entries, tables: config.strings("route_tables") ?? [],
                               hashUnlisted: config.bool("hash_unlisted") ?? true)
        var password = config.string("master_password") ?? ""
        if let file = config.string("master_password_file"), !file.isEmpty {
            let path = file.hasPrefix("/") ? file : dataDirectory + "/" + file
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ProxyConfigError("plugin.access-proxy.master_password_file: cannot read \(path)")
            }
            password = String(text.split(whereSeparator: \.isNewline).first ?? "")
        }
        guard !password.isEmpty else { throw ProxyConfigError("plugin.access-proxy needs master_password or master_password_file") }
        master = BackendLogin.Credential(user: config.string("master_user") ?? "", password: password)
        connectTimeout = config.duration("connect_timeout") ?? 5
        loginTimeout = config.duration("login_timeout") ?? 15
        clientLoginTimeout = config.duration("client_login_timeout") ?? 60
        healthInterval = config.duration("health_interval") ?? 10
        hostname = ProcessInfo.processInfo.hostName
    }
}

struct ProxyConfigError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

// @unchecked Sendable: all stored properties are let; the throttle does its own locking
final class AccessProxyPlugin: Plugin, ProtocolService, @unchecked Sendable {
    let context: PluginContext
    let settings: ProxySettings
    let throttle: LoginThrottle
    let logins: Counter
    let unavailable: Counter
    let health: BackendHealth
    private let probing = NIOLockedValueBox<Task<Void, Never>?>(nil)

    init(context: PluginContext) throws {
        self.context = context
        settings = try ProxySettings(context.config, dataDirectory: context.dataDirectory)
        throttle = LoginThrottle(context: context, failureDelay: context.config.duration("login_failure_delay")!,
                                 maxFailures: context.config.int("max_login_failures")!,
                                 maxFailuresPerAccount: context.config.int("max_login_failures_per_account")!,
                                 window: context.config.duration("login_failure_window")!)
        logins = context.counter("postern_imap_proxy_logins_total")
        unavailable = context.counter("postern_imap_proxy_backend_unavailable_total")
        health = BackendHealth()
    }

    func start() throws {
        guard settings.healthInterval > 0, !settings.router.backends.isEmpty else { return }
        let probe = BackendProbe(backends: settings.router.backends, health: health, group: context.eventLoopGroup,
                                 timeout: settings.connectTimeout, logger: context.logger)
        let interval = settings.healthInterval
        probing.withLockedValue { $0 = Task { await probe.run(every: interval) } }
    }

    func shutdown() {
        probing.withLockedValue { $0?.cancel() }
    }

    /// Logs `account` in at its store: the routed back end, else (down) another of its group,
    /// those seen up first (`BackendHealth`).
    func login<T>(_ account: String, session: Session, _ attempt: (Backend) async throws -> T) async -> Result<(T, Backend), RouteRefusal> {
        let primary: Backend
        switch await backend(for: account, session: session) {
        case .success(let b): primary = b
        case .failure(let refusal): return .failure(refusal)
        }
        let order = health.order(settings.router.candidates(primary, user: account))
        for backend in order {
            do {
                let value = try await attempt(backend)
                health.succeeded(backend.name)
                return .success((value, backend))
            } catch BackendLogin.Failure.refused(let why) {
                // The store is up but refused the master login: a configuration error no other
                // node of the group would fix.
                session.logger.error("back end refused the proxy's login", metadata: ["user": "\(account)", "backend": "\(backend.name)", "error": "\(why)"])
                unavailable.increment()
                return .failure(.unavailable)
            } catch {
                health.failed(backend.name)
                session.logger.error("back end unavailable", metadata: ["user": "\(account)", "backend": "\(backend.name)", "error": "\(error)"])
            }
        }
        unavailable.increment()
        return .failure(.unavailable)
    }

    var services: [ProvidedService] {
        [.protocolService(name: "imap-proxy", self), .protocolService(name: "pop3-proxy", POP3ProxyService(plugin: self))]
    }

    /// IMAP: the session's front end is `ProxySession`.
    func startSession(on channel: any Channel, session: Session) -> EventLoopFuture<Void> {
        start(ProxySession(plugin: self, session: session, loop: channel.eventLoop,
                           allowPlaintextOnLoopback: session.listener.options.bool("allow_plaintext_on_loopback") ?? false),
              on: channel, session: session)
    }

    func start(_ front: any ProxyFrontEnd, on channel: any Channel, session: Session) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(ProxyConnection(session: session, state: front,
                                                                           loginTimeout: .milliseconds(Int64(settings.clientLoginTimeout * 1000))))
        }
    }

    /// Whether the client's address may try a login now (refused and logged after too many
    /// failures). Both front ends apply the one policy.
    func mayTryLogin(_ session: Session) async -> Bool {
        let address = session.peer?.ipAddress ?? "unknown"
        guard await throttle.allows(address) else {
            session.logger.notice("login refused: too many failures from \(address)")
            return false
        }
        return true
    }

    /// A failed login: counted for the address and the account, logged with the user, answered
    /// after the failure delay (guessing gets slow; other sessions go on meanwhile).
    func loginFailed(_ session: Session, user: String?) async {
        _ = await throttle.failed(session.peer?.ipAddress ?? "unknown", account: user)
        session.logger.notice("login failed", metadata: ["user": "\(user ?? "(none given)")"])
        if throttle.failureDelay > 0 { try? await Task.sleep(nanoseconds: UInt64(throttle.failureDelay * 1e9)) }
    }

    /// The store that holds `account`'s mail, or why there is none (logged here).
    func backend(for account: String, session: Session) async -> Result<Backend, RouteRefusal> {
        do {
            switch try await settings.router.route(account, directory: session.services.directory) {
            case .backend(let b): return .success(b)
            case .unknown(let name):
                session.logger.error("the route of \(account) names no configured back end: \(name)")
                return .failure(.notConfigured)
            case .none:
                session.logger.notice("no back end for \(account)")
                return .failure(.noStore)
            }
        } catch {
            session.logger.error("route lookup failed for \(account): \(error)")
            return .failure(.lookupFailed)
        }
    }
}

/// Why a logged-in user cannot be passed on, as the client is told.
enum RouteRefusal: Error {
    case notConfigured, noStore, lookupFailed, unavailable

    var text: String {
        switch self {
        case .notConfigured: return "Your mailbox server is not configured here; tell your administrator."
        case .noStore: return "No mailbox server holds this account."
        case .lookupFailed: return "Temporary failure finding your mailbox server; try again later."
        case .unavailable: return "Your mailbox server is not available; try again later."
        }
    }
}

/// The `pop3-proxy` protocol of the same plugin: its front end is `POP3ProxySession`.
final class POP3ProxyService: ProtocolService, Sendable {
    let plugin: AccessProxyPlugin

    init(plugin: AccessProxyPlugin) { self.plugin = plugin }

    func startSession(on channel: any Channel, session: Session) -> EventLoopFuture<Void> {
        plugin.start(POP3ProxySession(plugin: plugin, session: session, loop: channel.eventLoop,
                                      allowPlaintextOnLoopback: session.listener.options.bool("allow_plaintext_on_loopback") ?? false),
                     on: channel, session: session)
    }
}
