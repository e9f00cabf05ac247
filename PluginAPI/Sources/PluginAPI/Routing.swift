/// Where a recipient goes: the MTA's answer at RCPT time (accept, refuse, or relay only for
/// authorised clients) and again when the queue delivers. Implemented by the queue plugin, which
/// owns the rewriting configuration (aliases, virtual alias maps, catch-all, recipient
/// delimiter, relay domains); the SMTP session asks it before saying 250 to a RCPT.
public protocol MailRouter: Sendable {
    /// Classifies one envelope recipient (an RFC 5321 mailbox, already checked for syntax).
    func classify(_ recipient: String) async throws -> RecipientClass
    /// Whether mail for `domain` is delivered on this system (an account domain, or a virtual
    /// alias domain).
    func isLocalDomain(_ domain: String) async throws -> Bool
}

public enum RecipientClass: Sendable, Equatable {
    /// A local destination: an account, or an alias whose expansion is given (final addresses,
    /// which may be remote; an alias to a remote address is not a relay: the local domain's
    /// administrator configured it).
    case local(expandsTo: [String])
    /// A local domain without such an account or alias: `550 5.1.1`.
    case unknownUser
    /// An account that exists but is suspended: `550 5.2.1`.
    case disabled
    /// A domain this system relays for (`relay_domains`): accepted from anyone, then delivered
    /// onward by the queue.
    case relayDomain
    /// Anywhere else: accepted only from authenticated users and trusted networks.
    case remote
}

/// How the queue places a message: where it came from decides what happens on failure
/// (bounce to the sender, or refuse at the door), and which client submitted it.
public struct SubmissionInfo: Sendable, Equatable, Codable {
    /// The client's address (for Received: and logs).
    public var clientAddress: String
    /// The client's name from reverse DNS, when verified.
    public var clientHostname: String?
    /// HELO/EHLO name.
    public var helo: String
    /// The protocol (`ESMTP`, `ESMTPS`, `ESMTPSA`, ... RFC 3848) for the Received: line.
    public var protocolName: String
    /// The authenticated user, if any.
    public var authenticatedUser: String?

    public init(clientAddress: String, clientHostname: String? = nil, helo: String, protocolName: String, authenticatedUser: String? = nil) {
        self.clientAddress = clientAddress
        self.clientHostname = clientHostname
        self.helo = helo
        self.protocolName = protocolName
        self.authenticatedUser = authenticatedUser
    }
}
