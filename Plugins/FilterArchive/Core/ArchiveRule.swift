import PluginAPI

/// One `[plugin.filter-archive.rules.NAME]`: which messages it copies and where.
struct ArchiveRule: Sendable, Equatable {
    var name: String
    /// Directions it applies to; empty: all.
    var directions: Set<FilterDirection> = []
    /// The message matches when the envelope sender's domain is one of these (empty: no condition).
    var senderDomains: [String] = []
    /// ... or any recipient's domain is one of these (empty: no condition).
    var recipientDomains: [String] = []
    /// ... or the sender or any recipient is one of these addresses (a department's list).
    var addresses: [String] = []
    /// ... and a header field matches (name, case-insensitive substring of its unfolded value).
    var header: (name: String, contains: String)?
    var destination: ArchiveDestination

    static func == (a: ArchiveRule, b: ArchiveRule) -> Bool {
        a.name == b.name && a.directions == b.directions && a.senderDomains == b.senderDomains
            && a.recipientDomains == b.recipientDomains && a.addresses == b.addresses
            && a.header?.name == b.header?.name && a.header?.contains == b.header?.contains && a.destination == b.destination
    }

    /// Whether the message is one this rule copies. The address conditions (sender domains,
    /// recipient domains, addresses) are alternatives: any one matching is enough; none given
    /// matches every message. The direction and header conditions must hold as well.
    func matches(_ message: FilterMessage) -> Bool {
        if !directions.isEmpty && !directions.contains(message.connection.direction) { return false }
        if let header {
            let values = message.headers(header.name)
            guard values.contains(where: { $0.lowercased().contains(header.contains.lowercased()) }) else { return false }
        }
        let addressConditions = !senderDomains.isEmpty || !recipientDomains.isEmpty || !addresses.isEmpty
        guard addressConditions else { return true }
        let sender = message.sender.lowercased(), recipients = message.recipients.map { $0.lowercased() }
        if senderDomains.contains(where: { Self.domain(of: sender) == $0 }) { return true }
        if recipients.contains(where: { r in recipientDomains.contains(Self.domain(of: r)) }) { return true }
        if addresses.contains(sender) || recipients.contains(where: addresses.contains) { return true }
        return false
    }

    /// The domain of an address, lower case (empty for the null sender or a bare local part).
    static func domain(of address: String) -> String {
        guard let at = address.lastIndex(of: "@") else { return "" }
        return String(address[address.index(after: at)...]).lowercased()
    }
}

/// Where a rule's copies go.
enum ArchiveDestination: Sendable, Equatable {
    /// The message as received, delivered to this address (a store mailbox, a mail archive) through the queue.
    case copy(to: String)
    /// An envelope journal through the queue: a report naming the real envelope sender and
    /// recipients (BCC ones too), with the original attached as message/rfc822.
    case journal(to: String)
    /// One `.eml` file per message in this directory, written and fsynced before the 250.
    case directory(String)
}
