import Foundation
import PluginAPI
import PluginHTTP

/// The request context: Hummingbird's core storage, and the channel for the client's address.
struct WebmailRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// Form posts are small; attachments (compose) get their own limit from the submission listener.
    var maxUploadSize: Int { 1 << 20 }

    var clientAddress: String { channel.remoteAddress?.hostText ?? "local" }

    var clientIsLoopback: Bool { channel.remoteAddress?.isLoopbackPeer ?? false }
}

/// One webmail listener: its options, session store, IMAP connections, pages and brands.
final class Webmail: Sendable {
    static let sessionCookie = "postern_session"
    /// The cookie that ties the login form's CSRF token to the browser before there is a session.
    static let loginCookie = "postern_login"

    /// Sent with every response. The page CSP allows no script but our own file and no remote
    /// load at all; a message page with remote images allowed widens `img-src` only.
    static let securityHeaders: HTTPFields = [
        .contentSecurityPolicy: contentSecurityPolicy(remoteImages: false),
        HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        HTTPField.Name("X-Frame-Options")!: "DENY",
        HTTPField.Name("Referrer-Policy")!: "no-referrer",
        HTTPField.Name("Cross-Origin-Opener-Policy")!: "same-origin",
        HTTPField.Name("Permissions-Policy")!: "camera=(), microphone=(), geolocation=()",
    ]

    static func contentSecurityPolicy(remoteImages: Bool) -> String {
        "default-src 'none'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; "
            + "img-src 'self' data:\(remoteImages ? " https: http:" : ""); font-src 'self'; connect-src 'self'; "
            + "manifest-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    }

    let plugin: WebmailPlugin
    let options: WebmailOptions
    let listener: ListenerInfo
    let sessions: WebSessionStore
    let pool: IMAPConnectionPool
    let pages: PageRenderer
    /// Cookies carry Secure when the listener is TLS, or when the site asks for it on plain
    /// HTTP (browsers accept Secure cookies from http://localhost).
    let secureCookies: Bool

    init(plugin: WebmailPlugin, options: WebmailOptions, listener: ListenerInfo) throws {
        self.plugin = plugin
        self.options = options
        self.listener = listener
        sessions = try WebSessionStore(path: options.sessionStore, idleTimeout: options.idleTimeout,
                                       absoluteTimeout: options.absoluteTimeout)
        pool = IMAPConnectionPool(endpoint: options.imap, group: plugin.context.eventLoopGroup, logger: plugin.context.logger)
        let services = plugin.context.services
        pages = try PageRenderer(brandsDirectory: options.brands, defaultLanguage: options.defaultLanguage,
                                 hasDirectory: { !services.directorySearches.isEmpty })
        secureCookies = listener.tls != .none || options.secureCookies
    }

    var isTLS: Bool { listener.tls != .none }

    func router() -> Router<WebmailRequestContext> {
        let router = Router(context: WebmailRequestContext.self)
        addAuthRoutes(router)
        addMailRoutes(router)
        addComposeRoutes(router)
        addActionRoutes(router)
        addSettingsRoutes(router)
        addAccountRoutes(router)
        addStaticRoutes(router)
        addEventRoutes(router)
        addDirectoryRoutes(router)
        return router
    }

    // MARK: - Helpers shared by the routes

    func cookie(_ name: String, _ value: String, maxAge: Int? = nil) -> Cookie {
        Cookie(name: name, value: value, maxAge: maxAge, path: "/", secure: secureCookies, httpOnly: true, sameSite: .lax)
    }

    static func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location, .cacheControl: "no-store"])
    }

    /// An HTML page that must not stay in any cache (kiosks keep nothing after logout).
    static func html(_ body: String, status: HTTPResponse.Status = .ok, csp: String? = nil) -> Response {
        var headers: HTTPFields = [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"]
        if let csp { headers[.contentSecurityPolicy] = csp }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    /// Reads an `application/x-www-form-urlencoded` body into a dictionary (last value wins).
    static func form(_ request: Request, context: WebmailRequestContext) async throws -> [String: String] {
        let body = try await request.body.collect(upTo: context.maxUploadSize)
        return parseQuery(String(buffer: body))
    }

    static func parseQuery(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = decodeFormComponent(String(parts[0]))
            fields[key] = parts.count > 1 ? decodeFormComponent(String(parts[1])) : ""
        }
        return fields
    }

    static func decodeFormComponent(_ s: String) -> String {
        (s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding) ?? s
    }

    static func queryEscape(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }

    /// The login domain's part of a user name (`bob@example.org` → `example.org`), for the brand.
    static func domain(of user: String) -> String? {
        guard let at = user.lastIndex(of: "@") else { return nil }
        return String(user[user.index(after: at)...]).lowercased()
    }

    /// The Host header without the port, for the brand before login.
    static func host(_ request: Request) -> String? {
        guard let host = request.head.authority else { return nil }
        if host.hasPrefix("[") { return nil }
        return host.split(separator: ":").first.map { String($0).lowercased() }
    }
}
