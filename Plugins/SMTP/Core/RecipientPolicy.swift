import Foundation
import PluginAPI

/// The checks a recipient passes after its syntax, beside the phase machine as Postfix's
/// `smtpd_check.c` stands beside `smtpd.c`: the access tables, the router (local, relay domain,
/// remote; unknown or disabled accounts) and relay control. Filters stay in the session, which
/// holds the transaction they see. Replies come from `RecipientRefusal`, shared with LMTP.
struct RecipientPolicy {
    let access: AccessPolicy
    let router: any MailRouter
    /// Access tables are skipped for a client an access table already whitelisted.
    let clientWhitelisted: Bool
    /// Trusted network, authenticated relaying, or a client the access tables let relay.
    let mayRelay: Bool
    let unknownUserCode: Int
    let logger: Logger

    enum Decision: Equatable {
        /// `discard`: an access table said DISCARD (accepted, then thrown away).
        case accept(discard: Bool)
        case refuse(MailReply, SMTPMetrics.RefusalReason)
    }

    func decide(_ address: String) async -> Decision {
        var relayByAccess = false
        var discard = false
        if !clientWhitelisted, let (key, action) = await access.decide(AccessPolicy.addressKeys("to:", address)) {
            logger.info("recipient access table decision", metadata: ["key": "\(key)", "action": "\(action)"])
            switch action {
            case .reject(let text): return .refuse(MailReply(550, "5.7.1", "<\(address)>: \(text ?? "recipient address rejected")"), .access)
            case .tempfail(let text): return .refuse(MailReply(450, "4.7.1", "<\(address)>: \(text ?? "try again later")"), .access)
            case .discard: discard = true
            case .relay: relayByAccess = true
            case .ok: break
            }
        }
        let destination: RecipientClass
        do {
            destination = try await router.classify(address)
        } catch {
            // Fail closed (ARCHITECTURE.md, "Fail closed"): unknown is temporary, never remote.
            logger.error("recipient lookup failed", metadata: ["to": "\(address)", "error": "\(error)"])
            return .refuse(RecipientRefusal.lookupFailed.reply(address), .temporary)
        }
        switch destination {
        case .local, .relayDomain:
            return .accept(discard: discard)
        case .unknownUser:
            return .refuse(RecipientRefusal.unknownUser.reply(address, unknownUserCode: unknownUserCode), .unknownUser)
        case .disabled:
            return .refuse(RecipientRefusal.disabled.reply(address), .disabled)
        case .remote:
            guard mayRelay || relayByAccess else { return .refuse(RecipientRefusal.relayDenied.reply(address), .relayDenied) }
            return .accept(discard: discard)
        }
    }
}
