/// Why a recipient is refused, and the reply that says so: named once, so that the SMTP server and
/// LMTP answer a RCPT the same way. The code for an unknown user can be 450 instead of 550, as
/// Postfix's `unknown_local_recipient_reject_code` allows while accounts are being migrated (the
/// sender retries instead of bouncing).
public enum RecipientRefusal: String, Sendable, Equatable, CaseIterable {
    case unknownUser
    case disabled
    case notLocal
    case relayDenied
    case lookupFailed

    public func reply(_ address: String, unknownUserCode: Int = 550) -> MailReply {
        switch self {
        case .unknownUser:
            return MailReply(unknownUserCode, unknownUserCode >= 500 ? "5.1.1" : "4.1.1", "<\(address)>: no such user here")
        case .disabled: return MailReply(550, "5.2.1", "<\(address)>: mailbox disabled")
        case .notLocal: return MailReply(550, "5.1.2", "<\(address)>: not a local domain")
        case .relayDenied: return MailReply(554, "5.7.1", "<\(address)>: relay access denied")
        case .lookupFailed: return MailReply(451, "4.3.0", "<\(address)>: temporary lookup failure")
        }
    }
}
