import Foundation
import PluginAPI
import PluginHTTP

/// One admin listener: its options, database, rate limits and routes. Every API route goes
/// through `route`, which enforces the transport (TLS off loopback), the rate limit, the caller's
/// authentication and role, and turns refusals into JSON answers.
final class AdminAPI: Sendable {
    static let sessionCookie = "postern_admin"
    static let csrfHeader = HTTPField.Name("X-CSRF-Token")!

    /// Sent with every response: the console's CSP allows its own script and style only, and
    /// nothing is kept in a cache.
    static let securityHeaders: HTTPFields = [
        .contentSecurityPolicy: "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            + "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        HTTPField.Name("X-Frame-Options")!: "DENY",
        HTTPField.Name("Referrer-Policy")!: "no-referrer",
        HTTPField.Name("Cross-Origin-Opener-Policy")!: "same-origin",
        HTTPField.Name("Cross-Origin-Resource-Policy")!: "same-origin",
        .cacheControl: "no-store",
    ]

    /// Who may call a route.
    enum Access: Sendable {
        /// No authentication (the OpenAPI document, login, the console's files).
        case open
        /// Any account that logged in (its own settings).
        case anyone
        /// Site and domain administrators (domain administrators within their domains).
        case administrators
        /// Site administrators only.
        case site
    }

    /// A request on its way through a route, with what the route needs to answer it.
    struct Call: Sendable {
        let request: Request
        let context: AdminRequestContext
        /// The caller; `open` routes have none.
        let caller: Principal?
        let maxBody: Int

        var principal: Principal { caller! }
        var client: String { context.clientAddress }

        /// A path parameter, percent-decoded (`%2F` in a mailbox name, `%40` in an address).
        func parameter(_ name: String) throws -> String {
            guard let raw = context.parameters.get(name), let value = raw.removingPercentEncoding, !value.isEmpty else {
                throw APIError.badRequest("the path has no \(name)")
            }
            return value
        }

        func query(_ name: String) -> String? {
            request.uri.queryParameters[Substring(name)].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
        }

        func queryInt(_ name: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
            guard let text = query(name) else { return value }
            guard let n = Int(text), range.contains(n) else { throw APIError.badRequest("'\(name)' must be a number from \(range.lowerBound) to \(range.upperBound)") }
            return n
        }

        func body() async throws -> JSONBody {
            try JSONBody(try await rawBody())
        }

        func rawBody() async throws -> ByteBuffer {
            do {
                return try await request.body.collect(upTo: maxBody)
            } catch {
                throw APIError.badRequest("the body is larger than max_upload_size (\(maxBody) bytes) or could not be read")
            }
        }
    }

    let plugin: AdminPlugin
    let options: AdminOptions
    let listener: ListenerInfo
    let database: AdminDatabase
    let limiter: RequestRateLimiter
    let secureCookies: Bool
    let console: ConsoleFiles

    init(plugin: AdminPlugin, options: AdminOptions, listener: ListenerInfo) throws {
        self.plugin = plugin
        self.options = options
        self.listener = listener
        database = try AdminDatabase(path: options.database, idleTimeout: options.idleTimeout, absoluteTimeout: options.absoluteTimeout)
        limiter = RequestRateLimiter(rate: options.requestsPerSecond, burst: options.requestBurst)
        secureCookies = listener.tls != .none || options.secureCookies
        console = try ConsoleFiles()
    }

    var services: HostServices { plugin.context.services }
    var logger: Logger { plugin.context.logger }

    func accounts() throws -> any AccountStore {
        guard let accounts = services.accounts else { throw APIError.unavailable("no plugin of this server keeps accounts (add [plugin.store-sqlite])") }
        return accounts
    }

    func store() throws -> any StorageBackend {
        guard let store = services.store() else { throw APIError.unavailable("no storage plugin on this server") }
        return store
    }

    func queue() throws -> any MailQueue {
        guard let queue = services.queue else { throw APIError.unavailable("no queue on this server (add [plugin.queue])") }
        return queue
    }

    func router() -> Router<AdminRequestContext> {
        let router = Router(context: AdminRequestContext.self)
        addSessionRoutes(router)
        addDomainRoutes(router)
        addImportRoutes(router)
        addUserRoutes(router)
        addMailboxRoutes(router)
        addQueueRoutes(router)
        addAuditRoutes(router)
        addReportRoutes(router)
        addNodeRoutes(router)
        addConsoleRoutes(router)
        return router
    }

