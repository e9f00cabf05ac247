import Foundation
import PluginAPI

/// The other nodes of a console: calls to their node API (mutual TLS: this side shows the console
/// certificate, the node's certificate must chain to the site's CA and name the URL's host), and
/// a heartbeat that fetches each node's status every `heartbeat_interval`, so the console shows a
/// node that stopped answering as down within one interval and stops waiting on it.
// @unchecked Sendable: the mutable state (states, task) is guarded by `lock`
final class NodeMonitor: @unchecked Sendable {
    /// What the console knows of one node.
    struct State: Encodable, Sendable {
        var name: String
        var url: String?
        /// This node (the console's own), answered without the network.
        var local: Bool
        /// nil until the first heartbeat.
        var up: Bool?
        /// Seconds since 1970.
        var lastSeen: Int64?
        var lastCheck: Int64?
        var error: String?
        /// The node's `GET /api/v1/status` at the last heartbeat.
        var status: JSONValue?
    }

    /// A node that was down at its last check, or that failed just now.
    struct NodeDown: Error {
        var name: String
        var reason: String
    }

    static let principalHeader = "X-Postern-Principal"

    let settings: NodeSettings
    let group: any EventLoopGroup
    let logger: Logger
    /// The console's side of the mutual TLS; nil when no node is configured.
    let tls: NIOSSLContext?
    private let lock = NIOLock()
    private var states: [String: State]
    private var task: Task<Void, Never>?

    init(settings: NodeSettings, group: any EventLoopGroup, logger: Logger) throws {
        self.settings = settings
        self.group = group
        self.logger = logger
        var states: [String: State] = [:]
        for node in settings.nodes { states[node.name] = State(name: node.name, url: node.url, local: false) }
        self.states = states
        if settings.nodes.isEmpty {
            tls = nil
            return
        }
        for (file, what) in [(settings.certificate, "node_certificate"), (settings.key, "node_key"), (settings.ca, "node_ca")]
        where !FileManager.default.isReadableFile(atPath: file) {
            throw NodeSettingsError("plugin.admin.\(what): cannot read \(file) (make it with postern admin ca init, then postern admin ca issue console --console)")
        }
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(settings.ca))
        configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(settings.certificate).map { .certificate($0) }
        configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: settings.key, format: .pem))
        configuration.certificateVerification = .fullVerification
        tls = try NIOSSLContext(configuration: configuration)
    }

    func node(named name: String) -> NodeSettings.Node? { settings.nodes.first { $0.name == name } }

    /// Every node with what the last heartbeat found, this one first.
    func snapshot() -> [State] {
        lock.withLock { settings.nodes.compactMap { states[$0.name] } }
    }

    /// False when the node did not answer its last heartbeat (nil before the first).
    func isUp(_ name: String) -> Bool? { lock.withLock { states[name]?.up } }

    func start() {
        guard !settings.nodes.isEmpty else { return }
        let interval = settings.heartbeatInterval
        lock.withLock {
            task = Task { [weak self] in
                while !Task.isCancelled {
                    await self?.checkAll()
                    try? await Task.sleep(nanoseconds: UInt64(interval * 1e9))
                }
            }
        }
    }

    func stop() {
        lock.withLock {
            task?.cancel()
            task = nil
        }
    }

    /// One heartbeat: every node's status, at once.
    func checkAll() async {
        await withTaskGroup(of: Void.self) { tasks in
            for node in settings.nodes { tasks.addTask { await self.check(node) } }
        }
    }

    private func check(_ node: NodeSettings.Node) async {
        let heartbeat = Principal(name: "console:\(settings.localName)", role: .siteAdmin, domains: [], via: "heartbeat")
        let now = Int64(Date().timeIntervalSince1970)
        do {
            let answer = try await exchange(node, method: .GET, target: "/api/v1/status", principal: heartbeat)
            guard answer.status == 200, let status = try? JSONDecoder().decode(JSONValue.self, from: Data(answer.body)) else {
                throw NodeDown(name: node.name, reason: "its status answer was HTTP \(answer.status): \(String(decoding: answer.body.prefix(200), as: UTF8.self))")
            }
            record(node.name, up: true, at: now, error: nil, status: status)
        } catch let down as NodeDown {
            record(node.name, up: false, at: now, error: down.reason, status: nil)
        } catch {
            record(node.name, up: false, at: now, error: "\(error)", status: nil)
        }
    }

    /// Marks a node up or down; a node that went down or came back is logged once.
    func record(_ name: String, up: Bool, at time: Int64, error: String?, status: JSONValue?) {
        let was = lock.withLock { () -> Bool? in
            let was = states[name]?.up
            states[name]?.up = up
            states[name]?.lastCheck = time
            states[name]?.error = error
            if up {
                states[name]?.lastSeen = time
                states[name]?.status = status
            }
            return was
        }
        if was != up {
            if up { logger.notice("admin node is up", metadata: ["node": "\(name)"]) }
            else { logger.warning("admin node is down", metadata: ["node": "\(name)", "error": "\(error ?? "")"]) }
        }
    }

    /// Calls a node's API as `principal`, who the node then acts for (its domains bound what the
    /// node shows). A node known to be down is not waited on.
    func call(_ name: String, method: HTTPMethod, target: String, principal: Principal, headers: HTTPHeaders = [:],
              body: [UInt8] = []) async throws -> HTTPExchange.Answer {
        guard let node = node(named: name) else { throw NodeDown(name: name, reason: "no such node") }
        if isUp(name) == false {
            let error = lock.withLock { states[name]?.error } ?? "it did not answer"
            throw NodeDown(name: name, reason: "node \(name) is down: \(error)")
        }
        do {
            return try await exchange(node, method: method, target: target, principal: principal, headers: headers, body: body)
        } catch {
            record(name, up: false, at: Int64(Date().timeIntervalSince1970), error: "\(error)", status: nil)
            throw NodeDown(name: name, reason: "node \(name) did not answer: \(error)")
        }
    }

    private func exchange(_ node: NodeSettings.Node, method: HTTPMethod, target: String, principal: Principal,
                          headers: HTTPHeaders = [:], body: [UInt8] = []) async throws -> HTTPExchange.Answer {
        var headers = headers
        headers.replaceOrAdd(name: Self.principalHeader, value: principal.forwarded)
        headers.replaceOrAdd(name: "Accept", value: "application/json")
        let exchange = HTTPExchange(host: node.host, port: node.port, tls: tls, timeout: .milliseconds(Int64(settings.timeout * 1000)),
                                    maximumBody: 64 << 20)
        return try await exchange.perform(on: group, method: method, target: target, headers: headers, body: body)
    }
}
