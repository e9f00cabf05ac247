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
    /// `domain` (one the caller sees).
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
        let domain = call.query("domain")?.lowercased()
        if let domain {
            guard call.principal.sees(domain: domain), try await accounts().domains().contains(domain) else {
                throw APIError.notFound(kind: "domain", id: domain)
            }
        }
        let events = plugin.events.events(from: from, to: to)
        return MailReport(events: events, from: from, to: to, bucketSeconds: bucket, principal: call.principal, domain: domain)
    }
}
