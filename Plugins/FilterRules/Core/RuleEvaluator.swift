import PluginAPI

/// Whether rules hit a message, given its facts and the block list answers.
enum RuleEvaluator {
    /// The rules of `rules` that hit, in order. A rule scoring 0 is off (the way to turn off a
    /// default rule): it is not tested and never listed.
    static func hits(_ rules: [Rule], facts: MessageFacts, listed: Set<String>) -> [Rule] {
        rules.filter { $0.score != 0 && holds($0.condition, facts: facts, listed: listed) != $0.negate }
    }

    static func holds(_ condition: RuleCondition, facts: MessageFacts, listed: Set<String>) -> Bool {
        switch condition {
        case .header(let name?, let pattern):
            return facts.values(name).contains(where: pattern.matches)
        case .header(nil, let pattern):
            return facts.fields.contains { pattern.matches($0.value) }
        case .bodyPhrase(let phrase):
            return phrase.occurs(in: facts.lowercasedText)
        case .bodyRegex(let pattern):
            return pattern.matches(facts.text)
        case .clientNetwork(let networks):
            guard let address = facts.clientAddress else { return false }
            return networks.contains { $0.contains(address) }
        case .clientHostname(let pattern):
            return pattern.matches(facts.clientHostname)
        case .helo(let pattern):
            return pattern.matches(facts.helo)
        case .sender(let pattern):
            return pattern.matches(facts.sender)
        case .recipient(let pattern):
            return facts.recipients.contains(where: pattern.matches)
        case .sizeOver(let limit):
            return facts.size > limit
        case .recipientsOver(let limit):
            return facts.recipients.count > limit
        case .unqualifiedSenderDomain:
            return !facts.clientIsTrusted && !facts.sender.isEmpty && !hasQualifiedDomain(facts.sender)
        case .missingHeader(let name):
            return facts.values(name).isEmpty
        case .malformedDate:
            let dates = facts.values("Date")
            return dates.count > 1 || dates.contains { MailDate(rfc5322: $0) == nil }
        case .malformedMessageID:
            let ids = facts.values("Message-ID")
            return ids.count > 1 || ids.contains { !isMessageID($0) }
        case .htmlOnly:
            return facts.hasHTML && !facts.hasPlainText
        case .dnsbl, .uribl:
            return Blocklists.isListed(condition, facts: facts, listed: listed)
        }
    }

    /// Whether an envelope address's domain is fully qualified: a name with a dot inside it, or
    /// an address literal (`[192.0.2.1]`).
    static func hasQualifiedDomain(_ address: String) -> Bool {
        guard let at = address.lastIndex(of: "@") else { return false }
        let domain = address[address.index(after: at)...]
        if domain.hasPrefix("[") && domain.hasSuffix("]") { return true }
        return domain.contains(".") && !domain.hasPrefix(".") && !domain.hasSuffix(".") && !domain.contains("..")
    }

    /// `<left@right>` (RFC 5322 §3.6.4), whitespace and comments around it allowed: one pair of
    /// angle brackets, one @ with something on each side, no spaces or brackets inside.
    static func isMessageID(_ value: String) -> Bool {
        var text = Substring(value)
        // A trailing comment ("<a@b> (added by relay)") is allowed.
        if let paren = text.firstIndex(of: "("), let close = text.lastIndex(of: ">"), paren > close { text = text[..<paren] }
        text = text.drop(while: { $0 == " " || $0 == "\t" })
        while let last = text.last, last == " " || last == "\t" { text = text.dropLast() }
        guard text.hasPrefix("<"), text.hasSuffix(">"), text.count >= 5 else { return false }
        let inner = text.dropFirst().dropLast()
        guard let at = inner.firstIndex(of: "@"), at != inner.startIndex, inner.index(after: at) != inner.endIndex else { return false }
        return !inner.contains { $0 == "<" || $0 == ">" || $0 == " " || $0 == "\t" } && inner.filter({ $0 == "@" }).count == 1
    }
}

/// What a set makes of a message's hits: the score, the verdict, the header changes.
struct SpamDecision: Sendable, Equatable {
    var score: Double
    var tests: [String]
    var verdict: FilterVerdict
    var modifications: [FilterModification]

    /// `fields` are the message's fields as received (the Subject to prefix, the X-Spam fields
    /// a client sent, which are deleted so that only ours are seen downstream).
    init(set: RuleSet, hits: [Rule], fields: [(name: String, value: String)]) {
        score = hits.reduce(0) { $0 + $1.score }
        tests = hits.map(\.name)
        let isTagged = score >= set.required
        let status = "\(isTagged ? "Yes" : "No"), score=\(Self.format(score)) required=\(Self.format(set.required)) tests=\(tests.isEmpty ? "none" : tests.joined(separator: ","))"
        var changes: [FilterModification] = []
        if set.headerMode == .always || isTagged {
            for name in ["X-Spam-Score", "X-Spam-Status"] {
                let count = fields.filter { $0.name.lowercased() == name.lowercased() }.count
                for index in stride(from: count, through: 1, by: -1) { changes.append(.changeHeader(name: name, index: index, value: nil)) }
            }
            changes.append(.addHeader(name: "X-Spam-Score", value: Self.format(score)))
            changes.append(.addHeader(name: "X-Spam-Status", value: status))
        }
        if let prefix = set.subjectPrefix, !prefix.isEmpty, let tag = set.tag, score >= tag {
            if let subject = fields.first(where: { $0.name.lowercased() == "subject" })?.value {
                let trimmed = subject.drop(while: { $0 == " " })
                if !trimmed.hasPrefix(prefix) { changes.append(.changeHeader(name: "Subject", index: 1, value: prefix + trimmed)) }
            } else {
                changes.append(.addHeader(name: "Subject", value: prefix.trimmingTrailingSpaces))
            }
        }
        if let reject = set.reject, score >= reject {
            verdict = .reject(MailReply(550, "5.7.1", "message refused as spam (score \(Self.format(score)))"))
            changes = []
        } else if let quarantine = set.quarantine, score >= quarantine {
            verdict = .quarantine(reason: "spam score \(Self.format(score)) (rule set \(set.name): \(tests.joined(separator: ",")))")
        } else {
            verdict = .continue
        }
        modifications = changes
    }

    /// One decimal, as SpamAssassin writes scores.
    static func format(_ score: Double) -> String {
        let tenths = (score * 10).rounded()
        let sign = tenths < 0 ? "-" : ""
        let magnitude = Int(abs(tenths))
        return "\(sign)\(magnitude / 10).\(magnitude % 10)"
    }
}

extension String {
    var trimmingTrailingSpaces: String {
        var s = Substring(self)
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
