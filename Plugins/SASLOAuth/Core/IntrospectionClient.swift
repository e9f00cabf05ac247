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
        let exchange = HTTPExchange(host: endpoint.host, port: endpoint.port, tls: tls, timeout: timeout)
        let answer: HTTPExchange.Answer
        do {
            answer = try await exchange.perform(on: group, method: .POST, target: endpoint.path, headers: [
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
                "Authorization": endpoint.authorization,
            ], body: Array(IntrospectionEndpoint.body(token: token).utf8))
        } catch HTTPExchange.Failure.timeout {
            throw IntrospectionError.timeout
        } catch {
            throw IntrospectionError.transport("\(error)")
        }
        guard answer.status == 200 else { throw IntrospectionError.status(answer.status) }
        guard let claims = try? JSONDecoder().decode(TokenClaims.self, from: Data(answer.body)) else { throw IntrospectionError.notJSON }
        return claims.claims
    }
}
