import Foundation
import PluginAPI
import PluginHTTP

/// The mail queue: list with filters, one message's headers, hold, release, delete, flush and
/// requeue, one at a time or on every message a filter matches. The quarantine is the hold queue
/// with its reasons (`?queue=hold`). A domain administrator sees a message when its sender or one
/// of its pending recipients is in their domains (`Principal.view(of:)`).
extension AdminAPI {
    static let queueActions = ["hold", "release", "delete", "flush", "requeue"]

    struct QueueFilter {
        var sender: String?
        var recipient: String?
        var domain: String?
        var queue: String?
        var reason: String?
        /// Seconds: only messages at least this old.
        var minAge: Int?

        init(_ field: (String) throws -> String?) throws {
            sender = try field("sender")?.lowercased()
            recipient = try field("recipient")?.lowercased()
            domain = try field("domain")?.lowercased()
            queue = try field("queue")
            reason = try field("reason")?.lowercased()
            if let text = try field("minAge") {
                guard let n = Int(text), n >= 0 else { throw APIError.badRequest("'minAge' is a number of seconds") }
                minAge = n
            }
            if let queue, !["incoming", "active", "deferred", "hold"].contains(queue) {
                throw APIError.badRequest("'queue' is incoming, active, deferred or hold")
            }
        }

        func matches(_ e: QueueSummary, now: Int64) -> Bool {
            if let sender, !e.sender.lowercased().contains(sender) { return false }
            if let recipient, !e.pending.contains(where: { $0.address.lowercased().contains(recipient) }) { return false }
            if let domain {
                let domains = [Principal.domain(of: e.sender)] + e.pending.map { Principal.domain(of: $0.address) }
                if !domains.contains(domain) { return false }
            }
            if let queue, e.queue != queue { return false }
            if let reason {
                let text = ((e.holdReason ?? "") + " " + e.pending.compactMap(\.lastReply).joined(separator: " ")).lowercased()
                if !text.contains(reason) { return false }
            }
            if let minAge, now - e.arrival < Int64(minAge) { return false }
            return true
        }
    }

    func addQueueRoutes(_ router: Router<AdminRequestContext>) {
        route(router, .get, "/api/v1/queue", .administrators) { call in
            let filter = try QueueFilter { call.query($0) }
            let rows = try await self.visibleQueue(call.principal, filter)
            return try self.table(call, rows, columns: ["id", "queue", "size", "arrival", "sender", "recipients", "attempts", "reason"]) { e in
                [e.id, e.queue, "\(e.size)", "\(e.arrival)", e.sender, e.pending.map(\.address).joined(separator: " "), "\(e.attempts)",
                 e.holdReason ?? e.pending.compactMap(\.lastReply).first ?? ""]
            }
        }
        route(router, .get, "/api/v1/queue/{id}", .administrators) { call in
            let id = try call.parameter("id")
            guard let (entry, bytes) = try await self.queue().show(id: id), let view = call.principal.view(of: entry) else {
                throw APIError.notFound(kind: "queue entry", id: id)
            }
            struct Detail: Encodable { var entry: QueueSummary; var headers: String }
            return Self.json(Detail(entry: view, headers: Self.headerBlock(bytes)))
        }
        route(router, .post, "/api/v1/queue/{id}/{action}", .administrators) { call in
            let id = try call.parameter("id")
            let action = try call.parameter("action")
            guard Self.queueActions.contains(action) else { throw APIError.notFound(kind: "action", id: action) }
            guard let (entry, _) = try await self.queue().show(id: id), let view = call.principal.view(of: entry) else {
                throw APIError.notFound(kind: "queue entry", id: id)
            }
            let n = try await self.act(action, ids: [id])
            self.audit(call, "queue.\(action)", target: id, domain: self.auditDomain(view, call.principal))
            return Self.json(["done": n])
        }
        route(router, .post, "/api/v1/queue/bulk", .administrators) { call in
            let body = try await call.body()
            let action = try body.string("action", required: true)!
            guard Self.queueActions.contains(action) else { throw APIError.badRequest("'action' is one of \(Self.queueActions.joined(separator: ", "))") }
            guard case .object(let fields)? = body.fields["filter"] else { throw APIError.badRequest("'filter' is required (an object; {} for every message you see)") }
            let filterBody = JSONBody(fields: fields)
            let filter = try QueueFilter { key in
                // minAge may come as a number: a whole one, in range (a fuzzer sent -1e21).
                if case .number? = filterBody.fields[key] { return try filterBody.int(key).map(String.init) }
                return try filterBody.string(key)
            }
            let matched = try await self.visibleQueue(call.principal, filter)
            let n = matched.isEmpty ? 0 : try await self.act(action, ids: matched.map(\.id))
            let domain = call.principal.role == .siteAdmin ? nil : call.principal.domains.sorted().first
            self.audit(call, "queue.bulk.\(action)", target: "\(matched.count) message(s)", domain: domain,
                       detail: matched.prefix(50).map(\.id).joined(separator: " "))
            return Self.json(["matched": matched.count, "done": n])
        }
    }

    func visibleQueue(_ principal: Principal, _ filter: QueueFilter) async throws -> [QueueSummary] {
        let now = Int64(Date().timeIntervalSince1970)
        return try await queue().list().compactMap { principal.view(of: $0) }.filter { filter.matches($0, now: now) }
            .sorted { ($0.arrival, $0.id) < ($1.arrival, $1.id) }
    }

    private func act(_ action: String, ids: [String]) async throws -> Int {
        let queue = try self.queue()
        switch action {
        case "hold": return try await queue.hold(ids: ids)
        case "release": return try await queue.release(ids: ids)
        case "delete": return try await queue.delete(ids: ids)
        case "flush": return try await queue.flush(ids: ids)
        default: return try await queue.requeue(ids: ids)
        }
    }

    /// The domain an action on this message is logged under: the caller's domain it concerns.
    private func auditDomain(_ entry: QueueSummary, _ principal: Principal) -> String? {
        let domains = [Principal.domain(of: entry.sender)] + entry.pending.map { Principal.domain(of: $0.address) }
        return domains.compactMap { $0 }.first { principal.role == .siteAdmin || principal.domains.contains($0) }
    }

    /// The message's header section (up to the first empty line), as text; at most 64 KiB.
    static func headerBlock(_ bytes: [UInt8]) -> String {
        var end = min(bytes.count, 65_536)
        for i in 0..<min(bytes.count, 65_536) {
            if bytes[i] == 10 && i + 1 < bytes.count && (bytes[i + 1] == 10 || (bytes[i + 1] == 13 && i + 2 < bytes.count && bytes[i + 2] == 10)) {
                end = i + 1
                break
            }
        }
        return String(decoding: bytes[0..<end], as: UTF8.self)
    }
}
