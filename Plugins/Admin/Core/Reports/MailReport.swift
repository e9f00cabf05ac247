import Foundation
import PluginAPI

/// Counts over the node's event log (`MailEventLog`): per hour or day, per listener, top senders,
/// recipients and destination domains, and the reasons for refusals, deferrals and quarantines.
/// Pure: built from a list of events and the principal whose view it is.
struct MailReport: Codable, Equatable {
    struct Counts: Codable, Equatable {
        var received = 0
        var quarantined = 0
        var rejected = 0
        var delivered = 0
        var deferred = 0
        var bounced = 0

        mutating func add(_ kind: MailEvent.Kind) {
            switch kind {
            case .received: received += 1
            case .quarantined: quarantined += 1
            case .rejected: rejected += 1
            case .delivered: delivered += 1
            case .deferred: deferred += 1
            case .bounced: bounced += 1
            }
        }

        static func + (a: Counts, b: Counts) -> Counts {
            Counts(received: a.received + b.received, quarantined: a.quarantined + b.quarantined, rejected: a.rejected + b.rejected,
                   delivered: a.delivered + b.delivered, deferred: a.deferred + b.deferred, bounced: a.bounced + b.bounced)
        }

        static let columns = ["received", "quarantined", "rejected", "delivered", "deferred", "bounced"]
        var values: [Int] { [received, quarantined, rejected, delivered, deferred, bounced] }
    }

    struct Bucket: Codable, Equatable {
        /// Seconds since 1970: the start of the hour or day.
        var start: Int64
        var counts: Counts
    }

    struct Ranked: Codable, Equatable {
        var name: String
        var count: Int
    }

    var from: Int64
    var to: Int64
    var bucketSeconds: Int64
    var totals: Counts
    var buckets: [Bucket]
    var listeners: [String: Counts]
    /// What each filter stopped (rejected and quarantined), by its name in the listeners'
    /// `filters`: the spam rules, the anti-virus, DLP, a milter. Optional for reports from nodes
    /// of an earlier version.
    var filters: [String: Counts]?
    var topSenders: [Ranked]
    var topRecipients: [Ranked]
    var topDestinations: [Ranked]
    var rejectionReasons: [Ranked]
    var deferralReasons: [Ranked]
    var bounceReasons: [Ranked]
    var quarantineReasons: [Ranked]
    /// In a console's report over several nodes: which nodes' counts are in it, and why a node's
    /// are not (it is down). Absent in a one-node report.
    var nodes: [NodePart]?

    struct NodePart: Codable, Equatable {
        var name: String
        var included: Bool
        var error: String?
    }

    /// `domain`: only events whose sender or recipients are in it. A domain administrator's report
    /// holds only events that involve their domains, and of a message's recipients only theirs
    /// unless the sender is theirs (as the queue shows it).
    init(events: [MailEvent], from: Int64, to: Int64, bucketSeconds: Int64, principal: Principal, domain: String?, top: Int = 10) {
        self.from = from
        self.to = to
        self.bucketSeconds = bucketSeconds
        var totals = Counts()
        var buckets: [Int64: Counts] = [:]
        var listeners: [String: Counts] = [:]
        var filters: [String: Counts] = [:]
        var senders: [String: Int] = [:], recipients: [String: Int] = [:], destinations: [String: Int] = [:]
        var rejections: [String: Int] = [:], deferrals: [String: Int] = [:], bounces: [String: Int] = [:], quarantines: [String: Int] = [:]
        for original in events {
            guard let event = Self.view(original, principal: principal, domain: domain) else { continue }
            totals.add(event.kind)
            buckets[event.time - event.time % bucketSeconds, default: Counts()].add(event.kind)
            if let listener = event.listener { listeners[listener, default: Counts()].add(event.kind) }
            if let filter = event.filter, event.kind == .rejected || event.kind == .quarantined {
                filters[filter, default: Counts()].add(event.kind)
            }
            switch event.kind {
            case .received, .quarantined:
                senders[(event.sender ?? "").isEmpty ? "<>" : event.sender!.lowercased(), default: 0] += 1
                for r in event.recipients ?? [] { recipients[r.lowercased(), default: 0] += 1 }
                if event.kind == .quarantined { quarantines[event.reason ?? "", default: 0] += 1 }
            case .delivered:
                if let r = event.recipient, let d = Principal.domain(of: r) { destinations[d, default: 0] += 1 }
            case .deferred: deferrals[Self.reasonKey(event.reason), default: 0] += 1
            case .bounced: bounces[Self.reasonKey(event.reason), default: 0] += 1
            case .rejected: rejections[Self.reasonKey(event.reason), default: 0] += 1
            }
        }
        self.totals = totals
        var all: [Bucket] = []
        var t = from - from % bucketSeconds
        while t < to {
            all.append(Bucket(start: t, counts: buckets[t] ?? Counts()))
            t += bucketSeconds
        }
        self.buckets = all
        self.listeners = listeners
        self.filters = filters
        topSenders = Self.ranked(senders, top: top)
        topRecipients = Self.ranked(recipients, top: top)
        topDestinations = Self.ranked(destinations, top: top)
        rejectionReasons = Self.ranked(rejections, top: top)
        deferralReasons = Self.ranked(deferrals, top: top)
        bounceReasons = Self.ranked(bounces, top: top)
        quarantineReasons = Self.ranked(quarantines, top: top)
    }

