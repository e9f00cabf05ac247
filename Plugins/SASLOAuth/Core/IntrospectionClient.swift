import Foundation
import PluginAPI

// RFC 7662 token introspection: POST token=... to the authorization server's endpoint with the
// plugin's client credentials (HTTP Basic), read the JSON answer. HTTP/1.1 through NIOHTTP1's
// client codec from PluginAPI (the one NIO), with a deadline; `https` through NIOSSL.

struct IntrospectionEndpoint: Sendable, Equatable {
    var secure: Bool
    var host: String
    var port: Int
    var path: String
    var clientID: String
    var clientSecret: String

    init(url: String, clientID: String, clientSecret: String) throws {
        guard let c = URLComponents(string: url), let scheme = c.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = c.host, !host.isEmpty else {
            throw OAuthConfigError("introspection_url: expected an http:// or https:// URL, found \"\(url)\"")
        }
        secure = scheme == "https"
        self.host = host
        port = c.port ?? (secure ? 443 : 80)
        var p = c.percentEncodedPath.isEmpty ? "/" : c.percentEncodedPath
        if let q = c.percentEncodedQuery { p += "?" + q }
        path = p
        self.clientID = clientID
        self.clientSecret = clientSecret
    }

    /// The request body: the token, form-encoded (RFC 7662 §2.1).
    static func body(token: String) -> String {
        "token=" + formEncode(token) + "&token_type_hint=access_token"
    }

    /// RFC 6749 §2.3.1: client id and secret are form-encoded before Basic's base64.
    var authorization: String {
        let pair = Self.formEncode(clientID) + ":" + Self.formEncode(clientSecret)
        return "Basic " + Data(pair.utf8).base64EncodedString()
    }

    static func formEncode(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }
}

enum IntrospectionError: Error, CustomStringConvertible {
    case status(Int)
    case notJSON
    case timeout
    case transport(String)

    var description: String {
        switch self {
        case .status(let code): return "introspection endpoint answered HTTP \(code)"
        case .notJSON: return "introspection endpoint did not answer a JSON object"
        case .timeout: return "introspection endpoint did not answer in time"
        case .transport(let why): return "introspection endpoint unreachable: \(why)"
        }
    }
}

struct IntrospectionClient: Sendable {
    let endpoint: IntrospectionEndpoint
    let group: any EventLoopGroup
    let timeout: TimeAmount
    let tls: NIOSSLContext?

    init(endpoint: IntrospectionEndpoint, group: any EventLoopGroup, timeout: TimeAmount) throws {
        self.endpoint = endpoint
        self.group = group
        self.timeout = timeout
        if endpoint.secure {
            tls = try NIOSSLContext(configuration: .makeClientConfiguration())
        } else {
            tls = nil
        }
    }

    /// The endpoint's claims about `token` (`active`, `sub`, `exp`, ...).
    func introspect(_ token: String) async throws -> [String: ClaimValue] {
        let loop = group.next()
        let promise = loop.makePromise(of: (HTTPResponseHead, [UInt8]).self)
        let endpoint = self.endpoint, tls = self.tls
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        let handler = try NIOSSLClientHandler(context: tls, serverHostname: endpoint.host)
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseCollector(promise: promise))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: endpoint.host, port: endpoint.port).get()
        } catch {
            promise.fail(error)
            throw IntrospectionError.transport("\(error)")
        }
        let deadline = loop.scheduleTask(in: timeout) {
            promise.fail(IntrospectionError.timeout)
            channel.close(promise: nil)
        }
        let body = Array(IntrospectionEndpoint.body(token: token).utf8)
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: endpoint.path)
        head.headers.add(name: "Host", value: endpoint.port == (endpoint.secure ? 443 : 80) ? endpoint.host : "\(endpoint.host):\(endpoint.port)")
        head.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        head.headers.add(name: "Accept", value: "application/json")
        head.headers.add(name: "Authorization", value: endpoint.authorization)
        head.headers.add(name: "Content-Length", value: "\(body.count)")
        head.headers.add(name: "Connection", value: "close")
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        defer {
            deadline.cancel()
            channel.close(promise: nil)
        }
        let (response, bytes) = try await promise.futureResult.get()
        guard response.status.code == 200 else { throw IntrospectionError.status(Int(response.status.code)) }
        guard let claims = try? JSONDecoder().decode(TokenClaims.self, from: Data(bytes)) else { throw IntrospectionError.notJSON }
        return claims.claims
    }
}

/// Collects one response (head and body, at most 64 KiB) into a promise.
// @unchecked Sendable: used on its channel's event loop only
private final class ResponseCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart

    static let maximumBody = 64 * 1024
    let promise: EventLoopPromise<(HTTPResponseHead, [UInt8])>
    private var head: HTTPResponseHead?
    private var body: [UInt8] = []

    init(promise: EventLoopPromise<(HTTPResponseHead, [UInt8])>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
        case .body(var buffer):
            guard body.count + buffer.readableBytes <= Self.maximumBody else {
                promise.fail(IntrospectionError.transport("answer longer than \(Self.maximumBody) bytes"))
                context.close(promise: nil)
                return
            }
            body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end:
            if let head { promise.succeed((head, body)) } else { promise.fail(IntrospectionError.notJSON) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(IntrospectionError.transport("\(error)"))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(IntrospectionError.transport("connection closed before the answer"))
    }
}
