import Foundation
import PluginAPI
import PluginHTTP

/// The audit log (a domain administrator reads the lines of their domains only) and the node's
/// status (site administrators).
extension AdminAPI {
    struct NodeStatus: Encodable {
        var node: String
        var pid: Int32
        var listener: String
        /// nil on a node without an account store (a gateway).
        var domains: Int?
        var accounts: Int?
        /// Messages per queue (`incoming`, `active`, `deferred`, `hold`).
        var queue: [String: Int]
        var time: Int64
        /// What the master last wrote to DATA/status.json (`ctl status`: generation, workers,
        /// plugins and versions, listeners, reloads, the last reload's outcome), as it wrote it.
        var master: JSONValue?
        /// Seconds since the master last wrote it: its heartbeat.
        var masterHeartbeatAge: Double?
        /// False when the heartbeat is older than three of its intervals (or there is none).
        var masterRunning: Bool
        /// The alerts that hold now (`GET /api/v1/alerts` has their history).
        var alerts: [Alert]
    }

    func addAuditRoutes(_ router: Router<AdminRequestContext>) {
        route(router, .get, "/api/v1/audit", .administrators) { call in
            let before = call.query("before").flatMap { Int64($0) }
            let limit = try call.queryInt("limit", default: 100, range: 1...10_000)
            let domains: Set<String>? = call.principal.role == .siteAdmin ? nil : call.principal.domains
            let rows = try self.database.auditLog(domains: domains, before: before, limit: limit)
            if call.query("format") == "csv" {
                return try self.table(call, rows, columns: ["id", "time", "actor", "role", "action", "target", "domain", "client", "detail"]) {
                    ["\($0.id)", "\($0.time)", $0.actor, $0.role, $0.action, $0.target, $0.domain ?? "", $0.client, $0.detail]
                }
            }
            return Self.json(rows)
        }
        route(router, .post, "/api/v1/reload", .site) { call in
            guard let control = self.services.hostControl else {
                throw APIError.unavailable("this process cannot reach its master: run postern ctl reload on the node")
            }
            let reply = await control.requestReload()
            self.audit(call, "node.reload", target: ProcessInfo.processInfo.hostName, domain: nil,
                       detail: reply.ok ? reply.message : "refused: \(reply.message) \(reply.errors.joined(separator: "; "))")
            guard reply.ok else {
                throw APIError.conflict("reload refused, the running generation keeps serving: \(([reply.message] + reply.errors).joined(separator: "; "))")
            }
            return Self.json(reply)
        }
        route(router, .get, "/api/v1/status", .site) { _ in Self.json(try await self.localStatus()) }
        route(router, .get, "/api/v1/alerts", .site) { call in
            struct Alerts: Encodable {
                var checked: Int64?
                var active: [Alert]
                var history: [AlertState.Past]
                var mailedTo: [String]
            }
            let state = AlertState.read(dataDirectory: self.plugin.context.dataDirectory)
            let history = state?.history ?? []
            if call.query("format") == "csv" {
                return try self.table(call, history, columns: ["kind", "since", "ended", "message"]) {
                    [$0.kind, "\($0.since)", $0.ended.map { "\($0)" } ?? "", $0.message]
                }
            }
            return Self.json(Alerts(checked: state?.checked, active: state?.active ?? [], history: history,
                                    mailedTo: self.plugin.alerts.settings.recipients))
        }
    }

    /// This node's status: the master's status file and heartbeat, domains, accounts, queue sizes.
    func localStatus() async throws -> NodeStatus {
        var domains: Int?, accounts: Int?
        if let store = services.accounts {
            domains = try await store.domains().count
            accounts = try await store.accounts(domain: nil).count
        }
        var queue: [String: Int] = ["incoming": 0, "active": 0, "deferred": 0, "hold": 0]
        if let q = services.queue { for e in try await q.list() { queue[e.queue, default: 0] += 1 } }
        let master = MasterStatusFile.read(dataDirectory: plugin.context.dataDirectory)
        return NodeStatus(node: plugin.nodes.settings.localName, pid: getpid(), listener: listener.name, domains: domains, accounts: accounts,
                          queue: queue, time: Int64(Date().timeIntervalSince1970),
                          master: master?.value, masterHeartbeatAge: master?.age, masterRunning: master?.running ?? false,
                          alerts: AlertState.read(dataDirectory: plugin.context.dataDirectory)?.active ?? [])
    }
}
