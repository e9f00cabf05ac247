import Foundation
import PluginAPI
import PluginCredentials
import PluginHTTP

/// Several nodes in one console. The console lists its nodes with what their heartbeat found
/// (`GET /api/v1/nodes`), and passes any API call with `?node=NAME` on to that node's node API
/// as the calling administrator (`forward`): the node applies the same rules to them as the
/// console would, so a domain administrator sees their domains on every node and nothing else.
/// On the node's side, `nodeCaller` is the authentication of a `node_api` listener.
extension AdminAPI {
    /// Paths that are about the console's own session and account, never another node's.
    static let consoleOnlyPaths = ["/api/v1/session", "/api/v1/me", "/api/v1/tokens", "/api/v1/nodes"]

    func addNodeRoutes(_ router: Router<AdminRequestContext>) {
        route(router, .get, "/api/v1/nodes", .administrators) { call in
            let site = call.principal.role == .siteAdmin
            let local = NodeMonitor.State(name: self.plugin.nodes.settings.localName, url: nil, local: true, up: true,
                                          lastSeen: Int64(Date().timeIntervalSince1970), lastCheck: Int64(Date().timeIntervalSince1970),
                                          error: nil, status: site ? try? JSONDecoder().decode(JSONValue.self, from: AdminAPI.encoder.encode(try await self.localStatus())) : nil)
            // A domain administrator learns which nodes there are and whether they answer, not
            // their addresses, errors or sizes (which count other domains' mail).
            let rows = ([local] + self.plugin.nodes.snapshot()).map { state -> NodeMonitor.State in
                site ? state : NodeMonitor.State(name: state.name, url: nil, local: state.local, up: state.up, lastSeen: state.lastSeen,
                                                 lastCheck: state.lastCheck, error: nil, status: nil)
            }
            return try self.table(call, rows, columns: ["name", "local", "up", "lastSeen", "lastCheck", "url", "error"]) { n in
                [n.name, "\(n.local)", n.up.map { "\($0)" } ?? "", n.lastSeen.map { "\($0)" } ?? "", n.lastCheck.map { "\($0)" } ?? "",
                 n.url ?? "", n.error ?? ""]
            }
        }
    }

    /// The `node` query parameter when it names another node than this one (and the request is
    /// not on a node API, which never passes calls on).
    func remoteNode(_ request: Request) -> String? {
        guard !options.nodeAPI, let node = request.uri.queryParameters["node"].map(String.init), !node.isEmpty,
              node != plugin.nodes.settings.localName,
              !Self.consoleOnlyPaths.contains(where: { request.uri.path.hasPrefix($0) }) else { return nil }
        return node
    }

    /// Passes the call on to the node as the caller, and answers what the node answered.
    func forward(_ call: Call, to name: String) async throws -> Response {
        guard plugin.nodes.node(named: name) != nil else { throw APIError.notFound(kind: "node", id: name) }
        var target = call.request.uri.path
        let query = call.request.uri.queryParameters.filter { $0.key != "node" }
            .map { "\(Self.queryEncode(String($0.key)))=\(Self.queryEncode(String($0.value)))" }
        if !query.isEmpty { target += "?" + query.joined(separator: "&") }
        var headers: HTTPHeaders = [:]
        if let type = call.request.headers[.contentType] { headers.add(name: "Content-Type", value: type) }
        let body = [.get, .head].contains(call.request.method) ? [] : Array(buffer: try await call.rawBody())
        let answer: HTTPExchange.Answer
        do {
            answer = try await plugin.nodes.call(name, method: HTTPMethod(rawValue: call.request.method.rawValue), target: target,
                                                 principal: call.principal, headers: headers, body: body)
        } catch let down as NodeMonitor.NodeDown {
            throw APIError.nodeDown(down.reason)
        }
        var fields: HTTPFields = [:]
        if let type = answer.headers.first(name: "Content-Type") { fields[.contentType] = type }
        return Response(status: .init(code: answer.status), headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: answer.body)))
    }

    static func queryEncode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    /// On a `node_api` listener: the caller is the administrator a console names, and only a
    /// console certificate from the site's CA (verified in the TLS handshake) may name one.
    func nodeCaller(_ request: Request, _ context: AdminRequestContext) async throws -> Principal {
        guard listener.tls != .none, let der = try? await context.channel.verifiedClientCertificate().get(),
              let identity = NodeCertificates.identity(der: der) else {
            throw APIError.unauthorized("the node API answers a console with a certificate from the site's CA (postern admin ca issue NAME --console)")
        }
        guard identity.role == .console else {
            throw APIError.forbidden("'\(identity.name)' holds a node certificate: only a console certificate may call the node API")
        }
        guard let header = request.headers[HTTPField.Name(NodeMonitor.principalHeader)!],
              let principal = Principal(forwarded: header, via: "console:\(identity.name)") else {
            throw APIError.badRequest("the node API needs \(NodeMonitor.principalHeader): the administrator the console calls for")
        }
        return principal
    }
}
