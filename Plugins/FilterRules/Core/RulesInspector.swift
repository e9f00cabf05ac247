import PluginAPI

/// The settings of the plugin as loaded: the rule sets and the limits of a scan.
struct RulesSettings: Sendable {
    var sets: [RuleSet]
    var trustedNetworks: [IPNetwork]
    var maxMessageBytes: Int
    var maxScanBytes: Int
    var maxURIHosts: Int
    var dnsConcurrency: Int

    /// The set that judges a message: for each recipient in envelope order, the first set of
    /// the connection's direction that names the recipient's domain; failing all of them, the
    /// first set of that direction with no `domains`. Nil: the message is not judged.
    func set(for recipients: [String], direction: FilterDirection) -> RuleSet? {
        let candidates = sets.filter { $0.directions.contains(direction) }
        for recipient in recipients {
            guard let at = recipient.lastIndex(of: "@") else { continue }
            let domain = recipient[recipient.index(after: at)...].lowercased()
            if let set = candidates.first(where: { $0.domains.contains(domain) }) { return set }
        }
        return candidates.first { $0.domains.isEmpty }
    }
}

/// The filter: at end of message, picks the rule set, gathers the facts, asks the block lists,
/// scores, and answers with the set's verdict and header changes.
struct RulesInspector: MessageInspector {
    let settings: RulesSettings
    /// The host's DNS resolver when one is loaded (asked per message: the host's services are
    /// complete only after every plugin is active).
    let resolver: @Sendable () -> (any DNSResolver)?
    let logger: Logger
    /// Whether "no DNS resolver" was logged already (once per worker is enough).
    let warnedNoResolver = NIOLockedValueBox(false)

    var maxBufferedBytes: Int { settings.maxMessageBytes }

    func inspect(_ message: FilterMessage) async -> (FilterVerdict, [FilterModification]) {
        guard let set = settings.set(for: message.recipients, direction: message.connection.direction) else { return (.continue, []) }
        let decision = await judge(message, with: set)
        var metadata: Logger.Metadata = ["set": "\(set.name)", "score": "\(SpamDecision.format(decision.score))",
                                         "tests": "\(decision.tests.joined(separator: ","))"]
        if let id = message.connection.transactionID { metadata["id"] = "\(id)" }
        switch decision.verdict {
        case .reject: logger.notice("message rejected as spam", metadata: metadata)
        case .quarantine: logger.notice("message quarantined as spam", metadata: metadata)
        default: logger.info("message scored", metadata: metadata)
        }
        return (decision.verdict, decision.modifications)
    }

    func judge(_ message: FilterMessage, with set: RuleSet) async -> SpamDecision {
        let facts = MessageFacts(message, trustedNetworks: settings.trustedNetworks, maxScanBytes: settings.maxScanBytes,
                                 maxURIHosts: settings.maxURIHosts)
        var listed = Set<String>()
        let questions = Blocklists.questions(for: set.rules, facts: facts)
        if !questions.isEmpty {
            if let resolver = resolver() {
                let answers = await Blocklists.lookUp(questions, resolver: resolver, concurrency: settings.dnsConcurrency)
                listed = answers.listed
                for failure in answers.failures { logger.warning("block list lookup failed, counted as not listed", metadata: ["lookup": "\(failure)"]) }
            } else if !warnedNoResolver.withLockedValue({ w in defer { w = true }; return w }) {
                logger.warning("no DNS resolver plugin loaded: dnsbl and uribl rules never hit", metadata: ["set": "\(set.name)"])
            }
        }
        let hits = RuleEvaluator.hits(set.rules, facts: facts, listed: listed)
        return SpamDecision(set: set, hits: hits, fields: message.fields)
    }
}
