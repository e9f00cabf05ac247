import Foundation
import Logging
import PluginAPI

/// Signs mail on its way out (the SMTP transport asks, once per delivery attempt, after every
/// other change): a DKIM signature when the From domain, or a parent of it, has a key, then an
/// ARC set when the message came in from outside and is being passed on (it carries our own
/// Authentication-Results). A key that cannot sign is logged and the message goes unsigned: a
/// missing signature is better than a message that never leaves.
package struct SenderAuthSigner: OutgoingMessageSigner {
    let dkim: [String: DKIMSigner]
    let arc: ARCSealer?
    let authservID: String
    let logger: Logger
    let now: @Sendable () -> Date

    package init(dkim: [DKIMSigner], arc: ARCSealer?, authservID: String, logger: Logger,
                 now: @escaping @Sendable () -> Date = { Date() }) {
        self.dkim = Dictionary(dkim.map { ($0.domain, $0) }, uniquingKeysWith: { first, _ in first })
        self.arc = arc
        self.authservID = authservID
        self.logger = logger
        self.now = now
    }

    /// The signer for the domain of the message's From address: the domain's own key, or the key
    /// of the nearest parent domain that has one (d= may be a parent of the From domain, which
    /// DMARC's relaxed alignment accepts).
    func signer(for message: [UInt8]) -> DKIMSigner? {
        guard !dkim.isEmpty else { return nil }
        let parsed = DKIMMessage(message)
        let from = parsed.fields.filter { $0.lowercasedName == "from" }
        guard from.count == 1 else { return nil }
        guard var domain = FromDomain.single(in: String(decoding: from[0].value, as: UTF8.self)) else { return nil }
        while true {
            if let signer = dkim[domain] { return signer }
            guard let dot = domain.firstIndex(of: ".") else { return nil }
            domain = String(domain[domain.index(after: dot)...])
        }
    }

    package func signatureFields(for message: [UInt8], envelope: Envelope) async -> [String] {
        var fields: [String] = []
        var signed = message
        if let signer = signer(for: message) {
            do {
                var field = try signer.signatureField(for: message, now: now())
                while field.hasSuffix("\r\n") { field.removeLast() }
                fields.append(field)
                signed = Array((field + "\r\n").utf8) + message
            } catch {
                logger.error("DKIM signing failed; sent unsigned", metadata: ["domain": "\(signer.domain)", "error": "\(error)"])
            }
        }
        if let arc {
            do {
                if let set = try arc.seal(signed, authservID: authservID, now: now()) { fields = set + fields }
            } catch {
                logger.error("ARC sealing failed; sent unsealed", metadata: ["domain": "\(arc.domain)", "error": "\(error)"])
            }
        }
        return fields
    }
}

/// The domain of a From field holding exactly one address (RFC 7489 §6.6.1 makes anything else
/// unusable for DMARC, and a signer follows it).
enum FromDomain {
    static func single(in value: String) -> String? {
        let list = MailAddressList(parsing: value)
        guard list.errors.isEmpty, list.mailboxes.count == 1 else { return nil }
        let domain = list.mailboxes[0].domain.lowercased()
        return domain.isEmpty ? nil : domain
    }
}
