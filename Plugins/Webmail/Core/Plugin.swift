import Foundation
import PluginAPI
import PluginHTTP

// Webmail: mail in a browser, over IMAP (and submission) like a remote webmail host, with
// sessions in a store shared by every worker and node. Pages render on the server and work
// without JavaScript.

/// What `postern_plugin_entry` (Entry/Entry.swift) hands the host: the manifest and how to
/// activate the plugin. Here rather than in the entry so that tests can read it.
package enum WebmailRegistration {
    package static var registration: PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: "webmail", version: "1.0.0", summary: "Webmail over IMAP: folders, messages, sanitised HTML, brands and languages",
                kinds: [.protocolService],
                uses: [],
                roles: ["all-in-one", "webmail"],
                config: ConfigSchema([
                    ConfigField("login_failure_delay", .duration, default: .string("2s"), help: "wait before answering a failed login"),
                    ConfigField("max_login_failures", .integer(1...100_000), default: .integer(10),
                                help: "failures from one address within login_failure_window before it is refused"),
                    ConfigField("login_failure_window", .duration, default: .string("5m")),
                ]),
                protocols: ["webmail": WebmailOptions.schema]),
            activate: { context in try WebmailPlugin(context: context) })
    }
}

/// A webmail listener's `[listener.options]`.
struct WebmailOptions: Sendable {
    static let schema = ConfigSchema([
        ConfigField("imap_host", .string, default: .string("127.0.0.1"), help: "the IMAP server the webmail reads mail from"),
        ConfigField("imap_port", .integer(1...65535), default: .integer(143)),
        ConfigField("imap_security", .oneOf(["none", "tls", "starttls"]), default: .string("none"),
                    help: "none is for loopback only; tls is implicit TLS (port 993)"),
        ConfigField("imap_verify_certificate", .boolean, default: .boolean(true),
                    help: "false only for a self-signed certificate on a trusted network"),
        ConfigField("submission_host", .string, default: .string("127.0.0.1"), help: "the submission server mail is sent through"),
        ConfigField("submission_port", .integer(1...65535), default: .integer(587)),
        ConfigField("submission_security", .oneOf(["none", "tls", "starttls"]), default: .string("starttls"),
                    help: "none is for loopback only; tls is implicit TLS (port 465)"),
        ConfigField("submission_verify_certificate", .boolean, default: .boolean(true),
                    help: "false only for a self-signed certificate on a trusted network"),
        ConfigField("max_upload_size", .size, default: .string("25M"),
                    help: "attachments of one message together; keep it under the submission listener's max_message_size"),
        ConfigField("session_store", .string, default: .string(""),
                    help: "the shared session database; default: DATA/webmail/sessions.sqlite"),
        ConfigField("idle_timeout", .duration, default: .string("30m"), help: "a session unused this long is logged out"),
        ConfigField("absolute_timeout", .duration, default: .string("12h"), help: "every session ends this long after login"),
        ConfigField("page_size", .integer(5...500), default: .integer(50), help: "messages per page unless the user chooses"),
        ConfigField("default_language", .string, default: .string("en"), help: "en, de, fr or ja"),
        ConfigField("brands", .string, default: .string(""),
                    help: "a directory with one folder per domain (brand.json, logo, templates); see Plugins/Webmail/README.md"),
        ConfigField("secure_cookies", .boolean, default: .boolean(true),
                    help: "mark cookies Secure (browsers accept them on https and on http://localhost)"),
        ConfigField("allow_plaintext_on_loopback", .boolean, default: .boolean(true),
                    help: "accept a password over plain HTTP from 127.0.0.1/::1 (never from elsewhere)"),
    ])

    var imap: IMAPEndpoint
    var submission: SubmissionEndpoint
    var maxUploadSize: Int
    var sessionStore: String
    var idleTimeout: Double
    var absoluteTimeout: Double
    var pageSize: Int
    var defaultLanguage: String
    var brands: String?
    var secureCookies: Bool
    var allowPlaintextOnLoopback: Bool

    init(_ section: ConfigSection, dataDirectory: String) {
        imap = IMAPEndpoint(host: section.string("imap_host")!, port: section.int("imap_port")!,
                            security: IMAPEndpoint.Security(rawValue: section.string("imap_security")!) ?? .none,
                            verifyCertificate: section.bool("imap_verify_certificate")!)
        submission = SubmissionEndpoint(host: section.string("submission_host")!, port: section.int("submission_port")!,
                                        security: SubmissionEndpoint.Security(rawValue: section.string("submission_security")!) ?? .starttls,
                                        verifyCertificate: section.bool("submission_verify_certificate")!)
        maxUploadSize = section.size("max_upload_size")!
        let store = section.string("session_store")!
        sessionStore = store.isEmpty ? dataDirectory + "/webmail/sessions.sqlite" : store
        idleTimeout = section.duration("idle_timeout")!
        absoluteTimeout = section.duration("absolute_timeout")!
        pageSize = section.int("page_size")!
        defaultLanguage = section.string("default_language")!
        brands = section.string("brands").flatMap { $0.isEmpty ? nil : $0 }
        secureCookies = section.bool("secure_cookies")!
        allowPlaintextOnLoopback = section.bool("allow_plaintext_on_loopback")!
    }
}

// @unchecked Sendable: every stored property is a let; the maps of apps is guarded by `lock`
final class WebmailPlugin: Plugin, ProtocolService, @unchecked Sendable {
    let context: PluginContext
    let throttle: LoginThrottle
    let logins: Counter
    let failedLogins: Counter
    private let lock = NIOLock()
    /// One app per listener (its options: IMAP server, session store, brands), built on first use.
    private var apps: [String: HostedHTTP<RouterResponder<WebmailRequestContext>>] = [:]
    private var webmails: [String: Webmail] = [:]

    init(context: PluginContext) throws {
        self.context = context
        throttle = LoginThrottle(context: context, failureDelay: context.config.duration("login_failure_delay")!,
                                 maxFailures: context.config.int("max_login_failures")!,
                                 // Accounts are locked by the IMAP server the webmail logs in to.
                                 maxFailuresPerAccount: 0,
                                 window: context.config.duration("login_failure_window")!)
        logins = context.counter("postern_webmail_logins_total", dimensions: [("result", "ok")])
        failedLogins = context.counter("postern_webmail_logins_total", dimensions: [("result", "failed")])
    }

    var services: [ProvidedService] { [.protocolService(name: "webmail", self)] }

    func shutdown() {
        let all = lock.withLock { Array(webmails.values) }
        for webmail in all { webmail.pool.closeAll() }
    }

    func startSession(on channel: any Channel, session: Session) -> EventLoopFuture<Void> {
        do {
            let app = try lock.withLock { () throws -> HostedHTTP<RouterResponder<WebmailRequestContext>> in
                if let app = apps[session.listener.name] { return app }
                let options = WebmailOptions(session.listener.options, dataDirectory: context.dataDirectory)
                let webmail = try Webmail(plugin: self, options: options, listener: session.listener)
                let app = HostedHTTP(responder: webmail.router().buildResponder(), defaultHeaders: Webmail.securityHeaders)
                apps[session.listener.name] = app
                webmails[session.listener.name] = webmail
                return app
            }
            return app.startSession(on: channel, session: session)
        } catch {
            session.logger.error("webmail cannot start", metadata: ["error": "\(error)"])
            return channel.eventLoop.makeFailedFuture(error)
        }
    }
}