    static func ranked(_ counts: [String: Int], top: Int) -> [Ranked] {
        counts.filter { $0.value > 0 }.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.prefix(top).map { Ranked(name: $0.key, count: $0.value) }
    }

    /// The sum of several nodes' reports over the same range and buckets: counts added bucket by
    /// bucket, listeners named `node/listener`, top lists re-ranked over the sums (each node sent
    /// its own top entries, so a name low on every node may be missing from the sum's list).
    static func combine(_ parts: [(node: String, report: MailReport)], missing: [NodePart], from: Int64, to: Int64,
                        bucketSeconds: Int64, top: Int) -> MailReport {
        var combined = MailReport(events: [], from: from, to: to, bucketSeconds: bucketSeconds,
                                  principal: Principal(name: "", role: .siteAdmin, domains: [], via: ""), domain: nil, top: top)
        var index: [Int64: Int] = [:]
        for (i, b) in combined.buckets.enumerated() { index[b.start] = i }
        func sum(_ lists: [[Ranked]]) -> [Ranked] {
            var counts: [String: Int] = [:]
            for list in lists { for r in list { counts[r.name, default: 0] += r.count } }
            return ranked(counts, top: top)
        }
        for (node, report) in parts {
            combined.totals = combined.totals + report.totals
            for b in report.buckets { if let i = index[b.start] { combined.buckets[i].counts = combined.buckets[i].counts + b.counts } }
            for (listener, counts) in report.listeners { combined.listeners["\(node)/\(listener)"] = counts }
            var filters = combined.filters ?? [:]
            for (filter, counts) in report.filters ?? [:] { filters[filter] = (filters[filter] ?? Counts()) + counts }
            combined.filters = filters
        }
        let reports = parts.map(\.report)
        combined.topSenders = sum(reports.map(\.topSenders))
        combined.topRecipients = sum(reports.map(\.topRecipients))
        combined.topDestinations = sum(reports.map(\.topDestinations))
        combined.rejectionReasons = sum(reports.map(\.rejectionReasons))
        combined.deferralReasons = sum(reports.map(\.deferralReasons))
        combined.bounceReasons = sum(reports.map(\.bounceReasons))
        combined.quarantineReasons = sum(reports.map(\.quarantineReasons))
        combined.nodes = parts.map { NodePart(name: $0.node, included: true, error: nil) } + missing
        return combined
    }

    /// The event as `principal` may see it (filtered to `domain` when given), or nil.
    static func view(_ event: MailEvent, principal: Principal, domain: String?) -> MailEvent? {
        var view = event
        if let recipients = event.recipients {
            guard let mine = principal.visibleRecipients(sender: event.sender, recipients: recipients, within: domain) else { return nil }
            view.recipients = mine
            return view
        }
        return principal.visibleRecipients(sender: event.sender, recipients: event.recipient.map { [$0] } ?? [], within: domain) == nil ? nil : view
    }

    /// A reply without what differs from message to message (queue ids, addresses), so that
    /// the same refusal counts as one reason.
    static func reasonKey(_ reason: String?) -> String {
        guard let reason, !reason.isEmpty else { return "(none)" }
        var text = reason.replacingOccurrences(of: #"<[^>]*>"#, with: "<...>", options: .regularExpression)
        text = text.replacingOccurrences(of: #"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+"#, with: "...", options: .regularExpression)
        return String(text.prefix(160))
    }
}
