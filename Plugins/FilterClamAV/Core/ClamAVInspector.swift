import Foundation
import PluginAPI

// The `clamav` filter: at end of message, every scan object (ScanObjects.swift) goes to clamd,
// a few at a time, and what was found decides the verdict by the listener's direction.

struct ClamAVSettings: Sendable {
    /// What to do with an infected message.
    enum Action: String, Sendable, CaseIterable {
        /// `554 5.7.1 message refused: virus NAME found`.
        case reject
        /// `451 4.7.1 message deferred: virus NAME found` (the sender's server tries again later).
        case tempfail
        /// Accepted into the hold queue with the reason `virus NAME found`.
        case quarantine
        /// The infected parts removed, a notice in their place; refuses when that cannot be done.
        case cleanse
        /// Accepted and dropped.
        case discard
    }

    /// When clamd cannot give a verdict (down, timed out, over its size limit, an error).
    enum ErrorAction: String, Sendable, CaseIterable {
        case tempfail
        case accept
    }

    /// When the message is bigger than `maxSize`.
    enum OversizeAction: String, Sendable, CaseIterable {
        case accept
        case tempfail
        case reject
    }

    var clamd: ClamdAddress
    var connectTimeout: Double = 5
    var timeout: Double = 120
    var maxSize: Int = 25 << 20
    var onError: ErrorAction = .tempfail
    var onOversize: OversizeAction = .accept
    var actions: [FilterDirection: Action] = [.inbound: .reject, .outbound: .reject, .internal: .reject]
    var addHeaders = true
}

/// The counters the filter keeps (exported on `/metrics`).
struct ClamAVCounters: Sendable {
    var viruses: [FilterDirection: Counter]
    var scanned: Counter
    var errors: Counter
    var unscanned: Counter
}

struct ClamAVInspector: MessageInspector {
    /// Scans run at once per message: enough to hide clamd's latency, few enough not to flood it.
    static let parallelScans = 4

    let settings: ClamAVSettings
    let client: ClamdClient
    let logger: Logger
    let counters: ClamAVCounters?

    var maxBufferedBytes: Int { settings.maxSize }

    func inspect(_ message: FilterMessage) async -> (FilterVerdict, [FilterModification]) {
        let metadata: Logger.Metadata = ["filter": "clamav", "id": "\(message.connection.transactionID ?? "-")",
                                         "from": "<\(message.sender)>", "direction": "\(message.connection.direction.rawValue)"]
        if message.isTruncated {
            counters?.unscanned.increment()
            logger.warning("message not scanned: bigger than max_size", metadata: metadata.merging(
                ["size": "\(message.size)", "max_size": "\(settings.maxSize)", "action": "\(settings.onOversize.rawValue)"]) { a, _ in a })
            switch settings.onOversize {
            case .accept: return (.continue, [])
            case .tempfail: return (.tempfail(MailReply(451, "4.7.1", "message too big to scan for viruses, try again later")), [])
            case .reject: return (.reject(MailReply(552, "5.3.4", "message too big to scan for viruses")), [])
            }
        }
        let mime = message.mime()
        let objects = ScanObjects.collect(message.bytes, mime: mime)
        let (findings, errors) = await scan(objects)
        counters?.scanned.increment()
        for error in errors {
            logger.error("scan failed", metadata: metadata.merging(["what": "\(error.origin.describe(in: mime))", "error": "\(error.error)"]) { a, _ in a })
        }
        let action = settings.actions[message.connection.direction] ?? .reject
        for f in findings {
            logger.notice("virus found", metadata: metadata.merging(["virus": "\(f.virus)", "in": "\(f.origin.describe(in: mime))",
                                                                    "action": "\(action.rawValue)"]) { a, _ in a })
        }
        if !findings.isEmpty { counters?.viruses[message.connection.direction]?.increment() }
        if !errors.isEmpty { counters?.errors.increment() }
        return ClamAVDecision(settings: settings, hostname: message.connection.localHostname)
            .decide(findings: findings, failed: !errors.isEmpty, action: action, message: message.bytes, mime: mime,
                    fields: message.fields)
    }

