import PluginAPI

/// One `[[plugin.filter-dlp.policies]]`: which detectors, how many matches, which mail, what to do.
package struct DLPPolicy: Sendable {
    package enum Action: String, Sendable, CaseIterable {
        /// Refuse at end of data with `reply`.
        case reject
        /// Into the hold queue for review (`postern queue list`, `release`).
        case quarantine
        /// Let it go on, the compliance address added as a recipient.
        case notify

        var severity: Int {
            switch self {
            case .notify: return 0
            case .quarantine: return 1
            case .reject: return 2
            }
        }
    }

    package var name: String
    package var detectors: [any Detector]
    /// Matches of all its detectors together that make the policy apply.
    package var threshold: Int
    package var directions: Set<FilterDirection>
    package var action: Action
    /// The compliance address (notify; quarantine: a recipient of the held message).
    package var notify: String?
    /// The reject reply's text (after `550 5.7.1`).
    package var reply: String

    package init(name: String, detectors: [any Detector], threshold: Int = 1, directions: Set<FilterDirection> = [.outbound],
                 action: Action, notify: String? = nil, reply: String? = nil) {
        self.name = name
        self.detectors = detectors
        self.threshold = max(1, threshold)
        self.directions = directions
        self.action = action
        self.notify = notify
        self.reply = reply ?? Self.defaultReply(name: name, detectors: detectors.map(\.name))
    }

    /// What the sender reads: what was found (kinds, never values) and what to do about it.
    static func defaultReply(name: String, detectors: [String]) -> String {
        "message refused by the data protection policy '\(name)': it contains " + detectors.map(Self.describe).joined(separator: ", ")
            + "; remove that data (or send it by an approved channel) and try again"
    }

    static func describe(_ detector: String) -> String {
        switch detector {
        case "credit_card": return "payment card numbers"
        case "iban": return "bank account numbers (IBAN)"
        case "us_ssn": return "US social security numbers"
        case "uk_nino": return "UK national insurance numbers"
        case "es_dni": return "Spanish DNI/NIE numbers"
        case "nl_bsn": return "Dutch BSN numbers"
        case "it_codice_fiscale": return "Italian fiscal codes"
        case "markings": return "documents marked confidential"
        default: return "'\(detector)' matches"
        }
    }
}

/// The `dlp` filter: every policy for the message's direction counts its detectors' matches in
/// the message's texts (`MessageTexts`); the policies at or over their threshold act, the most
/// severe action deciding the verdict.
package struct DLPInspector: MessageInspector {
    /// One policy that applied, with its counts per detector (counts only: never what matched).
    package struct Match: Sendable, Equatable {
        package var policy: String
        package var action: DLPPolicy.Action
        package var counts: [(detector: String, count: Int)]

        package static func == (a: Match, b: Match) -> Bool {
            a.policy == b.policy && a.action == b.action && a.counts.map(\.detector) == b.counts.map(\.detector)
                && a.counts.map(\.count) == b.counts.map(\.count)
        }

        /// The `X-DLP-Match` value: `policy=NAME; action=ACTION; detectors=credit_card:2, iban:1`.
        package var headerValue: String {
            "policy=\(policy); action=\(action.rawValue); detectors=" + counts.map { "\($0.detector):\($0.count)" }.joined(separator: ", ")
        }
    }

    package let policies: [DLPPolicy]
    package let maxBufferedBytes: Int
    let logger: Logger?

    package init(policies: [DLPPolicy], maxBufferedBytes: Int = 32 << 20, logger: Logger? = nil) {
        self.policies = policies
        self.maxBufferedBytes = maxBufferedBytes
        self.logger = logger
    }

    package func inspect(_ message: FilterMessage) async -> (FilterVerdict, [FilterModification]) {
        let matches = self.matches(message)
        for m in matches {
            logger?.notice("dlp policy matched", metadata: ["policy": "\(m.policy)", "action": "\(m.action.rawValue)",
                                                           "detectors": "\(m.headerValue)", "transaction": "\(message.connection.transactionID ?? "-")"])
        }
        return Self.decision(matches, policies: policies)
    }

    /// The policies that apply to `message`, in configuration order.
    package func matches(_ message: FilterMessage) -> [Match] {
        let active = policies.filter { $0.directions.contains(message.connection.direction) }
        guard !active.isEmpty else { return [] }
        let texts = MessageTexts.texts(of: message)
        var cache: [String: Int] = [:]
        func count(_ d: any Detector) -> Int {
            if let n = cache[d.name] { return n }
            let n = texts.reduce(0) { $0 + d.count(in: $1) }
            cache[d.name] = n
            return n
        }
        return active.compactMap { policy in
            let counts = policy.detectors.map { (detector: $0.name, count: count($0)) }
            guard counts.reduce(0, { $0 + $1.count }) >= policy.threshold else { return nil }
            return Match(policy: policy.name, action: policy.action, counts: counts.filter { $0.count > 0 })
        }
    }

    /// The verdict and changes for the policies that matched: the first rejecting policy's
    /// reply; else the hold queue with every quarantining policy named; else on its way. Unless
    /// refused, an `X-DLP-Match` field per matched policy and its compliance address as a recipient.
    package static func decision(_ matches: [Match], policies: [DLPPolicy]) -> (FilterVerdict, [FilterModification]) {
        guard let worst = matches.map(\.action).max(by: { $0.severity < $1.severity }) else { return (.continue, []) }
        if worst == .reject, let m = matches.first(where: { $0.action == .reject }),
           let policy = policies.first(where: { $0.name == m.policy }) {
            return (.reject(MailReply(550, "5.7.1", policy.reply)), [])
        }
        var modifications: [FilterModification] = matches.map { .addHeader(name: "X-DLP-Match", value: $0.headerValue) }
        var added: [String] = []
        for m in matches {
            guard let address = policies.first(where: { $0.name == m.policy })?.notify,
                  !added.contains(where: { $0.lowercased() == address.lowercased() }) else { continue }
            added.append(address)
            modifications.append(.addRecipient(address))
        }
        guard worst == .quarantine else { return (.continue, modifications) }
        let names = matches.filter { $0.action == .quarantine }.map(\.policy).joined(separator: ", ")
        return (.quarantine(reason: "DLP policy \(names)"), modifications)
    }
}
