import Foundation
import Logging
import PluginAPI

/// The `sender-auth` filter: checks SPF, every DKIM signature, the ARC chain and DMARC on mail
/// from the world, writes the results into Authentication-Results (and Received-SPF) at the top of
/// the message after removing fields that claim to be ours, and refuses or holds the message as
/// the listener's policy says. It runs in the chain's authentication phase, so the fields it adds
/// reach the content filters (a rule can score `dkim=fail`).
package struct SenderAuthInspector: MessageInspector {
    package let settings: SenderAuthSettings
    private let resolver: @Sendable () -> (any DNSResolver)?
    private let publicSuffixes: PublicSuffixList?
    private let observations: DMARCReportStore?
    private let spfCache = SPFCache()
    /// DKIM and ARC keys, across messages.
    private let keyCache = DKIMKeyCache<DKIMVerifier.KeyLookup>()
    private let logger: Logger
    private let now: @Sendable () -> Date

    package init(settings: SenderAuthSettings, resolver: @escaping @Sendable () -> (any DNSResolver)?,
                 publicSuffixes: PublicSuffixList?, observations: DMARCReportStore?, logger: Logger,
                 now: @escaping @Sendable () -> Date = { Date() }) {
        self.settings = settings
        self.resolver = resolver
        self.publicSuffixes = publicSuffixes
        self.observations = observations
        self.logger = logger
        self.now = now
    }

    package var phase: FilterPhase { .authentication }

    /// Mail from our own users and hosts is signed on its way out, not verified on its way in.
    func verifies(_ connection: FilterConnection) -> Bool {
        guard connection.direction != .outbound, connection.authenticatedUser == nil else { return false }
        if let address = IPAddress(connection.peerAddress), settings.trustedNetworks.contains(where: { $0.contains(address) }) {
            return false
        }
        return true
    }

    package func recipient(_ recipient: String, sender: String, connection: FilterConnection) async -> FilterVerdict {
        guard settings.policy(forListener: connection.listener).spf == .reject, verifies(connection) else { return .continue }
        let outcome = await spf(connection: connection, sender: sender, helo: connection.heloName)
        guard outcome.result == .fail else { return .continue }
        var text = "SPF: \(connection.peerAddress) is not allowed to send mail from \(outcome.domain)"
        if let explanation = outcome.explanation, !explanation.isEmpty { text += ": " + explanation }
        return .reject(MailReply(550, "5.7.23", text))
    }

    package func inspect(_ message: FilterMessage) async -> (FilterVerdict, [FilterModification]) {
        let authservID = settings.authservID ?? message.connection.localHostname
        var changes = removingForgedResults(message.fields, authservID: authservID)
        guard verifies(message.connection) else { return (.continue, changes) }
        let connection = message.connection
        let helo = message.helo ?? connection.heloName
        let spf = await spf(connection: connection, sender: message.sender, helo: helo)
        var dkim: [DKIMSignatureOutcome] = []
        var arc = ARCOutcome(result: .none)
        if let resolver = resolver() {
            if message.isTruncated {
                dkim = [DKIMSignatureOutcome(result: .temperror, reason: "message too big to verify")]
            } else {
                let verifier = DKIMVerifier(resolver: resolver, maxSignatures: settings.maxSignatures, keyCache: keyCache)
                async let signatures = verifier.verify(message.bytes, now: now())
                async let chain = ARCVerifier(keys: verifier).verify(message.bytes, now: now())
                dkim = await signatures
                arc = await chain
            }
        } else {
            dkim = [DKIMSignatureOutcome(result: .temperror, reason: "no DNS resolver loaded")]
        }
        var dmarc: DMARCOutcome?
        if let resolver = resolver(), let publicSuffixes {
            dmarc = await DMARCEvaluator(resolver: resolver, publicSuffixes: publicSuffixes)
                .evaluate(fromFields: message.headers("From"), spf: (spf.result, spf.domain), dkim: dkim)
        }
        let results = AuthenticationResultsField(
            authservID: authservID,
            entries: Self.entries(spf: spf, sender: message.sender, helo: helo, dkim: dkim, arc: arc, dmarc: dmarc, clientAddress: connection.peerAddress))
        changes.append(.insertHeader(index: 0, name: "Authentication-Results", value: Self.trimmed(results.value)))
        changes.append(.insertHeader(index: 0, name: ReceivedSPFField.name, value: Self.trimmed(ReceivedSPFField(spf).value)))
        if let dmarc, let observations,
           let evaluation = DMARCEvaluationRecord(outcome: dmarc, sourceIP: connection.peerAddress, envelopeFrom: message.sender,
                                                  spf: (spf.result, spf.domain), dkim: dkim, date: now()) {
            do {
                try observations.record(evaluation)
            } catch {
                logger.error("DMARC report store: cannot record an evaluation", metadata: ["error": "\(error)"])
            }
        }
        let (verdict, filing) = verdict(dmarc, listener: connection.listener)
        return (verdict, changes + filing)
    }

    /// The SPF outcome of this client, sender and HELO name (RFC 7208 §2.4: the HELO identity
    /// stands in for a null sender).
    private func spf(connection: FilterConnection, sender: String, helo: String?) async -> SPFOutcome {
        let ip = connection.peerAddress, name = helo ?? ""
        let receiver = settings.authservID ?? connection.localHostname
        guard let resolver = resolver() else {
            return SPFOutcome(result: .temperror, identity: sender.isEmpty ? .helo : .mailfrom, domain: "", clientIP: ip,
                              envelopeFrom: sender, helo: name, receiver: receiver, problem: "no DNS resolver loaded")
        }
        return await spfCache.outcome(ip: ip, sender: sender, helo: name) {
            await SPFEvaluator(resolver: resolver).check(ip: ip, mailFrom: sender, helo: name, receiver: receiver)
        }
    }

    /// What the listener's policy makes of a DMARC failure: the verdict, and the Junk mailbox
    /// for a `junk` listener's p=quarantine.
    private func verdict(_ dmarc: DMARCOutcome?, listener: String) -> (FilterVerdict, [FilterModification]) {
        guard let dmarc, dmarc.result == .fail else { return (.continue, []) }
        let domain = dmarc.policyDomain ?? "the author domain"
        switch (dmarc.disposition, settings.policy(forListener: listener).dmarc) {
        case (.none, _), (_, .record):
            return (.continue, [])
        case (.reject, .enforce), (.reject, .junk):
            return (.reject(MailReply(550, "5.7.1", "DMARC: \(domain) asks receivers to refuse mail that fails its authentication")), [])
        case (.quarantine, .junk):
            return (.continue, [.fileInto(folder: "Junk")])
        case (.reject, .quarantine), (.quarantine, _):
            return (.quarantine(reason: "DMARC policy of \(domain): \(dmarc.disposition.rawValue)"), [])
        }
    }

    /// Deletes every Authentication-Results field that claims our authserv-id (RFC 8601 §5):
    /// only ours may say what we found.
    private func removingForgedResults(_ fields: [(name: String, value: String)], authservID: String) -> [FilterModification] {
        var index = 0
        var changes: [FilterModification] = []
        for field in fields where field.name.lowercased() == "authentication-results" {
            index += 1
            if AuthenticationResultsField.claims(field.value, authservID: authservID) {
                changes.append(.changeHeader(name: "Authentication-Results", index: index, value: nil))
            }
        }
        return changes
    }

    static func entries(spf: SPFOutcome, sender: String, helo: String?, dkim: [DKIMSignatureOutcome], arc: ARCOutcome,
                        dmarc: DMARCOutcome?, clientAddress: String) -> [AuthenticationResultsField.Entry] {
        typealias Entry = AuthenticationResultsField.Entry
        typealias Property = AuthenticationResultsField.Property
        var entries: [Entry] = []
        let spfProperty = sender.isEmpty ? Property("smtp", "helo", helo ?? "") : Property("smtp", "mailfrom", sender)
        entries.append(Entry(method: "spf", result: spf.result.rawValue, reason: spf.problem, properties: [spfProperty]))
        if dkim.isEmpty {
            entries.append(Entry(method: "dkim", result: DKIMResult.none.rawValue))
        }
        for signature in dkim {
            var properties: [Property] = []
            if let domain = signature.domain { properties.append(Property("header", "d", domain)) }
            if let selector = signature.selector { properties.append(Property("header", "s", selector)) }
            if let identity = signature.identity { properties.append(Property("header", "i", identity)) }
            if let algorithm = signature.algorithm { properties.append(Property("header", "a", algorithm)) }
            if let prefix = signature.signaturePrefix { properties.append(Property("header", "b", prefix)) }
            entries.append(Entry(method: "dkim", result: signature.result.rawValue, reason: signature.reason, properties: properties))
        }
        if arc.result != .none || arc.reason != nil {
            entries.append(Entry(method: "arc", result: arc.result.rawValue, reason: arc.reason,
                                 properties: [Property("smtp", "remote-ip", clientAddress)]))
        }
        if let dmarc {
            var properties: [Property] = []
            if let from = dmarc.fromDomain { properties.append(Property("header", "from", from)) }
            entries.append(Entry(method: "dmarc", result: dmarc.result.rawValue, reason: dmarc.reason, properties: properties))
        }
        return entries
    }

    /// A field value as `MessageEdits` takes it: no leading white space (the edit writes `Name: `).
    static func trimmed(_ value: String) -> String {
        String(value.drop { $0 == " " || $0 == "\t" })
    }
}