    /// Every object scanned, `parallelScans` at a time; each finished scan tells the filter
    /// chain the filter is alive (its `filter_timeout` starts again).
    private func scan(_ objects: [ScanObject]) async -> ([Finding], [(origin: ScanObject.Origin, error: any Error)]) {
        let outer = FilterStageClock.current
        var results: [(Int, Result<String?, any Error>)] = []
        await withTaskGroup(of: (Int, Result<String?, any Error>).self) { group in
            var next = 0
            func start() {
                let i = next
                next += 1
                let bytes = objects[i].bytes
                group.addTask { [client] in
                    do { return (i, .success(try await client.scan(bytes))) } catch { return (i, .failure(error)) }
                }
            }
            while next < min(Self.parallelScans, objects.count) { start() }
            for await result in group {
                results.append(result)
                outer?.progress()
                if next < objects.count { start() }
            }
        }
        var findings: [Finding] = []
        var errors: [(origin: ScanObject.Origin, error: any Error)] = []
        for (i, result) in results.sorted(by: { $0.0 < $1.0 }) {
            switch result {
            case .success(let virus?): findings.append(Finding(origin: objects[i].origin, virus: virus))
            case .success(nil): break
            case .failure(let error): errors.append((objects[i].origin, error))
            }
        }
        return (findings, errors)
    }
}

/// From what the scans found to the verdict and the changes. Pure.
struct ClamAVDecision {
    let settings: ClamAVSettings
    let hostname: String

    static let scannedField = "X-Virus-Scanned"
    static let statusField = "X-Virus-Status"

    func decide(findings: [Finding], failed: Bool, action: ClamAVSettings.Action, message: [UInt8], mime: MIMEMessage,
                fields: [(name: String, value: String)]) -> (FilterVerdict, [FilterModification]) {
        let viruses = findings.map(\.virus).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        let named = (viruses.count == 1 ? "virus " : "viruses ") + viruses.joined(separator: ", ")
        let unavailable = FilterVerdict.tempfail(MailReply(451, "4.7.1", "virus scanner unavailable, try again later"))
        guard !viruses.isEmpty else {
            if failed { return settings.onError == .tempfail ? (unavailable, []) : (.continue, []) }
            return (.continue, headers("Clean", fields: fields))
        }
        let refused = FilterVerdict.reject(MailReply(554, "5.7.1", "message refused: \(named) found"))
        switch action {
        case .reject:
            return (refused, [])
        case .tempfail:
            return (.tempfail(MailReply(451, "4.7.1", "message deferred: \(named) found")), [])
        case .discard:
            return (.discard, [])
        case .quarantine:
            return (.quarantine(reason: "\(named) found"), headers("Infected (\(viruses.joined(separator: ", ")))", fields: fields))
        case .cleanse:
            // A part that could not be scanned may still hold something: cleansing vouches for
            // what is left, so a failed scan is the error action's.
            if failed && settings.onError == .tempfail { return (unavailable, []) }
            guard let changes = Cleanse.changes(findings, message: message, mime: mime) else { return (refused, []) }
            let edits = MIMERewrite.modifications(changes, message: message, mime: mime)
            guard !edits.isEmpty else { return (refused, []) }
            return (.continue, edits + headers("Cleaned (\(viruses.joined(separator: ", ")) removed)", fields: fields))
        }
    }

    /// `X-Virus-Scanned` and `X-Virus-Status`, after deleting any the message came with (a sender
    /// must not be able to vouch for its own mail). None when `add_headers` is off.
    func headers(_ status: String, fields: [(name: String, value: String)]) -> [FilterModification] {
        guard settings.addHeaders else { return [] }
        var out: [FilterModification] = []
        for name in [Self.scannedField, Self.statusField] {
            let count = fields.filter { $0.name.lowercased() == name.lowercased() }.count
            // From the last: each index names a field of the message as received.
            for n in stride(from: count, through: 1, by: -1) { out.append(.changeHeader(name: name, index: n, value: nil)) }
        }
        return out + [.addHeader(name: Self.scannedField, value: "ClamAV at \(hostname)"), .addHeader(name: Self.statusField, value: status)]
    }
}
