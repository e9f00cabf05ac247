import Foundation
import PluginAPI
import PluginHTTP

/// Reports from the MTA's own records (the node's event log): counts per hour or day, by
/// listener, top senders, recipients and destinations, reasons; as JSON, CSV or an SVG chart.
extension AdminAPI {
    func addReportRoutes(_ router: Router<AdminRequestContext>) {
        route(router, .get, "/api/v1/reports", .administrators) { call in
            let report = try await self.report(call)
            if call.query("format") == "csv" {
                return try self.table(call, report.buckets, columns: ["start"] + MailReport.Counts.columns) { b in
                    ["\(b.start)"] + b.counts.values.map(String.init)
                }
            }
            return Self.json(report)
        }
        route(router, .get, "/api/v1/reports/chart.svg", .administrators) { call in
            Response(status: .ok, headers: [.contentType: "image/svg+xml"],
                     body: .init(byteBuffer: ByteBuffer(string: ReportChart.svg(try await self.report(call)))))
        }
    }

    /// `from`/`to` (seconds since 1970; default the last 24 hours), `bucket` (`hour` or `day`),
    /// `domain` (one the caller sees), `top` (entries per top list). On a console with nodes and
    /// no `node` asked for: the sum over this node and every node that answers.
    private func report(_ call: Call) async throws -> MailReport {
        let now = Int64(Date().timeIntervalSince1970)
        let to = try call.query("to").map { text -> Int64 in
            guard let t = Int64(text), t > 0 else { throw APIError.badRequest("'to' is a time in seconds since 1970") }
            return t
        } ?? now + 1
        let from = try call.query("from").map { text -> Int64 in
            guard let t = Int64(text), t >= 0 else { throw APIError.badRequest("'from' is a time in seconds since 1970") }
            return t
        } ?? to - 86_400
        guard from < to, to - from <= 400 * 86_400 else { throw APIError.badRequest("'from' must be before 'to', at most 400 days apart") }
        let bucket: Int64
        switch call.query("bucket") ?? (to - from > 3 * 86_400 ? "day" : "hour") {
        case "hour": bucket = 3600
        case "day": bucket = 86_400
        default: throw APIError.badRequest("'bucket' is hour or day")
        }
        guard (to - from) / bucket <= 2000 else { throw APIError.badRequest("too many buckets: use bucket=day for a long range") }
        let top = try call.queryInt("top", default: 10, range: 1...100)
        let domain = call.query("domain")?.lowercased()
        if let domain {
            // A gateway keeps no accounts: the domain is then checked against what the caller sees only.
            guard call.principal.sees(domain: domain), try await services.accounts?.domains().contains(domain) ?? true else {
                throw APIError.notFound(kind: "domain", id: domain)
            }
        }
        let events = plugin.events.events(from: from, to: to)
        let local = MailReport(events: events, from: from, to: to, bucketSeconds: bucket, principal: call.principal, domain: domain, top: top)
        let nodes = plugin.nodes.settings.nodes
        guard !nodes.isEmpty, !options.nodeAPI, call.query("node") == nil else { return local }
        // Every node at once; a node that is down or does not answer within node_timeout is
        // listed as missing, and the others' sum is answered.
        var query = "from=\(from)&to=\(to)&bucket=\(bucket == 3600 ? "hour" : "day")&top=100"
        if let domain { query += "&domain=" + Self.queryEncode(domain) }
        let target = "/api/v1/reports?" + query
        let principal = call.principal
        let answers = await withTaskGroup(of: (String, Result<MailReport, APIError>).self) { tasks in
            for node in nodes {
                tasks.addTask {
                    do {
                        let answer = try await self.plugin.nodes.call(node.name, method: .GET, target: target, principal: principal)
                        guard answer.status == 200, let report = try? JSONDecoder().decode(MailReport.self, from: Data(answer.body)) else {
                            return (node.name, .failure(.nodeDown("node \(node.name) answered HTTP \(answer.status)")))
                        }
                        return (node.name, .success(report))
                    } catch let down as NodeMonitor.NodeDown {
                        return (node.name, .failure(.nodeDown(down.reason)))
                    } catch {
                        return (node.name, .failure(.nodeDown("\(error)")))
                    }
                }
            }
            var all: [String: Result<MailReport, APIError>] = [:]
            for await (name, result) in tasks { all[name] = result }
            return all
        }
        var parts: [(node: String, report: MailReport)] = [(plugin.nodes.settings.localName, local)]
        var missing: [MailReport.NodePart] = []
        for node in nodes {
            switch answers[node.name] {
            case .success(let report)?: parts.append((node.name, report))
            case .failure(let error)?: missing.append(.init(name: node.name, included: false, error: error.message))
            case nil: missing.append(.init(name: node.name, included: false, error: "no answer"))
            }
        }
        return MailReport.combine(parts, missing: missing, from: from, to: to, bucketSeconds: bucket, top: top)
    }
}