    /// Plain HTTP is served to loopback clients only (and only when the listener allows it); a
    /// node API always needs TLS (its callers are known by their certificates).
    func transportAllowed(_ context: AdminRequestContext) -> Bool {
        listener.tls != .none || (context.clientIsLoopback && options.allowPlaintextOnLoopback && !options.nodeAPI)
    }

    func route(_ router: Router<AdminRequestContext>, _ method: HTTPRequest.Method, _ path: String, _ access: Access,
               _ handler: @escaping @Sendable (Call) async throws -> Response) {
        router.on(RouterPath(path), method: method) { request, context -> Response in
            do {
                guard self.transportAllowed(context) else { throw APIError.insecure }
                guard self.limiter.allows(context.clientAddress) else {
                    throw APIError.tooManyRequests("too many requests from \(context.clientAddress): slow down")
                }
                var caller: Principal?
                if access != .open {
                    let principal = self.options.nodeAPI ? try await self.nodeCaller(request, context)
                                                          : try await self.authenticate(request, context)
                    switch (access, principal.role) {
                    case (.administrators, .user), (.site, .user): throw APIError.forbidden("administrators only")
                    case (.site, .domainAdmin): throw APIError.forbidden("site administrators only")
                    default: break
                    }
                    caller = principal
                }
                let call = Call(request: request, context: context, caller: caller, maxBody: self.options.maxUploadSize)
                if access != .open, let node = self.remoteNode(request) { return try await self.forward(call, to: node) }
                return try await handler(call)
            } catch let error as APIError {
                return Self.error(error)
            } catch let error as AccountError {
                return Self.error(APIError.from(error))
            } catch let error as StorageError {
                return Self.error(APIError.from(error))
            } catch {
                self.logger.error("admin API failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
                return Self.json(ErrorBody(error: "server-error", message: "the server could not do this; its log says why"),
                                 status: .internalServerError)
            }
        }
    }

    /// The caller, from a bearer token (scripts) or the console's session cookie. A session must
    /// send its CSRF token with every change; a token needs none (no browser sends it unasked).
    func authenticate(_ request: Request, _ context: AdminRequestContext) async throws -> Principal {
        let name: String
        let via: String
        var csrf: String?
        if let authorization = request.headers[.authorization] {
            guard authorization.lowercased().hasPrefix("bearer "),
                  let token = try database.token(secret: String(authorization.dropFirst(7)).trimmingCharacters(in: .whitespaces)) else {
                throw APIError.unauthorized("the token is unknown, revoked or expired")
            }
            name = token.user
            via = "token:\(token.id)"
        } else if let cookie = request.cookies[Self.sessionCookie]?.value, !cookie.isEmpty,
                  let session = try database.session(token: cookie) {
            if ![.get, .head].contains(request.method) {
                guard let sent = request.headers[Self.csrfHeader], sent == session.csrf else {
                    throw APIError.forbidden("the request lacks this session's X-CSRF-Token: reload the console")
                }
            }
            name = session.user
            via = "session:\(session.id)"
            csrf = session.csrf
        } else {
            throw APIError.unauthorized("log in first (POST /api/v1/session), or send an API token (Authorization: Bearer ...)")
        }
        guard let account = try await accounts().account(name), account.enabled else {
            throw APIError.unauthorized("the account is gone or suspended")
        }
        var principal = Principal.of(account, delegated: try database.delegatedDomains(account: account.name), via: via)
        principal.csrf = csrf
        return principal
    }

    /// Records a change in the audit log.
    func audit(_ call: Call, _ action: String, target: String, domain: String?, detail: String = "") {
        do {
            try database.audit(actor: call.principal, action: action, target: target, domain: domain, client: call.client, detail: detail)
        } catch {
            logger.error("admin audit log cannot be written", metadata: ["action": "\(action)", "error": "\(error)"])
        }
        logger.notice("admin change", metadata: ["actor": "\(call.principal.name)", "action": "\(action)", "target": "\(target)",
                                                "client": "\(call.client)"])
    }

    func cookie(_ name: String, _ value: String, maxAge: Int? = nil) -> Cookie {
        Cookie(name: name, value: value, maxAge: maxAge, path: "/", secure: secureCookies, httpOnly: true, sameSite: .strict)
    }

    // MARK: Answers

    struct ErrorBody: Encodable {
        var error: String
        var message: String
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func error(_ error: APIError) -> Response {
        json(ErrorBody(error: error.code, message: error.message), status: error.status)
    }

    static func noContent() -> Response { Response(status: .noContent) }
}
